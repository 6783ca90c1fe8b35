"""What a client is told when something it did not cause goes wrong inside the hub, and what is logged.

Redis trouble is `unavailable` (retryable: the same request, or the same
mutation id, may succeed later), with a message naming the fault: unreachable,
too slow (`redis_timeout_s`), out of memory (maxmemory with noeviction),
read-only (a replica, a failover in progress), still loading its data after a
restart, or unable to persist (MISCONF). Each fault is logged once per episode
(`FaultLog`), not once per request. Anything else is `internal` (also
retryable) and is logged with its traceback here, never sent to the client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis
import redis.exceptions

from cimhub.protocol.errors import CimhubError, ErrorCode, Unavailable

log = logging.getLogger("cimhub.faults")

FAULTS: dict[str, str] = {
    "unreachable": "Redis is unreachable",
    "timeout": "Redis did not answer in time",
    "out_of_memory": "Redis is out of memory (maxmemory reached) and refuses writes",
    "read_only": "Redis is read-only (a replica, or a failover in progress)",
    "loading": "Redis is still loading its data after a restart",
    "cannot_persist": "Redis cannot write its data to disk (MISCONF) and refuses writes",
}
"""Every Redis fault the hub names, by reason: the start of the message a client gets."""


def redis_fault(exc: BaseException) -> str | None:
    """The reason (a key of FAULTS) when `exc` is a Redis fault rather than a bug; else None."""
    # Most specific first: BusyLoadingError is a ConnectionError, OOM and READONLY are ResponseErrors.
    if isinstance(exc, redis.exceptions.BusyLoadingError):
        return "loading"
    # The commit's pipelined connection (store/connection.py) raises a plain ResponseError for
    # every error reply, so the reply's prefix decides too, as redis-py's own parser does.
    reply = str(exc) if isinstance(exc, redis.exceptions.ResponseError) else ""
    if isinstance(exc, redis.exceptions.OutOfMemoryError) or reply.startswith("OOM"):
        return "out_of_memory"
    if isinstance(exc, redis.exceptions.ReadOnlyError) or reply.startswith("READONLY"):
        return "read_only"
    if reply.startswith("LOADING"):
        return "loading"
    if reply.startswith("MISCONF"):
        return "cannot_persist"
    if isinstance(exc, (redis.exceptions.TimeoutError, asyncio.TimeoutError)):
        return "timeout"
    if isinstance(exc, (redis.exceptions.ConnectionError, OSError)):
        return "unreachable"
    return None


class FaultLog:
    """Logs each kind of Redis fault once per episode: again only after `quiet_s` without it.

    Under an out-of-memory Redis every write fails; a line (or a traceback) per
    request would bury everything else in the log.
    """

    def __init__(self, *, quiet_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet_s = quiet_s
        self.clock = clock
        self._last: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        """Faults seen per reason since start (episodes and repeats alike)."""

    def seen(self, reason: str, doing: str) -> bool:
        """Record one occurrence; returns True (and logs) when it starts a new episode."""
        now = self.clock()
        last = self._last.get(reason)
        self._last[reason] = now
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if last is not None and now - last <= self.quiet_s:
            return False
        log.warning("%s (first seen while %s); requests get `unavailable` until it passes", FAULTS[reason], doing)
        return True


def client_error(exc: BaseException, doing: str, faults: FaultLog | None = None) -> CimhubError:
    """The structured error for an unexpected `exc` raised while `doing` something.

    With `faults`, a Redis fault is logged once per episode; without, one line each time.
    """
    if isinstance(exc, CimhubError):
        return exc
    reason = redis_fault(exc)
    if reason is not None:
        if faults is not None:
            faults.seen(reason, doing)
        else:
            log.warning("%s: %s (%s)", doing, FAULTS[reason], type(exc).__name__)
        return Unavailable(f"{FAULTS[reason]} while {doing}; retry")
    log.error("%s failed", doing, exc_info=exc)
    return CimhubError(f"the hub failed while {doing}; retry (it is logged)", code=ErrorCode.INTERNAL)


async def probe_redis(client: aioredis.Redis, key: str, timeout_s: float) -> str | None:
    """Whether Redis takes a write now: None if it does, else the fault's reason. Returns within `timeout_s`.

    A write, not a PING: an out-of-memory or read-only Redis answers PING
    happily and refuses every mutation.
    """
    try:
        async with asyncio.timeout(timeout_s):
            await client.set(key, b"1", px=60_000)
    except Exception as exc:  # noqa: BLE001 - every failure means "not ready"; the reason says which
        return redis_fault(exc) or f"error: {type(exc).__name__}"
    return None
