"""Benchmark of LangGraph checkpoint savers: cimhub's Redis savers beside the usual alternatives.

For a realistic checkpoint (a ~20 KB deal dict that stays the same, and a
window of 20 chat messages that moves by one per step, as LangGraph's loop
writes them: only `messages` in new_versions), measures put and get_tuple
latency (p50, p99) and throughput (put + get pairs per second) with 1, 100 and
1,000 checkpoints already in the thread, for:

* cimhub AsyncRedisSaver / RedisSaver
* langgraph-checkpoint-plainredis AsyncRedisSaver / RedisSaver
* LangGraph's AsyncSqliteSaver / SqliteSaver on a temporary file
* LangGraph's InMemorySaver (no I/O at all: the floor)

all in one run against the same Redis (the savers take turns, in rounds, so a
busy moment of the machine hits each alike), then Redis memory per checkpoint
when only the messages change. Prints tables; asserts nothing.

Durability differs: SQLite (WAL, synchronous=FULL) fsyncs every commit, which
shows in its p99; this Redis fsyncs its append-only file once a second.

    .venv/bin/python bench/bench_checkpoint.py            # full run
    .venv/bin/python bench/bench_checkpoint.py --quick    # short run

Starts its own redis-server (cimhub's embedded one, AOF on, fsync everysec),
unless REDIS_URL is set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph_checkpoint_plainredis import AsyncRedisSaver as PlainAsyncRedisSaver
from langgraph_checkpoint_plainredis import RedisSaver as PlainRedisSaver

from cimhub.server.checkpoint import AsyncCimhubRedisSaver, CimhubRedisSaver
from cimhub.server.embedded import embedded_redis

MESSAGES = 20


def deal_state() -> dict[str, Any]:
    """~20 KB of CIM state: deal, buyer persona, outline of 20 sections."""
    return {
        "deal": {
            "id": "deal-1",
            "name": "Project Atlas",
            "stage": "draft",
            "ebitda": [12.5, 14.1, 15.9],
        },
        "buyer_persona": {"kind": "strategic", "notes": "x" * 1500},
        "outline": [
            {
                "section": f"section-{i}",
                "title": f"Section {i}",
                "hero_context": "y" * 800,
                "slides": list(range(8)),
            }
            for i in range(20)
        ],
    }


def message(i: int) -> BaseMessage:
    text = f"turn {i}: " + "the buyer persona wants the hero context to lead with margins. " * 3
    return HumanMessage(text, id=f"m{i}") if i % 2 == 0 else AIMessage(text, id=f"m{i}")


class Thread:
    """One thread's checkpoints as LangGraph's loop would produce them: only `messages` moves."""

    def __init__(self, saver: BaseCheckpointSaver[Any], thread_id: str) -> None:
        self.saver = saver
        self.thread_id = thread_id
        self.deal = deal_state()
        self.turn = 0
        self.versions: dict[str, Any] = {}
        self.parent: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        self.latest: RunnableConfig = self.parent

    def next(self) -> tuple[RunnableConfig, Checkpoint, CheckpointMetadata, dict[str, Any]]:
        self.turn += 1
        new: dict[str, Any] = {}
        if "deal" not in self.versions:
            new["deal"] = self.saver.get_next_version(None, None)
        new["messages"] = self.saver.get_next_version(self.versions.get("messages"), None)
        self.versions.update(new)
        messages = [message(i) for i in range(self.turn, self.turn + MESSAGES)]  # always 20, one new
        checkpoint = Checkpoint(
            v=4,
            id=str(uuid6(clock_seq=self.turn)),
            ts="2025-06-01T12:00:00+00:00",
            channel_values={"deal": self.deal, "messages": messages},
            channel_versions=dict(self.versions),
            versions_seen={"agent": dict(self.versions)},
            updated_channels=["messages"],
        )
        metadata: CheckpointMetadata = {"source": "loop", "step": self.turn, "parents": {}}
        return self.parent, checkpoint, metadata, new

    def stored(self, config: RunnableConfig) -> None:
        self.parent = config


@dataclass
class Result:
    saver: str
    history: int
    put_ns: list[int] = field(default_factory=list)
    get_ns: list[int] = field(default_factory=list)


def percentile(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


@dataclass
class Subject:
    """One saver behind a uniform async face; a sync saver is called directly, with no thread hop."""

    name: str
    saver: BaseCheckpointSaver[Any]
    put: Callable[..., Awaitable[RunnableConfig]]
    get: Callable[[RunnableConfig], Awaitable[CheckpointTuple | None]]


def async_subject(name: str, saver: BaseCheckpointSaver[Any]) -> Subject:
    return Subject(name, saver, saver.aput, saver.aget_tuple)


def sync_subject(name: str, saver: BaseCheckpointSaver[Any]) -> Subject:
    async def put(*args: Any) -> RunnableConfig:
        return saver.put(*args)

    async def get(config: RunnableConfig) -> CheckpointTuple | None:
        return saver.get_tuple(config)

    return Subject(name, saver, put, get)


async def measure(subjects: list[Subject], history: int, iterations: int, rounds: int = 5) -> list[Result]:
    """put + get_tuple(latest) pairs on threads that already hold `history` checkpoints.

    Each thread gets at most history/10 measured puts, so its history grows by
    10% at most while measured; the threads are spread over `rounds` rounds and
    the savers take turns each round, so a busy moment of the machine hits
    every saver alike.
    """
    per_thread = max(1, history // 10)
    thread_count = -(-iterations // per_thread)
    results = []
    threads: dict[str, list[Thread]] = {}
    for subject in subjects:
        warm = Thread(subject.saver, f"warm-{uuid.uuid4().hex[:8]}")
        for _ in range(20):  # connections, scripts, caches
            warm.stored(await subject.put(*warm.next()))
            await subject.get(warm.latest)
        threads[subject.name] = []
        for _ in range(thread_count):
            thread = Thread(subject.saver, f"bench-{uuid.uuid4().hex[:12]}")
            for _ in range(history):
                thread.stored(await subject.put(*thread.next()))
            threads[subject.name].append(thread)
        results.append(Result(subject.name, history))
    clock = time.perf_counter_ns
    for round_ in range(rounds):
        turn = subjects[round_ % len(subjects) :] + subjects[: round_ % len(subjects)]
        for subject in turn:
            result = next(r for r in results if r.saver == subject.name)
            for thread in threads[subject.name][round_::rounds]:
                for _ in range(per_thread):
                    args = thread.next()
                    t0 = clock()
                    stored = await subject.put(*args)
                    t1 = clock()
                    got = await subject.get(thread.latest)
                    t2 = clock()
                    thread.stored(stored)
                    result.put_ns.append(t1 - t0)
                    result.get_ns.append(t2 - t1)
                    assert got is not None and got.checkpoint["id"] == args[1]["id"]
    return results


# -- savers under test ------------------------------------------------------------


@contextlib.asynccontextmanager
async def async_subjects(url: str, prefix: str, work: Path) -> AsyncIterator[list[Subject]]:
    client = aioredis.from_url(url)
    async with AsyncSqliteSaver.from_conn_string(str(work / "async.sqlite")) as sqlite:
        await sqlite.setup()
        try:
            yield [
                async_subject("cimhub AsyncRedisSaver", AsyncCimhubRedisSaver(client, key_prefix=prefix)),
                async_subject(
                    "plainredis AsyncRedisSaver",
                    PlainAsyncRedisSaver(client, prefix=f"{prefix}-plain"),
                ),
                async_subject("AsyncSqliteSaver (file)", sqlite),
                async_subject("InMemorySaver (async API)", InMemorySaver()),
            ]
        finally:
            await client.aclose()


@contextlib.contextmanager
def sync_subjects(url: str, prefix: str, work: Path) -> Iterator[list[Subject]]:
    client = redis.Redis.from_url(url)
    with SqliteSaver.from_conn_string(str(work / "sync.sqlite")) as sqlite:
        sqlite.setup()
        try:
            yield [
                sync_subject("cimhub RedisSaver", CimhubRedisSaver(client, key_prefix=prefix)),
                sync_subject("plainredis RedisSaver", PlainRedisSaver(client, prefix=f"{prefix}-plain")),
                sync_subject("SqliteSaver (file)", sqlite),
                sync_subject("InMemorySaver (sync API)", InMemorySaver()),
            ]
        finally:
            client.close()


# -- memory -----------------------------------------------------------------------------


async def memory_per_checkpoint(url: str, prefix: str, checkpoints: int) -> list[tuple[str, float, float]]:
    """(saver, INFO used_memory delta per checkpoint, MEMORY USAGE of its keys per checkpoint)."""
    client = aioredis.from_url(url)
    rows = []
    try:
        for name, saver, pattern in (
            (
                "cimhub AsyncRedisSaver",
                AsyncCimhubRedisSaver(client, key_prefix=f"{prefix}-mem"),
                f"{prefix}-mem:*",
            ),
            (
                "plainredis AsyncRedisSaver",
                PlainAsyncRedisSaver(client, prefix=f"{prefix}-memp"),
                f"{prefix}-memp:*",
            ),
        ):
            thread = Thread(saver, "memory")
            thread.stored(await saver.aput(*thread.next()))  # the first one stores the deal
            keys_before = await usage(client, pattern)
            before = (await client.info("memory"))["used_memory"]
            for _ in range(checkpoints):
                thread.stored(await saver.aput(*thread.next()))
            after = (await client.info("memory"))["used_memory"]
            keys_after = await usage(client, pattern)
            rows.append((name, (after - before) / checkpoints, (keys_after - keys_before) / checkpoints))
    finally:
        await client.aclose()
    return rows


async def usage(client: aioredis.Redis, pattern: str) -> int:
    total = 0
    async for key in client.scan_iter(match=pattern, count=1000):
        total += await client.memory_usage(key, samples=0) or 0
    return total


def sizes() -> tuple[int, int]:
    """Serialized size of the deal and of 20 messages, as LangGraph's serializer writes them."""
    serde = InMemorySaver().serde
    deal = len(serde.dumps_typed(deal_state())[1])
    messages = len(serde.dumps_typed([message(i) for i in range(MESSAGES)])[1])
    return deal, messages


