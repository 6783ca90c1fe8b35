"""The chaos scenarios of issue 11, each a function of (cluster, scale): short in tests, long from bench/chaos.py.

Every scenario runs writers and followers against real hubs and a real redis-server, breaks something
mid-load, lets the load continue, then checks (harness.check). A scenario returns its figures.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
import websockets
from conftest import RedisServer
from harness import ClientFollower, Ledger, RawFollower, Verdict, Writer, check, stored
from hubproc import HubProcess, start_hub


@dataclass
class Scale:
    load_s: float
    """Seconds of load before and after the fault."""
    hang_s: float
    storm_clients: int

    @classmethod
    def short(cls) -> Scale:
        return cls(load_s=1.0, hang_s=2.0, storm_clients=100)

    @classmethod
    def full(cls) -> Scale:
        return cls(load_s=5.0, hang_s=10.0, storm_clients=1_000)


@dataclass
class Cluster:
    redis: RedisServer
    hubs: list[HubProcess]
    tmp: Path


Fault = Callable[[Cluster, Scale], Awaitable[dict[str, Any]]]
HUB_SETTINGS: dict[str, Any] = {
    "patch_log_retention": 100_000,
    "redis_timeout_s": 1.0,
    "shutdown_grace_s": 0.5,
    "send_queue_bytes": 262_144,
    # Every test client is one user on 127.0.0.1: the per-user and per-address limits (docs/security.md)
    # would otherwise refuse the storm, which in production comes from many users and addresses.
    "max_connections_per_user": 5_000,
    "max_connections_per_ip": 5_000,
    "max_unauthenticated_per_ip": 5_000,
    "user_subscribes_per_second": 5_000,
    "user_subscribe_burst": 5_000,
}


async def _kill_redis(cluster: Cluster, scale: Scale) -> dict[str, Any]:
    started = time.monotonic()
    cluster.redis.kill()
    await asyncio.to_thread(cluster.redis.start)
    return {"redis_down_s": round(time.monotonic() - started, 2)}


async def _restore_older(cluster: Cluster, scale: Scale) -> dict[str, Any]:
    """Stop Redis, copy its data (the backup), continue, stop, put the copy back, restart."""
    backup = cluster.tmp / "backup"
    await asyncio.to_thread(cluster.redis.stop)
    await asyncio.to_thread(shutil.copytree, cluster.redis.data_dir, backup, ignore=shutil.ignore_patterns("*.log"))
    await asyncio.to_thread(cluster.redis.start)
    await asyncio.sleep(scale.load_s)  # acknowledged writes the restore will take away
    await asyncio.to_thread(cluster.redis.stop)
    for item in cluster.redis.data_dir.iterdir():
        if not item.name.endswith(".log"):
            shutil.rmtree(item) if item.is_dir() else item.unlink()
    shutil.copytree(backup, cluster.redis.data_dir, dirs_exist_ok=True)
    await asyncio.to_thread(cluster.redis.start)
    return {}


async def _sigstop(cluster: Cluster, scale: Scale) -> dict[str, Any]:
    assert cluster.redis.process is not None
    os.kill(cluster.redis.process.pid, signal.SIGSTOP)
    ready = []
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            started = time.monotonic()
            answer = await http.get(cluster.hubs[0].url + "/readyz")
            ready.append((answer.status_code, round(time.monotonic() - started, 3)))
        await asyncio.sleep(scale.hang_s)
    finally:
        os.kill(cluster.redis.process.pid, signal.SIGCONT)
    assert ready[0][0] == 503, "readyz said ready while Redis hung"
    return {"readyz_during_hang": ready[0]}


async def _kill_hub(cluster: Cluster, scale: Scale) -> dict[str, Any]:
    cluster.hubs[0].kill()
    return {}


async def _maxmemory(cluster: Cluster, scale: Scale) -> dict[str, Any]:
    admin = redis.Redis.from_url(cluster.redis.url)
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", "1")
    try:
        await asyncio.sleep(scale.hang_s)
        async with httpx.AsyncClient(timeout=10) as http:
            ready = (await http.get(cluster.hubs[0].url + "/readyz")).json()
    finally:
        admin.config_set("maxmemory", "0")
        admin.close()
    assert ready.get("redis") == "out_of_memory", ready
    return {}


async def _stalled_socket(cluster: Cluster, scale: Scale, cim: str) -> dict[str, Any]:
    """A subscriber that stops reading while big patches flow; the hub must cut it off, others unaffected."""
    hub = cluster.hubs[0]
    tiny = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tiny.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # its window fills fast, as a stalled phone's
    tiny.connect(("127.0.0.1", hub.port))
    ws = await websockets.connect(hub.ws_url, sock=tiny, max_queue=1, open_timeout=10)
    await ws.send(orjson.dumps({"type": "auth", "token": hub.token("u1")}).decode())
    await ws.recv()
    await ws.send(orjson.dumps({"type": "subscribe", "id": "s", "topic": f"cim:{cim}"}).decode())
    async with httpx.AsyncClient(
        base_url=hub.url, timeout=10, headers={"authorization": f"Bearer {hub.token('u1')}"}
    ) as http:
        for n in range(80):
            blob = base64.b64encode(os.urandom(90_000)).decode()  # permessage-deflate cannot shrink it
            response = await http.post(
                "/v1/mutate",
                json={
                    "name": "updateState",
                    "args": {"cimId": cim, "gatheredContext": {f"blob-{n % 2}": blob}},
                    "mutationId": f"blob-{uuid.uuid4().hex}",
                },
            )
            assert response.status_code == 200, response.text
            metrics = (await http.get("/metrics")).text
            if "cimhub_queue_overflows_total 1.0" in metrics:
                break
        overflowed = "cimhub_queue_overflows_total 1.0" in (await http.get("/metrics")).text
    with contextlib.suppress(Exception):
        await ws.close()
    assert overflowed, "the stalled client never overflowed its send queue: the scenario did not stall it"
    return {"stalled_client_overflowed": overflowed, "big_patches_until_cut_off": n + 1}


async def _storm(cluster: Cluster, scale: Scale, cim: str) -> dict[str, Any]:
    """Many clients subscribe at once (a reconnect storm after a hub restart): none may be refused."""
    hub = cluster.hubs[-1]
    token = hub.token("u1")
    refused: list[str] = []

    async def one(i: int) -> None:
        try:
            async with websockets.connect(hub.ws_url, open_timeout=30) as ws:
                await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
                await ws.send(orjson.dumps({"type": "subscribe", "id": f"s{i}", "topic": f"cim:{cim}"}).decode())
                async with asyncio.timeout(60):
                    while True:
                        frame = orjson.loads(await ws.recv())
                        if frame.get("id") == f"s{i}":
                            if frame["type"] != "snapshot":
                                refused.append(str(frame.get("error", frame["type"])))
                            return
        except Exception as exc:  # noqa: BLE001 - counted: the storm's figure
            refused.append(type(exc).__name__)

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(scale.storm_clients)))
    assert not refused, f"{len(refused)} of {scale.storm_clients} subscribes failed: {refused[:5]}"
    return {"storm_clients": scale.storm_clients, "storm_s": round(time.monotonic() - started, 2)}


SCENARIOS: dict[str, dict[str, Any]] = {
    "kill9_redis_always": {"fault": _kill_redis, "fsync": "always", "may_lose": False},
    "kill9_redis_everysec": {"fault": _kill_redis, "fsync": "everysec", "may_lose": True},
    "redis_restored_older": {"fault": _restore_older, "fsync": "always", "may_lose": True},
    "sigstop_redis": {"fault": _sigstop, "fsync": "always", "may_lose": False},
    "kill9_one_hub": {"fault": _kill_hub, "fsync": "always", "may_lose": False},
    "maxmemory": {"fault": _maxmemory, "fsync": "always", "may_lose": False},
    "stalled_socket": {"fault": _stalled_socket, "fsync": "always", "may_lose": False, "needs_cim": True},
    "reconnect_storm": {"fault": _storm, "fsync": "always", "may_lose": False, "needs_cim": True},
}


async def run(name: str, tmp: Path, scale: Scale) -> tuple[Verdict, dict[str, Any]]:
    """Run scenario `name` end to end; returns the checker's verdict and the scenario's figures."""
    spec = SCENARIOS[name]
    server = RedisServer(tmp / "redis", fsync=spec["fsync"])
    server.data_dir.mkdir(parents=True)
    server.start()
    prefix = f"chaos{uuid.uuid4().hex[:6]}"
    try:
        with contextlib.ExitStack() as stack:
            hubs = [stack.enter_context(start_hub(server.url, prefix, **HUB_SETTINGS)) for _ in range(2)]
            cluster = Cluster(server, hubs, tmp)
            return await _run(cluster, spec, scale)
    finally:
        with contextlib.suppress(Exception):
            if server.process is not None:
                os.kill(server.process.pid, signal.SIGCONT)
        server.stop()


async def _run(cluster: Cluster, spec: dict[str, Any], scale: Scale) -> tuple[Verdict, dict[str, Any]]:
    hubs = cluster.hubs
    async with httpx.AsyncClient(
        base_url=hubs[-1].url, timeout=10, headers={"authorization": f"Bearer {hubs[-1].token('u1')}"}
    ) as http:
        created = await http.post(
            "/v1/mutate",
            json={
                "name": "create",
                "args": {"dealId": "d1", "projectId": "p1", "title": "Chaos"},
                "mutationId": "create",
            },
        )
        assert created.status_code == 200, created.text
        cim = created.json()["cimId"]
    ledger = Ledger()
    stop, unfollow = asyncio.Event(), asyncio.Event()
    raw = RawFollower(hubs, cim)
    client = ClientFollower(hubs[-1], cim)
    await client.start()
    tasks = [asyncio.ensure_future(Writer(f"w{i}", hubs, cim, ledger).run(stop)) for i in range(2)]
    following = asyncio.ensure_future(raw.run(unfollow))
    try:
        await asyncio.sleep(scale.load_s)
        fault: Any = spec["fault"]
        started = time.monotonic()
        figures = await (fault(cluster, scale, cim) if spec.get("needs_cim") else fault(cluster, scale))
        acked_before = len(ledger.acked)
        # Recovery: the first acknowledgement after the fault.
        while len(ledger.acked) == acked_before and time.monotonic() - started < 60:  # noqa: ASYNC110 - the writers fill the ledger
            await asyncio.sleep(0.05)
        figures["recovery_s"] = round(time.monotonic() - started, 2)
        await asyncio.sleep(scale.load_s)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 90)
        alive = next(h for h in reversed(hubs) if h.alive())
        verdict = await check(alive, cim, ledger, [raw, client])  # the followers still follow meanwhile
    finally:
        stop.set()
        unfollow.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(following, 10)
        await client.aclose()
    figures.update(longest_ack_wait_s=round(ledger.longest_wait_s, 2), refusals=ledger.refusals)
    if not spec["may_lose"]:
        assert not verdict.lost, f"acknowledged mutations lost: {verdict.lost[:5]}"
    elif verdict.lost:
        assert verdict.resets >= 1, "writes were lost but no replica was told (no reset)"
    assert not verdict.duplicated, f"applied twice: {verdict.duplicated[:5]}"
    assert not verdict.divergent, f"replicas differ from the stored document: {verdict.divergent}"
    assert (await stored(alive, cim)) is not None
    return verdict, figures
