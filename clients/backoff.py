"""Reconnect and retry delays: exponential, capped, jittered.

Jitter matters because a hub restart drops every client at the same moment;
without it they would all come back at the same moment too. "Equal jitter"
(half fixed, half random) keeps each delay at least half the exponential step,
so a client never hammers a hub that keeps refusing it.

Hand-written (12 lines) rather than taken from tenacity or backoff: those wrap
one call in a retry loop, while the client needs bare delays between steps of
its own reconnect loop (reconnect, re-authenticate, resume, re-send).
"""

from __future__ import annotations

import random


class Backoff:
    """Delays of 0.5-1x `base * 2**n`, capped at `cap` seconds; `reset()` after a success."""

    def __init__(self, base: float = 0.5, cap: float = 10.0, *, rng: random.Random | None = None) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"need 0 < base <= cap, got base={base} cap={cap}")
        self.base = base
        self.cap = cap
        self.attempts = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        """The delay before the next attempt, in seconds."""
        delay = self.delay(self.attempts)
        self.attempts += 1
        return delay

    def delay(self, attempt: int) -> float:
        """The delay before retry number `attempt` (0 first), for callers that count their own attempts."""
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt, 32))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.attempts = 0
