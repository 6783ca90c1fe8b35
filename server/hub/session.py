"""One client connection: authentication, frame dispatch, heartbeats, token expiry.

Sending goes through the connection's FrameSender (cimhub.server.hub.sender): the
hub never awaits a socket, and a client that falls behind is closed with 4008
and resumes from its subscriptions' revisions.

Mutations of one CIM from one connection run one at a time, in the order sent
(like Convex); mutations of different CIMs overlap, up to
`mutations_in_flight` at once, so their results may come back in another
order (clients match them by id). Subscribes and queries run concurrently
beside them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from typing import Any, Protocol

from pydantic import ValidationError
from starlette.websockets import WebSocket

from cimhub.protocol import frames as f
from cimhub.protocol.close import CloseCode
from cimhub.protocol.codec import Codec
from cimhub.protocol.errors import (
    CimhubError,
    ErrorCode,
    InvalidInput,
    Unauthenticated,
    from_validation_error,
)
from cimhub.protocol.presence import display_name, parse_state
from cimhub.server.dispatch import actor_of, cim_of
from cimhub.server.faults import FaultLog, client_error
from cimhub.server.hub.admission import Action, Admission, Ticket, user_key
from cimhub.server.hub.connections import Connections
from cimhub.server.hub.hub import Hub
from cimhub.server.hub.presence_tracker import PresenceTracker
from cimhub.server.hub.ratelimit import TokenBucket
from cimhub.server.hub.sender import FrameSender
from cimhub.server.metrics import Metrics
from cimhub.server.settings import Settings
from cimhub.server.store.engine import CommitResult


class Requests(Protocol):
    """Where a session sends what a client asks for (cimhub.server.dispatch.Dispatcher)."""

    async def authorize_topic(self, identity: Any, kind: str, ident: str) -> None: ...

    async def query(self, identity: Any, name: str, args: Any) -> Any: ...

    async def mutate(
        self, identity: Any, name: str, args: Any, mutation_id: str, expected_revision: int | None
    ) -> CommitResult: ...


class Verifier(Protocol):
    """Turns a token into an identity (cimhub.server.auth.tokens.TokenVerifier)."""

    async def verify(self, token: str, *, on_behalf_of: str | None = None) -> Any: ...


log = logging.getLogger("cimhub.session")

_ids = itertools.count(1)
MAX_PENDING_MUTATIONS = 256
MAX_CONCURRENT_REQUESTS = 16


class Session:
    """One authenticated (or authenticating) WebSocket connection; `run()` serves it to the end."""

    def __init__(
        self,
        websocket: WebSocket,
        codec: Codec,
        *,
        settings: Settings,
        connections: Connections,
        hub: Hub,
        requests: Requests,
        verifier: Verifier,
        metrics: Metrics,
        admission: Admission,
        presence: PresenceTracker | None = None,
        faults: FaultLog | None = None,
    ) -> None:
        self.id = next(_ids)
        # Shared by the process, so a Redis fault is logged once per episode, not once per request.
        self.faults = faults
        self.presence = presence
        self.admission = admission
        self._ticket: Ticket | None = None
        self.ws = websocket
        self.codec = codec
        self.codec_name = codec.name
        self.settings = settings
        self.connections = connections
        self.hub = hub
        self.requests = requests
        self.verifier = verifier
        self.metrics = metrics
        self.identity: Any = None
        self.paused = False
        self.topics: dict[str, None] = {}  # ordered set of subscribed topics
        self.sender = FrameSender(
            websocket,
            max_bytes=self.settings.send_queue_bytes,
            grace_s=self.settings.shutdown_grace_s,
            on_overflow=metrics.queue_overflows.inc,
        )
        self._last_seen = time.monotonic()
        # Mutations waiting or running, by the CIM they change: each lane runs in order.
        self._lanes: dict[str, deque[f.MutateFrame]] = {}
        self._mutations_waiting = 0
        self._mutations_running = 0
        self._mutation_finished: asyncio.Event | None = None
        # Made on the first mutation: most connections only subscribe, and an idle
        # connection's footprint is what a hub with many subscribers pays for.
        self._mutation_slots: asyncio.Semaphore | None = None
        self._heartbeat_timer: asyncio.TimerHandle | None = None
        self._requests = asyncio.Semaphore(MAX_CONCURRENT_REQUESTS)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._bucket = TokenBucket(self.settings.mutations_per_second, self.settings.mutation_burst)
        self._expiry: asyncio.TimerHandle | None = None

    # -- sending (never awaits a socket) ---------------------------------------

    def encode(self, frame: f.Outbound) -> str | bytes:
        return self.codec.encode(frame)

    def send(self, frame: f.Outbound) -> None:
        self.send_encoded(self.codec.encode(frame))

    def send_encoded(self, data: str | bytes) -> None:
        self.sender.send(data)

    def send_error(self, error: CimhubError, request_id: str | None = None) -> None:
        self.metrics.errors.labels(error.code.value).inc()
        frame: f.ErrorOut = {"type": "error", "error": error.to_wire()}
        if request_id is not None:
            frame["id"] = request_id
        self.send(frame)

    def close(self, code: int, reason: str) -> None:
        """Close after what is already queued has been sent (FrameSender.close)."""
        self.sender.close(code, reason)

    # -- lifecycle ---------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes. Never raises for a client's mistake."""
        ticket = self.admission.enter(self.ws.client.host if self.ws.client else "?")
        if isinstance(ticket, str):
            await self.ws.close(CloseCode.TOO_MANY_UNAUTHENTICATED, ticket)
            return
        self._ticket = ticket
        try:
            await self._serve()
        finally:
            ticket.release()

    async def _serve(self) -> None:
        connections = self.connections
        if not connections.admit_unauthenticated():
            await self.ws.close(CloseCode.TOO_MANY_UNAUTHENTICATED, "too many connections waiting to authenticate")
            return
        try:
            authenticated = await self._authenticate()
        finally:
            connections.authenticated_or_gone()
        if not authenticated:
            return
        self.metrics.connections.inc()
        connections.sessions.add(self)
        sender = self.sender.start()
        self._heartbeat_timer = asyncio.get_running_loop().call_later(self.settings.heartbeat_s, self._heartbeat)
        receiver = asyncio.create_task(self._receive_loop())
        try:
            await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if not sender.done():
                # The client went away: nothing more to send.
                sender.cancel()
            elif not receiver.done():
                receiver.cancel()
        finally:
            for task in (receiver, sender, *self._tasks):
                task.cancel()
            if self._heartbeat_timer is not None:
                self._heartbeat_timer.cancel()
            if self._expiry is not None:
                self._expiry.cancel()
            self.sender.stop()
            self.hub.drop(self, list(self.topics))
            if self.presence is not None:
                await self.presence.drop(self)
            connections.sessions.discard(self)
            self.metrics.connections.dec()

    async def _authenticate(self) -> bool:
        try:
            raw = await asyncio.wait_for(self.ws.receive(), self.settings.auth_timeout_s)
        except TimeoutError:
            await self.ws.close(CloseCode.AUTH_TIMEOUT, "authenticate within the time allowed")
            return False
        if raw["type"] == "websocket.disconnect":
            return False
        try:
            frame = self._parse(raw)
            if not isinstance(frame, f.AuthFrame):
                raise Unauthenticated("the first frame must be an auth frame")
            await self._accept_token(frame)
        except CimhubError as exc:
            self.send_error(exc)
            await self.sender.flush_then_close(CloseCode.AUTH_FAILED, exc.message[:120])
            return False
        if self._ticket is not None and (refusal := self._ticket.authenticate(user_key(self.identity))):
            self.send_error(CimhubError(refusal, code=ErrorCode.RATE_LIMITED))
            await self.sender.flush_then_close(CloseCode.TOO_MANY_UNAUTHENTICATED, refusal[:120])
            return False
        return True

    async def _accept_token(self, frame: f.AuthFrame) -> None:
        identity = await self.verifier.verify(frame.token, on_behalf_of=frame.actAs)
        if self.identity is not None and (identity.user_id, identity.is_service) != (
            self.identity.user_id,
            self.identity.is_service,
        ):
            raise Unauthenticated("a refreshed token must be for the same user; reconnect to switch users")
        self.identity = identity
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if identity.expires_at is not None:
            delay = max(0.0, identity.expires_at - time.time())
            self._expiry = asyncio.get_running_loop().call_later(delay, self._token_expired)
        ready: f.ReadyOut = {
            "type": "ready",
            "userId": identity.user_id,
            "expiresAt": int(identity.expires_at) if identity.expires_at is not None else None,
            "protocol": f.PROTOCOL_VERSION,
            "heartbeat": self.settings.heartbeat_s,
        }
        self.send(ready)
        if self.paused:
            self.paused = False
            self.hub.resume(self, list(self.topics))

    def _token_expired(self) -> None:
        """Stop delivering until the client sends a fresh token (the seed's 'auth token expires')."""
        self.paused = True
        self.hub.pause(self, list(self.topics))
        self.send_error(
            CimhubError(
                "your token expired: send an auth frame with a fresh one; deliveries resume where they stopped",
                code=ErrorCode.TOKEN_EXPIRED,
            )
        )

    def _heartbeat(self) -> None:
        """Every `heartbeat_s`: a ping, or the close of a client silent past the idle timeout.

        A timer callback rather than a task per connection: it costs a tenth of the memory.
        """
        if self.sender.closing is not None:
            return
        if time.monotonic() - self._last_seen > self.settings.idle_timeout_s:
            self.close(CloseCode.HEARTBEAT_TIMEOUT, "no frames from the client within the idle timeout")
            return
        ping: f.PingOut = {"type": "ping", "ts": int(time.time() * 1000)}
        self.send(ping)
        self._heartbeat_timer = asyncio.get_running_loop().call_later(self.settings.heartbeat_s, self._heartbeat)

    # -- receiving ----------------------------------------------------------------

    def _parse(self, raw: Any) -> f.ClientFrame:
        return self._validate(self._decode(raw))

    def _decode(self, raw: Any) -> Any:
        data = raw.get("text")
        if data is None:
            data = raw.get("bytes")
        if data is None:
            raise InvalidInput("empty frame", code=ErrorCode.BAD_FRAME)
        if len(data) > self.settings.max_frame_bytes:
            raise InvalidInput(
                f"frame of {len(data)} bytes is over the {self.settings.max_frame_bytes}-byte limit",
                code=ErrorCode.PAYLOAD_TOO_LARGE,
            )
        return self.codec.decode(data)

    @staticmethod
    def _validate(decoded: Any) -> f.ClientFrame:
        try:
            return f.CLIENT_FRAME.validate_python(decoded)
        except ValidationError as exc:
            raise from_validation_error(exc, code=ErrorCode.BAD_FRAME) from None

    async def _receive_loop(self) -> None:
        while True:
            raw = await self.ws.receive()
            if raw["type"] == "websocket.disconnect":
                return
            self._last_seen = time.monotonic()
            try:
                decoded = self._decode(raw)
            except CimhubError as exc:
                self.send_error(exc, self._request_id_of(raw) if exc.code is ErrorCode.PAYLOAD_TOO_LARGE else None)
                continue
            try:
                frame = self._validate(decoded)
            except CimhubError as exc:
                # Answer the request the client meant, if it named one, so it is not left waiting.
                self.send_error(exc, f.valid_request_id(decoded.get("id") if isinstance(decoded, dict) else None))
                continue
            self._dispatch(frame)

    def _request_id_of(self, raw: Any) -> str | None:
        """The id of an oversized request, so its error names it (the frame was capped by ws_max_size)."""
        try:
            decoded = self.codec.decode(raw.get("text") or raw.get("bytes") or "")
        except CimhubError:
            return None
        return f.valid_request_id(decoded.get("id") if isinstance(decoded, dict) else None)

    def _over_rate(self, action: Action, request_id: str) -> bool:
        """Spend one of this user's `action` tokens; answer `rate_limited` and return True when none is left."""
        if self.admission.allow(user_key(self.identity), action):
            return False
        self.send_error(
            CimhubError(
                f"over {self.admission.rate_of(action):g} {action}s/s for this user; retry shortly",
                code=ErrorCode.RATE_LIMITED,
            ),
            request_id,
        )
        return True

    def _dispatch(self, frame: f.ClientFrame) -> None:
        if isinstance(frame, f.PingFrame):
            pong: f.PongOut = {"type": "pong", "ts": frame.ts}
            self.send(pong)
        elif isinstance(frame, f.PongFrame):
            pass
        elif isinstance(frame, f.AuthFrame):
            self._spawn(self._reauthenticate(frame))
        elif self.paused:
            request_id = getattr(frame, "id", None)
            self.send_error(
                CimhubError("your token expired: send a fresh one first", code=ErrorCode.TOKEN_EXPIRED), request_id
            )
        elif isinstance(frame, f.MutateFrame):
            if self._over_rate("mutation", frame.id):
                pass
            elif not self._bucket.take():
                self.send_error(
                    CimhubError(
                        f"over {self.settings.mutations_per_second:g} mutations/s on this connection; retry shortly",
                        code=ErrorCode.RATE_LIMITED,
                    ),
                    frame.id,
                )
            else:
                self._queue_mutation(frame)
        elif isinstance(frame, f.SubscribeFrame):
            if not self._over_rate("subscribe", frame.id):
                self._subscribe(frame)
        elif isinstance(frame, f.UnsubscribeFrame):
            self.topics.pop(frame.topic, None)
            self.hub.unsubscribe(self, frame.topic)
            unsubscribed: f.UnsubscribedOut = {"type": "unsubscribed", "topic": frame.topic, "id": frame.id}
            self.send(unsubscribed)
        elif isinstance(frame, f.QueryFrame) and not self._over_rate("query", frame.id):
            self._spawn(self._query(frame))
        elif isinstance(frame, f.PresenceFrame):
            # Each change is published to every watcher of the CIM: paced like mutations.
            if not self._bucket.take():
                self.send_error(
                    CimhubError(
                        f"over {self.settings.mutations_per_second:g} mutations and presence changes/s "
                        "on this connection",
                        code=ErrorCode.RATE_LIMITED,
                    ),
                    frame.id,
                )
            else:
                self._spawn(self._set_presence(frame))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reauthenticate(self, frame: f.AuthFrame) -> None:
        try:
            await self._accept_token(frame)
        except CimhubError as exc:
            self.send_error(exc)

    def _subscribe(self, frame: f.SubscribeFrame) -> None:
        if frame.topic in self.topics:
            self.send_error(InvalidInput(f"already subscribed to {frame.topic}", path="topic"), frame.id)
            return
        if len(self.topics) >= self.settings.max_subscriptions:
            self.send_error(
                CimhubError(
                    f"at most {self.settings.max_subscriptions} subscriptions per connection",
                    code=ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                ),
                frame.id,
            )
            return
        self.topics[frame.topic] = None
        self._spawn(self._run_subscribe(frame))

    async def _run_subscribe(self, frame: f.SubscribeFrame) -> None:
        hub = self.hub
        try:
            async with self._requests:
                feed, ident = hub.feed_of(frame.topic)
                await self.requests.authorize_topic(self.identity, feed.kind, ident)
                point = frame.resume
                resume = (point.revision, point.epoch, point.commit or "") if point is not None else None
                await hub.subscribe(self, frame.topic, request_id=frame.id, resume=resume)
        except CimhubError as exc:
            self.topics.pop(frame.topic, None)
            self.send_error(exc, frame.id)
        except Exception as exc:  # noqa: BLE001 - Redis trouble must not kill the connection
            self.topics.pop(frame.topic, None)
            self.send_error(client_error(exc, f"subscribing to {frame.topic}", self.faults), frame.id)

    async def _query(self, frame: f.QueryFrame) -> None:
        async with self._requests:
            try:
                result = await self.requests.query(self.identity, frame.name, frame.args)
            except CimhubError as exc:
                self.send_error(exc, frame.id)
                return
            except Exception as exc:  # noqa: BLE001 - reported as unavailable/internal, never a traceback
                self.send_error(client_error(exc, f"running query {frame.name!r}", self.faults), frame.id)
                return
            answer: f.ResultOut = {"type": "result", "id": frame.id, "result": result}
            self.send(answer)

    async def _set_presence(self, frame: f.PresenceFrame) -> None:
        """Join, update or leave a CIM's presence, after the same access check as watching the CIM."""
        async with self._requests:
            try:
                if self.presence is None:
                    raise CimhubError("this hub does not keep presence", code=ErrorCode.UNKNOWN_TOPIC)
                state = parse_state(frame.state) if frame.state is not None else None
                if state is not None and "name" not in state:
                    name = display_name(self.identity.claims)
                    if name is not None:
                        state["name"] = name
                await self.requests.authorize_topic(self.identity, "presence", frame.cimId)
                presence_id = await self.presence.set(
                    self, frame.cimId, user_id=self.identity.user_id, actor=actor_of(self.identity), state=state
                )
            except CimhubError as exc:
                self.send_error(exc, frame.id)
                return
            except Exception as exc:  # noqa: BLE001 - Redis trouble is reported, never a traceback
                self.send_error(client_error(exc, "setting presence", self.faults), frame.id)
                return
            self.send({"type": "result", "id": frame.id, "result": {"presenceId": presence_id}})

    def _queue_mutation(self, frame: f.MutateFrame) -> None:
        """Queue `frame` behind this connection's earlier mutations of the same CIM; refuse past the bound."""
        if self._mutations_waiting >= MAX_PENDING_MUTATIONS:
            self.send_error(
                CimhubError("too many mutations waiting on this connection", code=ErrorCode.OVERLOADED), frame.id
            )
            return
        self._mutations_waiting += 1
        key = cim_of(self.identity, frame.name, frame.args, frame.mutationId)
        lane = self._lanes.get(key)
        if lane is not None:
            lane.append(frame)
            return
        lane = self._lanes[key] = deque((frame,))
        self._spawn(self._run_lane(key, lane))

    async def _run_lane(self, key: str, lane: deque[f.MutateFrame]) -> None:
        """Run one CIM's mutations in the order sent, each holding one of the connection's in-flight slots."""
        if self._mutation_slots is None:
            self._mutation_slots = asyncio.Semaphore(self.settings.mutations_in_flight)
        slots = self._mutation_slots
        try:
            while lane:
                async with slots:
                    answered = await self._run_mutation(lane[0])
                if not answered:
                    await self._another_mutation_finished()
                    continue
                lane.popleft()
                self._mutations_waiting -= 1
                if self._mutation_finished is not None:
                    self._mutation_finished.set()
                    self._mutation_finished = None
        finally:
            # No await between the last `while lane` and here: a frame queued meanwhile starts a new lane.
            del self._lanes[key]

    async def _another_mutation_finished(self) -> None:
        """Wait until another of this connection's mutations finishes (at once if none is running)."""
        if self._mutations_running == 0:
            return
        if self._mutation_finished is None:
            self._mutation_finished = asyncio.Event()
        await self._mutation_finished.wait()

    async def _run_mutation(self, frame: f.MutateFrame) -> bool:
        """Run one mutation and answer it; False (unanswered) to run it again after another one finishes.

        Inside a mutation `rate_limited` means the user's access checks in
        flight are at their bound (CIMHUB_ACCESS_MAX_CHECKS_PER_USER). When
        this connection's own other mutations hold them, that is the overlap's
        doing, not the client's: the mutation waits for one of them instead.
        Nothing ran (authorization comes first), so running it again is safe.
        """
        self._mutations_running += 1
        try:
            outcome = await self.requests.mutate(
                self.identity, frame.name, frame.args, frame.mutationId, frame.expectedRevision
            )
        except CimhubError as exc:
            if exc.code is ErrorCode.RATE_LIMITED and self._mutations_running > 1:
                return False
            self.send_error(exc, frame.id)
            return True
        except Exception as exc:  # noqa: BLE001 - one broken mutation must not stop this connection's next ones
            self.send_error(client_error(exc, f"running mutation {frame.name!r}", self.faults), frame.id)
            return True
        finally:
            self._mutations_running -= 1
        answer: f.ResultOut = {
            "type": "result",
            "id": frame.id,
            "result": outcome.result,
            "cimId": outcome.cim_id,
            "revision": outcome.revision,
            "duplicate": outcome.duplicate,
        }
        # More of this connection's mutations in flight: their results may share one write.
        self.sender.send(self.codec.encode(answer), cork=self._mutations_waiting > 1)
        return True
