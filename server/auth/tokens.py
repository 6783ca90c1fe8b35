"""Who is calling: a credential in, an :class:`Identity` out, checked locally.

Credentials the hub accepts:

* a Supabase Auth access token of a signed-in user (``role`` = ``authenticated``),
  signed HS256 with the project's legacy shared JWT secret, or ES256/RS256 with
  a key from the project's JWKS (see :mod:`cimhub.server.auth.jwks`);
* a service credential: the legacy ``service_role`` JWT, a Supabase secret API
  key (``sb_secret_…``) or a hub key (``cimhub_sk_…``) configured on the hub;
  a service may act on behalf of a user, named separately from the credential;
* in dev mode only, HS256 tokens minted by :class:`DevTokenIssuer` (``iss`` =
  ``cimhub-dev``).

Each algorithm is bound to one key type (HS256: the configured secrets; ES256
and RS256: public keys from the JWKS), so a token cannot pick how it is checked:
``none`` and every other algorithm are refused before any key is looked at.

Errors: an expired token raises Unauthenticated with code ``token_expired``
(retryable: refresh the session and send the new token); any other bad
credential raises Unauthenticated (``unauthenticated``). Messages say what was
wrong and never contain the credential.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, JoseError, MissingClaimError
from joserfc.jwk import ECKey, OctKey, RSAKey
from joserfc.jwt import ClaimsOption, JWTClaimsRegistry

from cimhub.protocol.errors import AccessDenied, ErrorCode, InvalidInput, Unauthenticated
from cimhub.protocol.schema import MAX_SAFE_INTEGER, canonical_id
from cimhub.server.auth.jwks import JwksCache
from cimhub.server.settings import Settings

logger = logging.getLogger("cimhub.auth")

USER_ROLE = "authenticated"
SERVICE_ROLE = "service_role"
DEV_ISSUER = "cimhub-dev"
SUPABASE_SECRET_KEY_PREFIX = "sb_secret_"
HUB_KEY_PREFIX = "cimhub_sk_"
# `iss` of the legacy anon/service_role API keys, which predate the Auth issuer URL.
LEGACY_API_KEY_ISSUER = "supabase"
MAX_TOKEN_CHARS = 16_384

_TIME_CLAIMS = ("exp", "nbf", "iat")


def _is_timestamp(value: object) -> bool:
    """A JSON number a clock can be compared with: `exp` = 10**400 or NaN must be a 401, not a 500."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) <= MAX_SAFE_INTEGER  # False for NaN and infinities too


# The only algorithms accepted, each with the one key type that may check it.
_KEY_TYPE_FOR_ALG: dict[str, type[OctKey | RSAKey | ECKey]] = {
    "HS256": OctKey,
    "RS256": RSAKey,
    "ES256": ECKey,
}


@dataclass(frozen=True)
class Identity:
    """A verified caller.

    `user_id` is whose permissions apply: the token's subject, or for a service
    acting on behalf of a user, that user (then `on_behalf_of` is set too). A
    service with no user (`user_id` None) is trusted with every deal.
    `expires_at` is the token's ``exp`` (Unix seconds); None for API keys,
    which do not expire.
    """

    user_id: str | None
    role: str
    is_service: bool
    on_behalf_of: str | None = None
    expires_at: float | None = None
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False, repr=False)


def new_service_key() -> str:
    """A fresh hub service key, to put in the hub's configured service keys and give to one service."""
    return HUB_KEY_PREFIX + secrets.token_urlsafe(32)


class DevTokenIssuer:
    """Mints HS256 tokens that a verifier built with the same `dev_secret` accepts.

    Development and tests only: anyone who knows the secret can be anyone.
    """

    def __init__(self, secret: str, *, audience: str = USER_ROLE) -> None:
        self._key = OctKey.import_key(secret)
        self._audience = audience

    def mint(self, user_id: str, ttl_s: int = 3600, role: str = USER_ROLE) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": DEV_ISSUER,
            "sub": user_id,
            "role": role,
            "iat": now,
            "exp": now + ttl_s,
        }
        if role == USER_ROLE:
            claims["aud"] = self._audience
        return jwt.encode({"alg": "HS256"}, claims, self._key, algorithms=["HS256"])


