"""TokenVerifier: Supabase JWTs (HS256 legacy secret, ES256/RS256 from a JWKS), service keys, dev tokens.

The JWKS endpoint is an httpx.MockTransport, so rotation and outages are
scripted; everything else is real joserfc signing and verification.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from cimhub.protocol.errors import (
    AccessDenied,
    ErrorCode,
    InvalidInput,
    Unauthenticated,
    Unavailable,
)
from cimhub.server.auth.tokens import (
    DevTokenIssuer,
    Identity,
    TokenVerifier,
    new_service_key,
)
from cimhub.server.settings import Settings

SUPABASE_URL = "https://abcdefgh.supabase.co"
ISSUER = f"{SUPABASE_URL}/auth/v1"
JWKS_URL = f"{ISSUER}/.well-known/jwks.json"
LEGACY_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
DEV_SECRET = "cimhub-test-dev-secret-long-enough-for-hs256"
USER = "6f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"
SECRET_KEY = "sb_secret_" + "x" * 32
EC_KEY = ECKey.generate_key("P-256", parameters={"kid": "ec-1", "alg": "ES256", "use": "sig"})
EC_KEY_2 = ECKey.generate_key("P-256", parameters={"kid": "ec-2", "alg": "ES256", "use": "sig"})
RSA_KEY = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "alg": "RS256", "use": "sig"})


def user_claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": "authenticated",
        "sub": USER,
        "role": "authenticated",
        "iat": now,
        "exp": now + 3600,
        "is_anonymous": False,
        "email": "ana@example.com",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def sign(claims: dict[str, Any], key: OctKey | ECKey | RSAKey | str = LEGACY_SECRET, alg: str = "HS256") -> str:
    if isinstance(key, str):
        key = OctKey.import_key(key)
    header: dict[str, Any] = {"alg": alg}
    if key.kid:
        header["kid"] = key.kid
    return jwt.encode(header, claims, key, algorithms=[alg])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class JwksEndpoint:
    """Supabase Auth's JWKS endpoint, scripted: which keys it publishes, whether it is down."""

    def __init__(self, *keys: ECKey | RSAKey) -> None:
        self.keys = list(keys)
        self.extra: list[dict[str, Any]] = []
        self.status = 200
        self.requests = 0
        self.drip_s: float | None = None
        """Send the body one byte per `drip_s` seconds (a slow or malicious endpoint)."""
        self.dripping = 0
        self.transport = httpx.MockTransport(self._handle)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        self.requests += 1
        if self.status != 200:
            return httpx.Response(self.status, text="upstream down")
        body = json.dumps({"keys": [k.as_dict(private=False) for k in self.keys] + self.extra}).encode()
        if self.drip_s is None:
            return httpx.Response(200, content=body)
        return httpx.Response(200, stream=_Drip(self, body, self.drip_s))


class _Drip(httpx.AsyncByteStream):
    def __init__(self, endpoint: JwksEndpoint, body: bytes, interval_s: float) -> None:
        self.endpoint, self.body, self.interval_s = endpoint, body, interval_s

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.endpoint.dripping += 1
        try:
            for byte in self.body:
                await asyncio.sleep(self.interval_s)
                yield bytes([byte])
        finally:
            self.endpoint.dripping -= 1


@pytest.fixture
def jwks() -> JwksEndpoint:
    return JwksEndpoint(EC_KEY, RSA_KEY)


@pytest.fixture
async def make_verifier(jwks: JwksEndpoint) -> AsyncIterator[Callable[..., TokenVerifier]]:
    made: list[TokenVerifier] = []

    def make(**overrides: Any) -> TokenVerifier:
        options: dict[str, Any] = {
            "supabase_url": SUPABASE_URL,
            "jwt_secret": LEGACY_SECRET,
            "jwks_transport": jwks.transport,
            "service_keys": [SECRET_KEY],
        }
        options.update(overrides)
        verifier = TokenVerifier(**options)
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        await verifier.aclose()


