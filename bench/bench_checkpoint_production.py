"""Benchmark of the saver under production conditions, each figure beside its baseline in the same run.

* history: ``aget_delta_channel_history`` on a thread of 101 checkpoints with a
  DeltaChannel (no snapshot, so the whole chain is walked): cimhub's Lua walk
  against LangGraph's default walk on the same saver (one get per ancestor,
  what the saver did before), AsyncSqliteSaver and InMemorySaver. Median of
  the repeats.
* big: a node whose output is 5 MB (a pending write, then the channel's new
  value), run 5 times with a get_state after each; per run, the longest
  single Redis command (SLOWLOG times each command inside the server, so this
  is how long Redis served nobody else), the median over the runs, with
  values chunked (the default) and with chunking off (CHUNK_BYTES huge: the
  baseline, the old behaviour).
* load: 100 threads x 20 ``ainvoke`` at once: calls that failed, and the wall
  time, with `from_conn_string` defaults against a client from
  ``redis.asyncio.from_url`` defaults (redis-py's plain pool: the baseline).

    .venv/bin/python bench/bench_checkpoint_production.py [--quick]

Starts its own redis-server (cimhub's embedded one), unless REDIS_URL is set.
Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

import redis
import redis.asyncio as aioredis
from langchain_core.runnables import RunnableConfig
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph

from cimhub.server.checkpoint import AsyncCimhubRedisSaver, chunks
from cimhub.server.embedded import embedded_redis

STEPS = 100


def append_all(state: list[str], batches: Sequence[list[str]]) -> list[str]:
    return [*state, *(item for batch in batches for item in batch)]


class Conversation(TypedDict):
    messages: Annotated[list[str], DeltaChannel(append_all, snapshot_frequency=10_000)]
    turn: int


def conversation(saver: BaseCheckpointSaver[Any]) -> Any:
    builder = StateGraph(Conversation)
    builder.add_node("speak", lambda s: {"messages": [f"message {s['turn']} " * 8], "turn": s["turn"] + 1})
    builder.add_edge(START, "speak")
    builder.add_conditional_edges("speak", lambda s: END if s["turn"] >= STEPS else "speak")
    return builder.compile(checkpointer=saver)


async def time_history(saver: BaseCheckpointSaver[Any], repeats: int, default_walk: bool = False) -> tuple[float, int]:
    """Median ms of one history call on the latest checkpoint, and the checkpoint count."""
    graph = conversation(saver)
    cfg: RunnableConfig = {"configurable": {"thread_id": f"bench-{uuid.uuid4().hex[:8]}"}}
    await graph.ainvoke({"messages": [], "turn": 0}, {**cfg, "recursion_limit": STEPS + 10})
    count = len([c async for c in saver.alist(cfg)])
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        if default_walk:
            got = await BaseCheckpointSaver.aget_delta_channel_history(saver, config=cfg, channels=["messages"])
        else:
            got = await saver.aget_delta_channel_history(config=cfg, channels=["messages"])
        samples.append((time.perf_counter() - started) * 1000)
        assert len(got["messages"]["writes"]) >= STEPS  # the input, then one per step
    return statistics.median(samples), count


async def bench_history(url: str, prefix: str, repeats: int) -> None:
    print(f"\nget_delta_channel_history on the latest of {STEPS + 1} checkpoints, median of {repeats}")
    client = aioredis.from_url(url)
    rows: list[tuple[str, float, int]] = []
    try:
        saver = AsyncCimhubRedisSaver(client, key_prefix=f"{prefix}h")
        rows.append(("cimhub (Lua walk)", *await time_history(saver, repeats)))
        rows.append(("cimhub, default walk (before)", *await time_history(saver, repeats, default_walk=True)))
        with tempfile.TemporaryDirectory() as work:
            async with AsyncSqliteSaver.from_conn_string(str(Path(work) / "h.db")) as sqlite:
                rows.append(("AsyncSqliteSaver (file)", *await time_history(sqlite, repeats)))
        rows.append(("InMemorySaver", *await time_history(InMemorySaver(), repeats)))
    finally:
        await client.aclose()
    print(f"{'saver':<32} {'ms':>8} {'checkpoints':>12}")
    for name, ms, count in rows:
        print(f"{name:<32} {ms:>8.2f} {count:>12}")


class Document(TypedDict):
    doc: list[str]
    turn: int


async def longest_commands(url: str, prefix: str) -> tuple[float, float, float]:
    """Medians over 5 runs of a 5 MB node output: each run's longest EVALSHA and longest
    other command (ms), and the run's time.

    The node's output is a pending write (put_writes) and then the channel's
    new value (put); each run is followed by a get_state, like a UI would.
    """
    client = aioredis.from_url(url)
    try:
        saver = AsyncCimhubRedisSaver(client, key_prefix=prefix)
        await saver.asetup()
        builder = StateGraph(Document)
        builder.add_node("write", lambda s: {"doc": [f"{'x' * 100}{i}.{s['turn']}" for i in range(50_000)]})
        builder.add_edge(START, "write")
        builder.add_edge("write", END)
        graph = builder.compile(checkpointer=saver)
        cfg: RunnableConfig = {"configurable": {"thread_id": "big"}}
        await client.config_set("slowlog-log-slower-than", 0)
        await client.config_set("slowlog-max-len", 10_000)
        scripts, others, runs = [], [], []
        for turn in range(5):
            await client.slowlog_reset()
            started = time.perf_counter()
            await graph.ainvoke({"doc": [], "turn": turn}, cfg)
            state = await graph.aget_state(cfg)
            runs.append((time.perf_counter() - started) * 1000)
            assert len(state.values["doc"]) == 50_000
            script = other = 0.0
            for entry in await client.slowlog_get(10_000):
                name = entry["command"].split(b" ")[0].upper()
                if name in (b"SLOWLOG", b"CONFIG"):
                    continue
                ms = entry["duration"] / 1000
                if name == b"EVALSHA":
                    script = max(script, ms)
                else:
                    other = max(other, ms)
            scripts.append(script)
            others.append(other)
        await client.config_set("slowlog-log-slower-than", 10_000)
        await saver.adelete_thread("big")
        median = statistics.median
        return median(scripts), median(others), median(runs)
    finally:
        await client.aclose()


async def bench_big(url: str, prefix: str) -> None:
    print("\na node writing 5 MB, then get_state; median over 5 runs of each run's longest command")
    print(f"{'values':<34} {'EVALSHA ms':>11} {'other ms':>9} {'run ms':>11}")
    chunked = await longest_commands(url, f"{prefix}c")
    saved = chunks.CHUNK_BYTES
    chunks.CHUNK_BYTES = 1 << 40
    try:
        whole = await longest_commands(url, f"{prefix}w")
    finally:
        chunks.CHUNK_BYTES = saved
    for name, (script, other, pair) in (
        (f"chunked, {saved // 1024} KB (default)", chunked),
        ("whole, in the script (before)", whole),
    ):
        print(f"{name:<34} {script:>11.2f} {other:>9.2f} {pair:>11.1f}")


async def load(saver: AsyncCimhubRedisSaver, threads: int, calls: int) -> tuple[int, float]:
    graph = conversation(saver)
    failed = 0

    async def deal(n: int) -> None:
        nonlocal failed
        cfg: RunnableConfig = {"configurable": {"thread_id": f"load-{n}"}}
        for _ in range(calls):
            try:
                await graph.ainvoke({"messages": [], "turn": STEPS - 1}, cfg)
            except redis.RedisError:  # what the plain pool raises: MaxConnectionsError
                failed += 1

    started = time.perf_counter()
    await asyncio.gather(*(deal(n) for n in range(threads)))
    return failed, time.perf_counter() - started


async def bench_load(url: str, prefix: str, threads: int, calls: int) -> None:
    print(f"\n{threads} threads x {calls} ainvoke at once")
    print(f"{'client':<44} {'failed calls':>13} {'wall s':>8}")
    async with AsyncCimhubRedisSaver.from_conn_string(url, key_prefix=f"{prefix}l") as saver:
        ours = await load(saver, threads, calls)
    plain = aioredis.from_url(url)
    try:
        before = await load(AsyncCimhubRedisSaver(plain, key_prefix=f"{prefix}p"), threads, calls)
    finally:
        await plain.aclose()
    print(f"{'from_conn_string (blocking pool, retries)':<44} {ours[0]:>13} {ours[1]:>8.1f}")
    print(f"{'redis.asyncio.from_url defaults (before)':<44} {before[0]:>13} {before[1]:>8.1f}")


async def run(url: str, quick: bool) -> None:
    prefix = f"benchp{uuid.uuid4().hex[:6]}"
    print(f"redis: {url}   python {sys.version.split()[0]}   cpus: {os.cpu_count()}")
    try:
        await bench_history(url, prefix, 5 if quick else 20)
        await bench_big(url, prefix)
        await bench_load(url, prefix, 100, 5 if quick else 20)
    finally:
        cleanup = aioredis.from_url(url)
        async for key in cleanup.scan_iter(match=f"{prefix}*", count=1000):
            await cleanup.unlink(key)
        await cleanup.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and calls")
    options = parser.parse_args()
    url = os.environ.get("REDIS_URL")
    if url:
        await run(url, options.quick)
        return
    with tempfile.TemporaryDirectory(prefix="cimhub-bench-redis-") as data_dir:
        async with embedded_redis(Path(data_dir)) as server:
            await run(server.url, options.quick)


if __name__ == "__main__":
    asyncio.run(main())
