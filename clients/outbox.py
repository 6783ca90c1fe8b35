"""Requests sent (or waiting to be sent) that the hub has not answered yet.

Every entry is safe to send again on a new connection: a mutation carries its
mutation id, so the hub applies it once and answers a repeat with the first
result (``duplicate=True``); a query only reads. So after a reconnect the
client re-sends the whole outbox, in the order the requests were made, and
each caller's future completes exactly once, with the first answer.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cimhub.protocol.errors import CimhubError
from cimhub.protocol.frames import ResultFrame


@dataclass(eq=False)
class Pending:
    """One unanswered request; `frame` keeps the same request id across re-sends."""

    frame: dict[str, Any]
    future: asyncio.Future[ResultFrame]
    failures: int = 0
    """Retryable errors received so far (not re-sends after a reconnect)."""

    @property
    def request_id(self) -> str:
        return str(self.frame["id"])

    @property
    def mutation_id(self) -> str | None:
        return self.frame.get("mutationId")


class Outbox:
    """Unanswered requests by request id, oldest first."""

    def __init__(self) -> None:
        self._items: dict[str, Pending] = {}
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Pending]:
        """The entries in the order they were added (a copy: safe to change the outbox meanwhile)."""
        return iter(list(self._items.values()))

    def add(self, frame: dict[str, Any]) -> Pending:
        """Give `frame` a request id and keep it until answered; the caller awaits `future`."""
        request_id = f"r{next(self._ids)}"
        pending = Pending({**frame, "id": request_id}, asyncio.get_running_loop().create_future())
        self._items[request_id] = pending
        return pending

    def get(self, request_id: str | None) -> Pending | None:
        return self._items.get(request_id) if request_id is not None else None

    def resolve(self, frame: ResultFrame) -> bool:
        """Complete the request `frame` answers; False if none waits (a late repeat, or withdrawn)."""
        pending = self._items.pop(frame.id, None)
        if pending is None:
            return False
        if not pending.future.done():
            pending.future.set_result(frame)
        return True

    def reject(self, request_id: str, error: BaseException) -> bool:
        """Fail one request for good."""
        pending = self._items.pop(request_id, None)
        if pending is None:
            return False
        if not pending.future.done():
            pending.future.set_exception(error)
        return True

    def withdraw(self, request_id: str) -> None:
        """Stop waiting for a request (its caller gave up); it is not sent again."""
        self._items.pop(request_id, None)

    def fail_all(self, error: CimhubError) -> None:
        for request_id in list(self._items):
            self.reject(request_id, error)
