"""Nothing acknowledged is lost: not when the hub is killed, with `appendfsync always` not when Redis is,
and when Redis comes back older nothing acknowledged since is lost and every replica is told (a reset).

docs/durability.md states what each setting promises; these tests crash real
processes with SIGKILL (no clean shutdown, no final fsync) and count what an
acknowledged client can still read afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from conftest import RedisServer
from hubproc import HubProcess, start_hub

from cimhub.protocol.patch import apply


@pytest.fixture
def fsync_always_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, fsync="always")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def client(hub: HubProcess) -> httpx.Client:
    return httpx.Client(base_url=hub.url, headers={"authorization": f"Bearer {hub.token('u1')}"}, timeout=10)


def create(http: httpx.Client) -> str:
    response = http.post(
        "/v1/mutate",
        json={
            "name": "create",
            "args": {"dealId": "d1", "projectId": "p1", "title": "T"},
            "mutationId": uuid.uuid4().hex,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["cimId"])


def test_a_redis_crash_loses_no_acknowledged_mutation_with_fsync_always(fsync_always_redis: RedisServer) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    with start_hub(fsync_always_redis.url, prefix) as hub, client(hub) as http:
        cim = create(http)
        acknowledged = []
        for n in range(40):
            mutation_id = f"m{n}"
            response = http.post(
                "/v1/mutate",
                json={
                    "name": "updateState",
                    "args": {"cimId": cim, "gatheredContext": {f"k{n}": n}},
                    "mutationId": mutation_id,
                },
            )
            assert response.status_code == 200, response.text
            acknowledged.append(mutation_id)
        fsync_always_redis.kill()  # SIGKILL: no shutdown, no final fsync
        fsync_always_redis.start()  # replays the append-only file
    with start_hub(fsync_always_redis.url, prefix) as hub, client(hub) as http:
        doc = http.post("/v1/query", json={"name": "get", "args": {"cimId": cim}}).json()["result"]
        assert doc["revision"] == 1 + len(acknowledged)
        assert doc["cim"]["gatheredContext"] == {f"k{n}": n for n in range(40)}
        log = http.post("/v1/query", json={"name": "patches", "args": {"cimId": cim, "fromRevision": 1}}).json()
        assert [p["mutationId"] for p in log["result"]["patches"]] == acknowledged


def test_killing_the_hub_mid_stream_loses_no_acknowledged_mutation(redis_url: str, key_prefix: str) -> None:
    acknowledged: list[str] = []
    with start_hub(redis_url, key_prefix) as hub:
        with client(hub) as http:
            cim = create(http)

        def writer() -> None:
            with client(hub) as http:
                for n in range(10_000):
                    mutation_id = f"w{n}"
                    try:
                        response = http.post(
                            "/v1/mutate",
                            json={
                                "name": "updateState",
                                "args": {"cimId": cim, "title": f"t{n}"},
                                "mutationId": mutation_id,
                            },
                        )
                    except httpx.HTTPError:
                        return  # the hub died under us: this one was never acknowledged
                    if response.status_code == 200:
                        acknowledged.append(mutation_id)

        thread = threading.Thread(target=writer)
        thread.start()
        while len(acknowledged) < 30:
            thread.join(0.01)
        hub.kill()  # SIGKILL mid-stream
        thread.join(30)
    with start_hub(redis_url, key_prefix) as hub, client(hub) as http:
        log = http.post("/v1/query", json={"name": "patches", "args": {"cimId": cim, "fromRevision": 1}}).json()
        committed = [p["mutationId"] for p in log["result"]["patches"]]
        # Every acknowledged mutation is there, in order; at most the one in flight committed unacknowledged.
        assert committed[: len(acknowledged)] == acknowledged
        assert len(committed) - len(acknowledged) <= 1


# -- Redis comes back older: a restore from an older copy of its data directory ----------------------


def copy_data(server: RedisServer, to: Path) -> None:
    """Stop Redis cleanly and copy its data directory (what a backup is); the caller starts it again."""
    server.stop()
    shutil.rmtree(to, ignore_errors=True)
    shutil.copytree(server.data_dir, to, ignore=shutil.ignore_patterns("redis.log"))


def restore_data(server: RedisServer, backup: Path) -> None:
    """Stop Redis, put the older copy back and start it on the same port: the same epoch, an older history."""
    server.stop()
    for item in server.data_dir.iterdir():
        if item.name != "redis.log":
            shutil.rmtree(item) if item.is_dir() else item.unlink()
    shutil.copytree(backup, server.data_dir, dirs_exist_ok=True)
    server.start()


def acked(http: httpx.Client, name: str, args: dict[str, Any], mutation_id: str) -> dict[str, Any]:
    """Send a mutation until it is acknowledged (the same mutation id each time, as a client must)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            response = http.post("/v1/mutate", json={"name": name, "args": args, "mutationId": mutation_id})
            if response.status_code == 200:
                return dict(response.json())
            assert response.json()["error"]["retryable"], response.text
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{mutation_id} was never acknowledged"
        time.sleep(0.1)


def note(http: httpx.Client, cim: str, name: str) -> int:
    return int(acked(http, "updateState", {"cimId": cim, "gatheredContext": {name: True}}, f"ack-{name}")["revision"])


