"""What a client is told when something it did not cause goes wrong inside the hub.

Redis being unreachable is `unavailable` (retryable: the same request, or the
same mutation id, may succeed later); anything else is `internal` (also
retryable) and is logged with its traceback here, never sent to the client.
"""

from __future__ import annotations

import logging

import redis.exceptions

from cimhub.protocol.errors import CimhubError, ErrorCode, Unavailable

log = logging.getLogger("cimhub.faults")


def client_error(exc: BaseException, doing: str) -> CimhubError:
    """The structured error for an unexpected `exc` raised while `doing` something."""
    if isinstance(exc, CimhubError):
        return exc
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)):
        log.warning("%s: Redis unreachable (%s)", doing, type(exc).__name__)
        return Unavailable(f"Redis is unreachable while {doing}; retry")
    log.error("%s failed", doing, exc_info=exc)
    return CimhubError(f"the hub failed while {doing}; retry (it is logged)", code=ErrorCode.INTERNAL)
