"""Pure logic of the hub and its sessions: no sockets, no Redis, no hub process.

TokenBucket, the two codecs (JSON and msgpack carry the same frames with the
same meaning), frame validation errors, the error table, a session's bounded
send queue, and the hub's snapshot-then-stream ordering driven by a fake feed.
"""

from __future__ import annotations

import asyncio
import math
from types import SimpleNamespace
from typing import Any

import msgpack
import pytest
from support.clock import Clock
from support.waiting import eventually

from cimhub.protocol import frames as f
from cimhub.protocol.close import CloseCode
from cimhub.protocol.codec import JSON, MSGPACK, codec_for
from cimhub.protocol.errors import RETRYABLE, CimhubError, ErrorCode, InvalidInput
from cimhub.server.http import HTTP_STATUS
from cimhub.server.hub import ratelimit
from cimhub.server.hub.admission import Admission
from cimhub.server.hub.feeds import DealFeed, Snapshot, patch_frame
from cimhub.server.hub.hub import Hub, State
from cimhub.server.hub.ratelimit import TokenBucket
from cimhub.server.hub.session import Session
from cimhub.server.metrics import Metrics
from cimhub.server.settings import Settings

# -- TokenBucket -------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(ratelimit, "time", fake)
    return fake


def test_bucket_allows_the_burst_then_refuses(clock: Clock) -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_bucket_refills_at_the_rate_and_never_above_the_burst(clock: Clock) -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    for _ in range(3):
        bucket.take()
    clock.now += 0.5  # one token at 2/s
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now += 3600
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_bucket_fractional_tokens_accumulate(clock: Clock) -> None:
    bucket = TokenBucket(rate=1.0, burst=1)
    assert bucket.take()
    for _ in range(3):
        clock.now += 0.25
        assert not bucket.take()
    clock.now += 0.25  # four quarters make the next token
    assert bucket.take()


# -- codecs ------------------------------------------------------------------------

SERVER_FRAMES: list[dict[str, Any]] = [
    {"type": "ready", "userId": "u-1", "expiresAt": 1_800_000_000, "protocol": 1, "heartbeat": 15.0},
    {
        "type": "snapshot",
        "topic": "cim:c-1",
        "id": "r1",
        "revision": 7,
        "epoch": "ab12",
        "reset": False,
        "data": {
            "title": "Ünïcødé ✓",
            "slides": [],
            "n": 2**53,
            "neg": -(2**63),
            "big": 2**64 - 1,
            "f": 0.1,
            "nested": {"a": [None, True, False, {"b": []}]},
            "empty": "",
        },
    },
    {
        "type": "patch",
        "topic": "cim:c-1",
        "revision": 8,
        "epoch": "ab12",
        "ops": [
            {"op": "replace", "path": "/title", "value": "x" * 1000},
            {"op": "add", "path": "/slides/0", "value": {"id": "s~1/2"}},
            {"op": "remove", "path": "/currentSlideId"},
        ],
        "mutation": "updateState",
        "mutationId": "m-1",
        "actor": "u-1",
        "ts": 1_700_000_000_123,
    },
    {"type": "subscribed", "topic": "cim:c-1", "id": "r2", "revision": 8, "epoch": "ab12"},
    {
        "type": "unsubscribed",
        "topic": "deal:d-1",
        "error": {"code": "not_found", "message": "gone", "retryable": False},
    },
    {"type": "result", "id": "r3", "result": {"cimId": "c-1"}, "cimId": "c-1", "revision": 1, "duplicate": True},
    {
        "type": "error",
        "id": "r4",
        "error": {"code": "rate_limited", "message": "slow down", "retryable": True, "path": "x"},
    },
    {"type": "ping", "ts": 1},
    {"type": "pong", "ts": None},
]

