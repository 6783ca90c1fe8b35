"""Benchmark of cimhub.server.messages.store: add throughput and exact search latency.

Usage::

    .venv/bin/python bench/bench_messages.py            # 1,000 and 10,000 messages
    .venv/bin/python bench/bench_messages.py --quick    # shorter run, same table

Starts its own redis-server (embedded, AOF everysec, in a temporary folder)
unless REDIS_URL is set; with REDIS_URL it writes only keys under a fresh
``bench<random>`` prefix and deletes them afterwards.

Search rows, each for one CIM holding N messages of `--dimension` float32, k=10.
The variants run in rotation, query by query, so load on the host skews none:

* ``search (cache warm)``: `MessageStore.search` with the vectors cached in the
  process; each call still asks Redis for the rows it lacks (one script) and
  reads the k bodies (one MULTI).
* ``search role=user``: the same with the role filter.
* ``search after 1 append``: a message is added before each search, so each
  search fetches one new row: the steady state of a live conversation.
* ``search (cache cold)``: the cache entry dropped first, so all rows are read
  (in 1 MiB GETRANGE pieces) and the cache is rebuilt.
* ``one GET + frombuffer, no cache``: the simplest design, all vectors in one
  reply per search (scoring included, bodies not fetched).
* ``numpy floor (in memory)``: the same scoring and top-k on vectors already in
  memory, no Redis at all.

The add rows time `MessageStore.add` with a 1,024-dimension embedding and a
short content, one at a time and 32 in flight on one connection pool.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
import uuid
from collections.abc import Awaitable

import numpy as np
import redis.asyncio as aioredis

from cimhub.server.embedded import redis_url_or_embedded
from cimhub.server.messages.store import MessageStore
from cimhub.server.messages.vectors import ROLE_CODES, ROW_DTYPE, VectorSet
from cimhub.server.store.keys import Keys

Row = tuple[str, int, str, str, str]


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    ms = np.asarray(samples_s) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def latency_row(name: str, n: int, samples: list[float]) -> Row:
    p50, p99 = percentiles(samples)
    return (name, n, f"{p50:.2f}", f"{p99:.2f}", f"{1 / statistics.fmean(samples):,.0f}")


async def make_cim(client: aioredis.Redis, keys: Keys, cim_id: str) -> None:
    await client.hset(keys.cim(cim_id), mapping={"doc": "{}", "rev": 1, "epoch": "bench"})


async def fill(store: MessageStore, cim_id: str, vectors: np.ndarray, concurrency: int) -> float:
    """Add one message per row of `vectors`, `concurrency` in flight; returns messages per second."""
    queue = iter(range(vectors.shape[0]))

    async def worker() -> None:
        for i in queue:
            await store.add(cim_id, "user" if i % 2 == 0 else "assistant", f"message {i} " * 20, embedding=vectors[i])

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return float(vectors.shape[0]) / (time.perf_counter() - start)


VARIANTS = (
    "search (cache warm)",
    "search role=user",
    "search after 1 append",
    "search (cache cold)",
    "one GET + frombuffer, no cache",
    "numpy floor (in memory)",
)


async def measure(samples: list[float], call: Awaitable[object]) -> None:
    start = time.perf_counter()
    await call
    samples.append(time.perf_counter() - start)


def in_memory_copy(vectors: np.ndarray, roles: list[int]) -> VectorSet:
    """The CIM's vectors as a VectorSet built without Redis: the floor."""
    copy = VectorSet("floor", vectors.shape[1])
    records = np.zeros(vectors.shape[0], dtype=ROW_DTYPE)
    records["seq"] = np.arange(1, vectors.shape[0] + 1)
    records["role"] = roles
    records["norm"] = np.linalg.norm(vectors.astype(np.float64), axis=1)
    copy.extend(vectors.tobytes(), records.tobytes())
    return copy


async def in_memory(vectors: VectorSet, query: np.ndarray) -> None:
    vectors.top_k(query, 10)


async def one_get(client: aioredis.Redis, store: MessageStore, cim_id: str, query: np.ndarray) -> None:
    """The simplest design: every search reads all vectors in one reply (no bodies fetched)."""
    names = store.key_names(cim_id)
    async with client.pipeline(transaction=True) as pipe:
        pipe.hget(names[0], "gen")
        pipe.get(names[3])
        pipe.get(names[4])
        gen, vector_bytes, row_bytes = await pipe.execute()
    vectors = VectorSet(gen.decode(), store.dimension)
    vectors.extend(vector_bytes, row_bytes)
    vectors.top_k(query, 10)