# -- report ---------------------------------------------------------------------------


def table(title: str, results: list[Result]) -> None:
    print(f"\n{title}")
    header = f"{'saver':<28} {'history':>7} {'put p50':>8} {'put p99':>8} {'get p50':>8} {'get p99':>8} {'pairs/s':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        pairs = len(r.put_ns) / ((sum(r.put_ns) + sum(r.get_ns)) / 1e9)
        print(
            f"{r.saver:<28} {r.history:>7} {percentile(r.put_ns, 0.5):>8.3f} {percentile(r.put_ns, 0.99):>8.3f} "
            f"{percentile(r.get_ns, 0.5):>8.3f} {percentile(r.get_ns, 0.99):>8.3f} {pairs:>8.0f}"
        )
    print("(ms; history = checkpoints in the thread before the measured put; pairs/s = put +")
    print(" get_tuple(latest) pairs per second of time spent in the saver, one client, sequential)")


async def run(url: str, quick: bool) -> None:
    histories = (1, 100, 1000)
    iterations = 100 if quick else 500
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    deal, messages = sizes()
    print(
        f"checkpoint: deal {deal / 1024:.1f} KB (unchanged), "
        f"{MESSAGES} messages {messages / 1024:.1f} KB (one new per step)"
    )
    print(f"redis: {url}   pairs per row: {iterations}   python {sys.version.split()[0]}   cpus: {os.cpu_count()}")
    try:
        with tempfile.TemporaryDirectory(prefix="cimhub-bench-") as work_dir:
            work = Path(work_dir)
            async with async_subjects(url, prefix, work) as subjects:
                results = [r for history in histories for r in await measure(subjects, history, iterations)]
            table("async savers (aput / aget_tuple)", results)
            with sync_subjects(url, prefix, work) as subjects:
                results = [r for history in histories for r in await measure(subjects, history, iterations)]
            table("sync savers (put / get_tuple), called directly", results)
        count = 100 if quick else 500
        print(f"\nredis memory per checkpoint, {count} checkpoints where only the messages changed")
        print(f"{'saver':<28} {'used_memory delta':>18} {'MEMORY USAGE of keys':>21}")
        for name, used, keys in await memory_per_checkpoint(url, prefix, count):
            print(f"{name:<28} {used / 1024:>15.1f} KB {keys / 1024:>18.1f} KB")
        print(
            f"(one new message blob is {messages / 1024:.1f} KB; the deal, {deal / 1024:.1f} KB, is not stored again)"
        )
    finally:
        cleanup = aioredis.from_url(url)
        async for key in cleanup.scan_iter(match=f"{prefix}*", count=1000):
            await cleanup.unlink(key)
        await cleanup.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer iterations, histories of 1 and 100 only")
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
