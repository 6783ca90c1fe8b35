"""One connection of the async client, from its auth frame until it closes.

A `Session` authenticates, re-sends what the client still needs (every
subscription, resuming from where its replica stands, and every unanswered
request), then reads frames until the connection ends and raises why: a
retryable error (HubUnreachable, TokenUnavailable) means "reconnect", any
other means "stop". What outlives a connection (subscriptions, the outbox)
belongs to the client and is shared through `Shared`; retry timers belong to
the session and die with it, because the next session re-sends everything.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

from pydantic import ValidationError

from cimhub.protocol import frames as f
from cimhub.protocol.errors import CimhubError, ErrorCode, Unauthenticated

from .backoff import Backoff
from .errors import HubUnreachable, close_error, is_stop_code
from .events import Event, Resumed
from .outbox import Outbox, Pending
from .replica import ReplicaGap
from .subscription import Subscription
from .transport import Transport, TransportClosed

log = logging.getLogger("cimhub.client")

WATCHDOG_HEARTBEATS = 2.5
"""No frame (not even a ping) for this many heartbeats: the connection is presumed dead."""


@dataclass
class Shared:
    """What outlives one connection. Owned by the Client; every session works on it."""

    subs: dict[str, Subscription]
    outbox: Outbox
    backoff: Backoff
    retry_limit: int
    open_timeout: float
    act_as: str | None
    fetch_token: Callable[[], Awaitable[str]]
    renewable: bool
    """Whether fetch_token can give a new token (a provider) or only the same one (a fixed token)."""
    emit: Callable[[Event], None]
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def request_id(self, prefix: str) -> str:
        return f"{prefix}{next(self.ids)}"

    def auth_frame(self, token: str) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "auth", "token": token}
        if self.act_as is not None:
            frame["actAs"] = self.act_as
        return frame


class Session:
    """One connection. `run()` until it raises; `on_ready` hears each `ready` (the first, and refreshes)."""

    def __init__(
        self, transport: Transport, token: str, shared: Shared, on_ready: Callable[[Session, f.ReadyFrame], None]
    ) -> None:
        self.transport = transport
        self.token = token
        self.shared = shared
        self.ready = False
        self.heartbeat = 15.0
        self._on_ready = on_ready
        self._hub_error: str | None = None
        """The last connection-level error the hub sent: it explains the close that usually follows."""
        self._failure: CimhubError | None = None
        """Set before the session closes the socket itself, to say why."""
        self._refreshing = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> NoReturn:
        try:
            await self._serve()
        except TransportClosed as exc:
            if self._failure is not None:
                raise self._failure from None
            if exc.code is not None and is_stop_code(exc.code):
                raise close_error(exc.code, exc.reason, self._hub_error) from None
            detail = f"{exc.code} {exc.reason}".strip() if exc.code is not None else exc.reason
            raise HubUnreachable(f"the connection closed ({detail})", close_code=exc.code) from None
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self) -> NoReturn:
        await self.transport.send(self.shared.auth_frame(self.token))
        while True:
            timeout = WATCHDOG_HEARTBEATS * self.heartbeat if self.ready else self.shared.open_timeout
            try:
                # asyncio.timeout rather than wait_for: on Python 3.11 wait_for loses a
                # cancellation that races a finished read, and aclose() would then hang.
                async with asyncio.timeout(timeout):
                    raw = await self.transport.recv()
            except TimeoutError:
                waiting = "a ping" if self.ready else "the answer to auth"
                raise HubUnreachable(f"no frame from the hub in {timeout:.1f} s (waiting for {waiting})") from None
            except CimhubError as exc:
                log.warning("ignoring a frame that does not decode: %s", exc.message)
                continue
            try:
                frame = f.SERVER_FRAME.validate_python(raw)
            except ValidationError as exc:
                log.warning("ignoring a frame this client does not understand: %s", exc)
                continue
            await self._dispatch(frame)

    async def send_quietly(self, frame: dict[str, Any]) -> None:
        """Send from outside the reader: a closed socket is the reader's to notice and recover from."""
        try:
            await self.transport.send(frame)
        except TransportClosed:
            pass

    async def subscribe(self, sub: Subscription) -> None:
        """Send `sub`'s subscribe, resuming from its replica when it has one."""
        sub.request_id = self.shared.request_id("s")
        frame: dict[str, Any] = {"type": "subscribe", "id": sub.request_id, "topic": sub.topic}
        resume = sub.replica.resume_point()
        sub.resume_from = sub.replica.revision if resume is not None else None
        if resume is not None:
            frame["resume"] = resume
        await self.transport.send(frame)

    # -- frames from the hub -------------------------------------------------------------

    async def _dispatch(self, frame: Any) -> None:
        if isinstance(frame, f.PingFrame):
            await self.transport.send({"type": "pong", "ts": frame.ts} if frame.ts is not None else {"type": "pong"})
        elif isinstance(frame, f.ReadyFrame):
            await self._ready(frame)
        elif isinstance(frame, f.SnapshotFrame):
            self._snapshot(frame)
        elif isinstance(frame, f.PatchFrame):
            await self._patch(frame)
        elif isinstance(frame, f.SubscribedFrame):
            await self._subscribed(frame)
        elif isinstance(frame, f.UnsubscribedFrame):
            self._unsubscribed(frame)
        elif isinstance(frame, f.ResultFrame):
            self.shared.outbox.resolve(frame)
        elif isinstance(frame, f.ErrorFrame):
            self._error(frame)

    async def _ready(self, frame: f.ReadyFrame) -> None:
        self.heartbeat = frame.heartbeat
        first, self.ready = not self.ready, True
        self._on_ready(self, frame)
        if not first:
            return  # a refreshed token: the hub resumes deliveries by itself
        # Requests made from here on send themselves; these were made before.
        shared = self.shared
        for sub in list(shared.subs.values()):
            if shared.subs.get(sub.topic) is sub:
                await self.subscribe(sub)
        for pending in shared.outbox:
            if shared.outbox.get(pending.request_id) is pending:
                await self.transport.send(pending.frame)

    def _snapshot(self, frame: f.SnapshotFrame) -> None:
        sub = self.shared.subs.get(frame.topic)
        if sub is None or (frame.id is not None and frame.id != sub.request_id):
            return  # for a subscription since dropped, or a request since replaced
        change = sub.replica.load(frame)
        sub.request_id, sub.failures = None, 0
        if sub.ready.done():
            sub.deliver(change)
        else:
            sub.ready.set_result(None)

    async def _patch(self, frame: f.PatchFrame) -> None:
        sub = self.shared.subs.get(frame.topic)
        if sub is None:
            return
        try:
            change = sub.replica.apply(frame)
        except ReplicaGap as exc:
            if sub.request_id is None:  # else a resubscribe is under way and will fill the gap
                log.warning("%s; resubscribing", exc)
                await self._resync(sub)
            return
        if change is not None:
            sub.deliver(change)
            if change.deleted:
                self._drop(sub)

    async def _subscribed(self, frame: f.SubscribedFrame) -> None:
        sub = self.shared.subs.get(frame.topic)
        if sub is None or frame.id != sub.request_id:
            return
        sub.request_id = None
        replica = sub.replica
        if not replica.loaded or (replica.revision, replica.epoch) != (frame.revision, frame.epoch):
            log.warning(
                "%s: resume ended at r%s, replica at r%s; taking a snapshot",
                sub.topic,
                frame.revision,
                replica.revision,
            )
            replica.forget()
            await self._resync(sub)
            return
        sub.failures = 0
        start = sub.resume_from if sub.resume_from is not None else frame.revision
        self.shared.emit(Resumed(sub.topic, start, frame.revision))

    def _unsubscribed(self, frame: f.UnsubscribedFrame) -> None:
        sub = self.shared.subs.get(frame.topic)
        if sub is None or frame.id is not None:
            return  # the answer to an unsubscribe of ours
        error = CimhubError.from_wire(frame.error.model_dump()) if frame.error is not None else None
        self._retry_subscription(sub, error)

    def _error(self, frame: f.ErrorFrame) -> None:
        error = CimhubError.from_wire(frame.error.model_dump())
        if frame.id is None:
            if error.code == ErrorCode.TOKEN_EXPIRED:
                self._spawn(self._refresh_token())
            else:
                self._hub_error = error.message
                log.warning("hub error: %s: %s", error.code.value, error.message)
            return
        pending = self.shared.outbox.get(frame.id)
        if pending is not None:
            self._retry_request(pending, error)
            return
        for sub in self.shared.subs.values():
            if sub.request_id == frame.id:
                sub.request_id = None
                self._retry_subscription(sub, error)
                return

    # -- recovering -------------------------------------------------------------------------

    async def _resync(self, sub: Subscription) -> None:
        """Subscribe again on this connection, resuming from the replica's revision if it has one.

        The unsubscribe first makes the hub forget whatever it still holds for
        the topic, so the subscribe is never refused as a duplicate.
        """
        await self.transport.send({"type": "unsubscribe", "id": self.shared.request_id("u"), "topic": sub.topic})
        await self.subscribe(sub)

    def _retry_subscription(self, sub: Subscription, error: CimhubError | None) -> None:
        """The hub refused or ended `sub`: subscribe again later if the error allows, else end it."""
        if error is None or not error.retryable or sub.failures >= self.shared.retry_limit:
            self._drop(sub, error)
            return
        if error.code != ErrorCode.TOKEN_EXPIRED:  # expiry is not the subscription's fault
            sub.failures += 1

        async def again() -> None:
            if self.shared.subs.get(sub.topic) is sub:
                await self._resync(sub)

        self._later(self.shared.backoff.delay(sub.failures), again)

    def _retry_request(self, pending: Pending, error: CimhubError) -> None:
        if not error.retryable or pending.failures >= self.shared.retry_limit:
            self.shared.outbox.reject(pending.request_id, error)
            return
        if error.code != ErrorCode.TOKEN_EXPIRED:
            pending.failures += 1

        async def again() -> None:
            if self.shared.outbox.get(pending.request_id) is pending:
                await self.transport.send(pending.frame)

        self._later(self.shared.backoff.delay(pending.failures), again)

    async def _refresh_token(self) -> None:
        """The hub paused deliveries until it gets a fresh token: get one and send it."""
        if self._refreshing:
            return
        self._refreshing = True
        try:
            if not self.shared.renewable:
                raise Unauthenticated("the token expired and this client has no token_provider to renew it")
            token = await self.shared.fetch_token()
            if token == self.token:
                raise Unauthenticated("the token expired and the token provider returned the same token")
            self.token = token
            await self.transport.send(self.shared.auth_frame(token))
        except CimhubError as exc:
            # Close; run() raises `_failure`: a retryable one reconnects (fetching again), the rest stop.
            self._failure = exc
            await self.transport.close(1000, "token refresh failed")
        finally:
            self._refreshing = False

    def _drop(self, sub: Subscription, error: CimhubError | None = None) -> None:
        if self.shared.subs.get(sub.topic) is sub:
            del self.shared.subs[sub.topic]
        sub.end(error)

    def _later(self, delay: float, action: Callable[[], Awaitable[None]]) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            try:
                await action()
            except TransportClosed:
                pass  # the reader sees the close; the next session re-sends

        self._spawn(run())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("cimhub client task failed", exc_info=task.exception())