CLIENT_FRAMES: list[dict[str, Any]] = [
    {"type": "auth", "token": "t.t.t", "actAs": "u-2"},
    {"type": "subscribe", "id": "r1", "topic": "cim:c-1", "resume": {"revision": 3, "epoch": "ab12"}},
    {"type": "unsubscribe", "id": "r2", "topic": "deal:d-1"},
    {
        "type": "mutate",
        "id": "r3",
        "name": "updateState",
        "args": {"cimId": "c-1", "title": "T"},
        "mutationId": "m-1",
        "expectedRevision": 3,
    },
    {"type": "query", "id": "r4", "name": "get", "args": {"cimId": "c-1"}},
    {"type": "ping", "ts": 5},
]


@pytest.mark.parametrize("frame", SERVER_FRAMES + CLIENT_FRAMES, ids=lambda fr: fr["type"])
def test_json_and_msgpack_round_trip_to_the_same_frame(frame: dict[str, Any]) -> None:
    as_json = JSON.decode(JSON.encode(frame))
    as_msgpack = MSGPACK.decode(MSGPACK.encode(frame))
    assert as_json == as_msgpack == frame
    # Same types too (1 and 1.0 and True compare equal, but must not change kind).
    assert repr(as_json) == repr(as_msgpack)


@pytest.mark.parametrize("frame", SERVER_FRAMES, ids=lambda fr: fr["type"])
def test_server_frames_validate_after_either_codec(frame: dict[str, Any]) -> None:
    for codec in (JSON, MSGPACK):
        model = f.SERVER_FRAME.validate_python(codec.decode(codec.encode(frame)))
        assert model.type == frame["type"]


@pytest.mark.parametrize("frame", CLIENT_FRAMES, ids=lambda fr: fr["type"])
def test_client_frames_validate_after_either_codec(frame: dict[str, Any]) -> None:
    for codec in (JSON, MSGPACK):
        model = Session._validate(codec.decode(codec.encode(frame)))
        assert model.type == frame["type"]


def test_codecs_frame_kinds() -> None:
    assert isinstance(JSON.encode({"type": "ping"}), str) and not JSON.binary
    assert isinstance(MSGPACK.encode({"type": "ping"}), bytes) and MSGPACK.binary
    # JSON accepts its text as bytes too.
    assert JSON.decode(b'{"type": "ping"}') == {"type": "ping"}


@pytest.mark.parametrize(
    "codec, data",
    [
        (JSON, "{not json"),
        (JSON, b"\xff\xfe"),
        (JSON, ""),
        (MSGPACK, b"\xc1"),  # a byte msgpack never uses
        (MSGPACK, b"\x92\x01"),  # an array cut short
        (MSGPACK, b"\x81\x01\xa1x"),  # {1: "x"}: JSON cannot have a non-string key, so neither may msgpack
        (MSGPACK, MSGPACK.encode({"type": "ping"}) + b"\x00"),  # trailing bytes
        (MSGPACK, "text on a binary codec"),
    ],
)
def test_undecodable_frames_are_bad_frame(codec: Any, data: str | bytes) -> None:
    with pytest.raises(InvalidInput) as raised:
        codec.decode(data)
    assert raised.value.code is ErrorCode.BAD_FRAME
    assert raised.value.retryable is False


@pytest.mark.parametrize("value", [b"\xff\xfe", msgpack.ExtType(5, b"x"), math.nan, math.inf])
def test_msgpack_values_json_cannot_carry_are_bad_frame(value: Any) -> None:
    data = msgpack.packb(
        {
            "type": "mutate",
            "id": "m",
            "name": "updateState",
            "mutationId": "m",
            "args": {"cimId": "c", "gatheredContext": {"v": value}},
        },
        use_bin_type=True,
    )
    with pytest.raises(InvalidInput):
        MSGPACK.decode(data)


def test_codec_for_picks_the_first_offered_known_subprotocol() -> None:
    assert codec_for([]) is JSON
    assert codec_for(["chat", f.MSGPACK_SUBPROTOCOL, f.JSON_SUBPROTOCOL]) is MSGPACK
    assert codec_for([f.JSON_SUBPROTOCOL, f.MSGPACK_SUBPROTOCOL]) is JSON
    assert codec_for(["cimhub.msgpack.v2"]) is JSON


