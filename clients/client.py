"""The async Python client of the hub: live replicas, exactly-once mutations, automatic reconnects.

    async with Client("http://127.0.0.1:8000", token_provider=get_token) as hub:
        sub = await hub.subscribe(f"cim:{cim_id}")
        await hub.mutate("updateState", {"cimId": cim_id, "title": "Project Atlas"})
        async for change in sub:
            print(change.revision, change.mutation, change.document["title"])

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

This module is the public API and the reconnect loop; session.py handles one
connection's frames, replica.py applies patches, outbox.py keeps unanswered
requests, transport.py is the socket.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from types import TracebackType
from typing import Any, Literal, NoReturn, Self

from pydantic import BaseModel, ValidationError

from cimhub.protocol import frames as f
from cimhub.protocol.errors import CimhubError, from_validation_error

from .backoff import Backoff
from .errors import ClientClosed, HubUnreachable, RequestTimeout, TokenUnavailable
from .events import Connected, Disconnected, Event, TokenRefreshed
from .outbox import Outbox
from .results import MutationResult
from .session import Session, Shared
from .subscription import Subscription
from .transport import Connector, TransportClosed, connect_websocket, ws_url

log = logging.getLogger("cimhub.client")

TokenProvider = Callable[[], Awaitable[str]]


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
        self._token_timeout = token_timeout
        self._connector = connector or partial(connect_websocket, ws_url(url), codec, open_timeout=open_timeout)
        self._backoff = backoff or Backoff()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._max_queued = max_queued_changes
        self._on_event = on_event
        self._subs: dict[str, Subscription] = {}
        self._outbox = Outbox()
        self._shared = Shared(
            subs=self._subs,
            outbox=self._outbox,
            backoff=self._backoff,
            retry_limit=retry_limit,
            open_timeout=open_timeout,
            act_as=act_as,
            fetch_token=self._fetch_token,
            renewable=token_provider is not None,
            emit=self._emit,
        )
        self._live: Session | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._first: asyncio.Future[None] | None = None
        self._error: CimhubError | None = None
        self._closed = False
        self._connected_before = False
        self._presence: dict[str, dict[str, Any]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.user_id: str | None = None
        self.expires_at: int | None = None
        """When the current token expires (epoch seconds), as the hub said."""

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
        first = self._first = asyncio.get_running_loop().create_future()
        self._run_task = asyncio.create_task(self._run(first), name="cimhub-client")
        try:
            await first
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Close the connection. Waiting calls raise ClientClosed; change loops end."""
        if self._closed:
            return
        self._closed = True
        if self._run_task is not None:
            self._run_task.cancel()
            await asyncio.gather(self._run_task, return_exceptions=True)
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
        session = self._live
        if session is not None:
            try:
                await session.subscribe(sub)
            except TransportClosed:
                pass  # the next session subscribes it
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
        frame = _checked(
            f.MutateFrame,
            {
                "type": "mutate",
                "id": "check",
                "name": name,
                "args": args or {},
                "mutationId": mutation_id,
                "expectedRevision": expected_revision,
            },
        )
        answer = await self._request(frame, timeout, f"mutation {name} ({mutation_id})")
        return MutationResult(answer.result, answer.cimId, answer.revision, answer.duplicate)

    async def query(self, name: str, args: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """Run query `name` and return its result.

        `name` is one of get, listByDeal, listByUser, listByStatus, patches, cimAt, cimDiff, cimHistory, ...
        """
        frame = _checked(f.QueryFrame, {"type": "query", "id": "check", "name": name, "args": args or {}})
        answer = await self._request(frame, timeout, f"query {name}")
        return answer.result

    async def set_presence(
        self, cim_id: str, state: dict[str, Any] | None, *, timeout: float | None = None
    ) -> str | None:
        """Show this client on CIM `cim_id` with `state` (``{activity, slideId?, sectionId?, name?}``); None leaves.

        Returns the presence id others see in ``presence:<cimId>``. The hub ends
        a connection's presence when it closes, so the client sets it again on
        every reconnect until you leave.
        """
        frame = _checked(f.PresenceFrame, {"type": "presence", "id": "check", "cimId": cim_id, "state": state})
        if state is None:
            self._presence.pop(cim_id, None)
        else:
            self._presence[cim_id] = state
        answer = await self._request(frame, timeout, f"presence on {cim_id}")
        result = answer.result if isinstance(answer.result, dict) else {}
        presence_id = result.get("presenceId")
        return str(presence_id) if presence_id is not None else None

    async def _restore_presence(self) -> None:
        """A new connection: set again every presence the last one had (it ended with it)."""
        for cim_id, state in list(self._presence.items()):
            try:
                await self.set_presence(cim_id, state)
            except CimhubError as exc:
                log.warning("could not restore presence on %s: %s", cim_id, exc.message)

    async def _request(self, frame: dict[str, Any], timeout: float | None, what: str) -> f.ResultFrame:
        self._check_open()
        async with self._slots:
            pending = self._outbox.add(frame)
            if self._live is not None:
                await self._live.send_quietly(pending.frame)
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
        if self._live is not None:
            frame = {"type": "unsubscribe", "id": self._shared.request_id("u"), "topic": sub.topic}
            await self._live.send_quietly(frame)

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise ClientClosed("the client is closed")
        if self._run_task is None:
            raise RuntimeError("use `async with Client(...)` or `await client.connect()` first")

    # -- the connection loop ---------------------------------------------------------

    async def _run(self, first: asyncio.Future[None]) -> None:
        """Connect, serve, reconnect after a back-off; until a stop error or aclose()."""
        while True:
            try:
                await self._connect_once()
            except CimhubError as exc:
                if not first.done():
                    first.set_exception(exc)
                    return
                if not exc.retryable:
                    self._fail(exc)
                    return
                delay = self._backoff.next()
                log.info("disconnected (%s); reconnecting in %.1f s", exc.message, delay)
                self._emit(Disconnected(exc.message, getattr(exc, "close_code", None), delay))
                await asyncio.sleep(delay)

    async def _connect_once(self) -> NoReturn:
        """Fetch a token, connect, serve the connection; always ends by raising why it ended."""
        token = await self._fetch_token()
        transport = await self._connector()
        try:
            await Session(transport, token, self._shared, self._on_ready).run()
        except CimhubError:
            raise
        except Exception as exc:  # keep the client alive; the log shows the bug
            log.exception("unexpected failure of the connection")
            raise HubUnreachable(f"unexpected failure: {exc!r}") from exc
        finally:
            self._live = None
            try:
                await transport.close()
            except Exception as exc:  # noqa: BLE001 - it is going away either way
                log.debug("closing the old connection failed: %r", exc)

    def _on_ready(self, session: Session, frame: f.ReadyFrame) -> None:
        self.user_id, self.expires_at = frame.userId, frame.expiresAt
        if self._live is session:
            self._emit(TokenRefreshed(frame.expiresAt))
            return
        self._backoff.reset()
        self._live = session
        self._emit(Connected(frame.userId, frame.expiresAt, self._connected_before))
        if self._connected_before and self._presence:
            task = asyncio.ensure_future(self._restore_presence())
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        self._connected_before = True
        if self._first is not None and not self._first.done():
            self._first.set_result(None)

    async def _fetch_token(self) -> str:
        if self._provider is None:
            return str(self._static_token)
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

    def _fail(self, error: CimhubError) -> None:
        """Stop for good: every waiting and later call raises `error`."""
        log.error("cimhub client stopped: %s", error.message)
        self._error = error
        self._outbox.fail_all(error)
        for sub in list(self._subs.values()):
            sub.end(error)
        self._subs.clear()

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
