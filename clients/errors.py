"""Errors only a client can see: the hub is out of reach, a request ran out of time, the client closed.

They extend the protocol's hierarchy (cimhub.protocol.errors), so one
``except CimhubError`` catches everything a cimhub client raises::

    CimhubError
     ├── Unavailable
     │    ├── HubUnreachable    no connection (refused, dropped, silent past the heartbeat)
     │    ├── RequestTimeout    the caller's timeout passed before the hub answered
     │    └── ClientClosed      the client was closed while the request waited
     └── Unauthenticated
          └── TokenUnavailable  the token provider failed or timed out (retryable)
"""

from __future__ import annotations

from cimhub.protocol.close import CloseCode, should_reconnect
from cimhub.protocol.errors import AccessDenied, CimhubError, Unauthenticated, Unavailable


class HubUnreachable(Unavailable):
    """The hub could not be reached or the connection was lost; `close_code` says how it ended, if known."""

    def __init__(self, message: str, *, close_code: int | None = None) -> None:
        super().__init__(message)
        self.close_code = close_code


class RequestTimeout(Unavailable):
    """No answer within the caller's timeout.

    For a mutation the outcome is unknown: it may have been applied. Send it
    again with the same `mutation_id` to find out (the hub answers a repeat
    with the first result and ``duplicate=True``), never with a new id.
    """

    def __init__(self, message: str, *, mutation_id: str | None = None) -> None:
        super().__init__(message)
        self.mutation_id = mutation_id


class ClientClosed(Unavailable):
    """The client was closed before the hub answered."""


class TokenUnavailable(Unauthenticated):
    """The token provider failed or timed out; the client tries again after a back-off."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


def is_stop_code(code: int | None) -> bool:
    """Close codes 4400-4499 mean: reconnecting unchanged would be refused again (cimhub.protocol.close)."""
    return not should_reconnect(code)


def close_error(code: int, reason: str, hub_message: str | None = None) -> CimhubError:
    """The error for a close with a stop code (4400-4499); the client stops unless it is retryable."""
    detail = hub_message or reason or "no reason given"
    if code == CloseCode.AUTH_TIMEOUT:
        return Unauthenticated(f"the hub got no auth frame in time ({code}): {detail}")
    if code == CloseCode.AUTH_FAILED:
        return Unauthenticated(f"the hub refused the token ({code}): {detail}")
    if code == CloseCode.FORBIDDEN_ORIGIN:
        return AccessDenied(f"the hub refused this origin ({code}): {detail}")
    if code == CloseCode.TOO_MANY_UNAUTHENTICATED:
        # The one stop code that clears by itself: docs/protocol.md says back off, then reconnect.
        return Unavailable(f"the hub has too many connections waiting to authenticate ({code}): {detail}")
    return AccessDenied(f"the hub closed the connection ({code}): {detail}")
