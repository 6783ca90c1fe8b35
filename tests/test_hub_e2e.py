"""End-to-end: real hub processes (uvicorn on loopback), real Redis, raw `websockets` clients.

Every wait is bounded (`TIMEOUT`), so a hang fails fast instead of stalling the
suite. Hubs that need no special settings are shared per module; a test that
stops, kills or reconfigures a hub starts its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import msgpack
import pytest
import redis
import redis.asyncio as aioredis
import websockets
from conftest import RedisServer
from hubproc import HubProcess, start_hub
from support import wire
from support.waiting import eventually
from support.wire import TIMEOUT, RawClient

from cimhub.protocol import frames as f
from cimhub.protocol.close import CloseCode
from cimhub.protocol.codec import JSON, MSGPACK, Codec
from cimhub.protocol.mutations import derived_cim_id
from cimhub.protocol.patch import apply

CODECS: dict[str, Codec] = {"json": JSON, "msgpack": MSGPACK}


# -- fixtures ------------------------------------------------------------------


def _delete_prefix(server: RedisServer, prefix: str) -> None:
    with contextlib.suppress(redis.RedisError), server.sync_client() as client:
        for key in list(client.scan_iter(match=f"{prefix}:*", count=1000)):
            client.delete(key)


@pytest.fixture(scope="module")
def prefix(redis_server: RedisServer) -> Iterator[str]:
    """A key prefix for this module's shared hubs; its keys are deleted afterwards."""
    name = f"e2e{uuid.uuid4().hex[:10]}"
    yield name
    _delete_prefix(redis_server, name)


@pytest.fixture(scope="module")
def hub(redis_server: RedisServer, prefix: str) -> Iterator[HubProcess]:
    """The shared hub: a short patch log (history snapshots every 5 revisions, so the log is trimmed
    in steps of 5) so both sides of retention are cheap to reach."""
    with start_hub(redis_server.url, prefix, patch_log_retention=20, history_snapshot_every=5) as process:
        yield process


@pytest.fixture(scope="module")
def strict_hub(redis_server: RedisServer, prefix: str) -> Iterator[HubProcess]:
    """Small limits: frames, subscriptions and mutation rate."""
    with start_hub(
        redis_server.url, prefix, max_frame_bytes=4096, max_subscriptions=3, mutations_per_second=1, mutation_burst=5
    ) as process:
        yield process


@pytest.fixture(scope="module")
def timeouts_hub(redis_server: RedisServer, prefix: str) -> Iterator[HubProcess]:
    with start_hub(redis_server.url, prefix, heartbeat_s=0.2, idle_timeout_s=1.0, auth_timeout_s=0.5) as process:
        yield process


# -- a raw protocol client (tests/support/wire.py; every frame read is checked against /v1/schema) ----


@contextlib.asynccontextmanager
async def connect(
    hub: HubProcess, user: str | None = "user-1", codec: str = "json", **kwargs: Any
) -> AsyncIterator[RawClient]:
    """A client that has authenticated as `user` (None: not authenticated yet)."""
    chosen = CODECS[codec]
    token = hub.token(user) if user is not None else None
    async with wire.connect(hub.ws_url, token, codec=chosen, subprotocols=[chosen.subprotocol], **kwargs) as client:
        if client.ready is not None:
            assert client.ready["userId"] == user
        yield client


class Replica:
    """A CIM as a subscriber rebuilds it: the snapshot, then each patch exactly once, in order."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        assert snapshot["type"] == "snapshot", snapshot
        self.doc = snapshot["data"]
        self.revision: int = snapshot["revision"]
        self.epoch: str = snapshot["epoch"]
        self.commit: str = snapshot["commit"]
        self.patches: list[dict[str, Any]] = []

    def resume(self) -> dict[str, Any]:
        """The subscribe frame's `resume`: the last change applied, named by its commit id."""
        return {"revision": self.revision, "epoch": self.epoch, "commit": self.commit}

    def apply(self, frame: dict[str, Any]) -> None:
        assert frame["type"] == "patch", frame
        assert frame["epoch"] == self.epoch
        assert frame["revision"] == self.revision + 1, (
            f"at {self.revision}, got {frame['revision']}: a gap or duplicate"
        )
        self.doc = apply(self.doc, frame["ops"])
        self.revision = frame["revision"]
        self.commit = frame["commit"]
        self.patches.append(frame)

    async def follow(self, client: RawClient, revision: int, timeout: float = TIMEOUT) -> None:
        """Apply patches from `client` until `revision` is reached."""
        async with asyncio.timeout(timeout):
            while self.revision < revision:
                self.apply(await client.recv())


def new_mid() -> str:
    return uuid.uuid4().hex


def auth(hub: HubProcess, user: str = "user-1", **kwargs: Any) -> dict[str, str]:
    return {"authorization": f"Bearer {hub.token(user, **kwargs)}"}


async def http_mutate(
    http: httpx.AsyncClient,
    hub: HubProcess,
    name: str,
    args: dict[str, Any],
    *,
    mutation_id: str | None = None,
    headers: dict[str, str] | None = None,
    expected_revision: int | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"name": name, "args": args, "mutationId": mutation_id or new_mid()}
    if expected_revision is not None:
        body["expectedRevision"] = expected_revision
    return await http.post(hub.url + "/v1/mutate", json=body, headers=auth(hub) if headers is None else headers)