@pytest.fixture
def verifier(make_verifier: Callable[..., TokenVerifier]) -> TokenVerifier:
    return make_verifier()


async def refused(verifier: TokenVerifier, token: str, code: ErrorCode = ErrorCode.UNAUTHENTICATED) -> Unauthenticated:
    """Verify that `token` is refused with `code`, and that the message does not echo it."""
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(token)
    error = caught.value
    assert error.code is code, error.message
    if len(token) > 8:
        assert token not in error.message and token not in str(error)
        for part in token.split("."):
            if len(part) > 8:
                assert part not in error.message
    return error


# -- valid user tokens --------------------------------------------------------


async def test_legacy_hs256_user_token(verifier: TokenVerifier) -> None:
    claims = user_claims()
    identity = await verifier.verify(sign(claims))
    assert identity == Identity(user_id=USER, role="authenticated", is_service=False, expires_at=float(claims["exp"]))
    assert identity.claims["email"] == "ana@example.com"


@pytest.mark.parametrize(("key", "alg"), [(EC_KEY, "ES256"), (RSA_KEY, "RS256")])
async def test_asymmetric_user_token_from_jwks(
    verifier: TokenVerifier, jwks: JwksEndpoint, key: ECKey | RSAKey, alg: str
) -> None:
    identity = await verifier.verify(sign(user_claims(), key, alg))
    assert identity.user_id == USER and not identity.is_service
    await verifier.verify(sign(user_claims(), key, alg))
    assert jwks.requests == 1  # keys are cached


async def test_expiry_allows_the_leeway_then_asks_for_a_refresh(
    make_verifier: Callable[..., TokenVerifier],
) -> None:
    verifier = make_verifier(leeway_s=30)
    now = int(time.time())
    await verifier.verify(sign(user_claims(exp=now - 10)))
    error = await refused(verifier, sign(user_claims(exp=now - 60)), ErrorCode.TOKEN_EXPIRED)
    assert error.retryable is True and "refresh" in error.message


async def test_not_yet_valid(verifier: TokenVerifier) -> None:
    error = await refused(verifier, sign(user_claims(nbf=int(time.time()) + 600)))
    assert "nbf" in error.message and error.retryable is False


@pytest.mark.parametrize("aud", ["someone-else", None, ["other"]])
async def test_wrong_or_missing_audience(verifier: TokenVerifier, aud: Any) -> None:
    error = await refused(verifier, sign(user_claims(aud=aud)))
    assert "aud" in error.message


async def test_audience_is_configurable(make_verifier: Callable[..., TokenVerifier]) -> None:
    verifier = make_verifier(audience="cim-builder")
    await verifier.verify(sign(user_claims(aud="cim-builder")))
    await refused(verifier, sign(user_claims()))


@pytest.mark.parametrize("iss", ["https://evil.supabase.co/auth/v1", "supabase", None])
async def test_wrong_or_missing_issuer(verifier: TokenVerifier, iss: str | None) -> None:
    error = await refused(verifier, sign(user_claims(iss=iss)))
    assert "iss" in error.message


async def test_missing_exp_or_sub(verifier: TokenVerifier) -> None:
    assert "exp" in (await refused(verifier, sign(user_claims(exp=None)))).message
    assert "sub" in (await refused(verifier, sign(user_claims(sub=None)))).message


# -- forged, altered and confused tokens ------------------------------------------------


async def test_wrong_shared_secret(verifier: TokenVerifier) -> None:
    error = await refused(verifier, sign(user_claims(), "another-secret-that-is-also-32-chars-long"))
    assert "signature" in error.message


async def test_asymmetric_token_signed_by_a_key_with_a_known_kid_but_other_material(
    verifier: TokenVerifier,
) -> None:
    impostor = ECKey.generate_key("P-256", parameters={"kid": EC_KEY.kid or "", "alg": "ES256"})
    await refused(verifier, sign(user_claims(), impostor, "ES256"))


