"""Benchmark of the CIM store and mutation engine: committed mutations/s and commit latency.

Usage::

    .venv/bin/python bench/bench_store.py            # ~1 minute
    .venv/bin/python bench/bench_store.py --quick    # shorter run (<20 s), same table
    .venv/bin/python bench/bench_store.py --profile  # also: CPU per step of one mutation, and cProfile

Starts its own redis-server (embedded, AOF everysec, in a temporary folder)
unless REDIS_URL is set; with REDIS_URL it writes only keys under a fresh
``bench<random>`` prefix and deletes them afterwards.

Each CIM is built as the CIM Builder builds one: a buyer persona, a hero
context, an outline of 6 sections and 18 slides with a few components each.
Writers then loop over realistic edits, each a full `MutationEngine.mutate`
(parse, run the pure mutation, diff, one commit script): updateSlide (retitle a
slide, replace its components, approve it) and updateState (move the current
slide, add gathered context). Every mutation changes the document, so each is
one revision, one patch-log entry and one published patch.

Rows: 1, 10 and 100 concurrent writers in one process, all on one CIM (they
take turns on it) or spread over 100 CIMs. Beside them, the raw round trip:
EVALSHA of an empty script at the same concurrency, measured in the same run.
Latency is from the call to `mutate` to its return; mutations/s counts commits.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import os
import platform
import pstats
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis

from cimhub.protocol.errors import CimhubError
from cimhub.protocol.mutations import MutationContext, finalize, get_mutation
from cimhub.protocol.patch import diff
from cimhub.protocol.schema import Cim
from cimhub.server.embedded import redis_url_or_embedded
from cimhub.server.store.cims import CimStore
from cimhub.server.store.engine import MutationEngine
from cimhub.server.store.keys import Keys

SECTIONS = [f"s{i}" for i in range(6)]
SLIDES_PER_SECTION = 3
PERSONA = {
    "type": "strategic acquirer",
    "motivations": ["market share", "synergies", "talent"],
    "concerns": ["integration risk", "customer concentration"],
}
HERO = {
    "selectedHero": "The category leader in mid-market logistics software",
    "investmentThesis": {
        "asset": "Sticky SaaS platform, 95% gross retention " * 3,
        "timing": "Consolidation wave; rates easing " * 3,
        "opportunity": "Roll-up of regional competitors " * 3,
    },
}


def components(n: int) -> list[dict[str, Any]]:
    return [
        {"type": "heading", "text": f"Headline {n}"},
        {"type": "bullets", "items": [f"Point {n}.{i}: revenue grew {10 + i}% year on year" for i in range(4)]},
        {"type": "chart", "kind": "bar", "series": [{"label": str(2020 + i), "value": 100 + n + i} for i in range(5)]},
    ]


class Run:
    """Samples of one row."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0
        self.cpu_start = time.process_time()
        self.cpu_s = 0.0

    def stop(self) -> None:
        self.cpu_s = time.process_time() - self.cpu_start


async def build_cim(engine: MutationEngine, n: int) -> str:
    result = await engine.mutate(
        "create",
        {"dealId": f"deal{n % 10}", "projectId": "p1", "title": f"CIM {n}"},
        actor="bench",
        mutation_id=f"build-{n}",
        user_id="bench",
    )
    cim_id = result.cim_id
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
            slide = {
                "id": f"{section}-{j}",
                "sectionId": section,
                "title": f"Slide {k}.{j}",
                "layoutType": "title-bullets-chart",
                "components": components(k * 10 + j),
            }
            steps.append(("updateSlide", {"slide": slide}))
    for i, (name, args) in enumerate(steps):
        await engine.mutate(name, {"cimId": cim_id, **args}, actor="bench", mutation_id=f"build-{n}-{i}")
    return str(cim_id)


