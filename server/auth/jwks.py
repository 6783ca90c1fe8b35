"""Supabase Auth's public signing keys (JWKS), fetched over HTTP and cached.

Supabase projects that use asymmetric JWT signing keys publish them at
``<SUPABASE_URL>/auth/v1/.well-known/jwks.json``. Verifying a token then needs
no call to Supabase: the cache is refreshed when a token names a key id it does
not know (a rotation), or when the set is older than ``max_age_s``, and never
more than once per ``refresh_interval_s`` so that tokens with made-up key ids
cannot turn the hub into a load generator against Supabase.

A failed refresh keeps the last good keys: an outage of Supabase Auth does not
log out users whose tokens are signed by a key the hub already knows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, TypeAlias

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey, import_key

from cimhub.protocol.errors import Unavailable

logger = logging.getLogger("cimhub.auth")

# Only public keys for signatures. A symmetric ("oct") entry has no business in
# a published key set; refusing it here means an HS256 token can never be
# checked against anything that came from the network.
PublicKey: TypeAlias = RSAKey | ECKey
_PUBLIC_KEY_TYPES = {"RSA", "EC"}


class JwksCache:
    """The signing keys of one Supabase project, by key id (``kid``).

    Concurrent callers share one fetch. The HTTP client is owned by the cache:
    call :meth:`aclose` when done.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient,
        refresh_interval_s: float = 30.0,
        max_age_s: float = 600.0,
    ) -> None:
        if refresh_interval_s < 0 or max_age_s < 0:
            raise ValueError("refresh_interval_s and max_age_s must be >= 0")
        self.url = url
        self._client = client
        self._refresh_interval_s = refresh_interval_s
        self._max_age_s = max_age_s
        self._keys: dict[str, PublicKey] = {}
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> PublicKey | None:
        """The public key named `kid`, or None when Supabase does not publish it.

        An unknown `kid` or a stale set triggers one refresh (rate-limited).
        Raises Unavailable (retryable) while no key set could ever be fetched:
        then the hub cannot tell a good token from a bad one.
        """
        if kid not in self._keys or self._is_stale():
            await self._refresh()
        if self._fetched_at is None:
            raise Unavailable("cannot fetch the token signing keys from Supabase Auth; try again shortly")
        return self._keys.get(kid)

    async def aclose(self) -> None:
        await self._client.aclose()

    def _is_stale(self) -> bool:
        return self._fetched_at is None or time.monotonic() - self._fetched_at > self._max_age_s

    async def _refresh(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._last_attempt is not None and now - self._last_attempt < self._refresh_interval_s:
                return  # another caller just refreshed (or just failed to): use what is there
            self._last_attempt = now
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError, TypeError, JoseError) as exc:
                logger.warning(
                    "JWKS refresh from %s failed, keeping %d known keys: %r",
                    self.url,
                    len(self._keys),
                    exc,
                )
                return
            self._keys = keys
            self._fetched_at = now

    async def _fetch(self) -> dict[str, PublicKey]:
        response = await self._client.get(self.url)
        response.raise_for_status()
        document: Any = response.json()
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
                logger.warning("JWKS key %r from %s is unusable, skipped: %r", kid, self.url, exc)
                continue
            if isinstance(key, (RSAKey, ECKey)):
                keys[kid] = key
        return keys