async def test_alg_none_is_refused(verifier: TokenVerifier) -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64(json.dumps(user_claims()).encode())
    for token in (f"{header}.{payload}.", f"{header}.{payload}.{b64(b'x' * 32)}"):
        error = await refused(verifier, token)
        assert "algorithm" in error.message


@pytest.mark.parametrize("alg", ["HS384", "HS512", "PS256", "ES512", "EdDSA"])
async def test_algorithms_outside_the_allow_list_are_refused(verifier: TokenVerifier, alg: str) -> None:
    header = b64(json.dumps({"alg": alg, "kid": "ec-1"}).encode())
    payload = b64(json.dumps(user_claims()).encode())
    error = await refused(verifier, f"{header}.{payload}.{b64(b'sig' * 20)}")
    assert "algorithm" in error.message


def _hs256_with_secret(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """An HS256 token keyed with arbitrary bytes: the classic RSA-public-key-as-HMAC-secret forgery."""
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'kid': kid}).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


@pytest.mark.parametrize("legacy_secret", [LEGACY_SECRET, None])
async def test_hs256_signed_with_the_published_public_key_is_refused(
    make_verifier: Callable[..., TokenVerifier], legacy_secret: str | None
) -> None:
    verifier = make_verifier(jwt_secret=legacy_secret)
    for public in (
        RSA_KEY.as_pem(private=False),
        json.dumps(RSA_KEY.as_dict(private=False)).encode(),
    ):
        await refused(verifier, _hs256_with_secret(user_claims(), public, RSA_KEY.kid or ""))


async def test_rs256_header_on_a_token_for_an_ec_key_is_refused(verifier: TokenVerifier) -> None:
    token = sign(user_claims(), EC_KEY, "ES256")
    _header, payload, signature = token.split(".")
    forged_header = b64(json.dumps({"alg": "RS256", "kid": EC_KEY.kid}).encode())
    error = await refused(verifier, f"{forged_header}.{payload}.{signature}")
    assert "does not verify RS256" in error.message


async def test_symmetric_keys_in_the_jwks_are_ignored(verifier: TokenVerifier, jwks: JwksEndpoint) -> None:
    jwks.extra.append({"kty": "oct", "kid": "sym", "k": b64(b"k" * 32)})
    header = b64(json.dumps({"alg": "RS256", "kid": "sym"}).encode())
    error = await refused(verifier, f"{header}.{b64(json.dumps(user_claims()).encode())}.{b64(b's' * 32)}")
    assert "does not publish" in error.message


async def test_tampered_payload(verifier: TokenVerifier) -> None:
    for key, alg in ((LEGACY_SECRET, "HS256"), (EC_KEY, "ES256")):
        header, _, signature = sign(user_claims(), key, alg).split(".")
        payload = b64(json.dumps(user_claims(sub="00000000-0000-4000-8000-000000000000")).encode())
        error = await refused(verifier, f"{header}.{payload}.{signature}")
        assert "signature" in error.message


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "a.b", "eyJhbGciOiJIUzI1NiJ9.!!!.x", "x" * 20_000])
async def test_malformed_credentials(verifier: TokenVerifier, token: str) -> None:
    await refused(verifier, token)


# -- JWKS rotation and outages ------------------------------------------------------------


async def test_rotation_refetches_once_on_an_unknown_kid(
    make_verifier: Callable[..., TokenVerifier], jwks: JwksEndpoint
) -> None:
    verifier = make_verifier(jwks_min_refetch_s=0)
    await verifier.verify(sign(user_claims(), EC_KEY, "ES256"))
    assert jwks.requests == 1
    jwks.keys = [EC_KEY_2]  # Supabase rotated: ec-1 revoked, ec-2 current
    identity = await verifier.verify(sign(user_claims(), EC_KEY_2, "ES256"))
    assert identity.user_id == USER and jwks.requests == 2
    await refused(verifier, sign(user_claims(), EC_KEY, "ES256"))  # the revoked key is gone after the refresh


