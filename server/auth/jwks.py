"""Supabase Auth's public signing keys (JWKS), fetched over HTTP and cached.

Supabase projects that use asymmetric JWT signing keys publish them at
``<SUPABASE_URL>/auth/v1/.well-known/jwks.json``. Verifying a token then needs
no call to Supabase. The guarantees (docs/security.md, JWKS):

* **A fetch ends within** ``fetch_deadline_s``, however slowly the endpoint
  answers (each phase gets a third of it, and the body is read chunk by chunk
  against the deadline; no cancellation, so no leaked connection). At most one
  fetch runs at a time; concurrent callers share it.
* **Known keys never wait.** A token signed with a known key is checked at
  once, also while a refresh is slow or failing: the last good set is used
  until ``max_stale_s`` passes without a successful fetch.
* **Removed keys stop working** after the first successful refresh without
  them; the set is refreshed in the background once it is older than
  ``max_age_s``, so a removed key stops working within ``max_age_s`` plus one
  fetch while Supabase answers.
* **Unknown key ids cannot delay a rotation.** An unknown ``kid`` triggers a
  fetch unless one started less than ``min_refetch_s`` ago (then the caller
  gets a retryable error); a ``kid`` still missing after a fetch is remembered
  as unknown for ``unknown_kid_ttl_s`` and refused without a fetch. Key ids
  made up by an attacker therefore cost Supabase at most one request per
  ``min_refetch_s``, and a real new key is found by the next fetch.
* **While no key set could be fetched**, ES256/RS256 tokens get Unavailable
  (retryable): the hub cannot tell a good token from a bad one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeAlias

import httpx
import orjson
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey, import_key

from cimhub.protocol.errors import Unavailable

logger = logging.getLogger("cimhub.auth")

# Only public keys for signatures. A symmetric ("oct") entry has no business in
# a published key set; refusing it here means an HS256 token can never be
# checked against anything that came from the network.
PublicKey: TypeAlias = RSAKey | ECKey
_PUBLIC_KEY_TYPES = {"RSA", "EC"}
MAX_JWKS_BYTES = 256 * 1024
MAX_UNKNOWN_KIDS = 10_000


class JwksFetchError(Exception):
    """The JWKS could not be fetched or read (kept inside this module: callers see Unavailable)."""


class JwksCache:
    """The signing keys of one Supabase project, by key id (``kid``).

    The HTTP client is owned by the cache: call :meth:`aclose` when done.
    Times are in `clock` seconds (``time.monotonic`` by default).
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient,
        max_age_s: float = 60.0,
        min_refetch_s: float = 1.0,
        fetch_deadline_s: float = 5.0,
        unknown_kid_ttl_s: float = 10.0,
        max_stale_s: float = 86_400.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if min(max_age_s, min_refetch_s, unknown_kid_ttl_s, max_stale_s) < 0 or fetch_deadline_s <= 0:
            raise ValueError("JWKS intervals must be >= 0 and the fetch deadline > 0")
        self.url = url
        self._client = client
        self._max_age_s = max_age_s
        self._min_refetch_s = min_refetch_s
        self._deadline_s = fetch_deadline_s
        self._unknown_kid_ttl_s = unknown_kid_ttl_s
        self._max_stale_s = max_stale_s
        self._clock = clock
        self._keys: dict[str, PublicKey] = {}
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._fetch: asyncio.Task[None] | None = None
        self._unknown: OrderedDict[str, float] = OrderedDict()  # kid -> until when it is refused

    async def get(self, kid: str) -> PublicKey | None:
        """The public key named `kid`, or None when Supabase does not publish it.

        Raises Unavailable (retryable) while no key set is usable, and for an
        unknown `kid` when a fetch cannot be made right now (retry shortly).
        """
        now = self._clock()
        if self._fetched_at is not None and now - self._fetched_at > self._max_stale_s:
            self._keys = {}  # too old to trust: a removed key must stop working at some point
            self._fetched_at = None
        if self._fetched_at is not None and now - self._fetched_at > self._max_age_s:
            self._start_fetch(now)  # in the background: known keys do not wait for it
        key = self._keys.get(kid)
        if key is not None:
            return key
        if self._fetched_at is not None and self._unknown.get(kid, 0.0) > now:
            return None
        if self._fetch is None and not self._start_fetch(now):
            raise Unavailable(
                "the token's signing key is not known yet; try again in a second"
                if self._fetched_at is not None
                else "cannot fetch the token signing keys from Supabase Auth; try again shortly"
            )
        if self._fetch is not None:
            await asyncio.shield(self._fetch)
        if self._fetched_at is None:
            raise Unavailable("cannot fetch the token signing keys from Supabase Auth; try again shortly")
        key = self._keys.get(kid)
        if key is None:
            self._remember_unknown(kid)
        return key

    async def aclose(self) -> None:
        if self._fetch is not None:
            self._fetch.cancel()
        await self._client.aclose()

    def _start_fetch(self, now: float) -> bool:
        """Start one fetch unless one is running or one started under `min_refetch_s` ago."""
        if self._fetch is not None:
            return False
        if self._last_attempt is not None and now - self._last_attempt < self._min_refetch_s:
            return False
        self._last_attempt = now
        self._fetch = asyncio.create_task(self._refresh(), name="cimhub-jwks-fetch")
        return True

    def _remember_unknown(self, kid: str) -> None:
        self._unknown.pop(kid, None)
        self._unknown[kid] = self._clock() + self._unknown_kid_ttl_s
        while len(self._unknown) > MAX_UNKNOWN_KIDS:
            self._unknown.popitem(last=False)

    async def _refresh(self) -> None:
        try:
            keys = await self._download()
        except (JwksFetchError, httpx.HTTPError, ValueError, TypeError, JoseError) as exc:
            logger.warning(
                "JWKS refresh from %s failed, keeping %d known keys: %s",
                self.url,
                len(self._keys),
                _describe(exc),
            )
        else:
            self._keys = keys
            self._fetched_at = self._clock()
            self._unknown = OrderedDict((k, t) for k, t in self._unknown.items() if k not in keys)
        finally:
            self._fetch = None

    async def _download(self) -> dict[str, PublicKey]:
        # Each phase gets a third of the deadline and the body is read against
        # the rest, so the whole fetch ends within the deadline without
        # cancelling httpx (cancellation can leak pool connections).
        phase = self._deadline_s / 3
        started = time.monotonic()
        body = bytearray()
        async with self._client.stream("GET", self.url, timeout=httpx.Timeout(phase)) as response:
            if not response.is_success:
                raise JwksFetchError(f"HTTP {response.status_code}")
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JwksFetchError(f"the JWKS is over {MAX_JWKS_BYTES} bytes")
                if time.monotonic() - started > self._deadline_s - phase:
                    raise JwksFetchError(f"the JWKS did not arrive within {self._deadline_s:g} s")
        return _parse(orjson.loads(body), self.url)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _parse(document: Any, url: str) -> dict[str, PublicKey]:
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise TypeError("the JWKS document has no 'keys' list")
    keys: dict[str, PublicKey] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") not in _PUBLIC_KEY_TYPES:
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = import_key(entry)
        except (JoseError, ValueError) as exc:
            logger.warning("JWKS key %r from %s is unusable, skipped: %s", kid[:64], url, _describe(exc))
            continue
        if isinstance(key, (RSAKey, ECKey)):
            keys[kid] = key
    return keys
