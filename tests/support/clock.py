"""One clock that tests move by hand, for code that takes a `clock` (or a module that reads `time`)."""

from __future__ import annotations


class Clock:
    """Seconds in `now` (read by calling it, or as `monotonic()`); `ms` reads and moves it in milliseconds."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    @property
    def ms(self) -> int:
        return round(self.now * 1000)

    @ms.setter
    def ms(self, value: int) -> None:
        self.now = value / 1000