def stranger_token(n: int) -> str:
    stranger = ECKey.generate_key("P-256", parameters={"kid": f"made-up-{n}", "alg": "ES256"})
    return sign(user_claims(), stranger, "ES256")


async def test_unknown_kids_within_the_refetch_interval_are_retryable_and_cost_no_fetch(
    make_verifier: Callable[..., TokenVerifier], jwks: JwksEndpoint
) -> None:
    verifier = make_verifier(jwks_min_refetch_s=60)
    await verifier.verify(sign(user_claims(), EC_KEY, "ES256"))
    for n in range(5):
        with pytest.raises(Unavailable) as caught:
            await verifier.verify(stranger_token(n))
        assert caught.value.retryable is True
    assert jwks.requests == 1


async def test_an_unknown_kid_is_refused_without_a_fetch_once_known_to_be_unknown(
    make_verifier: Callable[..., TokenVerifier], jwks: JwksEndpoint
) -> None:
    verifier = make_verifier(jwks_min_refetch_s=0, jwks_unknown_kid_ttl_s=60)
    await verifier.verify(sign(user_claims(), EC_KEY, "ES256"))
    token = stranger_token(1)
    for _ in range(5):
        await refused(verifier, token)
    assert jwks.requests == 2  # one fetch looked for it; the other four were answered from the negative cache


async def test_an_attackers_unknown_kid_does_not_delay_a_real_rotation(
    make_verifier: Callable[..., TokenVerifier], jwks: JwksEndpoint
) -> None:
    verifier = make_verifier(jwks_min_refetch_s=0.2)
    await verifier.verify(sign(user_claims(), EC_KEY, "ES256"))
    await asyncio.sleep(0.25)
    await refused(verifier, stranger_token(1))  # spends a fetch
    jwks.keys = [EC_KEY, EC_KEY_2]  # Supabase rotates right after
    token = sign(user_claims(), EC_KEY_2, "ES256")
    with pytest.raises(Unavailable) as caught:  # within the refetch interval: retry, not "bad token"
        await verifier.verify(token)
    assert caught.value.retryable is True
    await asyncio.sleep(0.25)
    assert (await verifier.verify(token)).user_id == USER


async def test_no_keys_ever_fetched_is_unavailable_not_unauthenticated(
    verifier: TokenVerifier, jwks: JwksEndpoint
) -> None:
    jwks.status = 503
    with pytest.raises(Unavailable) as caught:
        await verifier.verify(sign(user_claims(), EC_KEY, "ES256"))
    assert caught.value.retryable is True


async def test_a_failed_refresh_keeps_the_last_good_keys(
    make_verifier: Callable[..., TokenVerifier], jwks: JwksEndpoint
) -> None:
    verifier = make_verifier(jwks_min_refetch_s=0, jwks_max_age_s=0)  # stale at once: every call refreshes
    await verifier.verify(sign(user_claims(), EC_KEY, "ES256"))
    jwks.status = 500
    await verifier.verify(sign(user_claims(), EC_KEY, "ES256"))
    await asyncio.sleep(0.05)  # the refresh runs in the background
    assert jwks.requests == 2
    assert (await verifier.verify(sign(user_claims(), EC_KEY, "ES256"))).user_id == USER


async def test_a_removed_key_stops_working_after_the_max_age(
    make_verifier: Callable[..., TokenVerifier], jwks: JwksEndpoint
) -> None:
    verifier = make_verifier(jwks_min_refetch_s=0, jwks_max_age_s=0.1)
    token = sign(user_claims(), EC_KEY, "ES256")
    await verifier.verify(token)
    jwks.keys = [EC_KEY_2]  # ec-1 revoked in Supabase
    await asyncio.sleep(0.15)
    await verifier.verify(token)  # still known: answered at once, a background refresh starts
    await asyncio.sleep(0.1)
    await refused(verifier, token)


