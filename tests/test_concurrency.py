"""Many writers on one CIM, on a real Redis: no lost update, contiguous revisions, exactly-once.

Writers run in one engine, in two engines (two caches, as two processes), and in
a real second process, all on the same CIM at the same time.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from typing import Any

import jsonpatch
import orjson
import pytest
import redis.asyncio as aioredis

from cimhub.protocol.errors import Conflict, ErrorCode
from cimhub.server.store.cims import CimStore
from cimhub.server.store.engine import CommitResult, MutationEngine
from cimhub.server.store.keys import Keys

OUTLINE = [{"id": "s1", "title": "Overview", "description": ""}, {"id": "s2", "title": "Market", "description": ""}]
PERSONA = {"type": "strategic", "motivations": ["m"], "concerns": ["c"]}
HERO = {"selectedHero": "h", "investmentThesis": {"asset": "a", "timing": "t", "opportunity": "o"}}


@pytest.fixture
def engine(redis_client: aioredis.Redis, keys: Keys) -> MutationEngine:
    return MutationEngine(CimStore(redis_client, keys))


async def built(engine: MutationEngine) -> tuple[str, int]:
    """A CIM with an outline; returns its id and revision."""
    result = await engine.mutate(
        "create",
        {"dealId": "d1", "projectId": "p1", "title": "T"},
        actor="u1",
        mutation_id="setup-create",
        user_id="u1",
    )
    cim_id = result.cim_id
    setup: list[tuple[str, dict[str, Any]]] = [
        ("saveBuyerPersona", {"persona": PERSONA}),
        ("saveHeroContext", {"heroContext": HERO}),
        ("createOutline", {"outline": OUTLINE}),
    ]
    for i, (name, args) in enumerate(setup):
        result = await engine.mutate(name, {"cimId": cim_id, **args}, actor="u1", mutation_id=f"setup-{i}")
    return cim_id, result.revision


def new_slide(cim_id: str, i: int) -> dict[str, Any]:
    return {"cimId": cim_id, "slide": {"id": f"w{i}", "sectionId": f"s{1 + i % 2}", "title": f"by writer {i}"}}


async def assert_no_lost_update(
    store: CimStore, cim_id: str, base: int, results: list[CommitResult], writers: int, base_doc: dict[str, Any]
) -> None:
    """Every writer's slide is there, revisions base+1.. are contiguous, and the log replays to the doc."""
    stored = await store.get(cim_id)
    assert sorted(s["id"] for s in stored.doc["slides"]) == sorted(f"w{i}" for i in range(writers))
    assert stored.revision == base + writers
    assert sorted(r.revision for r in results) == list(range(base + 1, base + writers + 1))
    entries = await store.patches_since(cim_id, base)
    assert entries is not None and [e["rev"] for e in entries] == list(range(base + 1, base + writers + 1))
    doc = base_doc
    for entry in entries:
        doc = jsonpatch.apply_patch(doc, entry["ops"], in_place=True)
    assert orjson.dumps(doc, option=orjson.OPT_SORT_KEYS) == orjson.dumps(stored.doc, option=orjson.OPT_SORT_KEYS)
    progress = stored.doc["sectionProgress"]
    assert sorted(progress["s1"]["slideIds"] + progress["s2"]["slideIds"]) == sorted(f"w{i}" for i in range(writers))


async def test_a_hundred_writers_in_one_engine_lose_nothing(engine: MutationEngine) -> None:
    cim_id, base = await built(engine)
    base_doc = (await engine.store.get(cim_id)).doc
    writers = 100
    results = await asyncio.gather(
        *(
            engine.mutate("updateSlide", new_slide(cim_id, i), actor=f"u{i}", mutation_id=f"w-{i}")
            for i in range(writers)
        )
    )
    await assert_no_lost_update(engine.store, cim_id, base, results, writers, base_doc)
    assert not any(r.duplicate for r in results)
    assert not engine._locks._locks  # per-CIM locks are dropped once no writer waits


async def test_writers_in_two_engines_lose_nothing(engine: MutationEngine, redis_url: str, keys: Keys) -> None:
    other_client = aioredis.from_url(redis_url)
    other = MutationEngine(CimStore(other_client, keys))
    try:
        cim_id, base = await built(engine)
        base_doc = (await engine.store.get(cim_id)).doc
        await other.store.get(cim_id)
        writers = 60
        results = await asyncio.gather(
            *(
                (engine if i % 2 else other).mutate(
                    "updateSlide", new_slide(cim_id, i), actor="u1", mutation_id=f"w-{i}"
                )
                for i in range(writers)
            )
        )
        await assert_no_lost_update(engine.store, cim_id, base, results, writers, base_doc)
    finally:
        await other_client.aclose()


