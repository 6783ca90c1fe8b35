"""Scale curve: commits/s and deliveries/s on one Redis node vs a 3-primary Redis Cluster, 1/2/4 hub processes.

Usage::

    .venv/bin/python bench/bench_scale.py            # ~2 minutes
    .venv/bin/python bench/bench_scale.py --quick    # ~40 s, same table

Starts its own redis-server (one node, AOF everysec) and a 3+3 Redis Cluster
of the same redis-server (tests/cluster.py), both on loopback. Each "hub
process" is a real OS process running what a hub runs for mutations: a
`MutationEngine` over a `CimStore` (the commit script, the patch log, the
indexes: on the cluster written after the commit) and the hub's broker
(`Broker` or `ClusterBroker`) subscribed to the channels of its CIMs, counting
every patch it receives. Each process owns 25 CIMs and runs 20 writers
(updateState edits), so the rows differ only in the number of processes and in
the Redis behind them. Redis CPU is read from INFO (all primaries of the
cluster). Every row says which resource ran out; on this 2-core machine the
processes and every redis-server share the same two cores, so the curve shows
where that limit bites rather than what three machines would do.

Writes docs/scaling.png (made by this script) and prints the table that
docs/scaling.md quotes.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, cast

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from cluster import RedisClusterProcess

from cimhub.server.connect import connect
from cimhub.server.embedded import free_port

CIMS_PER_PROCESS = 25
WRITERS_PER_PROCESS = 20


def hub_process(url: str, cluster: bool, seconds: float, start_at: float, out: Any) -> None:
    """One hub's mutation and delivery path, run in its own process; reports (commits, deliveries, cpu_s)."""
    out.put(asyncio.run(_hub(url, cluster, seconds, start_at)))


async def _hub(url: str, cluster: bool, seconds: float, start_at: float) -> tuple[int, int, float]:
    from redis.asyncio.cluster import RedisCluster

    from cimhub.server.hub.broker import Broker, ClusterBroker
    from cimhub.server.store.cims import CimStore
    from cimhub.server.store.engine import MutationEngine
    from cimhub.server.store.keys import Keys

    client = connect(url)
    keys = Keys(f"scale{uuid.uuid4().hex[:8]}", cluster=cluster)
    store = CimStore(client, keys)  # type: ignore[arg-type]
    engine = MutationEngine(store)
    deliveries = 0

    def on_message(channel: str, data: bytes) -> None:
        nonlocal deliveries
        deliveries += 1

    alive = keys.alive_channel
    broker: Broker | ClusterBroker = (
        ClusterBroker(cast(RedisCluster, client), alive_channel=alive) if cluster else Broker(url, alive_channel=alive)
    )
    await broker.start(on_message, lambda: None)
    cims = []
    for i in range(CIMS_PER_PROCESS):
        created = await engine.mutate(
            "create",
            {"dealId": str(uuid.uuid4()), "projectId": str(uuid.uuid4()), "title": f"Scale {i}"},
            actor="bench",
            mutation_id=uuid.uuid4().hex,
            user_id="bench",
        )
        cims.append(created.cim_id)
        await broker.subscribe(keys.cim_channel(created.cim_id))
    await asyncio.sleep(max(0.0, start_at - time.time()))
    deliveries = 0
    commits = 0
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    deadline = time.monotonic() + seconds

    async def writer(n: int) -> None:
        nonlocal commits
        i = 0
        while time.monotonic() < deadline:
            cim = cims[(n + i) % len(cims)]
            await engine.mutate(
                "updateState",
                {"cimId": cim, "title": f"t{n}-{i}"},
                actor="bench",
                mutation_id=uuid.uuid4().hex,
                user_id="bench",
            )
            commits += 1
            i += 1

    await asyncio.gather(*(writer(n) for n in range(WRITERS_PER_PROCESS)))
    await asyncio.sleep(0.5)  # the last notifications
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    await broker.aclose()
    await client.aclose()
    return commits, deliveries, cpu


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def redis_cpu(ports: list[int]) -> float:
    total = 0.0
    for port in ports:
        with redis.Redis(port=port) as client:
            info = client.info("cpu")
            total += float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
    return total


