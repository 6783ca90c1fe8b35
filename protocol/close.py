"""WebSocket close codes the hub uses, and what a client does after each.

RFC 6455 §7.4 reserves 1000-2999 for the protocol and leaves 4000-4999 to the
application. cimhub splits its range the way centrifuge does, so a client
needs no table to decide:

* 4000-4099: reconnect and resume (the client did nothing wrong).
* 4400-4499: do not reconnect without changing something (token, origin).
  4429 is the one that clears by itself: back off, then reconnect.

Every other code (and a connection that dropped without one) means: reconnect
with backoff. docs/protocol.md has the same table for people; the JavaScript
clients get `CloseCode` and `CLOSE_STOP_RANGE` generated from this module into
clients/js/src/generated.ts (`bash scripts/gen-types`).
"""

from __future__ import annotations

from enum import IntEnum

STOP_RANGE = range(4400, 4500)
"""Codes after which reconnecting unchanged would be refused again."""


class CloseCode(IntEnum):
    NORMAL = 1000
    TOO_BIG = 1009
    """A frame far over the limit (the WebSocket library closes before cimhub sees it)."""
    INTERNAL = 1011
    RESTART = 1012
    """The hub is shutting down: reconnect (to any hub) and resume."""
    HEARTBEAT_TIMEOUT = 4000
    """No frame from the client within the idle timeout."""
    QUEUE_OVERFLOW = 4008
    """This client fell too far behind: reconnect and resume (or take snapshots)."""
    AUTH_TIMEOUT = 4401
    AUTH_FAILED = 4403
    FORBIDDEN_ORIGIN = 4406
    TOO_MANY_UNAUTHENTICATED = 4429

    def should_reconnect(self) -> bool:
        return should_reconnect(self.value)


def should_reconnect(code: int | None) -> bool:
    """Whether a client may reconnect unchanged after a close with `code` (None: no close frame)."""
    return code is None or code not in STOP_RANGE