# -- frame validation ------------------------------------------------------------


@pytest.mark.parametrize(
    "decoded, path",
    [
        ({"type": "teleport"}, None),
        ({"id": "x"}, None),
        ([], None),
        ("ping", None),
        ({"type": "subscribe", "id": "r1"}, "subscribe.topic"),
        ({"type": "subscribe", "id": "r1", "topic": "cim:{braces}"}, "subscribe.topic"),
        ({"type": "subscribe", "id": "r1", "topic": "chat:room"}, "subscribe.topic"),
        (
            {"type": "subscribe", "id": "r1", "topic": "cim:c", "resume": {"revision": -1, "epoch": "e"}},
            "subscribe.resume.revision",
        ),
        ({"type": "subscribe", "id": "x" * 65, "topic": "cim:c"}, "subscribe.id"),
        ({"type": "mutate", "id": "r1", "name": "updateState", "args": {}}, "mutate.mutationId"),
        ({"type": "mutate", "id": "r1", "name": "updateState", "args": [], "mutationId": "m"}, "mutate.args"),
        ({"type": "query", "id": "r1", "name": "get", "sneaky": True}, "query.sneaky"),
        ({"type": "auth", "token": ""}, "auth.token"),
    ],
)
def test_invalid_frames_are_bad_frame_naming_the_field(decoded: Any, path: str | None) -> None:
    with pytest.raises(InvalidInput) as raised:
        Session._validate(decoded)
    error = raised.value
    assert error.code is ErrorCode.BAD_FRAME and error.retryable is False
    assert error.message
    if path is not None:
        assert error.path == path
        assert error.message.startswith(path)


# -- the error table ----------------------------------------------------------------


def test_every_error_code_has_a_retry_rule_and_an_http_status() -> None:
    assert set(RETRYABLE) == set(ErrorCode)
    assert set(HTTP_STATUS) == set(ErrorCode)
    assert {code for code, retry in RETRYABLE.items() if retry} == {
        ErrorCode.RATE_LIMITED,
        ErrorCode.TOKEN_EXPIRED,
        ErrorCode.OVERLOADED,
        ErrorCode.UNAVAILABLE,
        ErrorCode.INTERNAL,
    }


@pytest.mark.parametrize("code", list(ErrorCode))
def test_errors_cross_the_wire_and_back(code: ErrorCode) -> None:
    error = CimhubError("what went wrong", code=code, path="args.x")
    wire = error.to_wire()
    assert wire == {"code": code.value, "message": "what went wrong", "retryable": RETRYABLE[code], "path": "args.x"}
    for codec in (JSON, MSGPACK):
        back = CimhubError.from_wire(codec.decode(codec.encode({"error": wire}))["error"])
        assert (back.code, back.message, back.retryable, back.path) == (
            code,
            "what went wrong",
            RETRYABLE[code],
            "args.x",
        )


def test_unknown_wire_code_becomes_internal() -> None:
    assert CimhubError.from_wire({"code": "from_the_future", "message": "?"}).code is ErrorCode.INTERNAL


# -- a session's bounded send queue ------------------------------------------------------


class StuckSocket:
    """A socket whose peer stopped reading: every send waits forever."""

    def __init__(self) -> None:
        self.sent: list[str | bytes] = []
        self.closed: tuple[int, str] | None = None
        self.release = asyncio.Event()

    async def send_text(self, data: str) -> None:
        await self.release.wait()
        self.sent.append(data)

    async def send_bytes(self, data: bytes) -> None:
        await self.release.wait()
        self.sent.append(data)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed = (code, reason or "")


def make_session(socket: StuckSocket, *, queue_bytes: int = 1024, grace: float = 30.0, requests: Any = None) -> Session:
    settings = SimpleNamespace(
        send_queue_bytes=queue_bytes,
        shutdown_grace_s=grace,
        mutations_per_second=10.0,
        mutation_burst=10,
        mutations_in_flight=4,
    )
    return Session(
        socket,
        JSON,
        settings=settings,
        connections=None,
        hub=None,
        requests=requests,
        verifier=None,  # type: ignore[arg-type]
        metrics=Metrics(),
        admission=Admission(Settings()),
    )


