"""Benchmark over the wire: mutations/s and latency through one hub process, over a WebSocket and over HTTP.

Usage::

    .venv/bin/python bench/bench_wire.py            # ~1 minute
    .venv/bin/python bench/bench_wire.py --quick    # shorter phases
    .venv/bin/python bench/bench_wire.py --quick --ws-only --profile out/   # py-spy the hub per WebSocket row

A hub (``python -m cimhub.server``, on uvloop and httptools where installed, as
uvicorn picks them) runs on an embedded Redis (AOF everysec); 100 CIMs of
~12 KB are built as bench_store.py builds them, then the same realistic edits
are sent:

* **WebSocket, pipelined**: one connection with up to `WINDOW` mutations
  unanswered (the hub queues 256 per connection);
* **WebSocket, one at a time**: the same connection, one mutation in flight;
* **HTTP**: ``POST /v1/mutate`` over keep-alive connections, 1 and 16 at once.

Baselines in the same run: the same frames echoed by a bare `websockets`
server (uvloop) over one pipelined connection, and ``GET /healthz`` of the hub
over the same HTTP client. The load generator is this process: a small
Sans-I/O-style HTTP/1.1 client (prebuilt requests, Content-Length parsing) and
the `websockets` client; ``gen cpu`` is its CPU over wall time (100% = one
core), ``hub cpu`` the hub's, ``hub us/op`` the hub's CPU time per request
(the server's cost, which load on the host barely moves), ``redis cpu`` the
embedded Redis's CPU over wall time on the WebSocket rows. A row whose ``gen cpu`` is near 100% measured
the load generator, not the hub.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import websockets
from bench_fanout import cpu_seconds, py_spy, run_loop
from bench_store import HERO, PERSONA, SECTIONS, SLIDES_PER_SECTION, components, edits
from hubproc import HubProcess, start_hub
from websockets.typing import Subprotocol

from cimhub.server.embedded import embedded_redis, free_port

WINDOW = 128


class Socket:
    """One authenticated hub WebSocket; results are matched to their frame id."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.ids = itertools.count()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, hub: HubProcess) -> Socket:
        ws = await websockets.connect(
            hub.ws_url, subprotocols=[Subprotocol("cimhub.json.v1")], compression=None, max_size=None
        )
        await ws.send(orjson.dumps({"type": "auth", "token": hub.token("bench-writer")}).decode())
        assert orjson.loads(await ws.recv())["type"] == "ready"
        return cls(ws)

    async def _read(self) -> None:
        async for message in self.ws:
            frame = orjson.loads(message)
            waiter = self.waiting.pop(str(frame.get("id")), None)
            if waiter is not None:
                waiter.set_result(frame)

    async def mutate(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        frame_id = str(next(self.ids))
        waiter = asyncio.get_running_loop().create_future()
        self.waiting[frame_id] = waiter
        await self.ws.send(
            orjson.dumps(
                {"type": "mutate", "id": frame_id, "name": name, "mutationId": uuid.uuid4().hex, "args": args}
            ).decode()
        )
        return await waiter


class Http:
    """Keep-alive HTTP/1.1 connections with prebuilt requests: cheap enough not to be the limit."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token

    def post(self, path: str, body: dict[str, Any]) -> bytes:
        data = orjson.dumps(body)
        return (
            f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {self.token}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(data)}\r\n\r\n"
        ).encode() + data

    @staticmethod
    def get(path: str) -> bytes:
        return f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".encode()

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    @staticmethod
    async def request(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], raw: bytes) -> tuple[int, bytes]:
        reader, writer = conn
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await reader.readexactly(length)


class Sample:
    def __init__(self, hub_pid: int | None, redis_pid: int | None = None) -> None:
        self.hub_pid = hub_pid
        self.redis_pid = redis_pid
        self.redis = cpu_seconds(redis_pid) if redis_pid else 0.0
        self.latencies: list[float] = []
        self.errors = 0
        self.wall = time.perf_counter()
        self.gen = time.process_time()
        self.hub = cpu_seconds(hub_pid) if hub_pid else 0.0

    def row(self, label: str) -> tuple[str, ...]:
        wall = time.perf_counter() - self.wall
        gen = (time.process_time() - self.gen) / wall
        hub_s = cpu_seconds(self.hub_pid) - self.hub if self.hub_pid else 0.0
        hub = hub_s / wall
        redis = (cpu_seconds(self.redis_pid) - self.redis) / wall if self.redis_pid else 0.0
        ordered = sorted(self.latencies) or [0.0]

        def pct(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

        limit = "generator" if gen > 0.9 and hub < 0.9 else ""
        per_op = hub_s / max(1, len(self.latencies)) * 1e6
        return (
            label,
            f"{len(self.latencies) / wall:,.0f}",
            f"{pct(0.5):.2f}",
            f"{pct(0.99):.2f}",
            f"{hub:.0%}" if self.hub_pid else "-",
            f"{per_op:,.0f}" if self.hub_pid else "-",
            f"{redis:.0%}" if self.redis_pid else "-",
            f"{gen:.0%}",
            str(self.errors),
            limit,
        )


async def windowed(call: Callable[[], Awaitable[bool]], sample: Sample, window: int, seconds: float) -> None:
    """Keep `window` calls in flight for `seconds`; `call` returns False on an error."""
    deadline = time.perf_counter() + seconds

    async def lane() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            if await call():
                sample.latencies.append(time.perf_counter() - start)
            else:
                sample.errors += 1

    await asyncio.gather(*(lane() for _ in range(window)))


async def build(socket: Socket, n: int) -> str:
    created = await socket.mutate("create", {"dealId": f"deal{n % 10}", "projectId": "p1", "title": f"CIM {n}"})
    assert created["type"] == "result", created
    cim_id = str(created["cimId"])
    steps: list[tuple[str, dict[str, Any]]] = [
        ("saveBuyerPersona", {"persona": PERSONA}),
        ("saveHeroContext", {"heroContext": HERO}),
        (
            "createOutline",
            {
                "outline": [
                    {"id": s, "title": f"Section {s}", "description": "What this section covers " * 4} for s in SECTIONS
                ]
            },
        ),
    ]
    for k, section in enumerate(SECTIONS):
        for j in range(SLIDES_PER_SECTION):
            steps.append(
                (
                    "updateSlide",
                    {
                        "slide": {
                            "id": f"{section}-{j}",
                            "sectionId": section,
                            "title": f"Slide {k}.{j}",
                            "layoutType": "title-bullets-chart",
                            "components": components(k * 10 + j),
                        }
                    },
                )
            )
    for name, args in steps:
        frame = await socket.mutate(name, {"cimId": cim_id, **args})
        assert frame["type"] == "result", frame
    return cim_id


def serve_echo(port: int) -> None:
    from websockets.asyncio.server import serve

    async def handler(ws: Any) -> None:
        async for message in ws:
            frame = orjson.loads(message)
            await ws.send(orjson.dumps({"type": "result", "id": frame["id"], "result": {}}).decode())

    async def main() -> None:
        async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None, max_size=None):
            print("ready", flush=True)
            await asyncio.get_running_loop().create_future()

    run_loop(main())


@contextlib.contextmanager
def start_echo() -> Iterator[tuple[int, int]]:
    """Yields (pid, port) of a fresh echo server."""
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve-echo", str(port)], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == b"ready"
        yield process.pid, port
    finally:
        process.kill()
        process.wait()


async def echo_row(frames: list[tuple[str, dict[str, Any]]], seconds: float) -> tuple[str, ...]:
    with start_echo() as (pid, port):
        ws = await websockets.connect(f"ws://127.0.0.1:{port}", compression=None, max_size=None)
        socket = Socket(ws)
        cycle = itertools.cycle(frames)

        async def call() -> bool:
            name, args = next(cycle)
            return (await socket.mutate(name, args))["type"] == "result"

        sample = Sample(pid)
        await windowed(call, sample, WINDOW, seconds)
        await ws.close()
        return sample.row(f"baseline: bare websockets echo, pipelined ({WINDOW})")


async def http_rows(
    http: Http, hub_pid: int, edit: Callable[[], tuple[str, dict[str, Any]]], concurrency: int, seconds: float
) -> list[tuple[str, ...]]:
    """GET /healthz (the baseline), then POST /v1/mutate, over `concurrency` keep-alive connections."""
    conns = [await http.connect() for _ in range(concurrency)]
    free = list(conns)

    async def health() -> bool:
        conn = free.pop()
        try:
            return (await Http.request(conn, Http.get("/healthz")))[0] == 200
        finally:
            free.append(conn)

    async def mutate() -> bool:
        name, args = edit()
        conn = free.pop()
        try:
            body = {"name": name, "args": args, "mutationId": uuid.uuid4().hex}
            return (await Http.request(conn, http.post("/v1/mutate", body)))[0] == 200
        finally:
            free.append(conn)

    rows = []
    for label, call, duration in (
        (f"baseline: HTTP GET /healthz, {concurrency} at once", health, seconds / 2),
        (f"HTTP POST /v1/mutate, {concurrency} at once", mutate, seconds),
    ):
        sample = Sample(hub_pid)
        await windowed(call, sample, concurrency, duration)
        rows.append(sample.row(label))
    for _, writer in conns:
        writer.close()
    return rows


async def main(quick: bool, ws_only: bool, profile: Path | None, in_flight: int | None) -> None:
    seconds = 2.0 if quick else 6.0
    with tempfile.TemporaryDirectory(prefix="cimhub-bench-wire-") as data_dir:
        async with embedded_redis(Path(data_dir)) as redis:
            # One user on one address: lift the per-client bounds (docs/security.md).
            with start_hub(
                redis.url,
                f"bwire{uuid.uuid4().hex[:8]}",
                mutations_per_second=1e6,
                mutation_burst=1_000_000,
                user_mutations_per_second=1e6,
                user_mutation_burst=1_000_000,
                access_max_checks_per_user=1_000,
                **({"mutations_in_flight": in_flight} if in_flight else {}),
            ) as hub:
                socket = await Socket.open(hub)
                cim_ids = await asyncio.gather(*(build(socket, n) for n in range(100)))
                rng = random.Random(1)
                counter = itertools.count().__next__
                cims = itertools.cycle(cim_ids)

                async def ws_call() -> bool:
                    name, args = edits(next(cims), rng, counter)
                    return (await socket.mutate(name, args))["type"] == "result"

                rows: list[tuple[str, ...]] = []
                rows.append(await echo_row([edits(cim_ids[0], rng, counter) for _ in range(64)], seconds))
                for label, window in (
                    (f"WebSocket, pipelined ({WINDOW} in flight)", WINDOW),
                    ("WebSocket, one at a time", 1),
                ):
                    sample = Sample(hub.pid, redis.process.pid)
                    with py_spy(hub.pid, profile / f"hub-ws-{window}.txt" if profile else None):
                        await windowed(ws_call, sample, window, seconds)
                    rows.append(sample.row(label))

                http = Http(hub.port, hub.token("bench-writer"))
                for concurrency in () if ws_only else (1, 16):
                    rows += await http_rows(
                        http, hub.pid, lambda: edits(next(cims), rng, counter), concurrency, seconds
                    )
                await socket.ws.close()

    print(
        f"cimhub wire bench: {os.cpu_count()} CPUs, hub and load generator unpinned, embedded redis (AOF everysec); "
        f"100 CIMs of ~12 KB; {seconds:.0f}s per row; load average at the end {os.getloadavg()[0]:.1f}"
    )
    header = ("path", "mutations/s", "p50 ms", "p99 ms", "hub cpu", "hub us/op")
    header += ("redis cpu", "gen cpu", "errors", "limit")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print(
            "  ".join(c.ljust(w) if i in (0, 9) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s per row")
    parser.add_argument("--in-flight", type=int, metavar="N", help="the hub's CIMHUB_MUTATIONS_IN_FLIGHT")
    parser.add_argument("--ws-only", action="store_true", help="skip the HTTP rows")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy the hub during each WebSocket row")
    parser.add_argument("--serve-echo", type=int, metavar="PORT", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_echo:
        serve_echo(options.serve_echo)
    else:
        if options.profile:
            options.profile.mkdir(parents=True, exist_ok=True)
        run_loop(main(options.quick, options.ws_only, options.profile, options.in_flight))