def edits(cim_id: str, rng: random.Random, counter: Callable[[], int]) -> tuple[str, dict[str, Any]]:
    """One realistic edit of `cim_id`; each one changes the document."""
    n = counter()
    slide_id = f"{rng.choice(SECTIONS)}-{rng.randrange(SLIDES_PER_SECTION)}"
    kind = n % 4
    if kind == 0:
        return "updateSlide", {"cimId": cim_id, "slide": {"id": slide_id, "title": f"Retitled {n}"}}
    if kind == 1:
        return "updateSlide", {"cimId": cim_id, "slide": {"id": slide_id, "components": components(n)}}
    if kind == 2:
        return "updateState", {"cimId": cim_id, "currentSlideId": slide_id, "gatheredContext": {"last": n}}
    return "updateSlide", {"cimId": cim_id, "slide": {"id": slide_id, "status": "approved" if n % 8 == 3 else "draft"}}


async def run_writers(engine: MutationEngine, cim_ids: list[str], writers: int, seconds: float) -> tuple[Run, float]:
    """Runs `writers` loops of edits for `seconds`; returns the samples and the elapsed wall time."""
    run = Run()
    counter = itertools.count().__next__
    deadline = time.perf_counter() + seconds
    tag = uuid.uuid4().hex[:8]

    async def writer(w: int) -> None:
        rng = random.Random(w)
        cim_id = cim_ids[w % len(cim_ids)]
        while time.perf_counter() < deadline:
            name, args = edits(cim_id, rng, counter)
            start = time.perf_counter()
            try:
                await engine.mutate(name, args, actor="bench", mutation_id=f"{tag}-{w}-{counter()}")
            except CimhubError:
                run.errors += 1
                continue
            run.latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    run.stop()
    return run, time.perf_counter() - start


async def run_raw(call: Callable[[], Awaitable[Any]], concurrency: int, seconds: float) -> tuple[Run, float]:
    run = Run()
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await call()
            run.latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    run.stop()
    return run, time.perf_counter() - start


