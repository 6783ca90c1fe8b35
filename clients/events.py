"""What the client tells an `on_event` callback about its connection, for logs and live views.

Changes to documents are not events: they arrive through each subscription.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Connected:
    """Authenticated on a new connection; subscriptions and unanswered requests are being re-sent."""

    user_id: str | None
    expires_at: int | None
    reconnect: bool


@dataclass(frozen=True)
class Disconnected:
    """The connection ended; the client tries again in `retry_in` seconds."""

    reason: str
    code: int | None
    retry_in: float


@dataclass(frozen=True)
class Resumed:
    """A subscription caught up from the patch log after a reconnect or a gap, without a snapshot."""

    topic: str
    from_revision: int
    revision: int


@dataclass(frozen=True)
class TokenRefreshed:
    """The hub accepted a fresh token on the open connection."""

    expires_at: int | None


Event = Connected | Disconnected | Resumed | TokenRefreshed
