"""A commit on a Redis Cluster: with and without commit_replicas (WAIT), and how long the indexes lag.

Usage::

    .venv/bin/python bench/bench_cluster_commit.py            # ~1 minute
    .venv/bin/python bench/bench_cluster_commit.py --seconds 3

Starts a 3+3 Redis Cluster of Debian's redis-server on loopback
(tests/cluster.py) and runs, in this process, what a hub runs for mutations: a
`MutationEngine` over a `CimStore` on the cluster, 20 writers over 25 CIMs
(updateState edits, every one a commit), alternating rows of
``commit_replicas=0`` and ``commit_replicas=1`` (each commit then waits for
`WAIT 1` on its primary: docs/scaling.md), twice each, so a change in the
machine's load shows up as a difference between the two rows of one setting.

Per row: commits/s, mutation latency p50/p99 (the engine's call, ack
included), hub CPU per commit (this process), and the **index lag**: on a
cluster the by-deal/user/status indexes are written right after the commit
script and before the acknowledgement, so from the moment a commit is visible
(its reply) until the indexes agree with it is the time one round of index
writes takes. That is measured on every commit (p50/p99/max). After the
acknowledgement the lag is zero by construction, unless the hub dies in
between (then `cimhub admin repair-indexes`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from cluster import RedisClusterProcess
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

from cimhub.server.connect import connect
from cimhub.server.store.cims import CimStore, Commit
from cimhub.server.store.engine import MutationEngine
from cimhub.server.store.keys import Keys
from cimhub.server.store.replicas import ReplicatedCommits

CIMS = 25
WRITERS = 20


class TimedStore(CimStore):
    """A CimStore that records how long each commit's index writes take (commit visible -> indexes right)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lags: list[float] = []

    async def _follow_up(self, script: AsyncScript, commit: Commit) -> None:
        started = time.perf_counter()
        await super()._follow_up(script, commit)
        self.lags.append(time.perf_counter() - started)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run_row(url: str, replicas: int, seconds: float) -> dict[str, Any]:
    client = cast(RedisCluster, connect(url))
    keys = Keys(f"bench{uuid.uuid4().hex[:8]}", cluster=True)
    replicated = ReplicatedCommits(client, replicas=replicas, timeout_ms=1000) if replicas else None
    store = TimedStore(client, keys, replicated=replicated)
    engine = MutationEngine(store)
    cims = []
    for i in range(CIMS):
        created = await engine.mutate(
            "create",
            {"dealId": str(uuid.uuid4()), "projectId": "p", "title": f"Bench {i}"},
            actor="bench",
            mutation_id=uuid.uuid4().hex,
            user_id=f"user-{i % 5}",
        )
        cims.append(created.cim_id)
    store.lags.clear()
    latencies: list[float] = []
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    deadline = started + seconds

    async def writer(n: int) -> None:
        i = 0
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            await engine.mutate(
                "updateState",
                {"cimId": cims[(n + i) % CIMS], "title": f"t{n}-{i}"},
                actor="bench",
                mutation_id=uuid.uuid4().hex,
                user_id="bench",
            )
            latencies.append(time.perf_counter() - t0)
            i += 1

    await asyncio.gather(*(writer(n) for n in range(WRITERS)))
    elapsed = time.monotonic() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    await store.aclose()
    await client.aclose()
    return {
        "replicas": replicas,
        "commits_s": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "cpu_ms": 1000 * cpu / max(1, len(latencies)),
        "lag_p50_ms": 1000 * percentile(store.lags, 0.5),
        "lag_p99_ms": 1000 * percentile(store.lags, 0.99),
        "lag_max_ms": 1000 * max(store.lags, default=float("nan")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each row (default 8)")
    options = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="cimhub-bench-cluster-") as tmp:
        print("starting a 3+3 Redis Cluster ...", flush=True)
        cluster = RedisClusterProcess(Path(tmp))
        cluster.start()
        try:
            for replicas in (0, 1, 0, 1):
                print(f"  commit_replicas={replicas} ...", flush=True)
                rows.append(asyncio.run(run_row(cluster.url, replicas, options.seconds)))
        finally:
            cluster.stop()
    print(f"\nload average before the table: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} cores")
    print(
        f"{'commit_replicas':>15} {'commits/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'hub CPU/commit':>15}"
        f" {'index lag p50':>14} {'p99':>6} {'max':>6}"
    )
    for row in rows:
        print(
            f"{row['replicas']:>15} {row['commits_s']:>10,.0f} {row['p50_ms']:>7.1f} {row['p99_ms']:>7.1f}"
            f" {row['cpu_ms']:>12.2f} ms {row['lag_p50_ms']:>11.2f} ms"
            f" {row['lag_p99_ms']:>6.1f} {row['lag_max_ms']:>6.1f}"
        )


if __name__ == "__main__":
    main()