async def bench_size(
    client: aioredis.Redis, keys: Keys, n: int, dimension: int, searches: int, rng: np.random.Generator
) -> list[Row]:
    cim_id = f"size-{n}"
    await make_cim(client, keys, cim_id)
    store = MessageStore(client, keys, dimension)
    vectors = rng.normal(size=(n, dimension)).astype(np.float32)
    await fill(store, cim_id, vectors, concurrency=32)
    roles = [ROLE_CODES["user"] if i % 2 == 0 else ROLE_CODES["assistant"] for i in range(n)]
    floor = in_memory_copy(vectors, roles)
    queries = rng.normal(size=(searches, dimension)).astype(np.float32)
    extra = rng.normal(size=(searches, dimension)).astype(np.float32)
    cold_every = max(1, searches // 10)

    # Variants run in rotation, query by query, so a burst of load on the host
    # hits them all alike instead of skewing whichever ran at that moment.
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    await store.search(cim_id, queries[0], k=10)
    for i, q in enumerate(queries):
        await measure(samples["search (cache warm)"], store.search(cim_id, q, k=10))
        await measure(samples["search role=user"], store.search(cim_id, q, k=10, role="user"))
        await measure(samples["numpy floor (in memory)"], in_memory(floor, q))
        await store.add(cim_id, "user", "one more", embedding=extra[i])
        await measure(samples["search after 1 append"], store.search(cim_id, q, k=10))
        if i % cold_every == 0:
            store.cache.drop(cim_id)
            await measure(samples["search (cache cold)"], store.search(cim_id, q, k=10))
            await measure(samples["one GET + frombuffer, no cache"], one_get(client, store, cim_id, q))
    await store.delete_all(cim_id)
    return [latency_row(name, n, samples[name]) for name in VARIANTS]


async def main(quick: bool, sizes: list[int], dimension: int) -> None:
    searches = 50 if quick else 300
    adds = 500 if quick else 3_000
    rng = np.random.default_rng(1)
    async with redis_url_or_embedded() as url:
        client = aioredis.from_url(url)
        keys = Keys(f"bench{uuid.uuid4().hex[:8]}")
        try:
            info = await client.info("server")
            modules = await client.module_list()
            print(
                f"redis {info['redis_version']} (modules: {[m[b'name'].decode() for m in modules] or 'none'}), "
                f"numpy {np.__version__}, python {platform.python_version()}, {os.cpu_count()} CPUs, "
                f"dimension {dimension}, {searches} searches per row, k=10, "
                f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
                f"load average {os.getloadavg()[0]:.2f}"
            )
            rows: list[Row] = []
            for concurrency in (1, 32):
                cim_id = f"adds-{concurrency}"
                await make_cim(client, keys, cim_id)
                store = MessageStore(client, keys, dimension)
                rate = await fill(store, cim_id, rng.normal(size=(adds, dimension)).astype(np.float32), concurrency)
                rows.append((f"add, {concurrency} in flight", adds, "", "", f"{rate:,.0f}"))
                await store.delete_all(cim_id)
            for n in sizes:
                rows += await bench_size(client, keys, n, dimension, searches, rng)
        finally:
            leftovers = [key async for key in client.scan_iter(match=f"{keys.prefix}:*")]
            if leftovers:
                await client.delete(*leftovers)
            await client.aclose()
    header: Row = ("operation", 0, "p50 ms", "p99 ms", "ops/s")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print(f"\n| {header[0]:<30} | {'messages':>8} | {header[2]:>8} | {header[3]:>8} | {header[4]:>8} |")
    print(f"|{'-' * 32}|{'-' * 9}:|{'-' * 9}:|{'-' * 9}:|{'-' * 9}:|")
    for name, count, median, tail, per_second in rows:
        print(f"| {name:<30} | {count:>8,} | {median:>8} | {tail:>8} | {per_second:>8} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer adds and searches (about 15 s)")
    parser.add_argument("--sizes", default="1000,10000", help="messages per CIM, comma-separated")
    parser.add_argument("--dimension", type=int, default=1024)
    args = parser.parse_args()
    asyncio.run(main(args.quick, [int(s) for s in args.sizes.split(",")], args.dimension))