def get(http: httpx.Client, cim: str) -> dict[str, Any]:
    response = http.post("/v1/query", json={"name": "get", "args": {"cimId": cim}})
    assert response.status_code == 200, response.text
    return dict(response.json()["result"])


class Follower:
    """A websocket subscriber keeping a replica by the protocol's rules (snapshot, then patches in order)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.doc: Any = None
        self.revision, self.epoch, self.commit = 0, "", ""
        self.resets = 0
        self.frames: list[str] = []

    def take(self, frame: dict[str, Any]) -> None:
        self.frames.append(f"{frame['type']} r{frame.get('revision')} {frame.get('commit')} {frame.get('error', '')}")
        if frame["type"] == "snapshot":
            self.doc, self.revision, self.epoch = frame["data"], frame["revision"], frame["epoch"]
            self.commit = frame["commit"]
            self.resets += bool(frame["reset"])
        elif frame["type"] == "patch":
            assert (frame["revision"], frame["epoch"]) == (self.revision + 1, self.epoch), frame
            self.doc = apply(self.doc, frame["ops"])
            self.revision, self.commit = frame["revision"], frame["commit"]

    def resume(self) -> dict[str, Any]:
        return {"revision": self.revision, "epoch": self.epoch, "commit": self.commit}

    async def until(self, predicate: Any, timeout: float = 30) -> None:
        """Read frames until `predicate()` holds; fails with the frames seen if it does not in time."""
        try:
            await self._until(predicate, timeout)
        except TimeoutError:
            raise AssertionError(f"not reached in {timeout}s; frames: {self.frames}") from None

    async def _until(self, predicate: Any, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                frame = orjson.loads(await self.ws.recv())
                if frame["type"] == "ping":
                    await self.ws.send(orjson.dumps({"type": "pong", "ts": frame.get("ts")}).decode())
                self.take(frame)


@contextlib.asynccontextmanager
async def follow(hub: HubProcess, cim: str, resume: dict[str, Any] | None = None) -> AsyncIterator[Follower]:
    async with websockets.connect(hub.ws_url, open_timeout=10) as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": hub.token("u1")}).decode())
        assert orjson.loads(await ws.recv())["type"] == "ready"
        frame: dict[str, Any] = {"type": "subscribe", "id": "s1", "topic": f"cim:{cim}"}
        if resume is not None:
            frame["resume"] = resume
        await ws.send(orjson.dumps(frame).decode())
        follower = Follower(ws)
        if resume is not None:
            follower.revision, follower.epoch, follower.commit = resume["revision"], resume["epoch"], resume["commit"]
        yield follower


async def test_redis_restored_from_an_older_copy_loses_nothing_acknowledged_since_and_resets_replicas(
    tmp_path: Path,
) -> None:
    """The issue's deterministic rollback with two hubs, a live subscriber and one that resumes afterwards."""
    server = RedisServer(tmp_path / "redis", fsync="always")
    server.data_dir.mkdir()
    server.start()
    prefix = f"t{uuid.uuid4().hex[:8]}"
    try:
        with (
            start_hub(server.url, prefix) as hub_a,
            start_hub(server.url, prefix) as hub_b,
            client(hub_a) as http_a,
            client(hub_b) as http_b,
        ):
            cim = create(http_a)
            assert [note(http_a, cim, n) for n in ("k1", "k2", "k3")] == [2, 3, 4]
            copy_data(server, tmp_path / "backup")  # the backup: revision 4
            server.start()
            async with follow(hub_a, cim) as live:
                await live.until(lambda: live.revision == 4)
                assert [note(http_a, cim, n) for n in ("l1", "l2")] == [5, 6]  # hub A now caches revision 6
                await live.until(lambda: live.revision == 6)
                offline = live.resume()  # a subscriber that goes away at revision 6

                restore_data(server, tmp_path / "backup")  # revision 4 again, the same epoch
                assert [note(http_b, cim, n) for n in ("n1", "n2")] == [5, 6]
                assert note(http_a, cim, "n3") == 7  # on A's cached revision 6 this used to lose n1 and n2

                stored = get(http_b, cim)
                # Every acknowledgement since the restore is there once; l1 and l2 went with the restore.
                assert stored["cim"]["gatheredContext"] == {k: True for k in ("k1", "k2", "k3", "n1", "n2", "n3")}
                log = http_b.post("/v1/query", json={"name": "patches", "args": {"cimId": cim}}).json()["result"]
                doc: Any = None
                for patch in log["patches"]:
                    doc = apply(doc, patch["ops"])
                assert (doc, log["patches"][-1]["rev"]) == (stored["cim"], stored["revision"])

                # The live subscriber was told: a reset snapshot, then it equals the document.
                await live.until(lambda: live.revision == stored["revision"] and live.commit == stored["commit"])
                assert live.resets >= 1 and live.doc == stored["cim"]
            # The one that was away resumes from revision 6 of the lost history: a reset, not patch 7.
            async with follow(hub_a, cim, offline) as back:
                await back.until(lambda: back.resets == 1)
                assert (back.doc, back.revision, back.commit) == (stored["cim"], 7, stored["commit"])
    finally:
        server.stop()