def overflows(session: Session) -> float:
    return session.metrics.queue_overflows._value.get()  # type: ignore[no-any-return]


async def test_overflow_frees_the_queue_and_closes_with_4008_next() -> None:
    socket = StuckSocket()
    session = make_session(socket)
    sender = session.sender.start()
    session.send_encoded(f"{0:0>600}")
    await asyncio.sleep(0)  # the sender takes it and waits on the socket
    session.send_encoded(f"{1:0>600}")
    assert overflows(session) == 0
    session.send_encoded(f"{2:0>600}")  # 1,200 queued bytes > 1,024
    assert overflows(session) == 1
    session.send_encoded("late")  # after the close is decided, nothing more is queued
    socket.release.set()
    await asyncio.wait_for(sender, 5)
    # The frame already on its way went out; the queued one was dropped; then the close.
    assert socket.sent == [f"{0:0>600}"]
    assert socket.closed == (CloseCode.QUEUE_OVERFLOW, "send queue overflow: reconnect and resume")


async def test_a_client_that_never_reads_is_dropped_after_the_grace_period() -> None:
    socket = StuckSocket()
    session = make_session(socket, grace=0.05)
    sender = session.sender.start()
    session.send_encoded("x" * 600)
    await asyncio.sleep(0)
    session.send_encoded("y" * 600)
    session.send_encoded("z" * 600)  # overflow while the sender is stuck in a write
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(sender, 5)
    assert socket.sent == [] and socket.closed is None


async def test_close_waits_for_what_is_queued() -> None:
    socket = StuckSocket()
    socket.release.set()
    session = make_session(socket)
    sender = session.sender.start()
    session.send_encoded("a")
    session.send_encoded(b"b")
    session.close(CloseCode.RESTART, "bye")
    session.send_encoded("after close")
    await asyncio.wait_for(sender, 5)
    assert socket.sent == ["a", b"b"]
    assert socket.closed == (CloseCode.RESTART, "bye")


async def test_a_mutation_failing_inside_the_hub_is_answered_and_later_ones_still_run() -> None:
    outcomes: list[Any] = [
        RuntimeError("a bug, or Redis answering something unexpected"),
        SimpleNamespace(result={}, cim_id="c", revision=2, duplicate=False),
    ]

    async def mutate(*args: Any) -> Any:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    session = make_session(StuckSocket(), queue_bytes=1 << 20, requests=SimpleNamespace(mutate=mutate))
    session.identity = SimpleNamespace(user_id="user-1", role="authenticated", is_service=False)
    for n in range(2):
        session._dispatch(f.MutateFrame(type="mutate", id=f"m{n}", name="updateState", args={}, mutationId=f"id{n}"))
    for _ in range(50):
        if len(session.sender.queue) == 2:
            break
        await asyncio.sleep(0)
    failed, succeeded = (JSON.decode(data) for data in session.sender.queue)
    assert failed["id"] == "m0" and failed["error"]["code"] == "internal" and failed["error"]["retryable"] is True
    assert succeeded == {"type": "result", "id": "m1", "result": {}, "cimId": "c", "revision": 2, "duplicate": False}
    for task in session._tasks:
        task.cancel()


# -- the hub: snapshot, then the stream, with nothing lost or doubled ------------------------


class FakeConnection:
    codec_name = "json"

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.topics: dict[str, None] = {}

    def encode(self, frame: dict[str, Any]) -> str:
        return JSON.encode(frame)

    def send(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame)

    def send_encoded(self, data: str | bytes) -> None:
        self.frames.append(JSON.decode(data))


class FakeBroker:
    def __init__(self) -> None:
        self.channels: set[str] = set()

    async def subscribe(self, channel: str) -> None:
        self.channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self.channels.discard(channel)