WRITER_PROCESS = textwrap.dedent(
    """
    import asyncio, sys
    import redis.asyncio as aioredis
    from cimhub.server.store.engine import MutationEngine
    from cimhub.server.store.keys import Keys
    from cimhub.server.store.cims import CimStore

    async def main(url, prefix, cim_id, first, count):
        client = aioredis.from_url(url)
        engine = MutationEngine(CimStore(client, Keys(prefix)))
        print("ready", flush=True)
        sys.stdin.readline()  # start together with the test's writers
        results = await asyncio.gather(*(
            engine.mutate("updateSlide", {"cimId": cim_id, "slide": {"id": f"w{i}", "sectionId": f"s{1 + i % 2}",
                          "title": f"by writer {i}"}}, actor="proc", mutation_id=f"w-{i}")
            for i in range(first, first + count)))
        print(" ".join(str(r.revision) for r in results), flush=True)
        await client.aclose()

    url, prefix, cim_id, first, count = sys.argv[1:]
    asyncio.run(main(url, prefix, cim_id, int(first), int(count)))
    """
)


async def test_writers_in_a_second_process_lose_nothing(
    engine: MutationEngine, redis_url: str, key_prefix: str
) -> None:
    cim_id, base = await built(engine)
    base_doc = (await engine.store.get(cim_id)).doc
    ours, theirs = 40, 40
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WRITER_PROCESS,
        redis_url,
        key_prefix,
        cim_id,
        str(ours),
        str(theirs),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ},
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert (await asyncio.wait_for(proc.stdout.readline(), 60)).strip() == b"ready"
        await engine.store.get(cim_id)  # warm our cache: it goes stale as soon as the other process writes
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
        local = await asyncio.gather(
            *(engine.mutate("updateSlide", new_slide(cim_id, i), actor="u1", mutation_id=f"w-{i}") for i in range(ours))
        )
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    remote = [CommitResult(cim_id, int(rev), {}) for rev in line.split()]
    assert len(remote) == theirs
    await assert_no_lost_update(engine.store, cim_id, base, list(local) + remote, ours + theirs, base_doc)


async def test_concurrent_retries_of_one_mutation_commit_once(
    engine: MutationEngine, redis_url: str, keys: Keys
) -> None:
    cim_id, base = await built(engine)
    other_client = aioredis.from_url(redis_url)
    other = MutationEngine(CimStore(other_client, keys))
    try:
        results = await asyncio.gather(
            *(
                (engine if i % 2 else other).mutate("updateSlide", new_slide(cim_id, 0), actor="u1", mutation_id="once")
                for i in range(20)
            )
        )
    finally:
        await other_client.aclose()
    assert {r.revision for r in results} == {base + 1}
    assert sum(not r.duplicate for r in results) == 1
    stored = await engine.store.get(cim_id)
    assert stored.revision == base + 1 and [s["id"] for s in stored.doc["slides"]] == ["w0"]


async def test_of_writers_expecting_one_revision_exactly_one_wins(engine: MutationEngine) -> None:
    cim_id, base = await built(engine)
    outcomes = await asyncio.gather(
        *(
            engine.mutate("updateSlide", new_slide(cim_id, i), actor="u1", mutation_id=f"x-{i}", expected_revision=base)
            for i in range(30)
        ),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if isinstance(o, CommitResult)]
    losers = [o for o in outcomes if not isinstance(o, CommitResult)]
    assert len(winners) == 1 and winners[0].revision == base + 1
    assert all(isinstance(o, Conflict) and o.code == ErrorCode.CONFLICT for o in losers)
    stored = await engine.store.get(cim_id)
    assert stored.revision == base + 1 and len(stored.doc["slides"]) == 1


async def test_concurrent_creates_each_make_one_cim_in_the_indexes(engine: MutationEngine) -> None:
    results = await asyncio.gather(
        *(
            engine.mutate(
                "create",
                {"dealId": "d1", "projectId": "p1", "title": f"T{i}"},
                actor="u1",
                mutation_id=f"c-{i}",
                user_id="u1",
            )
            for i in range(50)
        )
    )
    ids = {r.cim_id for r in results}
    assert len(ids) == 50 and {r.revision for r in results} == {1}
    listed: list[str] = []
    cursor = None
    while True:
        page = await engine.store.list("deal", "d1", cursor=cursor, limit=7)
        listed.extend(item.id for item in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(listed) == sorted(ids)
