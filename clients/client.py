"""The async Python client of the hub: live replicas, exactly-once mutations, automatic reconnects.

    async with Client("http://127.0.0.1:8000", token_provider=get_token) as hub:
        sub = await hub.subscribe(f"cim:{cim_id}")
        await hub.mutate("navigateToStage", {"cimId": cim_id, "stage": "outline"})
        async for change in sub:
            print(change.revision, change.mutation, sub.document["stage"])

What it guarantees, and what the caller must do:

* Each subscription's `document` follows the hub's revisions in order, without
  gaps, across reconnects: the client resumes from the revision it holds and
  the hub sends what was missed (or a snapshot marked ``reset``).
* `mutate` returns once the hub acknowledged the mutation. Unacknowledged
  mutations stay in an outbox and are re-sent after a reconnect with the same
  mutation id, so each applies exactly once. A non-retryable error is raised;
  retryable ones are retried (up to `retry_limit` times). With a `timeout`,
  `RequestTimeout` means "unknown": retry with the same mutation id.
* The connection is presumed dead when no frame (not even the hub's ping)
  arrives within 2.5 heartbeats. Reconnects back off exponentially with
  jitter (capped at 10 s) and fetch a fresh token from `token_provider` first.
* Close codes 4400-4499 (and an expired token nobody can renew) stop the
  client: every waiting call raises the error, and so does every later one.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, Literal, Self

from pydantic import BaseModel, ValidationError

from cimhub.protocol import frames as f
from cimhub.protocol.errors import CimhubError, ErrorCode, Unauthenticated, from_validation_error

from .backoff import Backoff
from .errors import ClientClosed, HubUnreachable, RequestTimeout, close_error, is_stop_code
from .events import Connected, Disconnected, Event, Resumed, TokenRefreshed
from .outbox import Outbox, Pending
from .replica import ReplicaGap
from .results import MutationResult
from .subscription import Subscription
from .transport import Connector, Transport, TransportClosed, connect_websocket, ws_url

log = logging.getLogger("cimhub.client")

TokenProvider = Callable[[], Awaitable[str]]
WATCHDOG_HEARTBEATS = 2.5


class TokenUnavailable(Unauthenticated):
    """The token provider failed or timed out; the client tries again after a back-off."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


@dataclass(eq=False)
class _Connection:
    """One socket's state, from the auth frame until it closes."""

    transport: Transport
    token: str
    ready: bool = False
    heartbeat: float = 15.0
    hub_error: str | None = None
    """The last connection-level error the hub sent, which explains the close that usually follows."""
    failure: CimhubError | None = None
    """Set before the client closes the socket itself, to say why."""
    refreshing: bool = False