async def phases(engine: MutationEngine, cim_id: str, n: int = 1_000) -> None:
    """CPU time of each step of one updateSlide, as the engine runs them (see MutationEngine._prepare)."""
    stored = await engine.store.get(cim_id)
    spec = get_mutation("updateSlide")
    raw = {"cimId": cim_id, "slide": {"id": "s0-0", "title": "Retitled"}}
    parsed = spec.parse_args(raw)
    ctx = MutationContext(actor="bench", now=1, mutation_id="x")
    new = spec.run(Cim.model_validate(stored.doc), parsed, ctx).cim
    assert new is not None
    doc = new.to_json_dict()
    empty = engine.store.redis.register_script("return 0")
    steps: list[tuple[str, Callable[[], Any]]] = [
        (
            "parse args + args hash",
            lambda: orjson.dumps(spec.parse_args(raw).model_dump(mode="json"), option=orjson.OPT_SORT_KEYS),
        ),
        ("validate stored doc (the private copy)", lambda: Cim.model_validate(stored.doc)),
        ("run the mutation (incl. its validate)", lambda: spec.run(Cim.model_validate(stored.doc), parsed, ctx)),
        ("model_dump to JSON data", new.to_json_dict),
        ("finalize (dump + diff + stamp)", lambda: finalize(stored.doc, new.model_copy(), 2)),
        ("  of which diff stored -> new", lambda: diff(stored.doc, doc)),
        ("orjson.dumps document", lambda: orjson.dumps(doc)),
        ("_prepare, all of the above", lambda: engine._prepare(spec, parsed, ctx, cim_id, stored, "h")),
    ]
    print("\nCPU per step of one updateSlide on a 12 KB CIM (us):")
    for label, call in steps:
        start = time.process_time()
        for _ in range(n):
            call()
        print(f"  {label:46s} {(time.process_time() - start) / n * 1e6:8.1f}")
    for label, payload in (
        ("EVALSHA round trip, empty script", b""),
        ("EVALSHA round trip, 12 KB argument", orjson.dumps(doc)),
    ):
        start = time.process_time()
        for _ in range(n):
            await empty(keys=[], args=[payload])
        print(f"  {label:46s} {(time.process_time() - start) / n * 1e6:8.1f}  (client side only)")
    start = time.process_time()
    for i in range(n):
        await engine.mutate(
            "updateSlide",
            {"cimId": cim_id, "slide": {"id": "s0-0", "title": f"T{i}"}},
            actor="bench",
            mutation_id=f"phase-{uuid.uuid4().hex[:6]}-{i}",
        )
    print(f"  {'mutate, end to end':46s} {(time.process_time() - start) / n * 1e6:8.1f}")


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(quick: bool, profile: bool) -> None:
    seconds = 1.2 if quick else 6.0
    n_cims = 100
    async with redis_url_or_embedded() as url:
        client = aioredis.from_url(url, max_connections=256)
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        keys = Keys(prefix)
        engine = MutationEngine(CimStore(client, keys))
        try:
            build_start = time.perf_counter()
            cim_ids = await asyncio.gather(*(build_cim(engine, n) for n in range(n_cims)))
            build_s = time.perf_counter() - build_start
            doc_bytes = len(orjson.dumps((await engine.store.get(cim_ids[0])).doc))
            empty = client.register_script("return 0")
            await empty()

            rows: list[tuple[str, ...]] = []
            for writers in (1, 10, 100):
                raw, raw_elapsed = await run_raw(lambda: empty(keys=[], args=[]), writers, seconds / 2)
                raw_p50 = pct(raw.latencies, 0.5)
                rows.append(
                    (
                        "raw EVALSHA (empty script)",
                        str(writers),
                        "-",
                        f"{len(raw.latencies) / raw_elapsed:,.0f}",
                        f"{raw_p50:.3f}",
                        f"{pct(raw.latencies, 0.99):.3f}",
                        "1.0",
                        f"{raw.cpu_s / len(raw.latencies) * 1e6:,.0f}",
                        "0",
                    )
                )
                for label, targets in (("one CIM", cim_ids[:1]), ("100 CIMs", cim_ids)):
                    run, elapsed = await run_writers(engine, list(targets), writers, seconds)
                    p50 = pct(run.latencies, 0.5)
                    rows.append(
                        (
                            f"mutate, {label}",
                            str(writers),
                            str(len(targets)),
                            f"{len(run.latencies) / elapsed:,.0f}",
                            f"{p50:.3f}",
                            f"{pct(run.latencies, 0.99):.3f}",
                            f"{p50 / raw_p50:.1f}",
                            f"{run.cpu_s / max(1, len(run.latencies)) * 1e6:,.0f}",
                            str(run.errors),
                        )
                    )

            print(
                f"cimhub store bench: python {platform.python_version()}, {platform.machine()}, "
                f"{os.cpu_count()} CPUs, redis {(await client.info('server'))['redis_version']}, "
                f"{'REDIS_URL' if os.environ.get('REDIS_URL') else 'embedded redis (AOF everysec)'}"
            )
            print(
                f"{n_cims} CIMs of {doc_bytes:,} bytes each (6 sections, {6 * SLIDES_PER_SECTION} slides), "
                f"built in {build_s:.1f}s; {seconds:.1f}s per row ({seconds / 2:.1f}s for raw rows)"
            )
            header = ("operation", "writers", "CIMs", "ops/s", "p50 ms", "p99 ms", "p50/raw", "CPU us/op", "errors")
            widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
            for r in [header, tuple("-" * w for w in widths), *rows]:
                print(
                    "  ".join(
                        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
                    )
                )

            print(
                "CPU us/op: this process's CPU time per operation (load on the host does not inflate it;"
                " 1e6 / it is the ceiling of ops/s for one core)"
            )
            if profile:
                await phases(engine, cim_ids[0])
                profiler = cProfile.Profile()
                profiler.enable()
                run, elapsed = await run_writers(engine, cim_ids, 100, seconds)
                profiler.disable()
                print(
                    f"\nprofile: 100 writers over 100 CIMs, {len(run.latencies) / elapsed:,.0f} mutations/s "
                    "under cProfile; top functions by own time:"
                )
                pstats.Stats(profiler).sort_stats("tottime").print_stats(18)
        finally:
            async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
                await client.delete(key)
            await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (<20 s)")
    parser.add_argument("--profile", action="store_true", help="cProfile one extra 100-writer spread run")
    options = parser.parse_args()
    asyncio.run(main(options.quick, options.profile))
