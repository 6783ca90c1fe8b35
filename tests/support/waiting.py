"""`eventually`: the one way a test waits for something that happens in another task or process."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], T | Awaitable[T]], timeout: float = 10.0, *, what: str = "condition", interval: float = 0.02
) -> T:
    """Call `check` (plain or async) until it returns something truthy, and return that.

    Fails with an AssertionError naming `what` after `timeout` seconds. The bound
    is generous on purpose: it catches a hang, it is not a timing assertion.
    """
    try:
        async with asyncio.timeout(timeout):
            while True:
                value = check()
                if inspect.isawaitable(value):
                    value = await value
                if value:
                    return value  # type: ignore[return-value]
                await asyncio.sleep(interval)
    except TimeoutError:
        raise AssertionError(f"{what}: not reached within {timeout:g} s") from None
