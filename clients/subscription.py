"""One topic a client watches: a replica kept current, and the changes to read in order."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from cimhub.protocol.errors import CimhubError

from .replica import Change, Replica


class Subscription:
    """A live view of one topic.

    `document` is always the latest state the client knows (it keeps being
    updated across reconnects, whether or not anyone reads the changes).
    ``async for change in sub`` yields every change after the first snapshot,
    in order; the loop ends when the subscription ends (unsubscribed, CIM
    deleted, client closed) and raises the hub's error if the hub ended it
    (for example access revoked).

    Changes wait in a queue of at most `max_queued`; a reader that falls that
    far behind gets them folded into one change with ``snapshot=True`` (the
    document is still exact, the individual patches are gone).
    """

    def __init__(self, topic: str, *, max_queued: int, unsubscribe: Callable[[Subscription], Awaitable[None]]) -> None:
        self.topic = topic
        self.replica = Replica(topic)
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Done at the first snapshot (or with the error that refused the subscription)."""
        self.request_id: str | None = None
        """The subscribe request in flight; while set, a gap is expected and not a new problem."""
        self.resume_from: int | None = None
        self.failures = 0
        self._max_queued = max_queued
        self._unsubscribe = unsubscribe
        self._changes: deque[Change] = deque()
        self._wakeup = asyncio.Event()
        self._ended = False
        self._error: CimhubError | None = None

    @property
    def document(self) -> Any:
        return self.replica.document

    @property
    def revision(self) -> int:
        return self.replica.revision

    @property
    def epoch(self) -> str:
        return self.replica.epoch

    @property
    def commit(self) -> str | None:
        """The commit id of `revision` (``cim:``, ``messages:``): names this exact state, even after a rollback."""
        return self.replica.commit

    @property
    def ended(self) -> bool:
        return self._ended

    def __repr__(self) -> str:
        return f"Subscription({self.topic!r}, revision={self.revision}, ended={self._ended})"

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Change:
        while not self._changes:
            if self._ended:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._changes.popleft()

    async def unsubscribe(self) -> None:
        """Stop watching the topic; a loop over the changes ends after those already queued."""
        await self._unsubscribe(self)

    # -- called by the client ------------------------------------------------

    def deliver(self, change: Change) -> None:
        if len(self._changes) >= self._max_queued:
            self._changes.clear()
            change = Change(
                self.topic,
                change.revision,
                change.epoch,
                change.document,
                deleted=change.deleted,
                snapshot=True,
                reset=True,
                commit=change.commit,
            )
        self._changes.append(change)
        self._wakeup.set()

    def end(self, error: CimhubError | None = None) -> None:
        """No more changes; readers finish the queue, then stop (or get `error`)."""
        if self._ended:
            return
        self._ended, self._error = True, error
        if not self.ready.done():
            self.ready.set_exception(error or CimhubError("subscription ended before its first snapshot"))
            self.ready.exception()  # retrieved: nobody may be awaiting it any more
        self._wakeup.set()
