"""Benchmark of CIM history: reading a past revision of a CIM with 1,000 revisions.

Usage::

    .venv/bin/python bench/bench_history.py            # ~1 minute
    .venv/bin/python bench/bench_history.py --quick    # fewer reads, same table

Starts its own redis-server (embedded, in a temporary folder) unless REDIS_URL
is set; with REDIS_URL it writes only keys under a fresh ``bench<random>``
prefix and deletes them afterwards.

For each snapshot interval K (`CIMHUB_HISTORY_SNAPSHOT_EVERY`), one CIM is
built as the CIM Builder builds one (persona, hero context, an outline of 6
sections, 18 slides with components), then edited through the real
MutationEngine up to revision 1,000 (slide retitles, component rewrites,
approvals, navigation). Then `History.at` reads random revisions between 1 and
1,000 (the same revisions for every K). Baselines in the same run: reading the
current document (`CimStore.load`), and rebuilding a revision by replaying the
whole log from revision 1 (what a log without snapshots would cost). Also
printed: `History.diff` over 100 revisions, and the log's memory (MEMORY USAGE).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis

from cimhub.protocol.patch import apply
from cimhub.server.embedded import redis_url_or_embedded
from cimhub.server.store.cims import CimStore
from cimhub.server.store.engine import MutationEngine
from cimhub.server.store.history import History
from cimhub.server.store.keys import Keys

REVISIONS = 1_000
INTERVALS = (10, 50, 100, 200)
PERSONA = {"type": "strategic acquirer", "motivations": ["market share", "synergies"], "concerns": ["integration risk"]}
HERO = {
    "selectedHero": "The category leader in mid-market logistics software",
    "investmentThesis": {
        "asset": "Sticky SaaS platform " * 5,
        "timing": "Consolidation wave " * 5,
        "opportunity": "Roll-up of regional competitors " * 5,
    },
}
OUTLINE = [{"id": f"s{i}", "title": f"Section {i}", "description": "what this section argues " * 3} for i in range(6)]


def components(n: int) -> list[dict[str, Any]]:
    return [
        {"type": "heading", "text": f"Headline {n}"},
        {"type": "bullets", "items": [f"Point {n}.{i}: revenue grew {10 + i}% year on year" for i in range(4)]},
        {"type": "chart", "kind": "bar", "series": [{"label": str(2020 + i), "value": 100 + n + i} for i in range(5)]},
    ]


async def build(engine: MutationEngine, rng: random.Random) -> str:
    """A realistic CIM edited up to revision REVISIONS; returns its id."""
    counter = iter(range(10**9))

    async def run(name: str, args: dict[str, Any]) -> Any:
        return await engine.mutate(name, args, actor="u1", mutation_id=f"b{next(counter)}", user_id="u1")

    cim = (await run("create", {"dealId": "d1", "projectId": "p1", "title": "Project Atlas"})).cim_id
    await run("saveBuyerPersona", {"cimId": cim, "persona": PERSONA})
    await run("saveHeroContext", {"cimId": cim, "heroContext": HERO})
    await run("createOutline", {"cimId": cim, "outline": OUTLINE})
    for i in range(18):
        slide = {"id": f"sl{i}", "sectionId": f"s{i % 6}", "title": f"Slide {i}", "components": components(i)}
        await run("updateSlide", {"cimId": cim, "slide": slide})
    revision = (await engine.store.get(cim)).revision
    n = 0
    while revision < REVISIONS:
        n += 1
        slide = f"sl{rng.randrange(18)}"
        edit = rng.randrange(4)
        if edit == 0:
            args = {"cimId": cim, "slide": {"id": slide, "title": f"Slide retitled {n}"}}
        elif edit == 1:
            args = {"cimId": cim, "slide": {"id": slide, "components": components(n)}}
        elif edit == 2:
            args = {"cimId": cim, "slide": {"id": slide, "status": rng.choice(["approved", "draft"])}}
        else:
            await run("navigateToSlide", {"cimId": cim, "slideId": slide})
            revision = (await engine.store.get(cim)).revision
            continue
        revision = (await run("updateSlide", args)).revision
    return str(cim)


async def timed(call: Callable[[], Awaitable[Any]], times: int) -> list[float]:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def replay_from_start(redis: aioredis.Redis, keys: Keys, cim: str, revision: int) -> dict[str, Any]:
    """The baseline: rebuild `revision` from the whole log, as a log without snapshots would have to."""
    entries: Any = await redis.xrange(keys.log(cim), min="-", max=f"{revision}-1")
    doc: Any = None
    for _id, fields in entries:
        doc = apply(doc, orjson.loads(fields[b"p"])["ops"], in_place=True)
    return dict(doc)


def row(label: str, samples: list[float], extra: str = "") -> str:
    p50 = statistics.median(samples)
    p95 = sorted(samples)[int(len(samples) * 0.95) - 1]
    return f"| {label} | {p50:.2f} | {p95:.2f} | {extra} |"


async def measure(redis: aioredis.Redis, keys: Keys, every: int, targets: list[int], baselines: bool) -> None:
    """Build one CIM with snapshots every `every` revisions and print its rows."""
    reads = len(targets)
    store = CimStore(redis, keys, patch_log_retention=REVISIONS, snapshot_every=every)
    engine = MutationEngine(store, cache_size=0)
    history = History(redis, keys, snapshot_every=every)
    cim = await build(engine, random.Random(every))
    if baselines:
        print(row("current document (CimStore.load), baseline", await timed(lambda: store.load(cim), reads)))
        whole = iter(targets)
        replay = await timed(lambda: replay_from_start(redis, keys, cim, next(whole)), reads)
        print(row("replay the log from r1 (no snapshots), baseline", replay))
    it = iter(targets)
    applied: list[int] = []

    async def read() -> None:
        past = await history.at(cim, next(it))
        applied.append(past.patches)

    at = await timed(read, reads)
    memory = await redis.memory_usage(keys.log(cim), samples=0) or 0
    doc_bytes = len(orjson.dumps((await store.get(cim)).doc))
    print(
        row(
            f"History.at, snapshot every {every}",
            at,
            f"patches applied: mean {statistics.mean(applied):.0f}, max {max(applied)}; "
            f"log {memory / 1e6:.2f} MB (document {doc_bytes / 1e3:.0f} KB)",
        )
    )
    if every == 50:
        rng = random.Random(1)
        start = iter([rng.randrange(1, REVISIONS - 100) for _ in range(reads)])
        diff = await timed(lambda: history.diff(cim, next(start), None, 100), reads)
        print(row(f"History.diff of 100 revisions, snapshot every {every}", diff))


async def main(quick: bool) -> None:
    reads = 50 if quick else 200
    rng = random.Random(7)
    targets = [rng.randrange(1, REVISIONS + 1) for _ in range(reads)]
    async with redis_url_or_embedded() as url:
        redis = aioredis.from_url(url)
        base = f"bench{uuid.uuid4().hex[:8]}"
        try:
            print(f"# history read time at {REVISIONS} revisions ({platform.python_version()}, {platform.machine()})")
            print(f"# {reads} reads of random revisions per row; ms per read\n")
            print("| what | p50 ms | p95 ms | notes |")
            print("|---|---|---|---|")
            for every in INTERVALS:
                await measure(redis, Keys(f"{base}-{every}"), every, targets, baselines=every == INTERVALS[0])
        finally:
            found = [key async for key in redis.scan_iter(match=f"{base}-*", count=1000)]
            for i in range(0, len(found), 500):
                await redis.delete(*found[i : i + 500])
            await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer reads per row")
    asyncio.run(main(parser.parse_args().quick))
