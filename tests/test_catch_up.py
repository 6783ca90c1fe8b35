"""The per-process catch-up limit against a real hub and a real redis-server.

Catch-ups from the patch log run at most `catch_up_concurrency` at once; a
resume that cannot get a slot within `catch_up_wait_s` gets a reset snapshot,
never an error. Here the hub has one slot and does not wait for it. Two
subscribers resume 1,500 patches behind while Redis is stopped (SIGSTOP), so
both wait on the Redis read of their access check; once Redis runs again one
catch-up takes the slot and holds it while it reads and queues 1,500 patches,
and the other finds it taken and gets a reset snapshot. Which of the two is
which does not matter, and /metrics (served without Redis) counts the one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import websockets
from conftest import RedisServer
from hubproc import HubProcess, start_hub

from cimhub.protocol.patch import apply

GAP = 1_500


@pytest.fixture
def hub(private_redis: RedisServer) -> Iterator[HubProcess]:
    settings = {
        "catch_up_concurrency": 1,
        "catch_up_wait_s": 0,
        "redis_timeout_s": 60,
        "max_catch_up": 5_000,
        "patch_log_retention": 5_000,
        "mutations_per_second": 100_000,
        "mutation_burst": 100_000,
        "user_mutations_per_second": 100_000,
        "user_mutation_burst": 100_000,
    }
    with start_hub(private_redis.url, f"t{uuid.uuid4().hex[:8]}", **settings) as process:
        yield process


class Replica:
    """A subscriber kept by hand over a plain websocket, recording every frame it gets."""

    def __init__(self, ws: Any, topic: str) -> None:
        self.ws, self.topic = ws, topic
        self.doc: Any = None
        self.revision, self.epoch, self.commit = 0, "", ""
        self.frames: list[dict[str, Any]] = []

    async def subscribe(self, request_id: str, resume: dict[str, Any] | None = None) -> None:
        frame: dict[str, Any] = {"type": "subscribe", "id": request_id, "topic": self.topic}
        if resume is not None:
            frame["resume"] = resume
        await self.ws.send(orjson.dumps(frame).decode())

    async def until(self, *types: str) -> dict[str, Any]:
        """Apply frames until one of `types` arrives; returns it."""
        async with asyncio.timeout(30):
            while True:
                frame: dict[str, Any] = orjson.loads(await self.ws.recv())
                if frame["type"] == "ping":
                    continue
                if frame["type"] != "ready":
                    self.frames.append(frame)
                if frame["type"] == "snapshot":
                    self.doc, self.revision, self.epoch = frame["data"], frame["revision"], frame["epoch"]
                    self.commit = frame.get("commit", "")
                elif frame["type"] == "patch":
                    assert frame["revision"] == self.revision + 1, frame
                    self.doc = apply(self.doc, frame["ops"])
                    self.revision, self.commit = frame["revision"], frame.get("commit", "")
                if frame["type"] in types:
                    return frame


async def connect(hub: HubProcess) -> Any:
    ws = await websockets.connect(hub.ws_url, max_size=None)
    await ws.send(orjson.dumps({"type": "auth", "token": hub.token("u1")}).decode())
    return ws


def waited_out(hub: HubProcess) -> float:
    text = httpx.get(hub.url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("cimhub_catch_ups_waited_out_total "):
            return float(line.split()[1])
    return 0.0


async def test_a_resume_beyond_the_catch_up_limit_gets_a_reset_snapshot_not_an_error(
    hub: HubProcess, private_redis: RedisServer
) -> None:
    headers = {"authorization": f"Bearer {hub.token('u1')}"}
    async with httpx.AsyncClient(base_url=hub.url, headers=headers, timeout=30) as http:

        async def mutate(name: str, args: dict[str, Any]) -> dict[str, Any]:
            body = {"name": name, "args": args, "mutationId": uuid.uuid4().hex}
            response = await http.post("/v1/mutate", json=body)
            assert response.status_code == 200, response.text
            return dict(response.json())

        cim = (await mutate("create", {"dealId": "d1", "projectId": "p1", "title": "T"}))["cimId"]
        topic = f"cim:{cim}"
        # A live subscriber holds the topic's channel, so the resumes below need Redis only for their reads.
        keeper = Replica(await connect(hub), topic)
        await keeper.subscribe("k")
        await keeper.until("snapshot")
        # Two subscribers take a snapshot (which also caches the CIM's deal for their access check), then leave.
        left = []
        for name in ("a", "b"):
            replica = Replica(await connect(hub), topic)
            await replica.subscribe(name)
            await replica.until("snapshot")
            await replica.ws.close()
            left.append(replica)
        writer = await connect(hub)  # 1,500 mutations, pipelined 100 at a time on one connection (run in order)
        for start in range(0, GAP, 100):
            for n in range(start, start + 100):
                frame = {"type": "mutate", "id": f"m{n}", "name": "updateState", "mutationId": uuid.uuid4().hex}
                await writer.send(orjson.dumps({**frame, "args": {"cimId": cim, "title": f"title {n}"}}).decode())
            async with asyncio.timeout(60):
                while (answer := orjson.loads(await writer.recv())).get("id") != f"m{start + 99}":
                    assert answer["type"] != "error", answer
        assert answer["type"] == "result" and answer["revision"] == GAP + 1, answer
        await writer.close()

        replicas = []
        for old in left:  # each comes back on a new connection, holding what it had
            replica = Replica(await connect(hub), topic)
            replica.doc, replica.revision, replica.epoch, replica.commit = old.doc, old.revision, old.epoch, old.commit
            await replica.until("ready")
            replicas.append(replica)
        points = [{"revision": r.revision, "epoch": r.epoch, "commit": r.commit} for r in replicas]
        assert private_redis.process is not None
        os.kill(private_redis.process.pid, signal.SIGSTOP)
        try:
            for n, replica in enumerate(replicas):
                await replica.subscribe(f"r{n}", resume=points[n])
            await asyncio.sleep(1.0)  # the hub reads both frames; each waits on its access check's Redis read
        finally:
            os.kill(private_redis.process.pid, signal.SIGCONT)

        answers = [await replica.until("snapshot", "subscribed", "error") for replica in replicas]
        assert sorted(a["type"] for a in answers) == ["snapshot", "subscribed"], answers
        snapshot = next(a for a in answers if a["type"] == "snapshot")
        assert snapshot["reset"] is True
        served = next(r for r, a in zip(replicas, answers, strict=True) if a["type"] == "subscribed")
        assert [f["revision"] for f in served.frames] == [*range(2, GAP + 2), GAP + 1]  # the patches, then subscribed
        stored = (await http.post("/v1/query", json={"name": "get", "args": {"cimId": cim}})).json()["result"]
        assert all((r.doc, r.revision) == (stored["cim"], stored["revision"]) for r in replicas)
        assert await asyncio.to_thread(waited_out, hub) == 1
        for ws in (keeper.ws, *(r.ws for r in replicas)):
            await ws.close()
    assert "Traceback" not in hub.log_tail(400)