class TokenVerifier:
    """Checks credentials locally and returns who is calling.

    Construct once at start-up (the JWKS cache lives here) and :meth:`aclose`
    at shutdown.
    """

    def __init__(
        self,
        *,
        supabase_url: str | None = None,
        jwt_secret: str | None = None,
        audience: str = USER_ROLE,
        leeway_s: int = 30,
        service_keys: Iterable[str] = (),
        allow_anonymous: bool = False,
        dev_secret: str | None = None,
        jwks_transport: httpx.AsyncBaseTransport | None = None,
        jwks_min_refetch_s: float = 1.0,
        jwks_max_age_s: float = 60.0,
        jwks_fetch_deadline_s: float = 5.0,
        jwks_unknown_kid_ttl_s: float = 10.0,
    ) -> None:
        if jwt_secret is not None and supabase_url is None:
            raise ValueError("a Supabase JWT secret needs the Supabase URL too (it gives the token issuer)")
        keys = list(service_keys)
        for key in keys:
            if not key.startswith((SUPABASE_SECRET_KEY_PREFIX, HUB_KEY_PREFIX)) or len(key) < 32:
                raise ValueError(
                    f"service keys must start with {SUPABASE_SECRET_KEY_PREFIX!r} or {HUB_KEY_PREFIX!r} "
                    "and be at least 32 characters long"
                )
        if supabase_url is None and dev_secret is None and not keys:
            raise ValueError("nothing to verify credentials with: set the Supabase URL, or dev mode, or service keys")
        self._audience = audience
        self._leeway_s = leeway_s
        self._allow_anonymous = allow_anonymous
        self._service_key_digests = [hashlib.sha256(key.encode()).digest() for key in keys]
        self._dev_key = OctKey.import_key(dev_secret) if dev_secret is not None else None
        self._legacy_key = OctKey.import_key(jwt_secret) if jwt_secret is not None else None
        self._issuer: str | None = None
        self._jwks: JwksCache | None = None
        if supabase_url is not None:
            self._issuer = supabase_url.rstrip("/") + "/auth/v1"
            self._jwks = JwksCache(
                self._issuer + "/.well-known/jwks.json",
                client=httpx.AsyncClient(transport=jwks_transport),
                min_refetch_s=jwks_min_refetch_s,
                max_age_s=jwks_max_age_s,
                fetch_deadline_s=jwks_fetch_deadline_s,
                unknown_kid_ttl_s=jwks_unknown_kid_ttl_s,
            )
        if dev_secret is not None:
            logger.warning("dev mode: accepting self-minted tokens signed with the dev secret; never in production")

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        service_keys: Iterable[str] = (),
        allow_anonymous: bool = False,
        jwks_transport: httpx.AsyncBaseTransport | None = None,
    ) -> TokenVerifier:
        """The verifier the settings describe. A ``sb_secret_`` Supabase service key is also accepted from callers."""
        keys = list(service_keys)
        if settings.supabase_service_key and settings.supabase_service_key.startswith(SUPABASE_SECRET_KEY_PREFIX):
            keys.append(settings.supabase_service_key)
        return cls(
            supabase_url=settings.supabase_url,
            jwt_secret=settings.supabase_jwt_secret,
            audience=settings.jwt_audience,
            leeway_s=settings.jwt_leeway_s,
            service_keys=keys,
            allow_anonymous=allow_anonymous,
            dev_secret=settings.dev_secret if settings.dev_mode else None,
            jwks_transport=jwks_transport,
            jwks_min_refetch_s=settings.jwks_min_refetch_s,
            jwks_max_age_s=settings.jwks_max_age_s,
            jwks_fetch_deadline_s=settings.jwks_fetch_deadline_s,
            jwks_unknown_kid_ttl_s=settings.jwks_unknown_kid_ttl_s,
        )

    async def aclose(self) -> None:
        if self._jwks is not None:
            await self._jwks.aclose()

    async def verify(self, token: str, *, on_behalf_of: str | None = None) -> Identity:
        """Who presents `token`; with `on_behalf_of`, a service acting for that user.

        Raises Unauthenticated (code ``token_expired`` when only the expiry is
        wrong), AccessDenied when a non-service asks to act for someone, and
        Unavailable when Supabase's signing keys cannot be fetched at all.
        """
        if not isinstance(token, str) or not token:
            raise Unauthenticated("no credential given: send a Supabase access token")
        if len(token) > MAX_TOKEN_CHARS:
            raise Unauthenticated(f"credential longer than {MAX_TOKEN_CHARS} characters")
        if token.startswith((SUPABASE_SECRET_KEY_PREFIX, HUB_KEY_PREFIX)):
            identity = self._verify_service_key(token)
        elif token.startswith("sb_publishable_"):
            raise Unauthenticated("a publishable key identifies an app, not a user: send the user's access token")
        else:
            identity = await self._verify_jwt(token)
        if on_behalf_of is None:
            return identity
        if not identity.is_service:
            raise AccessDenied("only a service credential may act on behalf of a user")
        try:
            on_behalf_of = canonical_id(on_behalf_of)
        except ValueError as exc:
            raise InvalidInput(f"on_behalf_of must be a user id: {exc}", path="actAs") from None
        return dataclasses.replace(identity, user_id=on_behalf_of, on_behalf_of=on_behalf_of)

    def _verify_service_key(self, token: str) -> Identity:
        digest = hashlib.sha256(token.encode()).digest()
        matched = False
        for known in self._service_key_digests:  # no early exit: the time taken says nothing about which key
            matched |= hmac.compare_digest(digest, known)
        if not matched:
            raise Unauthenticated("unknown service key")
        return Identity(user_id=None, role=SERVICE_ROLE, is_service=True)

    async def _verify_jwt(self, token: str) -> Identity:
        try:
            unverified = jws.extract_compact(token.encode())
            header = unverified.headers()
            unverified_claims = json.loads(unverified.payload or b"")
        except (JoseError, ValueError):
            raise Unauthenticated("malformed credential: expected a JWT (header.payload.signature)") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in _KEY_TYPE_FOR_ALG:
            shown = alg[:16] if isinstance(alg, str) else type(alg).__name__
            raise Unauthenticated(f"unsupported signing algorithm {shown!r}; accepted: {', '.join(_KEY_TYPE_FOR_ALG)}")

        key: OctKey | RSAKey | ECKey
        if alg == "HS256":
            claimed_issuer = unverified_claims.get("iss") if isinstance(unverified_claims, dict) else None
            if claimed_issuer == DEV_ISSUER and self._dev_key is not None:
                key, user_issuers, service_issuers = self._dev_key, [DEV_ISSUER], [DEV_ISSUER]
            elif self._legacy_key is not None and self._issuer is not None:
                key, user_issuers = self._legacy_key, [self._issuer]
                service_issuers = [self._issuer, LEGACY_API_KEY_ISSUER]
            else:
                raise Unauthenticated("HS256 tokens are not accepted: no shared JWT secret is configured")
        elif self._jwks is not None and self._issuer is not None:
            key = await self._jwks_key(self._jwks, header.get("kid"), alg)
            user_issuers = service_issuers = [self._issuer]
        else:
            raise Unauthenticated(f"{alg} tokens are not accepted: no Supabase URL is configured")
        if not isinstance(key, _KEY_TYPE_FOR_ALG[alg]):
            raise Unauthenticated(f"the signing key does not verify {alg} tokens")

        try:
            claims = jwt.decode(token, key, algorithms=[alg]).claims
        except BadSignatureError:
            raise Unauthenticated("signature does not verify: the token was altered or signed by another key") from None
        except JoseError:
            raise Unauthenticated("malformed credential: the JWT could not be decoded") from None
        return self._identity_from_claims(claims, user_issuers, service_issuers)

    @staticmethod
    async def _jwks_key(jwks: JwksCache, kid: object, alg: str) -> RSAKey | ECKey:
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated(f"{alg} token has no key id (kid)")
        key = await jwks.get(kid)
        if key is None:
            raise Unauthenticated("token is signed by a key Supabase Auth does not publish")
        if key.alg not in (None, alg) or (isinstance(key, ECKey) and key.curve_name != "P-256"):
            raise Unauthenticated(f"the signing key does not verify {alg} tokens")
        return key

    def _identity_from_claims(
        self, claims: dict[str, Any], user_issuers: list[str], service_issuers: list[str]
    ) -> Identity:
        role = claims.get("role")
        expiring: ClaimsOption = {"essential": True}
        registry: JWTClaimsRegistry
        if role == USER_ROLE:
            registry = JWTClaimsRegistry(
                leeway=self._leeway_s,
                exp=expiring,
                iss={"essential": True, "values": user_issuers},
                aud={"essential": True, "value": self._audience},
                sub={"essential": True},
            )
        elif role == SERVICE_ROLE:
            registry = JWTClaimsRegistry(
                leeway=self._leeway_s,
                exp=expiring,
                iss={"essential": True, "values": service_issuers},
            )
        else:
            shown = role[:32] if isinstance(role, str) else type(role).__name__
            raise Unauthenticated(
                f"role {shown!r} may not connect: expected {USER_ROLE!r} (a signed-in user) or {SERVICE_ROLE!r}"
            )
        for name in _TIME_CLAIMS:
            value = claims.get(name)
            if value is not None and not _is_timestamp(value):
                raise Unauthenticated(f"token has an invalid {name!r} claim (not a time in seconds)")
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise Unauthenticated(
                "token expired: refresh the session and send the new access token",
                code=ErrorCode.TOKEN_EXPIRED,
            ) from None
        except MissingClaimError as exc:
            raise Unauthenticated(f"token lacks the claim(s) {exc.claim}") from None
        except JoseError as exc:
            claim = getattr(exc, "claim", "?")
            expected = {
                "aud": f" (expected {self._audience!r})",
                "iss": " (issued by another Supabase project or service)",
                "nbf": " (not yet valid)",
            }.get(claim, "")
            raise Unauthenticated(f"token has an invalid {claim!r} claim{expected}") from None

        expires_at = float(claims["exp"])  # a bounded number: checked before validation
        if role == SERVICE_ROLE:
            return Identity(
                user_id=None,
                role=SERVICE_ROLE,
                is_service=True,
                expires_at=expires_at,
                claims=MappingProxyType(claims),
            )
        if claims.get("is_anonymous") is True and not self._allow_anonymous:
            raise Unauthenticated("anonymous sign-ins may not connect: sign in with an account")
        return Identity(
            user_id=claims["sub"],
            role=USER_ROLE,
            is_service=False,
            expires_at=expires_at,
            claims=MappingProxyType(claims),
        )
