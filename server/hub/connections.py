"""The live connections of one hub process: who is connected, who is still authenticating, draining.

Shared by the WebSocket endpoint (admission), each Session (registers itself
once authenticated), the access re-check (walks the sessions) and shutdown
(drains them all). One per process, built by create_app.
"""

from __future__ import annotations

from typing import Any, Protocol

from cimhub.protocol.close import CloseCode


class LiveConnection(Protocol):
    """What the registry needs of a session (cimhub.server.hub.session.Session)."""

    identity: Any
    topics: dict[str, None]

    def close(self, code: int, reason: str) -> None: ...


class Connections:
    """Authenticated sessions, the count of those still authenticating, and the draining flag."""

    def __init__(self, *, max_unauthenticated: int) -> None:
        self.sessions: set[LiveConnection] = set()
        self.max_unauthenticated = max_unauthenticated
        self.unauthenticated = 0
        self.draining = False

    def admit_unauthenticated(self) -> bool:
        """Count one more connection waiting to authenticate, unless the cap is reached."""
        if self.unauthenticated >= self.max_unauthenticated:
            return False
        self.unauthenticated += 1
        return True

    def authenticated_or_gone(self) -> None:
        """The waiting connection authenticated, failed or went away."""
        self.unauthenticated -= 1

    def drain(self, code: int = CloseCode.RESTART, reason: str = "hub restarting: reconnect and resume") -> None:
        """Tell every client to reconnect elsewhere, after sending what is queued; refuse newcomers."""
        self.draining = True
        for session in list(self.sessions):
            session.close(code, reason)
