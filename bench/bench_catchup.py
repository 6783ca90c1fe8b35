"""Benchmark: what far-behind consumers catching up cost everyone else on the hub (issue 11).

Usage::

    .venv/bin/python bench/bench_catchup.py            # 2 consumers, 2,250 patches behind, 15 s windows
    .venv/bin/python bench/bench_catchup.py --quick    # 6 s windows

The issue measured two slow consumers catching up ~2,250 patches each stall
the whole hub: /healthz 3.6 s, other subscribers' p99 2.3 s, mutation acks p99
3.1 s. This bench runs that case against one hub process (``python -m
cimhub.server``, dev mode) on its own embedded Redis, and prints, for each
configuration, a **baseline** row (the load alone) and a **catch-up** row (the
same load while the consumers catch up), measured in the same run on the same
hub:

* **the load**, in this process: a writer sends ``updateState`` mutations at
  20/s over one WebSocket, each changing the CIM's 1,000-character title (a
  ~1.2 KB patch), open loop (a stall shows as latency, not as fewer sends);
  20 live subscribers of that CIM; ``GET /healthz`` every 100 ms.
* **the catch-up**, in a child process: each consumer asks the hub (HTTP) for
  the CIM's revision and the commit id 2,250 revisions back, resumes from
  there, reads until ``subscribed`` (the patches were streamed) or a
  ``snapshot`` (a reset), unsubscribes, and starts again, back to back for the
  whole window. Consumers read as fast as they can: the hub's work per
  catch-up is the same for a slow reader, which only holds its queue longer.

Figures: commit-to-delivery latency of the other subscribers (the patch's
``ts`` against the receive time, whole milliseconds), mutation-ack latency
(send to ``result``), /healthz latency: p50 / p99 / max in ms, and how many
catch-ups were served (patches) or reset (snapshot).

Configurations: ``max_catch_up=1000`` (the default: a 2,250-patch gap is
answered with one reset snapshot) and ``max_catch_up=5000`` (the 2,250 patches
are streamed, at most ``catch_up_concurrency`` catch-ups at once, yielding to
the event loop every 64 patches). Both keep 10,000 patches in the log and
lift the per-user and per-connection rate limits (one user runs the whole
bench), so the gap can be prepared quickly and the consumers are never refused.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hubproc import HubProcess, start_hub

from cimhub.server.embedded import embedded_redis

GAP = 2_250
CONSUMERS = 2
OTHERS = 20
RATE = 20.0
HEALTH_EVERY_S = 0.1
TITLE_CHARS = 1_000
HUB_SETTINGS: dict[str, Any] = {
    "patch_log_retention": 10_000,
    "mutations_per_second": 100_000,
    "mutation_burst": 100_000,
    "user_mutations_per_second": 100_000,
    "user_mutation_burst": 100_000,
    "user_subscribes_per_second": 100_000,
    "user_subscribe_burst": 100_000,
    "user_queries_per_second": 100_000,
    "user_query_burst": 100_000,
}


def title(n: int) -> str:
    return f"{n:08d} " + "x" * (TITLE_CHARS - 9)


def percentiles(values: list[float]) -> str:
    if not values:
        return f"{'-':>7} {'-':>7} {'-':>7}"
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return f"{at(0.50):7.1f} {at(0.99):7.1f} {ordered[-1]:7.1f}"


@dataclass
class Window:
    delivery_ms: list[float]
    ack_ms: list[float]
    health_ms: list[float]
    served: int = 0
    reset: int = 0


# -- the far-behind consumers (a child process) ------------------------------------------------------


def consumer_process(pipe: Connection, hub_url: str, ws_url: str, token: str, cim: str, seconds: float) -> None:
    try:
        asyncio.run(_consumers(pipe, hub_url, ws_url, token, cim, seconds))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which stops the run with it
        pipe.send(f"the consumers failed: {type(exc).__name__}: {exc}")


async def _consumers(pipe: Connection, hub_url: str, ws_url: str, token: str, cim: str, seconds: float) -> None:
    counts = {"served": 0, "reset": 0}
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=hub_url, headers=headers, timeout=30) as http:
        sockets = [await websockets.connect(ws_url, max_size=None) for _ in range(CONSUMERS)]
        for ws in sockets:
            await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
            await ws.recv()  # ready
        pipe.send("ready")
        pipe.recv()  # go
        deadline = time.monotonic() + seconds

        async def one(ws: Any) -> None:
            topic = f"cim:{cim}"
            while time.monotonic() < deadline:
                head = (await http.post("/v1/query", json={"name": "get", "args": {"cimId": cim}})).json()["result"]
                back = head["revision"] - GAP
                args = {"cimId": cim, "fromRevision": back - 1, "limit": 1}
                entry = (await http.post("/v1/query", json={"name": "patches", "args": args})).json()["result"]
                point = entry["patches"][0]
                resume = {"revision": point["rev"], "epoch": point["epoch"], "commit": point["commit"]}
                request = {"type": "subscribe", "id": "c", "topic": topic, "resume": resume}
                await ws.send(orjson.dumps(request).decode())
                while True:
                    head_of_frame = (await ws.recv())[:40]
                    if '"subscribed"' in head_of_frame:
                        counts["served"] += 1
                        break
                    if '"snapshot"' in head_of_frame:
                        counts["reset"] += 1
                        break
                await ws.send(orjson.dumps({"type": "unsubscribe", "id": "u", "topic": topic}).decode())
                while '"unsubscribed"' not in (await ws.recv())[:40]:
                    pass

        await asyncio.gather(*(one(ws) for ws in sockets))
        for ws in sockets:
            await ws.close()
    pipe.send(counts)


# -- the load everyone else puts on the hub -----------------------------------------------------------


class Load:
    """The writer, the other subscribers and the /healthz poller; `measure` records one window."""

    def __init__(self, hub: HubProcess, cim: str, writer: Any, others: list[Any], http: httpx.AsyncClient) -> None:
        self.hub, self.cim, self.writer, self.others, self.http = hub, cim, writer, others, http
        self.recording: Window | None = None
        self.sent: dict[str, float] = {}
        self.n = 0
        self.tasks = [asyncio.ensure_future(self._acks())]
        self.tasks += [asyncio.ensure_future(self._deliveries(ws)) for ws in others]

    async def _acks(self) -> None:
        async for raw in self.writer:
            frame = orjson.loads(raw)
            if frame["type"] == "result" and (sent := self.sent.pop(frame["id"], None)) is not None:
                if self.recording is not None:
                    self.recording.ack_ms.append((time.perf_counter() - sent) * 1000)
            elif frame["type"] == "error":
                raise RuntimeError(f"the writer got an error: {frame}")

    async def _deliveries(self, ws: Any) -> None:
        async for raw in ws:
            received = time.time() * 1000
            frame = orjson.loads(raw)
            if frame["type"] == "patch" and self.recording is not None and frame.get("ts"):
                self.recording.delivery_ms.append(received - frame["ts"])

    async def _write(self, until: float) -> None:
        started, sent = time.monotonic(), 0
        while time.monotonic() < until:
            self.n += 1
            request_id = f"w{self.n}"
            self.sent[request_id] = time.perf_counter()
            frame = {
                "type": "mutate",
                "id": request_id,
                "name": "updateState",
                "args": {"cimId": self.cim, "title": title(self.n)},
                "mutationId": uuid.uuid4().hex,
            }
            await self.writer.send(orjson.dumps(frame).decode())
            sent += 1
            await asyncio.sleep(max(0.0, started + sent / RATE - time.monotonic()))

    async def _health(self, until: float, window: Window) -> None:
        while time.monotonic() < until:
            sent = time.perf_counter()
            response = await self.http.get("/healthz")
            response.raise_for_status()
            window.health_ms.append((time.perf_counter() - sent) * 1000)
            await asyncio.sleep(HEALTH_EVERY_S)

    async def measure(self, seconds: float) -> Window:
        window = Window([], [], [])
        self.recording = window
        until = time.monotonic() + seconds
        await asyncio.gather(self._write(until), self._health(until, window))
        await asyncio.sleep(1.0)  # the last acks and deliveries
        self.recording = None
        return window

    async def aclose(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


# -- one configuration -----------------------------------------------------------------------------------


async def prepare(hub: HubProcess, writer: Any) -> str:
    """A CIM with GAP + 100 revisions of ~1.2 KB patches, written as fast as the hub takes them."""
    await writer.send(orjson.dumps({"type": "auth", "token": hub.token("u1")}).decode())
    await writer.recv()  # ready
    create = {"dealId": "d1", "projectId": "p1", "title": title(0)}
    await writer.send(orjson.dumps(_mutate("c", "create", create)).decode())
    cim = await _result(writer, "c")
    total = GAP + 100
    for start in range(0, total, 200):
        batch = range(start, min(total, start + 200))
        for n in batch:
            await writer.send(orjson.dumps(_mutate(f"p{n}", "updateState", {"cimId": cim, "title": title(n)})).decode())
        await _result(writer, f"p{batch[-1]}")  # one connection's mutations run in order
    return str(cim)


def _mutate(request_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"type": "mutate", "id": request_id, "name": name, "args": args, "mutationId": uuid.uuid4().hex}


async def _result(ws: Any, request_id: str) -> Any:
    while True:
        frame = orjson.loads(await ws.recv())
        if frame.get("id") == request_id:
            if frame["type"] != "result":
                raise RuntimeError(f"preparing the CIM failed: {frame}")
            return frame["cimId"]


async def run_config(redis_url: str, max_catch_up: int, seconds: float) -> tuple[Window, Window]:
    prefix = f"bcu{uuid.uuid4().hex[:8]}"
    with start_hub(redis_url, prefix, max_catch_up=max_catch_up, **HUB_SETTINGS) as hub:
        token = hub.token("u1")
        async with contextlib.AsyncExitStack() as stack:
            writer = await stack.enter_async_context(websockets.connect(hub.ws_url, max_size=None))
            cim = await prepare(hub, writer)
            others = []
            for n in range(OTHERS):
                ws = await stack.enter_async_context(websockets.connect(hub.ws_url, max_size=None))
                await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
                await ws.send(orjson.dumps({"type": "subscribe", "id": f"s{n}", "topic": f"cim:{cim}"}).decode())
                others.append(ws)
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=hub.url, timeout=30))
            load = Load(hub, cim, writer, others, http)
            await asyncio.sleep(1.0)  # the snapshots are in
            try:
                baseline = await load.measure(seconds)
                async with consumers(hub, token, cim, seconds) as counts:
                    catching_up = await load.measure(seconds)
                catching_up.served, catching_up.reset = counts["served"], counts["reset"]
            finally:
                await load.aclose()
    return baseline, catching_up


@contextlib.asynccontextmanager
async def consumers(hub: HubProcess, token: str, cim: str, seconds: float) -> AsyncIterator[dict[str, int]]:
    """Run the consumers for `seconds` while the block runs; the dict holds their counts afterwards."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=consumer_process, args=(child, hub.url, hub.ws_url, token, cim, seconds)
    )
    process.start()
    child.close()  # so a consumer process that dies is an EOF here, not a wait forever
    counts: dict[str, int] = {}
    try:
        started = await asyncio.to_thread(parent.recv)
        if started != "ready":
            raise RuntimeError(started)
        parent.send("go")
        yield counts
        outcome = await asyncio.to_thread(parent.recv)
        if not isinstance(outcome, dict):
            raise RuntimeError(outcome)
        counts.update(outcome)
    finally:
        await asyncio.to_thread(process.join, 60)
        if process.is_alive():
            process.kill()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="6 s windows instead of 15 s")
    options = parser.parse_args()
    seconds = 6.0 if options.quick else 15.0
    print(
        f"{CONSUMERS} consumers resuming {GAP:,} patches behind, back to back; load: {RATE:g} mutations/s "
        f"(~1.2 KB patches), {OTHERS} other subscribers, /healthz every {HEALTH_EVERY_S * 1000:.0f} ms; "
        f"{seconds:g} s per row",
        flush=True,
    )
    header = (
        f"{'max_catch_up':>12} {'row':<9} {'catch-ups (served/reset)':>24} | {'delivery p50/p99/max ms':>23} | "
        f"{'ack p50/p99/max ms':>23} | {'/healthz p50/p99/max ms':>23}"
    )
    with tempfile.TemporaryDirectory(prefix="cimhub-bench-catchup-") as data_dir:
        async with embedded_redis(Path(data_dir)) as redis:
            print(header, flush=True)
            for max_catch_up in (1_000, 5_000):
                rows = await run_config(redis.url, max_catch_up, seconds)
                for name, window in zip(("baseline", "catch-up"), rows, strict=True):
                    done = f"{window.served}/{window.reset}" if name == "catch-up" else "-"
                    print(
                        f"{max_catch_up:>12} {name:<9} {done:>24} | {percentiles(window.delivery_ms)} | "
                        f"{percentiles(window.ack_ms)} | {percentiles(window.health_ms)}",
                        flush=True,
                    )


if __name__ == "__main__":
    asyncio.run(main())
