"""The async client's connection logic, driven by an in-memory fake peer (no sockets, no hub).

`FakeHub` speaks just enough of the hub's side of the protocol (auth, ready,
snapshots, resume from a patch log, mutations with idempotent ids, pings,
token expiry, closes) to check what the client does with it: resume after a
drop, re-send the outbox, refresh tokens, notice silence, stop on 44xx codes.
It is a test double for the protocol peer only; the real hub is exercised by
tests/test_client_e2e.py.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from support.waiting import eventually

from cimhub.clients.backoff import Backoff
from cimhub.clients.client import Client
from cimhub.clients.errors import ClientClosed, HubUnreachable, RequestTimeout, TokenUnavailable
from cimhub.clients.events import Connected, Disconnected, Event, Resumed, TokenRefreshed
from cimhub.clients.transport import TransportClosed
from cimhub.protocol.errors import AccessDenied, Conflict, InvalidInput, NotFound, Unauthenticated
from cimhub.protocol.patch import apply


class FakeTransport:
    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.closed = False
        self.authed = False
        self.paused = False
        self.token: str | None = None
        self.subs: dict[str, int] = {}  # topic -> last revision delivered

    def push(self, frame: dict[str, Any]) -> None:
        if not self.closed:
            self.inbox.put_nowait(frame)

    def close_from_hub(self, code: int | None, reason: str = "") -> None:
        if not self.closed:
            self.closed = True
            self.inbox.put_nowait(TransportClosed(code, reason))

    async def send(self, frame: dict[str, Any]) -> None:
        if self.closed:
            raise TransportClosed(None, "closed")
        self.hub.received.append(frame)
        self.hub.handle(self, frame)

    async def recv(self) -> Any:
        item = await self.inbox.get()
        if isinstance(item, TransportClosed):
            raise item
        return item

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.close_from_hub(code, reason)


class FakeHub:
    """One CIM topic per key of `docs`; every mutation is `set` {cimId, key, value}."""

    def __init__(self) -> None:
        self.heartbeat = 5.0
        self.docs: dict[str, Any] = {"cim:c1": {"stage": "welcome"}}
        self.revision: dict[str, int] = {"cim:c1": 1}
        self.epoch: dict[str, str] = {"cim:c1": "e1"}
        self.log: dict[str, list[dict[str, Any]]] = {"cim:c1": []}
        self.connections: list[FakeTransport] = []
        self.received: list[dict[str, Any]] = []
        self.results: dict[str, dict[str, Any]] = {}  # mutation id -> first result
        self.applied = 0
        self.silent = False
        self.unreachable = False
        self.refuse_auth = False
        self.swallow_results = 0
        self.errors: list[dict[str, Any]] = []  # answered, in order, to the next mutations
        self.deny_topics: set[str] = set()

    @property
    def conn(self) -> FakeTransport:
        return self.connections[-1]

    async def connect(self) -> FakeTransport:
        if self.unreachable:
            raise HubUnreachable("cannot reach the fake hub")
        transport = FakeTransport(self)
        self.connections.append(transport)
        return transport

    def sent(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.received if f["type"] == kind]

    # -- the hub's side of the protocol ------------------------------------------

    def handle(self, conn: FakeTransport, frame: dict[str, Any]) -> None:
        if self.silent:
            return
        kind = frame["type"]
        if kind == "auth":
            if self.refuse_auth:
                conn.push(
                    {
                        "type": "error",
                        "error": {"code": "unauthenticated", "message": "bad signature", "retryable": False},
                    }
                )
                conn.close_from_hub(4403, "auth failed")
                return
            conn.authed, conn.token = True, frame["token"]
            conn.push({"type": "ready", "userId": "u1", "expiresAt": None, "heartbeat": self.heartbeat})
            if conn.paused:
                conn.paused = False
                for topic in conn.subs:
                    self._catch_up(conn, topic)
        elif kind == "ping":
            conn.push({"type": "pong", "ts": frame.get("ts")})
        elif conn.paused and kind in ("mutate", "subscribe", "query"):
            conn.push(
                {
                    "type": "error",
                    "id": frame["id"],
                    "error": {"code": "token_expired", "message": "expired", "retryable": True},
                }
            )
        elif kind == "subscribe":
            self._subscribe(conn, frame)
        elif kind == "unsubscribe":
            conn.subs.pop(frame["topic"], None)
            conn.push({"type": "unsubscribed", "topic": frame["topic"], "id": frame["id"]})
        elif kind == "mutate":
            self._mutate(conn, frame)
        elif kind == "query":
            conn.push({"type": "result", "id": frame["id"], "result": {"echo": frame["args"]}})

    def _subscribe(self, conn: FakeTransport, frame: dict[str, Any]) -> None:
        topic, request_id = frame["topic"], frame["id"]
        if topic in conn.subs:
            conn.push(
                {
                    "type": "error",
                    "id": request_id,
                    "error": {"code": "invalid_args", "message": "already subscribed", "retryable": False},
                }
            )
            return
        if topic in self.deny_topics:
            conn.push(
                {
                    "type": "error",
                    "id": request_id,
                    "error": {"code": "access_denied", "message": "no", "retryable": False},
                }
            )
            return
        if topic not in self.docs:
            conn.push(
                {
                    "type": "error",
                    "id": request_id,
                    "error": {"code": "not_found", "message": f"{topic} not found", "retryable": False},
                }
            )
            return
        resume = frame.get("resume")
        log = self.log[topic]
        oldest = log[0]["revision"] - 1 if log else self.revision[topic]
        if resume and resume["epoch"] == self.epoch[topic] and oldest <= resume["revision"] <= self.revision[topic]:
            conn.subs[topic] = resume["revision"]
            self._catch_up(conn, topic)
            conn.push(
                {
                    "type": "subscribed",
                    "topic": topic,
                    "id": request_id,
                    "revision": self.revision[topic],
                    "epoch": self.epoch[topic],
                }
            )
            return
        conn.subs[topic] = self.revision[topic]
        conn.push(
            {
                "type": "snapshot",
                "topic": topic,
                "id": request_id,
                "revision": self.revision[topic],
                "epoch": self.epoch[topic],
                "data": self.docs[topic],
                "reset": resume is not None,
            }
        )

    def _catch_up(self, conn: FakeTransport, topic: str) -> None:
        for entry in self.log[topic]:
            if entry["revision"] > conn.subs[topic]:
                conn.push(entry)
                conn.subs[topic] = entry["revision"]

    def _mutate(self, conn: FakeTransport, frame: dict[str, Any]) -> None:
        if self.errors:
            conn.push({"type": "error", "id": frame["id"], "error": self.errors.pop(0)})
            return
        mutation_id = frame["mutationId"]
        if mutation_id in self.results:
            answer = {**self.results[mutation_id], "duplicate": True}
        else:
            args = frame["args"]
            topic = f"cim:{args['cimId']}"
            if topic not in self.docs:
                conn.push(
                    {
                        "type": "error",
                        "id": frame["id"],
                        "error": {"code": "not_found", "message": "no CIM", "retryable": False},
                    }
                )
                return
            self.applied += 1
            op = {"op": "add", "path": f"/{args['key']}", "value": args["value"]}
            revision = self.commit(topic, [op], mutation=frame["name"], mutation_id=mutation_id)
            answer = {"result": {"changed": True}, "cimId": args["cimId"], "revision": revision, "duplicate": False}
            self.results[mutation_id] = answer
        if self.swallow_results:
            self.swallow_results -= 1
            return
        conn.push({"type": "result", "id": frame["id"], **answer})

    # -- what tests do to it ---------------------------------------------------------

    def commit(self, topic: str, ops: list[dict[str, Any]], *, mutation: str = "set", mutation_id: str = "x") -> int:
        self.docs[topic] = apply(self.docs[topic], ops)
        self.revision[topic] += 1
        entry = {
            "type": "patch",
            "topic": topic,
            "revision": self.revision[topic],
            "epoch": self.epoch[topic],
            "ops": ops,
            "mutation": mutation,
            "mutationId": mutation_id,
            "actor": "u2",
            "ts": 1,
        }
        self.log[topic].append(entry)
        for conn in self.connections:
            if topic in conn.subs and not conn.paused and not conn.closed:
                conn.push(entry)
                conn.subs[topic] = self.revision[topic]
        return self.revision[topic]

    def drop(self, code: int | None = 1012, reason: str = "restart") -> None:
        for conn in self.connections:
            conn.close_from_hub(code, reason)

    def lose_history(self, topic: str) -> None:
        self.epoch[topic] = "e2"
        self.log[topic] = []

    def expire_token(self) -> None:
        self.conn.paused = True
        self.conn.push({"type": "error", "error": {"code": "token_expired", "message": "expired", "retryable": True}})


def make_client(hub: FakeHub, **kwargs: Any) -> Client:
    events: list[Event] = kwargs.pop("events", [])
    if "token_provider" not in kwargs:
        kwargs.setdefault("token", "t1")
    return Client(
        "http://hub.invalid",
        connector=hub.connect,
        backoff=Backoff(0.001, 0.01),
        on_event=events.append,
        **kwargs,
    )


def counting_provider(prefix: str = "t") -> tuple[Callable[[], Awaitable[str]], list[str]]:
    issued: list[str] = []
    counter = itertools.count(1)

    async def provider() -> str:
        issued.append(f"{prefix}{next(counter)}")
        return issued[-1]

    return provider, issued


SET_STAGE = {"cimId": "c1", "key": "stage", "value": "outline"}


# -- subscriptions ------------------------------------------------------------------------


async def test_subscribe_snapshot_then_live_patches() -> None:
    hub = FakeHub()
    async with make_client(hub) as client:
        sub = await client.subscribe("cim:c1")
        assert (sub.document, sub.revision, sub.epoch) == ({"stage": "welcome"}, 1, "e1")
        hub.commit("cim:c1", [{"op": "replace", "path": "/stage", "value": "outline"}], mutation="navigateToStage")
        change = await asyncio.wait_for(sub.__anext__(), 1)
        assert (change.revision, change.mutation, change.actor, change.snapshot) == (2, "navigateToStage", "u2", False)
        assert change.document == {"stage": "outline"} == sub.document


async def test_reconnect_resumes_from_the_last_revision_without_a_snapshot() -> None:
    hub, events = FakeHub(), list[Event]()
    async with make_client(hub, events=events) as client:
        sub = await client.subscribe("cim:c1")
        hub.drop(1012)
        hub.silent = True  # the hub is down: commits happen elsewhere meanwhile
        hub.commit("cim:c1", [{"op": "add", "path": "/a", "value": 1}])
        hub.commit("cim:c1", [{"op": "add", "path": "/b", "value": 2}])
        hub.silent = False
        changes = [await asyncio.wait_for(sub.__anext__(), 2) for _ in range(2)]
        assert [c.revision for c in changes] == [2, 3] and not any(c.snapshot for c in changes)
        assert sub.document == {"stage": "welcome", "a": 1, "b": 2}
        resume = hub.sent("subscribe")[-1]["resume"]
        assert resume == {"revision": 1, "epoch": "e1"}
        await eventually(lambda: any(isinstance(e, Resumed) for e in events))
    kinds = [type(e) for e in events]
    assert kinds[:2] == [Connected, Disconnected] and Connected in kinds[2:]
    disconnected = next(e for e in events if isinstance(e, Disconnected))
    assert disconnected.code == 1012
    assert next(e for e in events if isinstance(e, Resumed)) == Resumed("cim:c1", 1, 3)


async def test_lost_history_gives_a_reset_snapshot() -> None:
    hub = FakeHub()
    async with make_client(hub) as client:
        sub = await client.subscribe("cim:c1")
        hub.drop(4008, "queue overflow")
        hub.lose_history("cim:c1")
        change = await asyncio.wait_for(sub.__anext__(), 2)
        assert change.snapshot and change.reset and sub.epoch == "e2"


async def test_a_gap_on_a_live_connection_resubscribes_from_the_replica() -> None:
    hub = FakeHub()
    async with make_client(hub) as client:
        sub = await client.subscribe("cim:c1")
        conn = hub.conn
        del conn.subs["cim:c1"]  # the hub "loses" a notification for this connection
        hub.commit("cim:c1", [{"op": "add", "path": "/a", "value": 1}])
        conn.subs["cim:c1"] = 2
        hub.commit("cim:c1", [{"op": "add", "path": "/b", "value": 2}])  # revision 3 arrives first
        change = await asyncio.wait_for(sub.__anext__(), 2)
        assert change.revision == 2
        assert (await asyncio.wait_for(sub.__anext__(), 2)).revision == 3
        assert sub.document == {"stage": "welcome", "a": 1, "b": 2}
        assert hub.sent("unsubscribe") and hub.sent("subscribe")[-1]["resume"] == {"revision": 1, "epoch": "e1"}
        assert len(hub.connections) == 1


async def test_refused_subscriptions_raise_the_hubs_error() -> None:
    hub = FakeHub()
    hub.deny_topics.add("cim:c1")
    async with make_client(hub) as client:
        with pytest.raises(NotFound):
            await client.subscribe("cim:missing")
        with pytest.raises(AccessDenied):
            await client.subscribe("cim:c1")
        with pytest.raises(InvalidInput, match="topic"):
            await client.subscribe("not a topic")


async def test_one_subscription_per_topic() -> None:
    hub = FakeHub()
    async with make_client(hub) as client:
        await client.subscribe("cim:c1")
        with pytest.raises(ValueError, match="already subscribed"):
            await client.subscribe("cim:c1")


async def test_the_hub_ending_a_subscription_ends_the_loop_with_its_reason() -> None:
    hub = FakeHub()
    async with make_client(hub) as client:
        sub = await client.subscribe("cim:c1")
        hub.conn.push(
            {
                "type": "unsubscribed",
                "topic": "cim:c1",
                "error": {"code": "access_denied", "message": "removed from the deal", "retryable": False},
            }
        )
        with pytest.raises(AccessDenied, match="removed from the deal"):
            await asyncio.wait_for(sub.__anext__(), 1)
        assert sub.ended


async def test_a_retryable_end_resubscribes() -> None:
    hub = FakeHub()
    async with make_client(hub) as client:
        sub = await client.subscribe("cim:c1")
        hub.conn.subs.pop("cim:c1")
        hub.conn.push(
            {
                "type": "unsubscribed",
                "topic": "cim:c1",
                "error": {"code": "unavailable", "message": "lost track", "retryable": True},
            }
        )
        await eventually(lambda: "cim:c1" in hub.conn.subs)
        hub.commit("cim:c1", [{"op": "add", "path": "/a", "value": 1}])
        assert (await asyncio.wait_for(sub.__anext__(), 1)).revision == 2


async def test_a_deleted_cim_ends_the_subscription_after_its_last_change() -> None:
    hub = FakeHub()
    async with make_client(hub) as client:
        sub = await client.subscribe("cim:c1")
        hub.conn.push({"type": "patch", "topic": "cim:c1", "revision": 2, "epoch": "e1", "ops": [], "deleted": True})
        changes = [c async for c in sub]
        assert [c.deleted for c in changes] == [True] and sub.document is None


async def test_unsubscribe_ends_the_loop() -> None:
    hub = FakeHub()
    async with make_client(hub) as client:
        sub = await client.subscribe("cim:c1")
        await sub.unsubscribe()
        assert [c async for c in sub] == []
        assert hub.sent("unsubscribe")[-1]["topic"] == "cim:c1"
        await client.subscribe("cim:c1")  # free to watch it again


# -- mutations and queries ------------------------------------------------------------------


async def test_mutate_and_query() -> None:
    hub = FakeHub()
    async with make_client(hub) as client:
        result = await client.mutate("set", SET_STAGE, mutation_id="m-1")
        assert (result.cim_id, result.revision, result.duplicate) == ("c1", 2, False)
        assert hub.sent("mutate")[0]["mutationId"] == "m-1"
        again = await client.mutate("set", SET_STAGE, mutation_id="m-1")
        assert again.duplicate and hub.applied == 1
        assert await client.query("get", {"cimId": "c1"}) == {"echo": {"cimId": "c1"}}
        auto = await client.mutate("set", {**SET_STAGE, "key": "x"})
        assert auto.revision == 3 and len(hub.sent("mutate")[-1]["mutationId"]) == 36


async def test_an_unacknowledged_mutation_is_resent_with_the_same_id_and_applies_once() -> None:
    hub = FakeHub()
    async with make_client(hub) as client:
        hub.swallow_results = 1  # applied, but the answer is lost with the connection
        task = asyncio.create_task(client.mutate("set", SET_STAGE))
        await eventually(lambda: hub.applied == 1)
        hub.drop(1012)
        result = await asyncio.wait_for(task, 2)
        sent = hub.sent("mutate")
        assert len(sent) == 2 and sent[0]["mutationId"] == sent[1]["mutationId"]
        assert result.duplicate and hub.applied == 1


async def test_mutations_made_while_disconnected_wait_in_the_outbox() -> None:
    hub = FakeHub()
    async with make_client(hub) as client:
        hub.unreachable = True
        hub.drop(None)
        await eventually(lambda: not client.connected)
        task = asyncio.create_task(client.mutate("set", SET_STAGE))
        await asyncio.sleep(0.05)
        assert not task.done()
        hub.unreachable = False
        assert (await asyncio.wait_for(task, 2)).revision == 2
        assert hub.applied == 1


async def test_non_retryable_errors_raise_and_retryable_ones_are_retried_with_the_same_id() -> None:
    hub = FakeHub()
    async with make_client(hub) as client:
        hub.errors = [{"code": "conflict", "message": "stale", "retryable": False}]
        with pytest.raises(Conflict, match="stale"):
            await client.mutate("set", SET_STAGE, expected_revision=0)
        hub.errors = [{"code": "overloaded", "message": "busy", "retryable": True}] * 2
        result = await asyncio.wait_for(client.mutate("set", SET_STAGE, mutation_id="m-r"), 2)
        assert result.revision == 2
        assert [f["mutationId"] for f in hub.sent("mutate")[-3:]] == ["m-r"] * 3


async def test_retries_stop_at_the_limit() -> None:
    hub = FakeHub()
    async with make_client(hub, retry_limit=2) as client:
        hub.errors = [{"code": "internal", "message": "boom", "retryable": True}] * 5
        with pytest.raises(Exception, match="boom") as caught:
            await asyncio.wait_for(client.mutate("set", SET_STAGE), 2)
        assert caught.value.retryable  # type: ignore[attr-defined]
        assert len(hub.sent("mutate")) == 3


async def test_mutate_timeout_withdraws_and_names_the_mutation_id() -> None:
    hub = FakeHub()
    async with make_client(hub) as client:
        hub.silent = True
        with pytest.raises(RequestTimeout) as caught:
            await client.mutate("set", SET_STAGE, mutation_id="m-t", timeout=0.05)
        assert caught.value.mutation_id == "m-t"
        hub.silent = False
        hub.drop(1012)
        await eventually(lambda: len(hub.connections) == 2 and client.connected)
        await client.query("get")
        assert hub.applied == 0  # withdrawn: not re-sent after the reconnect


async def test_bad_mutation_input_fails_before_sending() -> None:
    hub = FakeHub()
    async with make_client(hub) as client:
        with pytest.raises(InvalidInput):
            await client.mutate("", SET_STAGE)
        assert hub.sent("mutate") == []


# -- tokens --------------------------------------------------------------------------------------


async def test_every_connection_fetches_a_fresh_token() -> None:
    hub = FakeHub()
    provider, issued = counting_provider()
    async with make_client(hub, token_provider=provider) as client:
        hub.drop(1012)
        await eventually(lambda: len(hub.connections) == 2 and client.connected)
    assert [f["token"] for f in hub.sent("auth")] == ["t1", "t2"] == issued


async def test_token_expiry_refreshes_on_the_same_connection_and_catches_up() -> None:
    hub, events = FakeHub(), list[Event]()
    provider, _ = counting_provider()
    async with make_client(hub, token_provider=provider, events=events) as client:
        sub = await client.subscribe("cim:c1")
        hub.expire_token()
        hub.commit("cim:c1", [{"op": "add", "path": "/a", "value": 1}])  # held back while paused
        change = await asyncio.wait_for(sub.__anext__(), 2)
        assert change.revision == 2
        assert [f["token"] for f in hub.sent("auth")] == ["t1", "t2"]
        assert len(hub.connections) == 1
        assert any(isinstance(e, TokenRefreshed) for e in events)


async def test_requests_refused_while_the_token_is_expired_are_retried_after_refresh() -> None:
    hub = FakeHub()
    gate = asyncio.Event()
    calls = 0

    async def slow_provider() -> str:
        nonlocal calls
        calls += 1
        if calls > 1:
            await gate.wait()
        return f"t{calls}"

    async with make_client(hub, token_provider=slow_provider) as client:
        hub.expire_token()
        task = asyncio.create_task(client.mutate("set", SET_STAGE))
        await eventually(lambda: len(hub.sent("mutate")) >= 2)
        gate.set()
        assert (await asyncio.wait_for(task, 2)).revision == 2


async def test_an_expired_static_token_stops_the_client() -> None:
    hub = FakeHub()
    async with make_client(hub) as client:
        hub.swallow_results = 1
        task = asyncio.create_task(client.mutate("set", SET_STAGE))
        await eventually(lambda: hub.applied == 1)
        hub.expire_token()
        with pytest.raises(Unauthenticated, match="no token_provider"):
            await asyncio.wait_for(task, 2)
        with pytest.raises(Unauthenticated):
            await client.query("get")


async def test_token_provider_timeout() -> None:
    hub = FakeHub()

    async def stuck() -> str:
        await asyncio.sleep(10)
        return "never"

    with pytest.raises(TokenUnavailable, match=r"within 0\.05 s"):
        async with make_client(hub, token_provider=stuck, token_timeout=0.05):
            pass
    assert hub.connections == []


async def test_a_failing_token_provider_is_retried_on_reconnect() -> None:
    hub = FakeHub()
    failures = iter([False, True, True, False])

    async def flaky() -> str:
        if next(failures):
            raise RuntimeError("identity service down")
        return "t"

    async with make_client(hub, token_provider=flaky) as client:
        hub.drop(1012)
        await eventually(lambda: len(hub.connections) == 2 and client.connected)


def test_exactly_one_of_token_and_provider() -> None:
    async def provider() -> str:
        return "t"

    with pytest.raises(ValueError):
        Client("http://x", token="t", token_provider=provider)
    with pytest.raises(ValueError):
        Client("http://x")


# -- liveness and stop codes ----------------------------------------------------------------------


async def test_pings_are_answered() -> None:
    hub = FakeHub()
    async with make_client(hub):
        hub.conn.push({"type": "ping", "ts": 42})
        await eventually(lambda: hub.sent("pong") == [{"type": "pong", "ts": 42}])


async def test_a_silent_hub_is_presumed_dead_after_two_and_a_half_heartbeats() -> None:
    hub, events = FakeHub(), list[Event]()
    hub.heartbeat = 0.04
    async with make_client(hub, events=events, open_timeout=0.1) as client:
        hub.silent = True
        started = asyncio.get_running_loop().time()
        await eventually(lambda: any(isinstance(e, Disconnected) for e in events))
        assert asyncio.get_running_loop().time() - started >= 0.09
        assert "no frame from the hub" in next(e for e in events if isinstance(e, Disconnected)).reason
        hub.silent = False  # an auth swallowed meanwhile times out after open_timeout, then one succeeds
        await eventually(lambda: client.connected and len(hub.connections) >= 2)


async def test_a_refused_token_fails_connect() -> None:
    hub = FakeHub()
    hub.refuse_auth = True
    with pytest.raises(Unauthenticated, match="bad signature"):
        async with make_client(hub):
            pass
    assert len(hub.connections) == 1  # no blind retry


async def test_a_stop_code_mid_session_fails_waiting_calls() -> None:
    hub = FakeHub()
    async with make_client(hub) as client:
        sub = await client.subscribe("cim:c1")
        hub.silent = True
        task = asyncio.create_task(client.mutate("set", SET_STAGE))
        await asyncio.sleep(0.01)
        hub.refuse_auth = True
        hub.drop(4403, "token revoked")
        with pytest.raises(Unauthenticated, match="token revoked"):
            await asyncio.wait_for(task, 2)
        with pytest.raises(Unauthenticated):
            await sub.__anext__()
        assert len(hub.connections) == 1


async def test_an_unreachable_hub_fails_connect() -> None:
    hub = FakeHub()
    hub.unreachable = True
    with pytest.raises(HubUnreachable):
        async with make_client(hub):
            pass


async def test_close_fails_waiting_calls_and_ends_loops() -> None:
    hub = FakeHub()
    client = make_client(hub)
    await client.connect()
    sub = await client.subscribe("cim:c1")
    hub.silent = True
    task = asyncio.create_task(client.mutate("set", SET_STAGE))
    await asyncio.sleep(0.01)
    await client.aclose()
    with pytest.raises(ClientClosed):
        await task
    assert [c async for c in sub] == []
    with pytest.raises(ClientClosed):
        await client.query("get")
