"""Two hubs on a real 3+3 Redis Cluster under load: a primary killed, a slot migrated.

Writers send `updateState` mutations that each add one key to a CIM's
`gatheredContext` and record every acknowledgement. After the fault, every
acknowledged key must be in the stored document exactly as written, the patch
log must replay to it, and a subscriber's replica must equal it.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import httpx
import websockets
from cluster import RedisClusterProcess, move_slot
from hubproc import HubProcess, start_hub
from redis.crc import key_slot
from support.waiting import eventually

from cimhub.protocol.patch import apply


class Load:
    """Writers over several CIMs, alternating hubs, retrying a refused mutation with the same id."""

    def __init__(self, hubs: list[HubProcess], cims: list[str]) -> None:
        self.hubs = hubs
        self.cims = cims
        self.acked: dict[str, list[int]] = {cim: [] for cim in cims}
        self.stop = asyncio.Event()
        self.refusals: list[str] = []

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=15) as http:
            await asyncio.gather(*(self._writer(http, cim) for cim in self.cims))

    async def _writer(self, http: httpx.AsyncClient, cim: str) -> None:
        hubs = itertools.cycle(self.hubs)
        for n in itertools.count():
            if self.stop.is_set():
                return
            mutation_id = f"{cim[:8]}-{n}"
            body = {
                "name": "updateState",
                "mutationId": mutation_id,
                "args": {"cimId": cim, "gatheredContext": {f"k{n}": n}},
            }
            deadline = asyncio.get_running_loop().time() + 60
            while asyncio.get_running_loop().time() < deadline:
                hub = next(hubs)
                try:
                    response = await http.post(f"{hub.url}/v1/mutate", json=body, headers=auth(hub))
                except httpx.HTTPError:
                    await asyncio.sleep(0.2)
                    continue
                if response.status_code == 200:
                    self.acked[cim].append(n)
                    break
                error = response.json()["error"]
                assert error["retryable"], f"a non-retryable refusal under a fault: {error}"
                self.refusals.append(error["message"])
                await asyncio.sleep(0.2)
            else:
                return  # never acknowledged: not counted, and this writer stops


def auth(hub: HubProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {hub.token('banker')}"}


async def create_cims(hub: HubProcess, count: int) -> list[str]:
    cims = []
    async with httpx.AsyncClient(timeout=15) as http:
        for i in range(count):
            response = await http.post(
                f"{hub.url}/v1/mutate",
                headers=auth(hub),
                json={
                    "name": "create",
                    "mutationId": uuid.uuid4().hex,
                    "args": {
                        "dealId": str(uuid.uuid4()),
                        "projectId": str(uuid.uuid4()),
                        "title": f"Cluster {i}",
                    },
                },
            )
            assert response.status_code == 200, response.text
            cims.append(response.json()["cimId"])
    return cims


async def stored(hub: HubProcess, cim: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=15) as http:
        for _ in range(50):
            response = await http.post(
                f"{hub.url}/v1/query",
                headers=auth(hub),
                json={"name": "get", "args": {"cimId": cim}},
            )
            if response.status_code == 200:
                return response.json()["result"]  # type: ignore[no-any-return]
            await asyncio.sleep(0.2)
    raise AssertionError(f"{cim} could not be read back")


async def replay(hub: HubProcess, cim: str) -> dict[str, Any]:
    """The document rebuilt from the patch log alone, from revision 1 (the create)."""
    async with httpx.AsyncClient(timeout=15) as http:
        response = await http.post(
            f"{hub.url}/v1/query",
            headers=auth(hub),
            json={"name": "patches", "args": {"cimId": cim, "fromRevision": 0}},
        )
        assert response.status_code == 200, response.text
        patches = response.json()["result"]["patches"]
    doc: Any = {}
    for patch in patches:
        doc = apply(doc, patch["ops"])
    return doc  # type: ignore[no-any-return]


class Replica:
    """A subscriber on a raw socket: snapshot, then patches, resubscribing from its revision when cut off."""

    def __init__(self, hub: HubProcess, cim: str) -> None:
        self.hub, self.cim = hub, cim
        self.doc: Any = None
        self.revision = 0
        self.epoch = ""

    async def follow(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with websockets.connect(self.hub.ws_url) as ws:
                    await ws.send(f'{{"type":"auth","token":"{self.hub.token("banker")}"}}')
                    frame: dict[str, Any] = {
                        "type": "subscribe",
                        "id": "s",
                        "topic": f"cim:{self.cim}",
                    }
                    if self.doc is not None:
                        frame["resume"] = {"revision": self.revision, "epoch": self.epoch}
                    await ws.send(__import__("json").dumps(frame))
                    async for raw in ws:
                        self._take(__import__("json").loads(raw))
            except (OSError, websockets.ConnectionClosed):
                await asyncio.sleep(0.2)

    def _take(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "snapshot":
            self.doc, self.revision, self.epoch = frame["data"], frame["revision"], frame["epoch"]
        elif frame["type"] == "patch" and frame["revision"] == self.revision + 1:
            self.doc = apply(self.doc, frame["ops"])
            self.revision, self.epoch = frame["revision"], frame["epoch"]


async def more_acks(load: Load, cim: str, count: int) -> None:
    """Wait until `count` more mutations of `cim` are acknowledged (bounded: a stuck writer fails the test)."""
    target = len(load.acked[cim]) + count
    await eventually(lambda: len(load.acked[cim]) >= target, 90, what=f"progress on {cim} ({load.refusals[-3:]})")


def check(doc: dict[str, Any], acked: list[int]) -> None:
    context = doc["cim"]["gatheredContext"] if "cim" in doc else doc["gatheredContext"]
    missing = [n for n in acked if context.get(f"k{n}") != n]
    assert missing == [], f"acknowledged but lost: {missing[:10]} (of {len(acked)})"


async def test_a_killed_primary_loses_no_acknowledged_mutation_with_commit_replicas(
    private_cluster: RedisClusterProcess,
) -> None:
    prefix = f"fo{uuid.uuid4().hex[:6]}"
    settings = {"commit_replicas": 1, "commit_replica_timeout_ms": 2000}
    with (
        start_hub(private_cluster.url, prefix, **settings) as a,
        start_hub(private_cluster.url, prefix, **settings) as b,
    ):
        cims = await create_cims(a, 6)
        load = Load([a, b], cims)
        writers = asyncio.ensure_future(load.run())
        await asyncio.sleep(2)
        victim = private_cluster.owner_of(f"{prefix}:cim:{{{cims[0]}}}")
        victim.kill()
        await asyncio.to_thread(private_cluster.wait_healthy)
        # The promoted replica has no replica of its own: with commit_replicas=1 its commits are refused
        # (retryable) until the failed node is back, as its replica. Nothing is acknowledged meanwhile.
        await asyncio.to_thread(private_cluster.restart, victim)
        await more_acks(load, cims[0], 20)  # writes to the failed-over slot go on
        load.stop.set()
        await writers
        for cim in cims:
            doc = await stored(a, cim)
            check(doc, load.acked[cim])
            assert await replay(b, cim) == doc["cim"]
        assert len(load.acked[cims[0]]) >= 20


async def test_a_slot_migrated_under_load_keeps_every_acknowledgement_and_replica(
    private_cluster: RedisClusterProcess,
) -> None:
    prefix = f"mg{uuid.uuid4().hex[:6]}"
    with start_hub(private_cluster.url, prefix) as a, start_hub(private_cluster.url, prefix) as b:
        cims = await create_cims(a, 3)
        load = Load([a, b], cims)
        replica = Replica(b, cims[0])
        stop_replica = asyncio.Event()
        following = asyncio.ensure_future(replica.follow(stop_replica))
        writers = asyncio.ensure_future(load.run())
        await asyncio.sleep(1.5)
        key = f"{prefix}:cim:{{{cims[0]}}}"
        source = private_cluster.owner_of(key)
        target = next(n for n in private_cluster.primaries() if n is not source)
        await asyncio.to_thread(move_slot, private_cluster, key_slot(key.encode()), target)
        assert private_cluster.owner_of(key) is target
        await more_acks(load, cims[0], 20)
        load.stop.set()
        await writers
        doc = await stored(a, cims[0])
        for _ in range(100):
            if replica.revision == doc["revision"]:
                break
            await asyncio.sleep(0.1)
        stop_replica.set()
        following.cancel()
        for cim in cims:
            check(await stored(b, cim), load.acked[cim])
        assert replica.doc == doc["cim"]