async def mutate_ok(
    http: httpx.AsyncClient, hub: HubProcess, name: str, args: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    response = await http_mutate(http, hub, name, args, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def create_cim(http: httpx.AsyncClient, hub: HubProcess, deal: str | None = None) -> str:
    result = await mutate_ok(
        http,
        hub,
        "create",
        {
            "dealId": deal or f"deal-{uuid.uuid4().hex[:8]}",
            "projectId": "project-1",
            "title": "Project Falcon",
        },
    )
    return str(result["cimId"])


async def retitle(http: httpx.AsyncClient, hub: HubProcess, cim_id: str, title: str) -> int:
    return int((await mutate_ok(http, hub, "updateState", {"cimId": cim_id, "title": title}))["revision"])


async def stored(http: httpx.AsyncClient, hub: HubProcess, cim_id: str) -> dict[str, Any]:
    response = await http.post(
        hub.url + "/v1/query", json={"name": "get", "args": {"cimId": cim_id}}, headers=auth(hub)
    )
    assert response.status_code == 200, response.text
    return response.json()["result"]  # type: ignore[no-any-return]


async def metrics(http: httpx.AsyncClient, hub: HubProcess) -> dict[str, float]:
    """The hub's samples, keyed by name with labels (``cimhub_resyncs_total{how="snapshot"}``)."""
    response = await http.get(hub.url + "/metrics")
    assert response.status_code == 200
    samples = {}
    for line in response.text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$", line)
        if match:
            samples[match.group(1)] = float(match.group(2))
    return samples


def assert_error(frame: dict[str, Any], code: str, *, retryable: bool, request_id: str | None = None) -> None:
    assert frame["type"] == "error", frame
    error = frame["error"]
    assert error["code"] == code, frame
    assert error["retryable"] is retryable
    assert isinstance(error["message"], str) and error["message"]
    if request_id is not None:
        assert frame.get("id") == request_id


# -- subscribe, snapshot, patches ------------------------------------------------


async def test_subscribers_joining_during_writes_converge_without_gaps(
    hub: HubProcess, http: httpx.AsyncClient
) -> None:
    """Subscribers join while two writers commit: each gets a snapshot, then every later revision once, in order."""
    cim = await create_cim(http, hub)
    writes_per_writer, subscribers = 40, 10
    progress = asyncio.Condition()
    committed: list[int] = []

    async def writer(n: int) -> None:
        async with connect(hub, f"writer-{n}") as client:
            ids = []
            for i in range(writes_per_writer):  # pipelined: the next frame goes out before the last commits
                frame = {
                    "type": "mutate",
                    "id": f"w{i}",
                    "name": "updateState",
                    "args": {"cimId": cim, "title": f"writer {n} edit {i} " + "x" * 100},
                    "mutationId": new_mid(),
                }
                await client.send(frame)
                ids.append(frame["id"])
            for _ in ids:
                result = await client.recv()
                assert result["type"] == "result", result
                async with progress:
                    committed.append(result["revision"])
                    progress.notify_all()

    final: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def subscriber(n: int) -> Replica:
        async with connect(hub, f"reader-{n}", "msgpack" if n % 2 else "json") as client:
            async with progress:  # join at evenly spread points of the write stream
                await progress.wait_for(lambda: len(committed) >= n * 2 * writes_per_writer // subscribers)
            replica = Replica(await client.subscribe(f"cim:{cim}"))
            await replica.follow(client, await asyncio.wait_for(asyncio.shield(final), TIMEOUT))
            return replica

    readers = [asyncio.create_task(subscriber(n)) for n in range(subscribers)]
    await asyncio.wait_for(asyncio.gather(writer(0), writer(1)), TIMEOUT * 2)
    assert sorted(committed) == list(range(2, 2 + 2 * writes_per_writer))
    final.set_result(max(committed))
    replicas = await asyncio.wait_for(asyncio.gather(*readers), TIMEOUT * 2)
    expected = await stored(http, hub, cim)
    assert expected["revision"] == max(committed)
    for replica in replicas:
        assert replica.revision == expected["revision"]
        assert replica.doc == expected["cim"]


async def test_json_and_msgpack_clients_see_identical_frames(hub: HubProcess, http: httpx.AsyncClient) -> None:
    cim = await create_cim(http, hub)
    async with connect(hub, "u-json", "json") as as_json, connect(hub, "u-msgpack", "msgpack") as as_msgpack:
        snapshots = [await client.subscribe(f"cim:{cim}") for client in (as_json, as_msgpack)]
        for snapshot in snapshots:
            snapshot.pop("id")
        assert snapshots[0] == snapshots[1]
        await mutate_ok(
            http,
            hub,
            "updateState",
            {
                "cimId": cim,
                "title": "Ünïcødé ✓ \u2028",
                "gatheredContext": {"n": 2**53, "f": 1.5, "nested": [None, True, {"a": []}]},
            },
        )
        patches = [await client.recv() for client in (as_json, as_msgpack)]
        assert patches[0] == patches[1]
        assert patches[0]["type"] == "patch" and patches[0]["revision"] == snapshots[0]["revision"] + 1
        # Errors are the same too.
        errors = [await client.request({"type": "query", "name": "nope"}) for client in (as_json, as_msgpack)]
        assert errors[0]["error"] == errors[1]["error"]
        assert_error(errors[0], "unknown_query", retryable=False)


async def test_the_served_schema_is_the_protocols(hub: HubProcess, http: httpx.AsyncClient) -> None:
    """The raw client checks every frame against /v1/schema: it must be the schema of protocol/frames.py."""
    response = await http.get(f"{hub.url}/v1/schema")
    assert response.status_code == 200
    assert response.json() == f.json_schema()


async def test_no_subprotocol_means_json(hub: HubProcess) -> None:
    async with websockets.connect(hub.ws_url, open_timeout=TIMEOUT) as ws:
        assert ws.subprotocol is None
        await ws.send(JSON.encode({"type": "auth", "token": hub.token("user-1")}))
        assert JSON.decode(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"] == "ready"


async def test_resume_within_retention_sends_only_missed_patches(hub: HubProcess, http: httpx.AsyncClient) -> None:
    cim = await create_cim(http, hub)
    async with connect(hub, codec="msgpack") as client:
        replica = Replica(await client.subscribe(f"cim:{cim}"))
    for i in range(5):
        await retitle(http, hub, cim, f"while away {i}")
    async with connect(hub, codec="msgpack") as client:
        request_id = client.new_id()
        await client.send({"type": "subscribe", "id": request_id, "topic": f"cim:{cim}", "resume": replica.resume()})
        frames: list[dict[str, Any]] = []
        while not frames or frames[-1]["type"] != "subscribed":
            frames.append(await client.recv())
        assert [frame["type"] for frame in frames] == ["patch"] * 5 + ["subscribed"]
        for frame in frames[:-1]:
            replica.apply(frame)
        assert frames[-1] == {
            "type": "subscribed",
            "topic": f"cim:{cim}",
            "id": request_id,
            "revision": replica.revision,
            "epoch": replica.epoch,
            "commit": replica.commit,
        }
        # Then live, from the next revision on.
        revision = await retitle(http, hub, cim, "live again")
        await replica.follow(client, revision)
        assert replica.doc == (await stored(http, hub, cim))["cim"]
    # Up to date already: nothing but `subscribed`.
    async with connect(hub) as client:
        answer = await client.subscribe(f"cim:{cim}", replica.resume())
        assert answer["type"] == "subscribed" and answer["revision"] == replica.revision
        assert not client.backlog


async def test_resume_past_retention_gets_reset_snapshot(hub: HubProcess, http: httpx.AsyncClient) -> None:
    cim = await create_cim(http, hub)
    async with connect(hub) as client:
        replica = Replica(await client.subscribe(f"cim:{cim}"))
    for i in range(25):  # the shared hub keeps 20 patches
        await retitle(http, hub, cim, f"edit {i}")
    async with connect(hub) as client:
        snapshot = await client.subscribe(f"cim:{cim}", replica.resume())
        current = await stored(http, hub, cim)
        assert snapshot["type"] == "snapshot" and snapshot["reset"] is True
        assert (snapshot["revision"], snapshot["epoch"], snapshot["data"]) == (
            current["revision"],
            current["epoch"],
            current["cim"],
        )
        assert not client.backlog


async def test_epoch_change_resets_a_resuming_client(
    hub: HubProcess, http: httpx.AsyncClient, redis_server: RedisServer, prefix: str
) -> None:
    service = auth(hub, "importer", role="service_role")
    row = {
        "sourceId": f"legacy-{uuid.uuid4().hex[:8]}",
        "dealId": "deal-epoch",
        "projectId": "p",
        "userId": "user-1",
        "title": "Old",
    }
    cim = (await mutate_ok(http, hub, "importFromSupabase", row, headers=service))["result"]["cimId"]
    await retitle(http, hub, cim, "edited once")
    async with connect(hub) as watcher, connect(hub) as client:
        live = Replica(await watcher.subscribe(f"cim:{cim}"))
        replica = Replica(await client.subscribe(f"cim:{cim}"))
        await client.ws.close()
        # Delete, then import again: the same CIM id, a new history (epoch).
        await mutate_ok(http, hub, "delete", {"cimId": cim})
        deleted = await watcher.recv()
        assert (
            deleted["type"] == "patch" and deleted.get("deleted") is True and deleted["revision"] == live.revision + 1
        )
        reimported = await mutate_ok(http, hub, "importFromSupabase", row, headers=service)
        assert reimported["result"] == {"cimId": cim, "imported": True}
    current = await stored(http, hub, cim)
    assert current["epoch"] != replica.epoch
    async with connect(hub) as client:
        snapshot = await client.subscribe(f"cim:{cim}", replica.resume())
        assert snapshot["type"] == "snapshot" and snapshot["reset"] is True
        assert (snapshot["epoch"], snapshot["revision"], snapshot["data"]) == (
            current["epoch"],
            current["revision"],
            current["cim"],
        )
    # An epoch changed under the hub's feet (an operator's restore) is caught the same way.
    with redis_server.sync_client() as raw:
        raw.hset(f"{prefix}:cim:{{{cim}}}", "epoch", "restored")
    async with connect(hub) as client:
        snapshot = await client.subscribe(f"cim:{cim}", {"revision": current["revision"], "epoch": current["epoch"]})
        assert snapshot["type"] == "snapshot" and snapshot["reset"] is True and snapshot["epoch"] == "restored"


async def test_mutation_on_one_hub_reaches_subscriber_on_another(
    hub: HubProcess, http: httpx.AsyncClient, redis_server: RedisServer, prefix: str
) -> None:
    with start_hub(redis_server.url, prefix) as other:
        cim = await create_cim(http, hub)
        async with connect(other, codec="msgpack") as on_b, connect(hub) as on_a:
            replica_b = Replica(await on_b.subscribe(f"cim:{cim}"))
            replica_a = Replica(await on_a.subscribe(f"cim:{cim}"))
            for i in range(5):
                await retitle(http, hub, cim, f"via A {i}")
                await retitle(http, other, cim, f"via B {i}")
            final = await stored(http, hub, cim)
            await replica_b.follow(on_b, final["revision"])
            await replica_a.follow(on_a, final["revision"])
            assert replica_a.doc == replica_b.doc == final["cim"]


async def test_deal_topic_streams_cim_list_changes(hub: HubProcess, http: httpx.AsyncClient) -> None:
    deal = f"deal-{uuid.uuid4().hex[:8]}"
    first = await create_cim(http, hub, deal)
    async with connect(hub) as client:
        snapshot = await client.subscribe(f"deal:{deal}")
        assert snapshot["type"] == "snapshot" and set(snapshot["data"]) == {first}
        rows = snapshot["data"]
        second = await create_cim(http, hub, deal)
        added = await client.recv()
        assert added["type"] == "patch" and added["topic"] == f"deal:{deal}"
        assert added["ops"][0]["op"] == "add" and added["ops"][0]["path"] == f"/{second}"
        rows = apply(rows, added["ops"])
        await retitle(http, hub, second, "Renamed")
        rows = apply(rows, (await client.recv())["ops"])
        assert rows[second]["title"] == "Renamed"
        await mutate_ok(http, hub, "delete", {"cimId": first})
        rows = apply(rows, (await client.recv())["ops"])
        assert set(rows) == {second}
        listed = await http.post(
            hub.url + "/v1/query", json={"name": "listByDeal", "args": {"dealId": deal}}, headers=auth(hub)
        )
        assert {item["id"]: item for item in listed.json()["result"]["items"]} == rows


# -- bounded queues ---------------------------------------------------------------


async def test_slow_consumer_is_closed_with_4008_and_fast_ones_keep_everything(
    redis_server: RedisServer, prefix: str, http: httpx.AsyncClient
) -> None:
    with start_hub(redis_server.url, prefix, send_queue_bytes=524_288, shutdown_grace_s=3) as hub:
        cim = await create_cim(http, hub)
        async with contextlib.AsyncExitStack() as stack:
            fast = [await stack.enter_async_context(connect(hub, f"fast-{c}", c)) for c in ("json", "msgpack")]
            # Readers that stop reading: the client library stops reading the socket once a
            # few frames wait for recv(). One reads again later, one never does.
            slow = [
                await stack.enter_async_context(connect(hub, name, max_queue=4))
                for name in ("slow-then-reading", "stalled-for-good")
            ]
            replicas = [Replica(await client.subscribe(f"cim:{cim}")) for client in fast]
            for client in slow:
                await client.send({"type": "subscribe", "id": "s1", "topic": f"cim:{cim}"})
            final: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            readers = [asyncio.create_task(keep_up(c, r, final)) for c, r in zip(fast, replicas, strict=True)]
            overflowed = False
            for i in range(500):  # at most ~32 MB of patches; the slow readers overflow long before
                blob = secrets.token_urlsafe(49_152)  # 64 KB that permessage-deflate cannot shrink
                await mutate_ok(http, hub, "updateState", {"cimId": cim, "gatheredContext": {"blob": blob}})
                if i % 5 == 4 and (await metrics(http, hub)).get("cimhub_queue_overflows_total", 0) >= 2:
                    overflowed = True
                    break
            assert overflowed, "the slow readers' queues never overflowed"
            # The reader that reads again finds the close code that says "reconnect and resume".
            code, frames = await slow[0].closed()
            assert code == CloseCode.QUEUE_OVERFLOW, (code, [frame["type"] for frame in frames][-3:])
            current = await stored(http, hub, cim)
            final.set_result(current["revision"])
            # Fast readers have everything, in order, and nothing else.
            await asyncio.wait_for(asyncio.gather(*readers), TIMEOUT * 3)
            for replica in replicas:
                assert replica.doc == current["cim"]
            # The hub lets go of the reader that never reads again (after its grace period).
            await eventually(lambda: _connections_are(http, hub, 2), what="stalled session dropped")
            assert (await metrics(http, hub))["cimhub_queue_overflows_total"] == 2


async def keep_up(client: RawClient, replica: Replica, final: asyncio.Future[int]) -> None:
    """Apply patches as they come until the revision `final` will name is reached."""
    while not (final.done() and replica.revision >= final.result()):
        try:
            frame = await client.recv(timeout=0.2)
        except TimeoutError:
            continue
        replica.apply(frame)


async def _connections_are(http: httpx.AsyncClient, hub: HubProcess, count: int) -> bool:
    return (await metrics(http, hub)).get("cimhub_connections") == count


# -- bad input ----------------------------------------------------------------------


async def test_malformed_frames_get_structured_errors_and_change_nothing(
    hub: HubProcess, http: httpx.AsyncClient
) -> None:
    cim = await create_cim(http, hub)
    async with connect(hub, codec="json") as as_json, connect(hub, codec="msgpack") as as_msgpack:
        replicas = [Replica(await client.subscribe(f"cim:{cim}")) for client in (as_json, as_msgpack)]
        before = await stored(http, hub, cim)

        async def answer(client: RawClient, raw: str | bytes) -> dict[str, Any]:
            await client.ws.send(raw)
            return await client.recv()

        assert_error(await answer(as_json, "{not json"), "bad_frame", retryable=False)
        assert_error(await answer(as_json, "[1, 2]"), "bad_frame", retryable=False)
        assert_error(
            await answer(as_json, '{"type": "teleport", "id": "t1"}'), "bad_frame", retryable=False, request_id="t1"
        )
        missing = await answer(as_json, '{"type": "subscribe", "id": "t2"}')
        assert_error(missing, "bad_frame", retryable=False, request_id="t2")
        assert "topic" in missing["error"]["path"]
        assert_error(
            await answer(
                as_json,
                JSON.encode(
                    {
                        "type": "mutate",
                        "id": "t3",
                        "name": "updateState",
                        "args": {"cimId": cim, "title": "no id"},
                    }
                ),
            ),
            "bad_frame",
            retryable=False,
            request_id="t3",
        )
        assert_error(
            await answer(as_json, JSON.encode({"type": "subscribe", "id": "t4", "topic": "cim:{bad}"})),
            "bad_frame",
            retryable=False,
            request_id="t4",
        )
        bad_args = await as_json.mutate("updateState", {"cimId": cim, "title": 42})
        assert_error(bad_args, "invalid_args", retryable=False)
        assert bad_args["error"]["path"] == "args.title"

        assert_error(await answer(as_msgpack, b"\xc1"), "bad_frame", retryable=False)
        assert_error(await answer(as_msgpack, b"\x93\x01\x02\x03"), "bad_frame", retryable=False)
        assert_error(await answer(as_msgpack, "text on a msgpack socket"), "bad_frame", retryable=False)
        assert_error(
            await answer(as_msgpack, MSGPACK.encode({"type": "query", "id": "m1"})),
            "bad_frame",
            retryable=False,
            request_id="m1",
        )

        after = await stored(http, hub, cim)
        assert after == before
        # Both sockets are still subscribed: the next commit reaches them.
        revision = await retitle(http, hub, cim, "after the noise")
        for replica, client in zip(replicas, (as_json, as_msgpack), strict=True):
            await replica.follow(client, revision)
            assert replica.doc == (await stored(http, hub, cim))["cim"]


async def test_msgpack_values_json_cannot_carry_are_refused(hub: HubProcess, http: httpx.AsyncClient) -> None:
    """msgpack can carry bytes, extension types and NaN; JSON cannot, so neither may a msgpack frame."""
    cim = await create_cim(http, hub)
    async with connect(hub, codec="msgpack") as client:
        for value in (b"\xff\xfe", b"utf-8 but still bytes", msgpack.ExtType(5, b"x"), math.nan, math.inf):
            await client.ws.send(
                msgpack.packb(
                    {
                        "type": "mutate",
                        "id": "m",
                        "name": "updateState",
                        "mutationId": new_mid(),
                        "args": {"cimId": cim, "gatheredContext": {"v": value}},
                    },
                    use_bin_type=True,
                )
            )
            assert_error(await client.recv(), "bad_frame", retryable=False)
        after = await client.mutate("updateState", {"cimId": cim, "title": "still served"})
        assert after["type"] == "result" and after["revision"] == 2, after
    assert "v" not in (await stored(http, hub, cim))["cim"].get("gatheredContext", {})


async def test_oversize_frame_is_refused_and_subscription_survives(
    strict_hub: HubProcess, http: httpx.AsyncClient
) -> None:
    hub = strict_hub
    cim = await create_cim(http, hub)
    for codec in ("json", "msgpack"):
        async with connect(hub, codec=codec) as client:
            replica = Replica(await client.subscribe(f"cim:{cim}"))
            huge = {
                "type": "mutate",
                "id": "big",
                "name": "updateState",
                "mutationId": new_mid(),
                "args": {"cimId": cim, "gatheredContext": {"blob": "z" * 5000}},
            }
            await client.ws.send(client.codec.encode(huge))
            assert_error(await client.recv(), "payload_too_large", retryable=False)
            revision = await retitle(http, hub, cim, f"after the big one ({codec})")
            await replica.follow(client, revision)
            assert "blob" not in replica.doc.get("gatheredContext", {})


async def test_too_many_subscriptions(strict_hub: HubProcess) -> None:
    async with connect(strict_hub) as client:
        for n in range(3):
            assert (await client.subscribe(f"deal:many-{n}"))["type"] == "snapshot"
        refused = await client.subscribe("deal:many-3")
        assert_error(refused, "too_many_subscriptions", retryable=False, request_id=refused["id"])
        # Ending one makes room.
        assert (await client.request({"type": "unsubscribe", "topic": "deal:many-0"}))["type"] == "unsubscribed"
        assert (await client.subscribe("deal:many-3"))["type"] == "snapshot"


async def test_mutation_rate_limit_is_retryable_and_changes_nothing(
    strict_hub: HubProcess, http: httpx.AsyncClient
) -> None:
    hub = strict_hub
    cim = await create_cim(http, hub)
    start = (await stored(http, hub, cim))["revision"]
    async with connect(hub) as client:
        for i in range(12):  # all at once: the burst is 5, the rate 1/s
            await client.send(
                {
                    "type": "mutate",
                    "id": f"m{i}",
                    "name": "updateState",
                    "args": {"cimId": cim, "title": f"burst {i}"},
                    "mutationId": f"burst-{cim}-{i}",
                }
            )
        answers = [await client.recv() for _ in range(12)]
    results = [a for a in answers if a["type"] == "result"]
    limited = [a for a in answers if a["type"] == "error"]
    assert limited, "no mutation was rate limited"
    for frame in limited:
        assert_error(frame, "rate_limited", retryable=True)
    assert len(results) + len(limited) == 12
    assert (await stored(http, hub, cim))["revision"] == start + len(results)


# -- HTTP ------------------------------------------------------------------------------


async def test_http_mutate_and_query(hub: HubProcess, http: httpx.AsyncClient) -> None:
    deal = f"deal-{uuid.uuid4().hex[:8]}"
    create_id = new_mid()
    created = await mutate_ok(
        http, hub, "create", {"dealId": deal, "projectId": "p", "title": "T"}, mutation_id=create_id
    )
    cim = created["cimId"]
    assert created == {"result": {"cimId": cim}, "cimId": cim, "revision": 1, "duplicate": False}
    again = await mutate_ok(
        http, hub, "create", {"dealId": deal, "projectId": "p", "title": "T"}, mutation_id=create_id
    )
    assert again == {**created, "duplicate": True}

    edit_id = new_mid()
    first = await mutate_ok(http, hub, "updateState", {"cimId": cim, "title": "Once"}, mutation_id=edit_id)
    second = await mutate_ok(http, hub, "updateState", {"cimId": cim, "title": "Once"}, mutation_id=edit_id)
    assert (first["revision"], first["duplicate"], second["revision"], second["duplicate"]) == (2, False, 2, True)

    async def error_of(response: httpx.Response, status: int, code: str, retryable: bool = False) -> dict[str, Any]:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert (error["code"], error["retryable"]) == (code, retryable)
        assert error["message"]
        return error  # type: ignore[no-any-return]

    await error_of(
        await http_mutate(http, hub, "updateState", {"cimId": cim, "title": "Other"}, mutation_id=edit_id),
        409,
        "mutation_id_reused",
    )
    await error_of(
        await http_mutate(http, hub, "updateState", {"cimId": cim, "title": "Stale"}, expected_revision=1),
        409,
        "conflict",
    )
    await error_of(await http_mutate(http, hub, "teleport", {}), 400, "unknown_mutation")
    bad = await error_of(
        await http_mutate(http, hub, "updateState", {"cimId": cim, "stage": "nowhere"}), 400, "invalid_args"
    )
    assert bad["path"] == "args.stage"
    await error_of(await http_mutate(http, hub, "updateState", {"cimId": "nope", "title": "x"}), 404, "not_found")
    await error_of(await http_mutate(http, hub, "updateState", {"cimId": cim}, headers={}), 401, "unauthenticated")
    await error_of(await http.post(hub.url + "/v1/mutate", content=b"{oops", headers=auth(hub)), 400, "bad_frame")
    await error_of(
        await http_mutate(http, hub, "updateState", {"cimId": cim, "title": "x"}, headers=auth(hub, ttl_s=-120)),
        401,
        "token_expired",
        retryable=True,
    )

    got = await stored(http, hub, cim)
    assert (got["revision"], got["cim"]["title"]) == (2, "Once")
    listed = await http.post(
        hub.url + "/v1/query", json={"name": "listByDeal", "args": {"dealId": deal}}, headers=auth(hub)
    )
    assert [item["id"] for item in listed.json()["result"]["items"]] == [cim]
    patches = await http.post(
        hub.url + "/v1/query", json={"name": "patches", "args": {"cimId": cim}}, headers=auth(hub)
    )
    assert [p["rev"] for p in patches.json()["result"]["patches"]] == [1, 2]
    await error_of(
        await http.post(hub.url + "/v1/query", json={"name": "nope"}, headers=auth(hub)), 400, "unknown_query"
    )
    await error_of(
        await http.post(hub.url + "/v1/query", json={"name": "get", "args": {"cimId": "nope"}}, headers=auth(hub)),
        404,
        "not_found",
    )
    await error_of(
        await http.post(hub.url + "/v1/query", json={"name": "get", "args": {}}, headers=auth(hub)), 400, "invalid_args"
    )


async def test_health_readiness_and_metrics(hub: HubProcess, http: httpx.AsyncClient) -> None:
    assert (await http.get(hub.url + "/healthz")).json() == {"ok": True}
    ready = await http.get(hub.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    text = (await http.get(hub.url + "/metrics")).text
    for name in (
        "cimhub_connections",
        "cimhub_subscriptions",
        "cimhub_topics",
        "cimhub_mutations_total",
        "cimhub_deliveries_total",
        "cimhub_commit_to_delivery_seconds",
        "cimhub_queue_overflows_total",
        "cimhub_resyncs_total",
        "cimhub_broker_reconnects_total",
        "cimhub_client_errors_total",
    ):
        assert f"# TYPE {name} " in text, name


@pytest.mark.single_node
async def test_readyz_is_503_while_redis_is_down(private_redis: RedisServer, http: httpx.AsyncClient) -> None:
    with start_hub(private_redis.url, "ready") as hub:
        private_redis.stop()
        try:
            down = await eventually(lambda: _ready_status(http, hub, 503), what="readyz 503")
            assert down.json()["ready"] is False
        finally:
            private_redis.start()
        await eventually(lambda: _ready_status(http, hub, 200), what="readyz 200 again")
        # And it works again: a mutation commits and a subscriber sees it.
        cim = await create_cim(http, hub)
        async with connect(hub) as client:
            replica = Replica(await client.subscribe(f"cim:{cim}"))
            await replica.follow(client, await retitle(http, hub, cim, "after the restart"))


async def _ready_status(http: httpx.AsyncClient, hub: HubProcess, status: int) -> httpx.Response | None:
    response = await http.get(hub.url + "/readyz")
    return response if response.status_code == status else None


# -- failures of the broker and the hub ----------------------------------------------------


@pytest.mark.single_node
async def test_broker_listener_dropped_by_redis_catches_up(private_redis: RedisServer, http: httpx.AsyncClient) -> None:
    prefix = "brk"
    with start_hub(private_redis.url, prefix) as hub:
        cim = await create_cim(http, hub)
        admin = aioredis.from_url(private_redis.url)
        try:
            async with connect(hub) as client:
                replica = Replica(await client.subscribe(f"cim:{cim}"))
                before = await metrics(http, hub)
                # Keep the listener out: it may not re-subscribe its always-on channel, while
                # commits may still publish on the prefix's channels.
                assert await admin.execute_command("CLIENT", "LIST", "TYPE", "pubsub"), "no listener to drop"
                await admin.execute_command("ACL", "SETUSER", "default", "resetchannels", f"&{prefix}:*")
                try:
                    await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
                    assert not await admin.execute_command("CLIENT", "LIST", "TYPE", "pubsub")
                    for i in range(5):  # committed while no listener is subscribed
                        await retitle(http, hub, cim, f"during the outage {i}")
                finally:
                    await admin.execute_command("ACL", "SETUSER", "default", "allchannels")
                for i in range(3):
                    revision = await retitle(http, hub, cim, f"after the outage {i}")
                await replica.follow(client, revision)
                assert replica.doc == (await stored(http, hub, cim))["cim"]
                after = await metrics(http, hub)
                assert after["cimhub_broker_reconnects_total"] > before["cimhub_broker_reconnects_total"]
                key = 'cimhub_resyncs_total{how="patch_log"}'
                assert after.get(key, 0) > before.get(key, 0)
        finally:
            await admin.aclose()


async def test_sigterm_closes_clients_with_1012(
    redis_server: RedisServer, prefix: str, http: httpx.AsyncClient
) -> None:
    with start_hub(redis_server.url, prefix) as hub:
        cim = await create_cim(http, hub)
        async with connect(hub) as subscribed, connect(hub, codec="msgpack") as idle:
            await subscribed.subscribe(f"cim:{cim}")
            stopping = asyncio.create_task(asyncio.to_thread(hub.terminate))
            codes = [(await client.closed())[0] for client in (subscribed, idle)]
            assert codes == [CloseCode.RESTART, CloseCode.RESTART]
            assert await stopping == 0


# -- heartbeats and authentication --------------------------------------------------------


async def test_heartbeat_pings_then_idle_close(timeouts_hub: HubProcess) -> None:
    async with connect(timeouts_hub) as client:
        client.auto_pong = False
        code, frames = await client.closed()
    assert code == CloseCode.HEARTBEAT_TIMEOUT
    pings = [frame for frame in frames if frame["type"] == "ping"]
    assert pings and all(isinstance(ping["ts"], int) for ping in pings)
    assert {frame["type"] for frame in frames} == {"ping"}


async def test_client_answering_pings_is_not_idle(timeouts_hub: HubProcess) -> None:
    async with connect(timeouts_hub) as client:
        loop = asyncio.get_running_loop()
        end = loop.time() + 2.0  # twice the idle timeout
        while loop.time() < end:
            with contextlib.suppress(TimeoutError):
                await client.recv(timeout=end - loop.time())
        await client.send({"type": "ping", "ts": 7})
        assert await client.recv() == {"type": "pong", "ts": 7}
        answer = await client.request({"type": "query", "name": "listByUser", "args": {"userId": "user-1"}})
        assert answer["type"] == "result"


async def test_auth_timeout_closes_with_4401(timeouts_hub: HubProcess) -> None:
    async with connect(timeouts_hub, user=None) as client:
        code, frames = await client.closed()
    assert (code, frames) == (CloseCode.AUTH_TIMEOUT, [])


@pytest.mark.parametrize(
    "first",
    [
        {"type": "subscribe", "id": "s", "topic": "deal:x"},
        {"type": "auth", "token": "not-a-jwt"},
        {"type": "ping"},
    ],
)
async def test_first_frame_must_be_a_valid_auth(hub: HubProcess, first: dict[str, Any]) -> None:
    async with connect(hub, user=None) as client:
        await client.send(first)
        code, frames = await client.closed()
    assert code == CloseCode.AUTH_FAILED
    assert len(frames) == 1
    assert_error(frames[0], "unauthenticated", retryable=False)


# -- one connection pipelining mutations of several CIMs ---------------------------------------


async def test_pipelined_mutations_commit_in_order_per_cim(hub: HubProcess) -> None:
    cims, steps = 6, 15
    async with connect(hub) as client:
        # Each create followed at once, unanswered, by edits of the CIM it makes: its id is derived.
        sent: dict[str, list[str]] = {}
        for c in range(cims):
            mid = uuid.uuid4().hex
            cim = derived_cim_id("user-1", mid)
            sent[cim] = []
            args = {"dealId": f"deal-{c}", "projectId": "project-1", "title": "start"}
            await client.send(
                {"type": "mutate", "id": f"create-{c}", "name": "create", "args": args, "mutationId": mid}
            )
        for step in range(steps):
            for cim in sent:
                mid = f"{cim[:8]}-{step}"
                sent[cim].append(mid)
                await client.send(
                    {
                        "type": "mutate",
                        "id": mid,
                        "name": "updateState",
                        "args": {"cimId": cim, "title": f"t{step}"},
                        "mutationId": mid,
                    }
                )
        got = {}
        while len(got) < cims * (steps + 1):
            frame = await client.recv()
            assert frame["type"] == "result", frame
            got[frame["id"]] = frame
        for cim, mids in sent.items():
            # Revisions in the order sent: create is 1, each edit the next.
            assert [got[mid]["revision"] for mid in mids] == list(range(2, steps + 2))
            assert all(got[mid]["cimId"] == cim for mid in mids)
            snapshot = await client.subscribe(f"cim:{cim}")
            assert snapshot["revision"] == steps + 1 and snapshot["data"]["title"] == f"t{steps - 1}"


async def test_a_pipelined_retry_is_answered_as_a_duplicate(hub: HubProcess) -> None:
    async with connect(hub) as client:
        created = await client.mutate("create", {"dealId": "deal-dup", "projectId": "project-1", "title": "x"})
        cim = created["cimId"]
        frame = {
            "type": "mutate",
            "name": "updateState",
            "args": {"cimId": cim, "title": "once"},
            "mutationId": "dup-1",
        }
        other = {
            "type": "mutate",
            "name": "updateState",
            "args": {"cimId": cim, "title": "other"},
            "mutationId": "dup-2",
        }
        for request_id, body in (("first", frame), ("other", other), ("retry", frame)):
            await client.send({**body, "id": request_id})
        first = await client.expect(id="first")
        retry = await client.expect(id="retry")
        later = await client.expect(id="other")
        assert first["type"] == retry["type"] == "result"
        assert first["duplicate"] is False and retry["duplicate"] is True
        assert retry["revision"] == first["revision"] == created["revision"] + 1
        assert later["revision"] == first["revision"] + 1


async def test_with_permessage_deflate_frames_arrive_compressed_and_whole(redis_server: RedisServer) -> None:
    """Compressed connections keep per-connection deflate state: the direct writer leaves them to uvicorn."""
    prefix = f"deflate{uuid.uuid4().hex[:8]}"
    try:
        with start_hub(redis_server.url, prefix, ws_per_message_deflate=True) as deflating:
            async with connect(deflating) as writer, connect(deflating) as reader:
                assert "permessage-deflate" in (reader.ws.response.headers.get("Sec-WebSocket-Extensions") or "")
                created = await writer.mutate("create", {"dealId": "deal-z", "projectId": "project-1", "title": "z"})
                snapshot = await reader.subscribe(f"cim:{created['cimId']}")
                replica = Replica(snapshot)
                # Count the bytes on the wire from here on, before the client decompresses them.
                wire_bytes: list[int] = []
                receive_data = reader.ws.protocol.receive_data

                def counting(data: bytes) -> None:
                    wire_bytes.append(len(data))
                    receive_data(data)

                reader.ws.protocol.receive_data = counting
                for n in range(3):
                    answer = await writer.mutate(
                        "updateState", {"cimId": created["cimId"], "title": "t" * 150 + str(n)}
                    )
                    assert answer["type"] == "result" and answer["revision"] == created["revision"] + n + 1
                await replica.follow(reader, created["revision"] + 3)
                assert replica.doc["title"] == "t" * 150 + "2"
                decoded = sum(len(JSON.encode(patch)) for patch in replica.patches)
                assert sum(wire_bytes) < 0.8 * decoded, (sum(wire_bytes), decoded)
    finally:
        _delete_prefix(redis_server, prefix)
