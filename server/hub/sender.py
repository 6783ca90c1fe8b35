"""One connection's writer: a send queue bounded in bytes, drained by one task.

The hub hands frames to `FrameSender.send` and never awaits a socket, so a
stalled client cannot slow anyone else. Guarantees: frames go out in the
order given; at most `max_bytes` wait in the queue, and the frame that would
pass that closes the connection with 4008 (the client reconnects and resumes,
so what was queued is stale and is dropped); after `close`, what is queued
still goes out first, then the close frame, waiting `grace_s` at most (on
overflow `overflow_grace_s`) for a client that stopped reading. Past that
the TCP connection is aborted: a plain close would wait for the kernel's send
buffer (megabytes) to drain into a client that reads nothing, holding it for
minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, cast

from cimhub.protocol.close import CloseCode
from cimhub.server.hub.direct import PROTOCOL_SCOPE_KEY, DirectFrames

log = logging.getLogger("cimhub.sender")


class Socket(Protocol):
    """The part of starlette.websockets.WebSocket the writer uses."""

    async def send_text(self, data: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


TRANSPORT_SCOPE_KEY = "cimhub.transport"
# Queued frames written between two yields to the event loop (as catch-up does, server/hub/hub.py).
DRAIN_BATCH = 64


class KeepTransport:
    """ASGI middleware: puts a WebSocket's TCP transport (and protocol, for DirectFrames) in its scope.

    ASGI has no "abort the connection" message, and a close waits for the
    kernel's buffers to drain into a client that may never read. uvicorn's
    protocols (websockets, websockets-sansio and wsproto implementations
    alike) are the object whose bound method is the ASGI `send` they hand to
    the app, and keep the transport as `.transport`; Starlette wraps `send`
    further in, so it is read here, at the outermost layer. Elsewhere (another
    server) nothing is added and the writer falls back to a plain close.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            # Duck-typed: uvloop's transports (the hub's default loop) are not asyncio.WriteTransport subclasses.
            if callable(getattr(transport, "abort", None)):
                scope[TRANSPORT_SCOPE_KEY] = transport
                scope[PROTOCOL_SCOPE_KEY] = send.__self__
        await self.app(scope, receive, send)


def transport_of(socket: object) -> asyncio.WriteTransport | None:
    """The TCP transport under a WebSocket, when KeepTransport could find it."""
    scope = getattr(socket, "scope", None)
    transport = scope.get(TRANSPORT_SCOPE_KEY) if isinstance(scope, dict) else None
    return cast("asyncio.WriteTransport", transport) if callable(getattr(transport, "abort", None)) else None


