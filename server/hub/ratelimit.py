"""A token bucket for per-connection mutation rates.

Hand-written because it must answer "may I, now?" without waiting: the
asyncio limiters on PyPI (aiolimiter and friends) block the caller until
capacity frees up, and a client over its rate should get `rate_limited`
immediately instead.
"""

from __future__ import annotations

import time


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._at = time.monotonic()

    def take(self) -> bool:
        """Spend one token if there is one."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