async def test_a_dripping_jwks_endpoint_is_cut_at_the_fetch_deadline(
    make_verifier: Callable[..., TokenVerifier], jwks: JwksEndpoint
) -> None:
    jwks.drip_s = 0.05  # one byte every 50 ms: the whole set would take minutes
    verifier = make_verifier(jwks_fetch_deadline_s=0.6)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await verifier.verify(sign(user_claims(), EC_KEY, "ES256"))
    assert time.monotonic() - started < 10  # generous: without the deadline it takes minutes


async def test_known_keys_do_not_wait_for_a_slow_refresh(
    make_verifier: Callable[..., TokenVerifier], jwks: JwksEndpoint
) -> None:
    verifier = make_verifier(jwks_min_refetch_s=0, jwks_max_age_s=0, jwks_fetch_deadline_s=30)
    token = sign(user_claims(), EC_KEY, "ES256")
    await verifier.verify(token)
    jwks.drip_s = 0.05
    await verifier.verify(token)  # starts a refresh that drips for 30 s
    await asyncio.sleep(0.1)
    assert jwks.requests == 2 and jwks.dripping == 1
    assert (await verifier.verify(token)).user_id == USER  # answered while that refresh still drips
    assert jwks.dripping == 1


@pytest.mark.parametrize("exp", [10**400, "1700000000", True, None])
async def test_an_absurd_exp_is_a_clean_refusal(verifier: TokenVerifier, exp: Any) -> None:
    claims = user_claims()
    claims["exp"] = exp
    header = b64(json.dumps({"alg": "HS256"}).encode())
    signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(LEGACY_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    await refused(verifier, f"{signing_input}.{b64(signature)}")


async def test_concurrent_verifications_share_one_fetch(verifier: TokenVerifier, jwks: JwksEndpoint) -> None:
    token = sign(user_claims(), RSA_KEY, "RS256")
    await asyncio.gather(*(verifier.verify(token) for _ in range(20)))
    assert jwks.requests == 1


# -- roles, anonymous users, service credentials --------------------------------------------


async def test_anonymous_sign_ins_are_refused_unless_allowed(
    make_verifier: Callable[..., TokenVerifier],
) -> None:
    token = sign(user_claims(is_anonymous=True))
    error = await refused(make_verifier(), token)
    assert "anonymous" in error.message
    identity = await make_verifier(allow_anonymous=True).verify(token)
    assert identity.user_id == USER


@pytest.mark.parametrize("role", ["anon", "supabase_admin", None])
async def test_other_roles_are_refused(verifier: TokenVerifier, role: str | None) -> None:
    error = await refused(verifier, sign(user_claims(role=role)))
    assert "role" in error.message


async def test_legacy_service_role_key(verifier: TokenVerifier) -> None:
    now = int(time.time())
    key = sign(
        {
            "iss": "supabase",
            "ref": "abcdefgh",
            "role": "service_role",
            "iat": now,
            "exp": now + 10 * 365 * 86400,
        }
    )
    identity = await verifier.verify(key)
    assert identity.is_service and identity.user_id is None and identity.role == "service_role"
    acting = await verifier.verify(key, on_behalf_of=USER)
    assert acting.user_id == USER and acting.on_behalf_of == USER and acting.is_service


async def test_service_role_jwt_from_jwks_must_carry_the_auth_issuer(
    verifier: TokenVerifier,
) -> None:
    now = int(time.time())
    claims = {"iss": "supabase", "role": "service_role", "iat": now, "exp": now + 60}
    await refused(verifier, sign(claims, EC_KEY, "ES256"))
    identity = await verifier.verify(sign({**claims, "iss": ISSUER}, EC_KEY, "ES256"))
    assert identity.is_service


async def test_supabase_secret_key(verifier: TokenVerifier) -> None:
    identity = await verifier.verify(SECRET_KEY)
    assert identity == Identity(user_id=None, role="service_role", is_service=True)
    assert (await verifier.verify(SECRET_KEY, on_behalf_of=USER)).user_id == USER
    await refused(verifier, "sb_secret_" + "y" * 32)
    await refused(verifier, SECRET_KEY[:-1])
    error = await refused(verifier, "sb_publishable_" + "z" * 32)
    assert "publishable" in error.message


async def test_hub_issued_service_key(make_verifier: Callable[..., TokenVerifier]) -> None:
    key = new_service_key()
    verifier = make_verifier(service_keys=[SECRET_KEY, key])
    assert (await verifier.verify(key)).is_service
    await refused(verifier, new_service_key())


async def test_service_keys_must_look_like_keys() -> None:
    with pytest.raises(ValueError, match="service keys"):
        TokenVerifier(service_keys=["hunter2"])


async def test_only_services_act_on_behalf_of_users(verifier: TokenVerifier) -> None:
    with pytest.raises(AccessDenied):
        await verifier.verify(sign(user_claims()), on_behalf_of="someone-else")
    with pytest.raises(InvalidInput):
        await verifier.verify(SECRET_KEY, on_behalf_of="")
    with pytest.raises(InvalidInput):
        await verifier.verify(SECRET_KEY, on_behalf_of="x" * 500)


# -- dev mode -----------------------------------------------------------------------------------


async def test_dev_tokens_are_accepted_only_in_dev_mode(
    make_verifier: Callable[..., TokenVerifier],
) -> None:
    issuer = DevTokenIssuer(DEV_SECRET)
    token = issuer.mint("dev-user", ttl_s=60)
    dev = TokenVerifier(dev_secret=DEV_SECRET)
    identity = await dev.verify(token)
    assert identity.user_id == "dev-user" and identity.role == "authenticated" and not identity.is_service
    assert (await dev.verify(issuer.mint("worker", role="service_role"))).is_service
    await refused(dev, sign(user_claims()))  # no Supabase configured: its tokens are not accepted
    await refused(dev, DevTokenIssuer("another-dev-secret-of-sufficient-length").mint("dev-user"))
    await refused(dev, issuer.mint("dev-user", ttl_s=-120), ErrorCode.TOKEN_EXPIRED)

    production = make_verifier()  # Supabase only, no dev secret
    error = await refused(production, token)
    assert "signature" in error.message


async def test_dev_mode_still_accepts_supabase_tokens(
    make_verifier: Callable[..., TokenVerifier],
) -> None:
    verifier = make_verifier(dev_secret=DEV_SECRET)
    await verifier.verify(DevTokenIssuer(DEV_SECRET).mint("dev-user"))
    await verifier.verify(sign(user_claims()))
    await verifier.verify(sign(user_claims(), EC_KEY, "ES256"))


async def test_from_settings(jwks: JwksEndpoint) -> None:
    settings = Settings(
        supabase_url=SUPABASE_URL,
        supabase_jwt_secret=LEGACY_SECRET,
        supabase_service_key=SECRET_KEY,
        jwt_leeway_s=0,
    )
    verifier = TokenVerifier.from_settings(settings, jwks_transport=jwks.transport)
    try:
        assert (await verifier.verify(SECRET_KEY)).is_service
        assert (await verifier.verify(sign(user_claims(), EC_KEY, "ES256"))).user_id == USER
        await refused(verifier, sign(user_claims(exp=int(time.time()) - 5)), ErrorCode.TOKEN_EXPIRED)
        await refused(verifier, DevTokenIssuer(settings.dev_secret).mint("dev-user"))
    finally:
        await verifier.aclose()
    dev = TokenVerifier.from_settings(Settings(dev_mode=True))
    assert (await dev.verify(DevTokenIssuer(Settings().dev_secret).mint("dev-user"))).user_id == "dev-user"
    with pytest.raises(ValueError, match="nothing to verify"):
        TokenVerifier.from_settings(Settings())