def run_row(url: str, cluster: bool, ports: list[int], processes: int, seconds: float) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    start_at = time.time() + 4.0 + processes  # every process set up before the clock starts
    workers = [
        context.Process(target=hub_process, args=(url, cluster, seconds, start_at, out)) for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    time.sleep(max(0.0, start_at - time.time()))
    cpu_before, machine_before = redis_cpu(ports), machine_busy()
    results = [out.get(timeout=seconds + 120) for _ in workers]
    cpu_redis = redis_cpu(ports) - cpu_before
    machine_after = machine_busy()
    busy = (machine_after[0] - machine_before[0]) / max(1.0, machine_after[1] - machine_before[1])
    for worker in workers:
        worker.join()
    commits = sum(r[0] for r in results)
    deliveries = sum(r[1] for r in results)
    hub_cpu = sum(r[2] for r in results)
    return {
        "backend": "3-primary cluster" if cluster else "1 node",
        "processes": processes,
        "commits_s": commits / seconds,
        "deliveries_s": deliveries / seconds,
        "hub_cpu": hub_cpu / seconds,
        "redis_cpu": cpu_redis / seconds,
        "machine_busy": busy,
    }


def limit_of(row: dict[str, Any]) -> str:
    """Which resource ran out: the two cores are shared by every process and every redis-server."""
    if row["machine_busy"] > 0.85:
        return f"machine: {row['machine_busy']:.0%} of all cores busy (these processes and anything else)"
    if row["redis_cpu"] > 0.85 * (1 if row["backend"] == "1 node" else 3):
        return "Redis primaries' cores"
    return "hub processes (client side)"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for backend in ("1 node", "3-primary cluster"):
        mine = [r for r in rows if r["backend"] == backend]
        xs = [r["processes"] for r in mine]
        axes[0].plot(xs, [r["commits_s"] for r in mine], marker="o", label=backend)
        axes[1].plot(xs, [r["deliveries_s"] for r in mine], marker="o", label=backend)
    for axis, title in zip(axes, ("commits/s", "deliveries/s"), strict=True):
        axis.set_xlabel("hub processes")
        axis.set_title(title)
        axis.set_xticks([1, 2, 4])
        axis.grid(alpha=0.3)
        axis.legend()
    fig.suptitle(f"cimhub scale on {os.cpu_count()} cores (bench/bench_scale.py)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 s per row instead of 15 s")
    options = parser.parse_args()
    seconds = 5.0 if options.quick else 15.0
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cimhub-scale-") as tmp:
        print("starting a 3+3 Redis Cluster ...", flush=True)
        cluster = RedisClusterProcess(Path(tmp) / "cluster")
        cluster.start()
        try:
            node_url, node_port = _start_node(Path(tmp) / "node")
            try:
                primaries = [n.port for n in cluster.primaries()]
                for processes in (1, 2, 4):
                    for url, is_cluster, ports in (
                        (node_url, False, [node_port]),
                        (cluster.url, True, primaries),
                    ):
                        print(
                            f"  {processes} process(es) on {'the cluster' if is_cluster else 'one node'} ...",
                            flush=True,
                        )
                        rows.append(run_row(url, is_cluster, ports, processes, seconds))
            finally:
                with redis.Redis(port=node_port) as client:
                    client.shutdown(nosave=True)
        finally:
            cluster.stop()
    print()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    print(
        f"{'backend':<18} {'hubs':>4} {'commits/s':>10} {'deliveries/s':>13} {'hub CPU':>8} {'Redis CPU':>10}"
        f" {'hub ms/commit':>14} {'Redis ms/commit':>16}  limit"
    )
    for row in rows:
        per_commit = 1000 / max(1.0, row["commits_s"])  # CPU-seconds per second -> ms of CPU per commit
        print(
            f"{row['backend']:<18} {row['processes']:>4} {row['commits_s']:>10,.0f} {row['deliveries_s']:>13,.0f}"
            f" {row['hub_cpu']:>8.2f} {row['redis_cpu']:>10.2f} {row['hub_cpu'] * per_commit:>14.2f}"
            f" {row['redis_cpu'] * per_commit:>16.2f}  {limit_of(row)}"
        )
    path = ROOT / "docs" / "scaling.png"
    plot(rows, path)
    print(f"\nplot: {path.relative_to(ROOT)}")


def _start_node(data_dir: Path) -> tuple[str, int]:
    """A plain redis-server for the single-node rows (stopped by SHUTDOWN at the end)."""
    data_dir.mkdir(parents=True)
    port = free_port()
    subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            with redis.Redis(port=port) as client:
                client.ping()
            return f"redis://127.0.0.1:{port}/0", port
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


if __name__ == "__main__":
    main()