class FrameSender:
    def __init__(
        self,
        socket: Socket,
        *,
        max_bytes: int,
        grace_s: float,
        on_overflow: Callable[[], None],
        overflow_grace_s: float = 1.0,
    ) -> None:
        self.socket = socket
        self.max_bytes = max_bytes
        self.grace_s = grace_s
        self.overflow_grace_s = min(overflow_grace_s, grace_s)
        self.on_overflow = on_overflow
        self.aborted = False
        self.queue: deque[str | bytes] = deque()
        self.queued_bytes = 0
        self.closing: tuple[int, str] | None = None
        # The task that drains the queue runs only while there is one: most writes go out
        # at once, and an idle connection's footprint is what a hub with many subscribers pays.
        self.task: asyncio.Task[None] | None = None
        self.done: asyncio.Future[None] | None = None
        self._busy = False
        # A write the socket could not take at once (the client reads slowly),
        # finished by the task before anything queued behind it.
        self._unfinished: tuple[Coroutine[Any, Any, None], Any] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._direct = DirectFrames.of(socket)

    def start(self) -> asyncio.Future[None]:
        """Start writing; until then frames only queue (see `flush_then_close`).

        The future returned ends once the close was sent (cancelled when the
        writing was abandoned or stopped, the error when a write failed): the
        session is then over.
        """
        self.done = asyncio.get_running_loop().create_future()
        if self.queue or self.closing is not None:
            self._wake()
        return self.done

    def stop(self) -> None:
        """The session is over. A close under way keeps its deadline: the transport may still need aborting."""
        if self._deadline is not None and self.closing is None:
            self._deadline.cancel()
        if self.task is not None:
            self.task.cancel()
        if self.done is not None:
            self.done.cancel()
        if self._direct is not None:
            self._direct.flush()

    def send(self, data: str | bytes, *, cork: bool = False) -> None:
        """Queue one encoded frame (or write it at once); never blocks.

        `cork`: the frame may wait for the end of this turn of the event loop, to leave in one
        write with others (DirectFrames.write).
        """
        if self.closing is not None:
            return
        if self.done is not None and not self.queue and not self._busy and self._unfinished is None:
            if self._direct is None or not self._direct.write(data, cork=cork):
                self._write_now(data)
            return
        size = len(data)
        if self.queued_bytes + size > self.max_bytes:
            self.on_overflow()
            self.queue.clear()
            self.queued_bytes = 0
            self.close(CloseCode.QUEUE_OVERFLOW, "send queue overflow: reconnect and resume", self.overflow_grace_s)
            return
        self.queue.append(data)
        self.queued_bytes += size
        self._wake()

    def close(self, code: int, reason: str, grace_s: float | None = None) -> None:
        """Close after what is already queued has been sent, waiting `grace_s` (default: the sender's) at most."""
        if self.closing is None:
            self.closing = (code, reason)
            self._wake()
            # A client that stopped reading blocks the socket write forever (the transport
            # stays paused): past the grace period it is dropped without the close frame.
            self._deadline = asyncio.get_running_loop().call_later(
                self.grace_s if grace_s is None else grace_s, self._abandon
            )

    async def flush_then_close(self, code: int, reason: str) -> None:
        """Before the task runs (a failed authentication): send what is queued, then close."""
        while self.queue:
            data = self.queue.popleft()
            with contextlib.suppress(Exception):
                await (self.socket.send_text(data) if isinstance(data, str) else self.socket.send_bytes(data))
        with contextlib.suppress(Exception):
            await self.socket.close(code, reason)

    def _abandon(self) -> None:
        """The grace is over: stop writing and abort the TCP connection if it is still open."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self.done is not None:
            self.done.cancel()
        transport = transport_of(self.socket)
        if transport is None:
            return
        # A transport already closing may still be waiting for its buffers to drain into a
        # client that reads nothing; abort() drops them (a no-op once the connection is gone).
        if not transport.is_closing() or transport.get_write_buffer_size() > 0:
            log.info("client did not complete its close in time; aborting the connection")
            self.aborted = True
        transport.abort()

    def _write_now(self, data: str | bytes) -> None:
        """Write to the socket without a task switch when it can take the frame now.

        Fan-out to 1,000 subscribers that woke 1,000 sender tasks per patch
        spent a third of the hub's time in the event loop (bench/bench_fanout.py).
        Like `websockets.broadcast`, write synchronously instead: the ASGI send
        coroutine completes without suspending while the transport is
        writable, so it is stepped here once. If it does suspend (the client
        reads slowly and the transport paused), the task finishes it and
        everything sent meanwhile queues behind it, bounded by `max_bytes`.
        """
        coro = self.socket.send_text(data) if isinstance(data, str) else self.socket.send_bytes(data)
        try:
            waiting = coro.send(None)
        except StopIteration:
            return
        except Exception:  # noqa: BLE001 - the socket is gone; the session's receive loop ends it
            return
        self._unfinished = (coro, waiting)
        self._wake()

    async def _finish_unfinished(self) -> None:
        """Drive the write `_write_now` started to its end, as an asyncio Task would."""
        assert self._unfinished is not None
        coro, waiting = self._unfinished
        try:
            while True:
                if waiting is None:
                    await asyncio.sleep(0)
                else:
                    await asyncio.wait([waiting])
                try:
                    waiting = coro.send(None)
                except StopIteration:
                    return
        except BaseException:
            coro.close()
            raise
        finally:
            self._unfinished = None

    def _wake(self) -> None:
        """Something to write or a close to send: start the task, unless it runs or writing has not started."""
        if self.done is not None and not self.done.done() and self.task is None:
            self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        """Write the backlog in order, then the close if one was asked for; end when nothing is left."""
        socket = self.socket
        self._busy = True
        try:
            if self._direct is not None:
                self._direct.flush()  # frames written directly went before anything queued since
            while self._unfinished is not None or self.queue:
                if self._unfinished is not None:
                    await self._finish_unfinished()
                sent = 0
                while self.queue:
                    data = self.queue.popleft()
                    self.queued_bytes -= len(data)
                    if isinstance(data, str):
                        await socket.send_text(data)
                    else:
                        await socket.send_bytes(data)
                    sent += 1
                    if sent % DRAIN_BATCH == 0:
                        # A writable socket takes every frame without suspending: a long queue (a catch-up
                        # of thousands of patches) would otherwise be written in one go, stalling the hub.
                        await asyncio.sleep(0)
            if self.closing is not None:
                code, reason = self.closing
                with contextlib.suppress(Exception):
                    await socket.close(code, reason)
                if self.done is not None and not self.done.done():
                    self.done.set_result(None)
        except asyncio.CancelledError:
            if self.done is not None:
                self.done.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - the socket failed: the session ends, as it learns from `done`
            if self.done is not None and not self.done.done():
                self.done.set_exception(exc)
        finally:
            self._busy = False
            self.task = None
