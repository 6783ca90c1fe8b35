"""Benchmark of fan-out: ~1 KB patches of one CIM delivered to many subscribers of one hub process.

Usage::

    .venv/bin/python bench/bench_fanout.py            # 100, 1,000 and 5,000 subscribers (~3 minutes)
    .venv/bin/python bench/bench_fanout.py --quick    # 100 and 1,000 subscribers (<60 s)
    .venv/bin/python bench/bench_fanout.py --compression none   # clients decline permessage-deflate

Two servers are measured in the same run, each on a fresh process per row:

* **ceiling**: a bare `websockets` broadcast server (no Redis, no auth, no
  per-connection state beyond the library's): a publisher connection sends a
  ready-made patch frame and the server `broadcast()`s it to every subscriber.
* **hub**: ``python -m cimhub.server`` (dev mode) on the same Redis the rest
  of cimhub uses; a publisher connection sends ``updateState`` mutations that
  each change the CIM's 1,000-character title, so every commit is one ~1.2 KB
  patch frame, the same size and shape as the ceiling's.

Subscribers are `websockets` asyncio clients in separate processes. On a
machine with 2 or more cores the server (and Redis) are pinned to core 0 and
the clients and the publisher to core 1, so the columns ``srv cpu`` and
``cli cpu`` (CPU time over wall time, 100% = one core) show which side was the
bottleneck: a row where ``cli cpu`` is near 100% and ``srv cpu`` is not
measures the clients, for both servers alike.

Per row:

* **deliveries/s**: a burst of patches published as fast as the server takes
  them; subscribers x patches over the time from the first publish to the last
  delivery.
* **p50/p99 ms**: commit-to-delivery latency at 20 patches/s: the patch's
  ``ts`` (ms, stamped by the hub when it runs the mutation; by the ceiling
  server when it takes the publisher's frame in) against the subscriber's
  receive time on the same clock. Both are whole milliseconds, so both carry
  the same 0-1 ms rounding. A server past its capacity at 20 patches/s queues
  its input too, which ``ts`` does not see: read such rows with ``srv cpu@20/s``.
* **KB/conn**: growth of the server's VmRSS from before the subscribers
  connected to after they all connected (and, on the hub, authenticated and
  took the snapshot), divided by their number.

Starts its own redis-server (embedded, AOF everysec) unless REDIS_URL is set,
in which case only keys under a fresh ``bfan<random>`` prefix are written and
then deleted. Raises the open-files limit to its hard maximum.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
import websockets
from websockets.typing import Subprotocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hubproc import HubProcess, start_hub

from cimhub.server.embedded import embedded_redis, free_port

SERVER_CPU = 0
CLIENT_CPU = 1
TITLE_CHARS = 1_000
LATENCY_RATE = 20.0
CONNECT_BATCH = 100
PUBLISH_PATH = "/publish"


# -- small helpers ------------------------------------------------------------------


def raise_open_files_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pin(pid: int, cpu: int) -> None:
    """Pin `pid` to one core, when there are two or more."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {cpu})


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def title(n: int) -> str:
    return f"{n:010d} " + "x" * (TITLE_CHARS - 11)


def now_ms() -> int:
    return int(time.time() * 1000)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


# -- the ceiling: a bare websockets broadcast server ----------------------------------------


def serve_ceiling(port: int) -> None:
    """Run the ceiling server until killed: subscribers wait, the publisher's frames are broadcast.

    Like the hub, it stamps each frame's ``ts`` as it takes the frame in and encodes it once
    for all subscribers; keepalive pings are off (the hub's are application frames).
    """
    from websockets.asyncio.server import broadcast, serve

    subscribers: set[Any] = set()

    async def handler(ws: Any) -> None:
        if ws.request.path == PUBLISH_PATH:
            async for message in ws:
                frame = orjson.loads(message)
                frame["ts"] = now_ms()
                broadcast(subscribers, orjson.dumps(frame).decode())
            return
        subscribers.add(ws)
        try:
            await ws.wait_closed()
        finally:
            subscribers.discard(ws)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", port, backlog=1024, ping_interval=None):
            print("ready", flush=True)
            await asyncio.get_running_loop().create_future()

    asyncio.run(main())