class Client:
    """A connection to the hub that survives disconnects. Use as ``async with`` or connect()/aclose().

    Pass `token` (a fixed token) or `token_provider` (an async callable that
    returns a current token; called before every connection and when the hub
    says the token expired). `on_event` hears about connects, disconnects and
    resumes (cimhub.clients.events); it must not block.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        token_provider: TokenProvider | None = None,
        codec: Literal["json", "msgpack"] = "json",
        act_as: str | None = None,
        token_timeout: float = 10.0,
        open_timeout: float = 10.0,
        backoff: Backoff | None = None,
        retry_limit: int = 8,
        max_in_flight: int = 1_000,
        max_queued_changes: int = 10_000,
        on_event: Callable[[Event], None] | None = None,
        connector: Connector | None = None,
    ) -> None:
        if (token is None) == (token_provider is None):
            raise ValueError("pass either token or token_provider")
        self.url = url
        self._static_token = token
        self._provider = token_provider
        self._act_as = act_as
        self._token_timeout = token_timeout
        self._open_timeout = open_timeout
        self._connector = connector or partial(connect_websocket, ws_url(url), codec, open_timeout=open_timeout)
        self._backoff = backoff or Backoff()
        self._retry_limit = retry_limit
        self._slots = asyncio.Semaphore(max_in_flight)
        self._max_queued = max_queued_changes
        self._on_event = on_event
        self._subs: dict[str, Subscription] = {}
        self._outbox = Outbox()
        self._ids = itertools.count(1)
        self._live: _Connection | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._first: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._error: CimhubError | None = None
        self._closed = False
        self._connected_before = False
        self.user_id: str | None = None
        self.expires_at: int | None = None

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def connect(self) -> None:
        """Connect and authenticate once; raises what stopped that first attempt.

        HubUnreachable, Unauthenticated (refused token) or TokenUnavailable. From
        then on the client reconnects by itself until aclose().
        """
        if self._run_task is not None:
            raise RuntimeError("connect() was already called")
        self._first = asyncio.get_running_loop().create_future()
        self._run_task = asyncio.create_task(self._run(), name="cimhub-client")
        try:
            await self._first
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Close the connection. Waiting calls raise ClientClosed; change loops end."""
        if self._closed:
            return
        self._closed = True
        tasks = [t for t in (self._run_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._outbox.fail_all(ClientClosed("the client was closed before the hub answered"))
        for sub in list(self._subs.values()):
            sub.end()
        self._subs.clear()

    @property
    def connected(self) -> bool:
        """Whether an authenticated connection is open right now."""
        return self._live is not None

    # -- requests ------------------------------------------------------------------

    async def subscribe(self, topic: str, *, timeout: float | None = None) -> Subscription:
        """Start watching `topic` (``cim:<id>``, ``deal:<id>``, ``messages:<id>``); returns after its first snapshot.

        Raises the hub's error (NotFound, AccessDenied...) if it refuses, and
        ValueError if this client already watches the topic.
        """
        self._check_open()
        _checked(f.SubscribeFrame, {"type": "subscribe", "id": "check", "topic": topic})
        if topic in self._subs:
            raise ValueError(f"already subscribed to {topic}: use that Subscription")
        sub = Subscription(topic, max_queued=self._max_queued, unsubscribe=self._unsubscribe)
        self._subs[topic] = sub
        conn = self._live
        if conn is not None:
            await self._quietly(self._send_subscribe(conn, sub))
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(sub.ready)
        except TimeoutError:
            await self._unsubscribe(sub)
            raise RequestTimeout(f"no snapshot of {topic} within {timeout} s") from None
        except asyncio.CancelledError:
            await self._unsubscribe(sub)
            raise
        return sub

    async def mutate(
        self,
        name: str,
        args: dict[str, Any] | None = None,
        *,
        mutation_id: str | None = None,
        expected_revision: int | None = None,
        timeout: float | None = None,
    ) -> MutationResult:
        """Run mutation `name`; returns once the hub acknowledged it (see the module docstring).

        `mutation_id` defaults to a new uuid4. Pass your own to make a retry
        across processes idempotent too.
        """
        mutation_id = mutation_id or str(uuid.uuid4())
        frame = _checked(f.MutateFrame, {
            "type": "mutate", "id": "check", "name": name, "args": args or {},
            "mutationId": mutation_id, "expectedRevision": expected_revision,
        })
        answer = await self._request(frame, timeout, f"mutation {name} ({mutation_id})")
        return MutationResult(answer.result, answer.cimId, answer.revision, answer.duplicate)

    async def query(self, name: str, args: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """Run query `name` (get, listByDeal, listByUser, listByStatus, patches) and return its result."""
        frame = _checked(f.QueryFrame, {"type": "query", "id": "check", "name": name, "args": args or {}})
        answer = await self._request(frame, timeout, f"query {name}")
        return answer.result

    async def _request(self, frame: dict[str, Any], timeout: float | None, what: str) -> f.ResultFrame:
        self._check_open()
        async with self._slots:
            pending = self._outbox.add(frame)
            conn = self._live
            if conn is not None:
                await self._quietly(conn.transport.send(pending.frame))
            try:
                async with asyncio.timeout(timeout):
                    return await pending.future
            except TimeoutError:
                self._outbox.withdraw(pending.request_id)
                raise RequestTimeout(
                    f"no answer to {what} within {timeout} s", mutation_id=pending.mutation_id
                ) from None
            except asyncio.CancelledError:
                self._outbox.withdraw(pending.request_id)
                raise

    async def _unsubscribe(self, sub: Subscription) -> None:
        if self._subs.get(sub.topic) is sub:
            del self._subs[sub.topic]
        sub.end()
        conn = self._live
        if conn is not None:
            frame = {"type": "unsubscribe", "id": f"u{next(self._ids)}", "topic": sub.topic}
            await self._quietly(conn.transport.send(frame))

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise ClientClosed("the client is closed")
        if self._run_task is None:
            raise RuntimeError("use `async with Client(...)` or `await client.connect()` first")

    # -- the connection loop ---------------------------------------------------------

    async def _run(self) -> None:
        assert self._first is not None
        while True:
            try:
                try:
                    await self._connect_once()
                except CimhubError:
                    raise
                except Exception as exc:  # keep the client alive; the log shows the bug
                    log.exception("unexpected failure of the connection")
                    raise HubUnreachable(f"unexpected failure: {exc!r}") from exc
            except CimhubError as exc:
                if not self._first.done():
                    self._first.set_exception(exc)
                    return
                if not exc.retryable:
                    self._fail(exc)
                    return
                delay = self._backoff.next()
                log.info("disconnected (%s); reconnecting in %.1f s", exc.message, delay)
                self._emit(Disconnected(exc.message, getattr(exc, "close_code", None), delay))
                await asyncio.sleep(delay)

    async def _connect_once(self) -> None:
        """Fetch a token, connect, serve the connection; always ends by raising why it ended."""
        token = await self._fetch_token()
        transport = await self._connector()
        conn = _Connection(transport, token)
        try:
            await self._serve(conn)
        finally:
            self._live = None
            try:
                await transport.close()
            except Exception as exc:  # noqa: BLE001 - it is going away either way
                log.debug("closing the old connection failed: %r", exc)

    async def _fetch_token(self) -> str:
        if self._provider is None:
            assert self._static_token is not None
            return self._static_token
        try:
            async with asyncio.timeout(self._token_timeout):
                token = await self._provider()
        except TimeoutError:
            raise TokenUnavailable(f"the token provider gave no token within {self._token_timeout} s") from None
        except Exception as exc:  # the provider is the caller's code: report it, retry later
            raise TokenUnavailable(f"the token provider failed: {exc!r}") from exc
        if not isinstance(token, str) or not token:
            raise TokenUnavailable(f"the token provider returned {token!r}, not a token")
        return token

    async def _serve(self, conn: _Connection) -> None:
        transport = conn.transport
        try:
            await transport.send(self._auth_frame(conn.token))
            while True:
                timeout = WATCHDOG_HEARTBEATS * conn.heartbeat if conn.ready else self._open_timeout
                try:
                    # asyncio.timeout rather than wait_for: on Python 3.11 wait_for loses a
                    # cancellation that races a finished read, and aclose() would then hang.
                    async with asyncio.timeout(timeout):
                        raw = await transport.recv()
                except TimeoutError:
                    waited = "a ping" if conn.ready else "the answer to auth"
                    raise HubUnreachable(f"no frame from the hub in {timeout:.1f} s (waiting for {waited})") from None
                except CimhubError as exc:
                    log.warning("ignoring a frame that does not decode: %s", exc.message)
                    continue
                try:
                    frame = f.SERVER_FRAME.validate_python(raw)
                except ValidationError as exc:
                    log.warning("ignoring a frame this client does not understand: %s", exc)
                    continue
                await self._dispatch(conn, frame)
        except TransportClosed as exc:
            if conn.failure is not None:
                raise conn.failure from None
            if is_stop_code(exc.code):
                assert exc.code is not None
                raise close_error(exc.code, exc.reason, conn.hub_error) from None
            detail = f"{exc.code} {exc.reason}".strip() if exc.code is not None else exc.reason
            raise HubUnreachable(f"the connection closed ({detail})", close_code=exc.code) from None

    def _auth_frame(self, token: str) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "auth", "token": token}
        if self._act_as is not None:
            frame["actAs"] = self._act_as
        return frame

    async def _on_ready(self, conn: _Connection, frame: f.ReadyFrame) -> None:
        conn.heartbeat = frame.heartbeat
        self.user_id, self.expires_at = frame.userId, frame.expiresAt
        if conn.ready:
            self._emit(TokenRefreshed(frame.expiresAt))
            return
        conn.ready = True
        self._backoff.reset()
        self._live = conn
        self._emit(Connected(frame.userId, frame.expiresAt, self._connected_before))
        self._connected_before = True
        assert self._first is not None
        if not self._first.done():
            self._first.set_result(None)
        # Requests made from here on send themselves; these were made before.
        for sub in list(self._subs.values()):
            if self._subs.get(sub.topic) is sub:
                await self._send_subscribe(conn, sub)
        for pending in self._outbox:
            if self._outbox.get(pending.request_id) is pending:
                await conn.transport.send(pending.frame)

    # -- frames from the hub -------------------------------------------------------------

    async def _dispatch(self, conn: _Connection, frame: Any) -> None:
        if isinstance(frame, f.PingFrame):
            await conn.transport.send({"type": "pong", "ts": frame.ts} if frame.ts is not None else {"type": "pong"})
        elif isinstance(frame, f.ReadyFrame):
            await self._on_ready(conn, frame)
        elif isinstance(frame, f.SnapshotFrame):
            self._on_snapshot(frame)
        elif isinstance(frame, f.PatchFrame):
            await self._on_patch(conn, frame)
        elif isinstance(frame, f.SubscribedFrame):
            await self._on_subscribed(conn, frame)
        elif isinstance(frame, f.UnsubscribedFrame):
            self._on_unsubscribed(conn, frame)
        elif isinstance(frame, f.ResultFrame):
            self._outbox.resolve(frame)
        elif isinstance(frame, f.ErrorFrame):
            self._on_error(conn, frame)

    def _on_snapshot(self, frame: f.SnapshotFrame) -> None:
        sub = self._subs.get(frame.topic)
        if sub is None or (frame.id is not None and frame.id != sub.request_id):
            return  # for a subscription since dropped, or a request since replaced
        change = sub.replica.load(frame)
        sub.request_id, sub.failures = None, 0
        if sub.ready.done():
            sub.deliver(change)
        else:
            sub.ready.set_result(None)

    async def _on_patch(self, conn: _Connection, frame: f.PatchFrame) -> None:
        sub = self._subs.get(frame.topic)
        if sub is None:
            return
        try:
            change = sub.replica.apply(frame)
        except ReplicaGap as exc:
            if sub.request_id is None:  # else a resubscribe is under way and will fill the gap
                log.warning("%s; resubscribing", exc)
                await self._resync(conn, sub)
            return
        if change is not None:
            sub.deliver(change)
            if change.deleted:
                self._drop(sub)

    async def _on_subscribed(self, conn: _Connection, frame: f.SubscribedFrame) -> None:
        sub = self._subs.get(frame.topic)
        if sub is None or frame.id != sub.request_id:
            return
        sub.request_id = None
        replica = sub.replica
        if not replica.loaded or (replica.revision, replica.epoch) != (frame.revision, frame.epoch):
            log.warning("%s: resume ended at %s, replica is at %s; taking a snapshot", sub.topic, frame.revision, replica.revision)
            replica.forget()
            await self._resync(conn, sub)
            return
        sub.failures = 0
        self._emit(Resumed(sub.topic, sub.resume_from if sub.resume_from is not None else frame.revision, frame.revision))

    def _on_unsubscribed(self, conn: _Connection, frame: f.UnsubscribedFrame) -> None:
        sub = self._subs.get(frame.topic)
        if sub is None or frame.id is not None:
            return  # the answer to an unsubscribe of ours
        error = CimhubError.from_wire(frame.error.model_dump()) if frame.error is not None else None
        self._retry_subscription(conn, sub, error)

    def _on_error(self, conn: _Connection, frame: f.ErrorFrame) -> None:
        error = CimhubError.from_wire(frame.error.model_dump())
        if frame.id is None:
            if error.code == ErrorCode.TOKEN_EXPIRED:
                self._spawn(self._refresh_token(conn))
            else:
                conn.hub_error = error.message
                log.warning("hub error: %s: %s", error.code.value, error.message)
            return
        pending = self._outbox.get(frame.id)
        if pending is not None:
            self._retry_request(conn, pending, error)
            return
        for sub in self._subs.values():
            if sub.request_id == frame.id:
                sub.request_id = None
                self._retry_subscription(conn, sub, error)
                return

    # -- recovering -------------------------------------------------------------------------

    async def _send_subscribe(self, conn: _Connection, sub: Subscription) -> None:
        sub.request_id = f"s{next(self._ids)}"
        frame: dict[str, Any] = {"type": "subscribe", "id": sub.request_id, "topic": sub.topic}
        resume = sub.replica.resume_point()
        sub.resume_from = sub.replica.revision if resume is not None else None
        if resume is not None:
            frame["resume"] = resume
        await conn.transport.send(frame)

    async def _resync(self, conn: _Connection, sub: Subscription) -> None:
        """Subscribe again on this connection, resuming from the replica's revision if it has one.

        The unsubscribe first makes the hub forget whatever it still holds for
        the topic, so the subscribe is never refused as a duplicate.
        """
        await conn.transport.send({"type": "unsubscribe", "id": f"u{next(self._ids)}", "topic": sub.topic})
        await self._send_subscribe(conn, sub)

    def _retry_subscription(self, conn: _Connection, sub: Subscription, error: CimhubError | None) -> None:
        """The hub refused or ended `sub`: subscribe again later if the error allows, else end it."""
        if error is None or not error.retryable or sub.failures >= self._retry_limit:
            self._drop(sub, error)
            return
        if error.code != ErrorCode.TOKEN_EXPIRED:  # expiry is not the subscription's fault
            sub.failures += 1

        async def again() -> None:
            if self._subs.get(sub.topic) is sub:
                await self._resync(conn, sub)

        self._later(self._backoff.delay(sub.failures), conn, again)

    def _retry_request(self, conn: _Connection, pending: Pending, error: CimhubError) -> None:
        if not error.retryable or pending.failures >= self._retry_limit:
            self._outbox.reject(pending.request_id, error)
            return
        if error.code != ErrorCode.TOKEN_EXPIRED:
            pending.failures += 1

        async def again() -> None:
            if self._outbox.get(pending.request_id) is pending:
                await conn.transport.send(pending.frame)

        self._later(self._backoff.delay(pending.failures), conn, again)

    async def _refresh_token(self, conn: _Connection) -> None:
        """The hub paused deliveries until it gets a fresh token: get one and send it."""
        if conn.refreshing:
            return
        conn.refreshing = True
        try:
            if self._provider is None:
                raise Unauthenticated("the token expired and this client has no token_provider to renew it")
            token = await self._fetch_token()
            if token == conn.token:
                raise Unauthenticated("the token expired and the token provider returned the same token")
            conn.token = token
            await conn.transport.send(self._auth_frame(token))
        except CimhubError as exc:
            # Close; the reader raises `failure`: retryable reconnects (fetching again), the rest stops.
            conn.failure = exc
            await conn.transport.close(1000, "token refresh failed")
        finally:
            conn.refreshing = False

    def _drop(self, sub: Subscription, error: CimhubError | None = None) -> None:
        if self._subs.get(sub.topic) is sub:
            del self._subs[sub.topic]
        sub.end(error)

    def _fail(self, error: CimhubError) -> None:
        """Stop for good: every waiting and later call raises `error`."""
        log.error("cimhub client stopped: %s", error.message)
        self._error = error
        self._outbox.fail_all(error)
        for sub in list(self._subs.values()):
            sub.end(error)
        self._subs.clear()

    # -- small things ---------------------------------------------------------------------

    def _later(self, delay: float, conn: _Connection, action: Callable[[], Awaitable[None]]) -> None:
        """Run `action` after `delay`, if `conn` is still the live connection (else the reconnect covered it)."""

        async def run() -> None:
            await asyncio.sleep(delay)
            if self._live is conn:
                await self._quietly(action())

        self._spawn(run())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("cimhub client task failed", exc_info=task.exception())

    @staticmethod
    async def _quietly(send: Awaitable[None]) -> None:
        """Send from outside the reader: a closed socket is the reader's to notice and recover from."""
        try:
            await send
        except TransportClosed:
            pass

    def _emit(self, event: Event) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:  # a broken callback must not break the connection
            log.exception("on_event callback failed for %r", event)


def _checked(model: type[BaseModel], frame: dict[str, Any]) -> dict[str, Any]:
    """Validate a frame built from the caller's input, so mistakes raise here and not on the hub."""
    try:
        return model.model_validate(frame).model_dump(exclude_none=True)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
