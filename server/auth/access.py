"""May this user see this deal? The bridge to Supabase's projects and members.

Supabase stays the source of truth for who belongs to which project (seed §2).
An :class:`AccessBackend` asks it; :class:`CachedAccess` in front keeps each
answer for a short time so that a burst of subscriptions costs one lookup.

A revoked membership therefore takes effect within ``ttl_s`` for new checks;
live subscriptions see it when the hub re-checks them after
:meth:`CachedAccess.decision_expires_at` (docs/auth.md: revocation delay).

Backends: :class:`~cimhub.server.auth.postgres_access.PostgresAccess` (SQL, a
direct connection), :class:`~cimhub.server.auth.supabase_access.SupabaseAccess`
(the same SQL function through PostgREST), :class:`DevAccess` (dev mode only).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from cimhub.protocol.errors import CimhubError, ErrorCode, Unavailable
from cimhub.server.settings import Settings

logger = logging.getLogger("cimhub.auth")

_DealKey = tuple[str, str, str]  # ("deal", user_id, deal_id) or ("project", deal_id, project_id)


class AccessBackend(Protocol):
    """Answers membership questions from the source of truth.

    Guarantee: True only when the source says so. When the source cannot be
    asked (down, slow, misconfigured) a backend raises Unavailable; it never
    answers False for "could not ask" (a cache would remember a denial) nor
    True (that would fail open).
    """

    async def may_access_deal(self, user_id: str, deal_id: str) -> bool:
        """Whether `user_id` is a member of the project that owns `deal_id`."""
        ...

    async def deal_in_project(self, deal_id: str, project_id: str) -> bool:
        """Whether `deal_id` belongs to `project_id` (refuses a CIM filed under another project's deal)."""
        ...

    async def aclose(self) -> None: ...


class DevAccess:
    """Allows everything. Dev mode only: with it, any signed-in user sees every deal."""

    def __init__(self) -> None:
        logger.warning("dev mode: access checks are off, every user may access every deal")

    async def may_access_deal(self, user_id: str, deal_id: str) -> bool:
        return True

    async def deal_in_project(self, deal_id: str, project_id: str) -> bool:
        return True

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class _Decision:
    allowed: bool
    expires_at: float


class CachedAccess:
    """An AccessBackend in front of another, remembering answers briefly.

    * Grants are kept `ttl_s`, denials `denied_ttl_s` (shorter, so a user just
      added to a project is not locked out for long). Errors are never kept.
    * Concurrent identical questions share one backend call (single flight);
      a caller that is cancelled does not cancel the call for the others.
    * Bounded load on the source: at most `max_concurrency` backend calls run
      at once in this process (others wait up to `queue_timeout_s`, then get
      Unavailable, retryable), and at most `max_per_user` distinct questions
      about one user are in flight at once (more are refused at once with
      ``rate_limited``, retryable). One user flooding checks with made-up deal
      ids therefore cannot hold more than `max_per_user` of the slots that
      everyone else's logins need.
    * :meth:`invalidate` forgets answers at once, including answers still in
      flight, which are then not cached either.
    * At most `max_entries` answers are kept; the oldest go first.

    Times are in `clock` seconds, by default ``time.monotonic`` (the clock of
    asyncio's event loop).
    """

    def __init__(
        self,
        backend: AccessBackend,
        *,
        ttl_s: float = 30.0,
        denied_ttl_s: float = 5.0,
        max_entries: int = 100_000,
        max_concurrency: int = 32,
        max_per_user: int = 4,
        queue_timeout_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s < 0 or denied_ttl_s < 0 or max_entries < 1:
            raise ValueError("ttl_s and denied_ttl_s must be >= 0 and max_entries >= 1")
        if max_concurrency < 1 or max_per_user < 1 or queue_timeout_s <= 0:
            raise ValueError("max_concurrency and max_per_user must be >= 1 and queue_timeout_s > 0")
        self.backend = backend
        self._ttl_s = ttl_s
        self._denied_ttl_s = denied_ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._decisions: dict[_DealKey, _Decision] = {}
        self._in_flight: dict[_DealKey, asyncio.Task[bool]] = {}
        self._generation = 0
        self._slots = asyncio.Semaphore(max_concurrency)
        self._max_per_user = max_per_user
        self._per_user: dict[str, int] = {}
        self._queue_timeout_s = queue_timeout_s

    async def may_access_deal(self, user_id: str, deal_id: str) -> bool:
        return await self._decide(("deal", user_id, deal_id), lambda: self.backend.may_access_deal(user_id, deal_id))

    async def deal_in_project(self, deal_id: str, project_id: str) -> bool:
        return await self._decide(
            ("project", deal_id, project_id),
            lambda: self.backend.deal_in_project(deal_id, project_id),
        )

    def decision_expires_at(self, user_id: str, deal_id: str) -> float | None:
        """When the cached answer for (user, deal) lapses, in `clock` seconds; None if none is cached.

        A live subscription is good until then; after it, the hub must ask
        :meth:`may_access_deal` again and drop the subscription on False.
        """
        decision = self._decisions.get(("deal", user_id, deal_id))
        return None if decision is None else decision.expires_at

    def invalidate(self, *, user_id: str | None = None, deal_id: str | None = None) -> None:
        """Forget answers about `user_id` and/or `deal_id` (all answers when both are None)."""

        def matches(key: _DealKey) -> bool:
            if user_id is None and deal_id is None:
                return True
            kind, first, second = key
            if kind == "deal":
                return (user_id is None or first == user_id) and (deal_id is None or second == deal_id)
            return user_id is None and first == deal_id

        self._generation += 1
        for store in (self._decisions, self._in_flight):
            for key in [key for key in store if matches(key)]:
                del store[key]

    async def aclose(self) -> None:
        for task in list(self._in_flight.values()):
            task.cancel()
        self._in_flight.clear()
        await self.backend.aclose()

    async def _decide(self, key: _DealKey, ask: Callable[[], Awaitable[bool]]) -> bool:
        decision = self._decisions.get(key)
        if decision is not None and decision.expires_at > self._clock():
            return decision.allowed
        task = self._in_flight.get(key)
        if task is None:
            user = key[1] if key[0] == "deal" else None
            if user is not None:
                if self._per_user.get(user, 0) >= self._max_per_user:
                    raise CimhubError(
                        f"over {self._max_per_user} access checks in flight for this user; retry shortly",
                        code=ErrorCode.RATE_LIMITED,
                    )
                self._per_user[user] = self._per_user.get(user, 0) + 1
            task = asyncio.ensure_future(self._lookup(key, ask))
            task.add_done_callback(_retrieve_exception)
            self._in_flight[key] = task
        return await asyncio.shield(task)

    async def _lookup(self, key: _DealKey, ask: Callable[[], Awaitable[bool]]) -> bool:
        generation = self._generation
        try:
            allowed = await self._ask_within_slots(ask)
        finally:
            if self._in_flight.get(key) is asyncio.current_task():
                del self._in_flight[key]
            if key[0] == "deal":
                left = self._per_user.get(key[1], 1) - 1
                if left > 0:
                    self._per_user[key[1]] = left
                else:
                    self._per_user.pop(key[1], None)
        if generation == self._generation:  # else invalidate() ran meanwhile: this answer may predate it
            ttl = self._ttl_s if allowed else self._denied_ttl_s
            self._decisions.pop(key, None)
            self._decisions[key] = _Decision(allowed, self._clock() + ttl)
            while len(self._decisions) > self._max_entries:
                del self._decisions[next(iter(self._decisions))]
        return allowed

    async def _ask_within_slots(self, ask: Callable[[], Awaitable[bool]]) -> bool:
        # Waiting on our own semaphore may be cut short safely; the backend
        # call itself is never cancelled here (its own timeouts end it), since
        # cancelling an httpx request can leak a pooled connection.
        try:
            async with asyncio.timeout(self._queue_timeout_s):
                await self._slots.acquire()
        except TimeoutError:
            raise Unavailable("too many access checks waiting for the source of truth; try again") from None
        try:
            return await ask()
        finally:
            self._slots.release()


def _retrieve_exception(task: asyncio.Task[bool]) -> None:
    # Every waiter may have been cancelled; the error is theirs to see, not the loop's to log.
    if not task.cancelled():
        task.exception()


def access_from_settings(settings: Settings) -> CachedAccess:
    """The cached backend the settings name: a database URL first, then Supabase, then dev mode.

    Raises ValueError when none is configured.
    """
    backend: AccessBackend
    # Imported here: each backend pulls in a large client library that the others do not need.
    if settings.database_url:
        from cimhub.server.auth.postgres_access import PostgresAccess

        backend = PostgresAccess(
            settings.database_url,
            max_connections=settings.access_max_concurrency,
            timeout_s=settings.access_timeout_s,
        )
    elif settings.supabase_url and settings.supabase_service_key:
        from cimhub.server.auth.supabase_access import SupabaseAccess

        backend = SupabaseAccess(
            settings.supabase_url,
            settings.supabase_service_key,
            timeout_s=settings.access_timeout_s,
            max_connections=settings.access_max_concurrency,
        )
    elif settings.dev_mode:
        backend = DevAccess()
    else:
        raise ValueError(
            "no access backend: set CIMHUB_DATABASE_URL, or CIMHUB_SUPABASE_URL with "
            "CIMHUB_SUPABASE_SERVICE_KEY, or turn on dev mode"
        )
    return CachedAccess(
        backend,
        ttl_s=settings.access_cache_ttl_s,
        denied_ttl_s=settings.access_denied_cache_ttl_s,
        max_concurrency=settings.access_max_concurrency,
        max_per_user=settings.access_max_checks_per_user,
        queue_timeout_s=settings.access_queue_timeout_s,
    )