@contextlib.contextmanager
def start_ceiling() -> Iterator[tuple[int, str]]:
    """Yields (pid, ws url) of a fresh ceiling server."""
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve-ceiling", str(port)], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"ready":
            raise RuntimeError("the ceiling server did not start")
        yield process.pid, f"ws://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


# -- subscriber processes ------------------------------------------------------------------


@dataclass
class Plan:
    """What one client process connects to."""

    url: str
    kind: str  # "ceiling" or "hub"
    count: int
    token: str | None
    topic: str | None
    compression: str | None


class Subscribers:
    """The connections of one client process and what they received."""

    def __init__(self) -> None:
        self.sockets: list[Any] = []
        self.counts: list[int] = []
        self.target = 0
        self.pending = 0
        self.last = 0.0
        self.record = False
        self.latencies = array("d")
        self.done = asyncio.Event()
        self.errors: list[str] = []

    def arm(self, target: int, record: bool) -> None:
        self.counts = [0] * len(self.sockets)
        self.target, self.pending, self.last, self.record = target, len(self.sockets), 0.0, record
        self.latencies = array("d")
        self.done.clear()

    async def read(self, index: int, ws: Any) -> None:
        try:
            async for message in ws:
                received = time.time()
                frame = orjson.loads(message)
                kind = frame.get("type")
                if kind == "ping":
                    await ws.send(orjson.dumps({"type": "pong", "ts": frame.get("ts")}).decode())
                    continue
                if kind != "patch":
                    continue
                if self.record:
                    self.latencies.append(received * 1000 - frame["ts"])
                self.counts[index] += 1
                if self.counts[index] == self.target:
                    self.last = max(self.last, received)
                    self.pending -= 1
                    if self.pending == 0:
                        self.done.set()
        except websockets.ConnectionClosed as exc:
            self.errors.append(f"connection {index} closed: {exc}")
            self.done.set()

    async def open(self, plan: Plan) -> None:
        subprotocols = [Subprotocol("cimhub.json.v1")] if plan.kind == "hub" else None
        url = plan.url + ("/v1/ws" if plan.kind == "hub" else "/")

        async def one() -> Any:
            ws = await websockets.connect(
                url,
                subprotocols=subprotocols,
                compression=plan.compression,
                open_timeout=60,
                ping_interval=None,
                max_size=None,
            )
            if plan.kind == "hub":
                await ws.send(orjson.dumps({"type": "auth", "token": plan.token}).decode())
                assert orjson.loads(await ws.recv())["type"] == "ready"
                await ws.send(orjson.dumps({"type": "subscribe", "id": "s", "topic": plan.topic}).decode())
                answer = orjson.loads(await ws.recv())
                assert answer["type"] == "snapshot", answer
            return ws

        for start in range(0, plan.count, CONNECT_BATCH):
            batch = await asyncio.gather(*(one() for _ in range(min(CONNECT_BATCH, plan.count - start))))
            self.sockets.extend(batch)
        self.counts = [0] * len(self.sockets)
        self.readers = [asyncio.create_task(self.read(i, ws)) for i, ws in enumerate(self.sockets)]


def client_process(pipe: Connection, plan: Plan) -> None:
    """Entry point of a client process: connect, then obey the driver's commands."""
    pin(0, CLIENT_CPU)
    raise_open_files_limit()
    asyncio.run(_client_main(pipe, plan))


async def _client_main(pipe: Connection, plan: Plan) -> None:
    subs = Subscribers()
    await subs.open(plan)
    pipe.send(("connected", len(subs.sockets)))
    while True:
        command, *args = await asyncio.to_thread(pipe.recv)
        if command == "arm":
            target, record, timeout = args
            subs.arm(target, record)
            pipe.send(("armed",))
            try:
                await asyncio.wait_for(subs.done.wait(), timeout)
            except TimeoutError:
                subs.errors.append(f"timed out with {subs.pending} connections short of {target}")
            pipe.send(("done", subs.last, bytes(subs.latencies), list(subs.errors), subs.pending))
            subs.errors.clear()
        elif command == "stop":
            for ws in subs.sockets:
                ws.transport.abort()
            pipe.send(("stopped",))
            return