class FakeFeed:
    """A CIM feed whose reads pause until the test lets them go, so changes can arrive meanwhile."""

    kind = "cim"
    sequenced = True

    def __init__(self) -> None:
        self.revision = 0
        self.epoch = "e1"
        self.log: list[dict[str, Any]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.reading = asyncio.Event()

    def channel(self, ident: str) -> str:
        return f"ch:{ident}"

    def commit(self) -> bytes:
        self.revision += 1
        entry = {
            "rev": self.revision,
            "epoch": self.epoch,
            "ops": [{"op": "replace", "path": "/n", "value": self.revision}],
        }
        self.log.append(entry)
        return JSON.encode(entry).encode()

    async def _read(self) -> None:
        self.reading.set()
        await self.gate.wait()

    async def snapshot(self, ident: str) -> Snapshot:
        revision = self.revision  # the document as it is when the read starts
        await self._read()
        return Snapshot(revision, self.epoch, {"n": revision})

    async def since(self, ident: str, revision: int, epoch: str, commit: str) -> list[dict[str, Any]] | None:
        entries = [e for e in self.log if e["rev"] > revision]
        await self._read()
        return entries if epoch == self.epoch else None

    def decode(self, data: bytes) -> dict[str, Any]:
        return JSON.decode(data)  # type: ignore[no-any-return]

    def frame(self, topic: str, entry: dict[str, Any]) -> dict[str, Any]:
        return patch_frame(topic, entry)

    def accept(self, seen: set[str], entry: dict[str, Any]) -> bool:
        return True


def make_hub(feed: FakeFeed) -> Hub:
    hub = Hub({"cim": feed}, Metrics(), FakeBroker())
    return hub


def revisions(conn: FakeConnection) -> list[tuple[str, int]]:
    return [(frame["type"], frame["revision"]) for frame in conn.frames if "revision" in frame]


async def test_changes_during_the_snapshot_read_are_buffered_and_filtered() -> None:
    feed = FakeFeed()
    hub = make_hub(feed)
    conn = FakeConnection()
    for _ in range(3):
        feed.commit()
    feed.gate.clear()
    subscribing = asyncio.create_task(hub.subscribe(conn, "cim:c", request_id="r1", resume=None))
    await feed.reading.wait()
    # Revision 3 was read into the snapshot; 4 and 5 commit while it is in flight, and the
    # broker also redelivers 3 (published before the read, arriving after subscribing).
    hub.on_message("ch:c", JSON.encode(feed.log[2]).encode())
    hub.on_message("ch:c", feed.commit())
    hub.on_message("ch:c", feed.commit())
    feed.gate.set()
    await asyncio.wait_for(subscribing, 5)
    hub.on_message("ch:c", feed.commit())
    assert revisions(conn) == [("snapshot", 3), ("patch", 4), ("patch", 5), ("patch", 6)]
    assert conn.frames[0]["id"] == "r1"


async def test_a_gap_in_the_stream_is_repaired_from_the_log() -> None:
    feed = FakeFeed()
    hub = make_hub(feed)
    conn = FakeConnection()
    feed.commit()
    await hub.subscribe(conn, "cim:c", request_id="r1", resume=None)
    feed.commit()  # revision 2's notification is lost
    hub.on_message("ch:c", feed.commit())  # 3 arrives: a gap, so the hub catches up from the log
    sub = hub.topics["cim:c"].subscriptions[conn]
    assert sub.state is State.SYNCING
    await asyncio.wait_for(sub.task, 5)
    hub.on_message("ch:c", feed.commit())
    assert revisions(conn) == [("snapshot", 1), ("patch", 2), ("patch", 3), ("patch", 4)]


async def test_resume_sends_missed_patches_then_subscribed() -> None:
    feed = FakeFeed()
    hub = make_hub(feed)
    conn = FakeConnection()
    for _ in range(5):
        feed.commit()
    await hub.subscribe(conn, "cim:c", request_id="r1", resume=(2, "e1", ""))
    assert revisions(conn) == [("patch", 3), ("patch", 4), ("patch", 5), ("subscribed", 5)]


async def test_resume_with_another_epoch_gets_a_reset_snapshot() -> None:
    feed = FakeFeed()
    hub = make_hub(feed)
    conn = FakeConnection()
    feed.commit()
    await hub.subscribe(conn, "cim:c", request_id="r1", resume=(9, "old-epoch", ""))
    assert [(fr["type"], fr["reset"], fr["epoch"]) for fr in conn.frames] == [("snapshot", True, "e1")]


async def test_broker_reconnect_catches_every_subscription_up() -> None:
    feed = FakeFeed()
    hub = make_hub(feed)
    conns = [FakeConnection(), FakeConnection()]
    feed.commit()
    for conn in conns:
        await hub.subscribe(conn, "cim:c", request_id="r", resume=None)
    feed.commit()
    feed.commit()  # both lost while the listener was down
    hub.on_resync()
    for conn in conns:
        task = hub.topics["cim:c"].subscriptions[conn].task
        await asyncio.wait_for(task, 5)
        assert revisions(conn) == [("snapshot", 1), ("patch", 2), ("patch", 3)]


async def test_last_unsubscribe_releases_the_channel() -> None:
    feed = FakeFeed()
    hub = make_hub(feed)
    conn = FakeConnection()
    feed.commit()
    await hub.subscribe(conn, "cim:c", request_id="r", resume=None)
    assert hub.broker.channels == {"ch:c"}
    assert hub.unsubscribe(conn, "cim:c")
    await asyncio.sleep(0)
    assert hub.broker.channels == set() and hub.topics == {}
    assert not hub.unsubscribe(conn, "cim:c")


def test_deal_feed_skips_removing_a_row_the_subscriber_never_had() -> None:
    feed = DealFeed(store=None, keys=None)
    seen: set[str] = set()
    remove = feed.decode(JSON.encode({"type": "remove", "cimId": "c1"}).encode())
    assert not feed.accept(seen, remove)
    upsert = feed.decode(JSON.encode({"type": "upsert", "summary": {"id": "c1", "title": "T"}}).encode())
    assert feed.accept(seen, upsert) and seen == {"c1"}
    assert upsert["ops"] == [{"op": "add", "path": "/c1", "value": {"id": "c1", "title": "T"}}]
    assert feed.accept(seen, remove) and seen == set()


class CountingFeed(FakeFeed):
    """Counts snapshot reads in flight, to check how many the hub runs at once."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.most_in_flight = 0

    async def snapshot(self, ident: str) -> Snapshot:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.005)
            return Snapshot(self.revision, self.epoch, {"n": self.revision})
        finally:
            self.in_flight -= 1


async def test_a_reconnect_storm_is_paced_by_sync_concurrency() -> None:
    feed = CountingFeed()
    hub = Hub({"cim": feed}, Metrics(), FakeBroker(), sync_concurrency=4)
    conns = [FakeConnection() for _ in range(200)]
    await asyncio.wait_for(
        asyncio.gather(
            *(hub.subscribe(conn, f"cim:c{i % 20}", request_id="r", resume=None) for i, conn in enumerate(conns))
        ),
        30,
    )
    assert feed.most_in_flight == 4
    assert all(conn.frames[0]["type"] == "snapshot" for conn in conns)


async def test_a_patch_of_another_history_is_a_gap_not_a_delivery() -> None:
    """Commit ids: the next revision must name the subscriber's commit as its parent."""
    feed = FakeFeed()
    hub = make_hub(feed)
    conn = FakeConnection()
    feed.commit()
    await hub.subscribe(conn, "cim:c", request_id="r1", resume=None)
    sub = hub.topics["cim:c"].subscriptions[conn]
    sub.commit = "c1"  # as a snapshot with a commit id would set it
    ops = [{"op": "replace", "path": "/n", "value": 2}]
    ours = {"rev": 2, "epoch": "e1", "commit": "c2", "parent": "c1", "ops": ops}
    hub.on_message("ch:c", JSON.encode(ours).encode())
    assert (sub.state, sub.revision, sub.commit) == (State.LIVE, 2, "c2")
    # The same revision again under another commit id, or a next revision on another parent: resync.
    for other in ({**ours, "commit": "x2"}, {**ours, "rev": 3, "commit": "x3", "parent": "x2"}):
        sub.state = State.LIVE
        hub.on_message("ch:c", JSON.encode(other).encode())
        assert sub.state is State.SYNCING, other
        assert sub.task is not None
        sub.task.cancel()
        sub.task = None
    assert revisions(conn) == [("snapshot", 1), ("patch", 2)]


def waited_out(hub: Hub) -> float:
    return hub.metrics.registry.get_sample_value("cimhub_catch_ups_waited_out_total") or 0.0


async def test_a_resume_that_waits_out_the_catch_up_slots_gets_a_reset_snapshot() -> None:
    """catch_up_concurrency 1: while one catch-up reads, another resume gets one snapshot, not an error."""
    feed = FakeFeed()
    hub = Hub({"cim": feed}, Metrics(), FakeBroker(), catch_up_concurrency=1, catch_up_wait_s=0.05)
    for _ in range(5):
        feed.commit()
    feed.gate.clear()
    first, second = FakeConnection(), FakeConnection()
    catching_up = asyncio.create_task(hub.subscribe(first, "cim:c", request_id="r1", resume=(2, "e1", "")))
    await feed.reading.wait()  # the first catch-up holds the only slot, its read held at the gate
    waiting = asyncio.create_task(hub.subscribe(second, "cim:c", request_id="r2", resume=(3, "e1", "")))
    await eventually(lambda: waited_out(hub) == 1, what="the second resume waited out its slot")
    feed.gate.set()
    await asyncio.wait_for(asyncio.gather(catching_up, waiting), 10)
    assert revisions(first) == [("patch", 3), ("patch", 4), ("patch", 5), ("subscribed", 5)]
    answered = [(fr["type"], fr["revision"], fr["reset"], fr["id"]) for fr in second.frames]
    assert answered == [("snapshot", 5, True, "r2")]
    assert not hub.catch_up_slots.locked()  # the timed-out wait took no slot with it
    hub.on_message("ch:c", feed.commit())
    assert revisions(first)[-1] == revisions(second)[-1] == ("patch", 6)


async def test_catch_ups_beyond_the_limit_wait_for_a_slot_and_are_all_served() -> None:
    feed = FakeFeed()
    hub = Hub({"cim": feed}, Metrics(), FakeBroker(), catch_up_concurrency=2, catch_up_wait_s=30)
    for _ in range(4):
        feed.commit()
    conns = [FakeConnection() for _ in range(10)]
    await asyncio.wait_for(
        asyncio.gather(*(hub.subscribe(c, "cim:c", request_id="r", resume=(1, "e1", "")) for c in conns)), 30
    )
    assert all(revisions(c) == [("patch", 2), ("patch", 3), ("patch", 4), ("subscribed", 4)] for c in conns)
    assert waited_out(hub) == 0 and not hub.catch_up_slots.locked()


async def test_the_catch_up_limit_holds_however_many_resume_at_once() -> None:
    class CountingSince(FakeFeed):
        in_flight = most = 0

        async def since(self, ident: str, revision: int, epoch: str, commit: str) -> list[dict[str, Any]] | None:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            try:
                await asyncio.sleep(0.002)
                return [e for e in self.log if e["rev"] > revision]
            finally:
                self.in_flight -= 1

    feed = CountingSince()
    hub = Hub({"cim": feed}, Metrics(), FakeBroker(), catch_up_concurrency=3, catch_up_wait_s=30)
    feed.commit()
    feed.commit()
    conns = [FakeConnection() for _ in range(60)]
    await asyncio.wait_for(
        asyncio.gather(
            *(hub.subscribe(c, f"cim:c{i % 6}", request_id="r", resume=(1, "e1", "")) for i, c in enumerate(conns))
        ),
        30,
    )
    assert feed.most == 3
    assert all(revisions(c) == [("patch", 2), ("subscribed", 2)] for c in conns)