class ClientPool:
    """Client processes holding `total` subscriber connections between them."""

    def __init__(self, plans: list[Plan]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes = []
        for plan in plans:
            ours, theirs = ctx.Pipe()
            process = ctx.Process(target=client_process, args=(theirs, plan), daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    @staticmethod
    async def _recv(pipe: Connection, timeout: float) -> Any:
        if not await asyncio.to_thread(pipe.poll, timeout):
            raise TimeoutError("a client process did not answer")
        return pipe.recv()

    async def wait_connected(self) -> int:
        replies = await asyncio.gather(*(self._recv(p, 300) for p in self.pipes))
        return sum(reply[1] for reply in replies)

    async def arm(self, target: int, record: bool, timeout: float) -> None:
        for pipe in self.pipes:
            pipe.send(("arm", target, record, timeout))
        await asyncio.gather(*(self._recv(p, 30) for p in self.pipes))

    async def results(self, timeout: float) -> tuple[float, list[float], list[str]]:
        replies = await asyncio.gather(*(self._recv(p, timeout + 30) for p in self.pipes))
        last = max(reply[1] for reply in replies)
        latencies: list[float] = []
        errors: list[str] = []
        for _, _, raw, errs, _pending in replies:
            latencies.extend(array("d", raw))
            errors.extend(errs)
        return last, latencies, errors

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.processes if p.pid is not None)

    async def stop(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("stop",))
        for process in self.processes:
            await asyncio.to_thread(process.join, 10)
            if process.is_alive():
                process.kill()


# -- publishers -----------------------------------------------------------------------------


class Publisher:
    async def publish(self, n: int) -> None:
        """Publish patch number `n` (returns once handed to the server)."""
        raise NotImplementedError

    async def settle(self) -> None:
        """Wait until everything published was accepted."""

    async def aclose(self) -> None:
        raise NotImplementedError


class CeilingPublisher(Publisher):
    """Sends ready-made patch frames to the ceiling server, which stamps their ``ts``."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str) -> CeilingPublisher:
        return cls(await websockets.connect(url + PUBLISH_PATH, compression=None, max_size=None))

    async def publish(self, n: int) -> None:
        ts = now_ms()
        await self.ws.send(
            orjson.dumps(
                {
                    "type": "patch",
                    "topic": "cim:2b1f3c44-6a0e-5d7e-9a55-0e3c5b7d8f10",
                    "revision": n,
                    "epoch": "5f1c2a9b3d4e6f70",
                    "ops": [
                        {"op": "replace", "path": "/title", "value": title(n)},
                        {"op": "replace", "path": "/revision", "value": n},
                        {"op": "replace", "path": "/updatedAt", "value": ts},
                    ],
                    "mutation": "updateState",
                    "mutationId": uuid.uuid4().hex,
                    "actor": "bench-publisher",
                    "ts": ts,
                }
            ).decode()
        )

    async def aclose(self) -> None:
        await self.ws.close()


class HubPublisher(Publisher):
    """Sends updateState mutations over one socket and reads their results in the background.

    At most `WINDOW` mutations are unanswered at once: the hub queues 256 per
    connection and answers more with `overloaded`.
    """

    WINDOW = 128

    def __init__(self, ws: Any, cim_id: str) -> None:
        self.ws = ws
        self.cim_id = cim_id
        self.sent = 0
        self.answered = 0
        self.errors: list[Any] = []
        self.caught_up = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, hub: HubProcess) -> HubPublisher:
        ws = await websockets.connect(
            hub.ws_url, subprotocols=[Subprotocol("cimhub.json.v1")], compression=None, max_size=None
        )
        await ws.send(orjson.dumps({"type": "auth", "token": hub.token("bench-publisher")}).decode())
        assert orjson.loads(await ws.recv())["type"] == "ready"
        await ws.send(
            orjson.dumps(
                {
                    "type": "mutate",
                    "id": "c",
                    "name": "create",
                    "mutationId": uuid.uuid4().hex,
                    "args": {"dealId": "bench-deal", "projectId": "bench", "title": title(0)},
                }
            ).decode()
        )
        created = orjson.loads(await ws.recv())
        assert created["type"] == "result", created
        return cls(ws, created["cimId"])

    async def _read(self) -> None:
        async for message in self.ws:
            frame = orjson.loads(message)
            if frame["type"] == "result":
                self.answered += 1
            elif frame["type"] == "error":
                self.answered += 1
                self.errors.append(frame["error"])
            if self.answered >= self.sent:
                self.caught_up.set()
            if self.sent - self.answered < self.WINDOW:
                self.room.set()

    async def publish(self, n: int) -> None:
        while self.sent - self.answered >= self.WINDOW:
            self.room.clear()
            await asyncio.wait_for(self.room.wait(), 120)
        self.sent += 1
        self.caught_up.clear()
        await self.ws.send(
            orjson.dumps(
                {
                    "type": "mutate",
                    "id": str(n),
                    "name": "updateState",
                    "mutationId": uuid.uuid4().hex,
                    "args": {"cimId": self.cim_id, "title": title(n)},
                }
            ).decode()
        )

    async def settle(self) -> None:
        if self.answered < self.sent:
            await asyncio.wait_for(self.caught_up.wait(), 120)
        if self.errors:
            raise RuntimeError(f"mutations failed: {self.errors[:3]}")

    async def aclose(self) -> None:
        self.reader.cancel()
        await self.ws.close()


# -- one row ----------------------------------------------------------------------------------


@dataclass
class Row:
    server: str
    subscribers: int
    deliveries_per_s: float
    p50_ms: float
    p99_ms: float
    kb_per_conn: float
    burst_srv_cpu: float
    burst_cli_cpu: float
    latency_srv_cpu: float
    errors: list[str]


def plans_for(
    kind: str, url: str, total: int, token: str | None, topic: str | None, compression: str | None
) -> list[Plan]:
    processes = max(1, min(4, math.ceil(total / 2_500)))
    share = [total // processes + (1 if i < total % processes else 0) for i in range(processes)]
    return [Plan(url, kind, n, token, topic, compression) for n in share if n]


async def measure(
    server: str,
    pid: int,
    pool: ClientPool,
    publisher: Publisher,
    n: int,
    burst: int,
    latency_patches: int,
    rss_before: int,
) -> Row:
    connected = await pool.wait_connected()
    if connected != n:
        raise RuntimeError(f"{server}: {connected} of {n} subscribers connected")
    await asyncio.sleep(1.0)  # let the server finish with the handshakes before reading its memory
    kb_per_conn = (rss_kb(pid) - rss_before) / n
    errors: list[str] = []

    # Throughput: a burst published as fast as the server takes it.
    await pool.arm(burst, record=False, timeout=120)
    srv0, cli0, t0 = cpu_seconds(pid), pool.cpu_seconds(), time.time()
    for i in range(burst):
        await publisher.publish(1_000_000 + i)
    last, _, errs = await pool.results(120)
    elapsed = (last if last > 0 and not errs else time.time()) - t0
    srv_cpu = (cpu_seconds(pid) - srv0) / elapsed
    cli_cpu = (pool.cpu_seconds() - cli0) / elapsed
    errors += errs
    await publisher.settle()
    deliveries = n * burst / elapsed

    # Latency at a steady 20 patches/s.
    await pool.arm(latency_patches, record=True, timeout=120)
    srv0, t0 = cpu_seconds(pid), time.time()
    start = time.monotonic()
    for i in range(latency_patches):
        delay = start + i / LATENCY_RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await publisher.publish(2_000_000 + i)
    _, latencies, errs = await pool.results(120)
    latency_cpu = (cpu_seconds(pid) - srv0) / (time.time() - t0)
    errors += errs
    await publisher.settle()
    latencies.sort()
    return Row(
        server,
        n,
        deliveries,
        percentile(latencies, 0.50),
        percentile(latencies, 0.99),
        kb_per_conn,
        srv_cpu,
        cli_cpu,
        latency_cpu,
        errors,
    )


async def ceiling_row(n: int, burst: int, latency_patches: int, compression: str | None) -> Row:
    with start_ceiling() as (pid, url):
        pin(pid, SERVER_CPU)
        publisher = await CeilingPublisher.open(url)
        await asyncio.sleep(0.3)
        rss_before = rss_kb(pid)
        pool = ClientPool(plans_for("ceiling", url, n, None, None, compression))
        try:
            return await measure("ceiling", pid, pool, publisher, n, burst, latency_patches, rss_before)
        finally:
            await publisher.aclose()
            await pool.stop()


@contextlib.contextmanager
def py_spy(pid: int, out: Path | None) -> Iterator[None]:
    """Sample `pid` with py-spy into `out` (collapsed stacks) while the block runs; nothing when `out` is None."""
    if out is None:
        yield
        return
    spy = Path(sys.executable).parent / "py-spy"
    recorder = subprocess.Popen(
        [
            str(spy),
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "250",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        recorder.send_signal(2)
        recorder.wait(30)


async def hub_row(
    redis_url: str,
    prefix: str,
    n: int,
    burst: int,
    latency_patches: int,
    compression: str | None,
    profile: Path | None,
) -> Row:
    # One user on one address holds every subscriber: lift the per-client bounds (docs/security.md).
    with start_hub(
        redis_url,
        prefix,
        mutations_per_second=1e6,
        mutation_burst=1_000_000,
        user_mutations_per_second=1e6,
        user_mutation_burst=1_000_000,
        user_subscribes_per_second=1e6,
        user_subscribe_burst=1_000_000,
        max_connections_per_user=1_000_000,
        max_connections_per_ip=1_000_000,
        max_unauthenticated_per_ip=1_000_000,
    ) as hub:
        pin(hub.pid, SERVER_CPU)
        publisher = await HubPublisher.open(hub)
        for i in range(50):  # warm the paths a commit and a delivery take
            await publisher.publish(i + 1)
        await publisher.settle()
        await asyncio.sleep(0.3)
        rss_before = rss_kb(hub.pid)
        url = hub.url.replace("http://", "ws://")
        pool = ClientPool(plans_for("hub", url, n, hub.token("bench-reader"), f"cim:{publisher.cim_id}", compression))
        try:
            with py_spy(hub.pid, profile / f"hub-{n}.txt" if profile else None):
                return await measure("hub", hub.pid, pool, publisher, n, burst, latency_patches, rss_before)
        except Exception:
            print(f"hub log (exit code {hub.process.poll()}):\n{hub.log_tail(30)}", file=sys.stderr)
            raise
        finally:
            await publisher.aclose()
            await pool.stop()


# -- the run -------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def redis_for_bench() -> AsyncIterator[tuple[str, str]]:
    """(redis url, key prefix): the REDIS_URL one, or an embedded one pinned beside the server."""
    prefix = f"bfan{uuid.uuid4().hex[:8]}"
    external = os.environ.get("REDIS_URL")
    if external:
        try:
            yield external, prefix
        finally:
            client = aioredis.from_url(external)
            keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
            for start in range(0, len(keys), 500):
                await client.delete(*keys[start : start + 500])
            await client.aclose()
        return
    with tempfile.TemporaryDirectory(prefix="cimhub-bench-fanout-") as data_dir:
        async with embedded_redis(Path(data_dir)) as server:
            pin(server.process.pid, SERVER_CPU)
            yield server.url, prefix


def print_table(rows: list[Row]) -> None:
    print(
        f"{'server':<8} {'subs':>6} {'deliveries/s':>13} {'p50 ms':>7} {'p99 ms':>7} {'KB/conn':>8} "
        f"{'srv cpu':>8} {'cli cpu':>8} {'srv cpu@20/s':>13}"
    )
    for r in rows:
        print(
            f"{r.server:<8} {r.subscribers:>6} {r.deliveries_per_s:>13,.0f} {r.p50_ms:>7.1f} {r.p99_ms:>7.1f} "
            f"{r.kb_per_conn:>8.1f} {r.burst_srv_cpu:>8.0%} {r.burst_cli_cpu:>8.0%} {r.latency_srv_cpu:>13.0%}"
        )
        for error in r.errors[:3]:
            print(f"    ! {error}")


def print_aims(rows: list[Row]) -> bool:
    by = {(r.server, r.subscribers): r for r in rows}
    ceiling, hub = by.get(("ceiling", 1000)), by.get(("hub", 1000))
    if ceiling is None or hub is None:
        return True
    checks = [
        ("deliveries/s at 1,000 subscribers", hub.deliveries_per_s / ceiling.deliveries_per_s, ">=", 0.80),
        ("p99 commit-to-delivery at 1,000 subscribers, 20/s", hub.p99_ms / max(ceiling.p99_ms, 1.0), "<=", 2.0),
        ("memory per idle connection", hub.kb_per_conn / max(ceiling.kb_per_conn, 1e-9), "<=", 2.0),
    ]
    print("\naims, hub / ceiling in this run:")
    met = True
    for name, ratio, op, aim in checks:
        ok = ratio >= aim if op == ">=" else ratio <= aim
        met &= ok
        print(f"  {name:<52} {ratio:>6.2f}  (aim {op} {aim:.2f})  {'met' if ok else 'MISSED'}")
    print("  (p99 ratio uses max(ceiling p99, 1 ms): both are whole-millisecond stamps)")
    return met


async def main(quick: bool, compression: str | None, profile: Path | None, levels: list[int] | None) -> None:
    limit = raise_open_files_limit()
    levels = levels or ([100, 1_000] if quick else [100, 1_000, 5_000])
    burst_deliveries = 30_000 if quick else 150_000
    latency_seconds = 2.0 if quick else 8.0
    latency_patches = int(latency_seconds * LATENCY_RATE)
    pin(os.getpid(), CLIENT_CPU)
    print(
        f"fan-out of ~1.2 KB patch frames on {os.cpu_count()} cores (server+redis on core {SERVER_CPU}, "
        f"clients on core {CLIENT_CPU}); open files {limit}; compression {compression or 'none'}; "
        f"{'REDIS_URL' if os.environ.get('REDIS_URL') else 'embedded redis (AOF everysec)'}"
    )
    rows: list[Row] = []
    started = time.monotonic()
    async with redis_for_bench() as (redis_url, prefix):
        for n in levels:
            burst = max(10, burst_deliveries // n)
            rows.append(await ceiling_row(n, burst, latency_patches, compression))
            rows.append(await hub_row(redis_url, f"{prefix}{n}", n, burst, latency_patches, compression, profile))
            print(f"  ... {n} subscribers done ({time.monotonic() - started:.0f} s)", flush=True)
    print()
    print_table(rows)
    print_aims(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 subscribers, shorter phases (<60 s)")
    parser.add_argument(
        "--compression",
        choices=["deflate", "none"],
        default="deflate",
        help="what the subscribers offer (browsers offer deflate)",
    )
    parser.add_argument(
        "--subscribers", type=int, nargs="+", metavar="N", help="rows to run instead of the default ones"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample each hub row with py-spy (pip install py-spy) into DIR/hub-<subscribers>.txt",
    )
    parser.add_argument("--serve-ceiling", type=int, metavar="PORT", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_ceiling:
        serve_ceiling(options.serve_ceiling)
    else:
        if options.profile:
            options.profile.mkdir(parents=True, exist_ok=True)
        compression = None if options.compression == "none" else "deflate"
        asyncio.run(main(options.quick, compression, options.profile, options.subscribers))
