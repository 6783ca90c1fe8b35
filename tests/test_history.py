"""History on a real Redis: any revision still in the patch log, diffs, retention by size and age, restore."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import redis.asyncio as aioredis
from conftest import Clock

from cimhub.protocol.errors import CimhubError, ErrorCode, InvalidInput, NotFound
from cimhub.server.store.cims import CimStore
from cimhub.server.store.engine import MutationEngine
from cimhub.server.store.history import History
from cimhub.server.store.keys import Keys

_ids = itertools.count()
EVERY = 4
RETENTION = 6
PERSONA = {"type": "strategic", "motivations": ["growth"], "concerns": ["price"]}
OUTLINE = [{"id": "s1", "title": "Overview"}, {"id": "s2", "title": "Financials"}]


@pytest.fixture
def store(redis_client: aioredis.Redis, keys: Keys) -> CimStore:
    return CimStore(redis_client, keys, patch_log_retention=RETENTION, snapshot_every=EVERY)


@pytest.fixture
def history(redis_client: aioredis.Redis, keys: Keys) -> History:
    return History(redis_client, keys, snapshot_every=EVERY)


@pytest.fixture
def engine(store: CimStore, history: History, clock: Clock) -> MutationEngine:
    return MutationEngine(store, clock=clock, history=history, cache_size=0)


async def mutate(engine: MutationEngine, name: str, args: dict[str, Any], *, mutation_id: str | None = None) -> Any:
    return await engine.mutate(name, args, actor="u1", mutation_id=mutation_id or f"h{next(_ids)}", user_id="u1")


async def create_with_history(
    engine: MutationEngine, store: CimStore, edits: int
) -> tuple[str, dict[int, dict[str, Any]]]:
    """A CIM with `edits` retitles after its creation; returns every revision's document as committed."""
    cim_id = (await mutate(engine, "create", {"dealId": "d1", "projectId": "p1", "title": "t0"})).cim_id
    docs = {1: (await store.get(cim_id)).doc}
    for i in range(1, edits + 1):
        await mutate(engine, "updateState", {"cimId": cim_id, "title": f"t{i}", "gatheredContext": {"i": i}})
        stored = await store.get(cim_id)
        docs[stored.revision] = stored.doc
    return cim_id, docs


async def test_every_revision_in_the_log_reads_back_exactly_as_committed(
    engine: MutationEngine, store: CimStore, history: History
) -> None:
    cim_id, docs = await create_with_history(engine, store, 5)  # revisions 1..6, nothing trimmed yet
    for revision, doc in docs.items():
        past = await history.at(cim_id, revision)
        assert (past.revision, past.doc) == (revision, doc)
        assert past.patches < EVERY  # the bound: a snapshot plus fewer than EVERY patches


async def test_the_log_is_trimmed_in_whole_snapshot_intervals_and_keeps_every_revision_in_it_readable(
    engine: MutationEngine, store: CimStore, history: History, redis_client: aioredis.Redis, keys: Keys
) -> None:
    cim_id, docs = await create_with_history(engine, store, 24)  # revisions 1..25
    entries = await redis_client.xrange(keys.log(cim_id))
    revs = [int(entry_id.split(b"-")[0]) for entry_id, _ in entries]
    assert RETENTION <= len(revs) <= RETENTION + EVERY - 1
    assert revs == list(range(revs[0], 26)) and revs[0] % EVERY == 0 and b"s" in entries[0][1]
    assert await history.oldest(cim_id) == revs[0]
    for revision in range(revs[0], 26):
        assert (await history.at(cim_id, revision)).doc == docs[revision]
    # Across the retention boundary: the revision just before the log is gone, with a clear error.
    with pytest.raises(NotFound) as lost:
        await history.at(cim_id, revs[0] - 1)
    assert f"oldest kept is {revs[0]}" in lost.value.message and lost.value.path == "args.revision"
    with pytest.raises(InvalidInput):
        await history.at(cim_id, 26)
    # The resume path still sees the trimmed log as trimmed.
    assert await store.patches_since(cim_id, revs[0] - 2) is None
    assert [p["rev"] for p in await store.patches_since(cim_id, revs[0] - 1) or []] == revs
    # The size bound holds after every commit, not only at the end.
    for i in range(2 * EVERY):
        await mutate(engine, "updateState", {"cimId": cim_id, "title": f"more {i}"})
        assert RETENTION <= await redis_client.xlen(keys.log(cim_id)) <= RETENTION + EVERY - 1


async def test_age_retention_drops_intervals_older_than_the_limit(
    redis_client: aioredis.Redis, keys: Keys, clock: Clock
) -> None:
    store = CimStore(redis_client, keys, patch_log_retention=1000, snapshot_every=EVERY, history_max_age_ms=60_000)
    history = History(redis_client, keys, snapshot_every=EVERY)
    engine = MutationEngine(store, clock=clock, history=history, cache_size=0)
    cim_id, _docs = await create_with_history(engine, store, 10)  # revisions 1..11, all "now"
    assert await history.oldest(cim_id) == 1
    clock.ms += 120_000  # two minutes later
    for i in range(5):  # revisions 12..16: the write at 12 and 16 (snapshots) apply the age limit
        await mutate(engine, "updateState", {"cimId": cim_id, "title": f"later {i}"})
    oldest = await history.oldest(cim_id)
    # Revisions 1..11 are older than a minute; the interval that straddles the cutoff (from 8) stays as the base.
    assert oldest == 8
    with pytest.raises(NotFound):
        await history.at(cim_id, 7)
    assert (await history.at(cim_id, 9)).doc["title"] == "t8"


async def test_diff_returns_the_ops_and_actors_between_two_revisions(
    engine: MutationEngine, store: CimStore, history: History
) -> None:
    cim_id, _docs = await create_with_history(engine, store, 3)
    await engine.mutate(
        "updateState",
        {"cimId": cim_id, "title": "by agent"},
        actor="service:agent/u1",
        mutation_id="agent-1",
        user_id="u1",
    )
    answer = await history.diff(cim_id, 2, None, 100)
    assert [p["rev"] for p in answer["patches"]] == [3, 4, 5]
    assert answer["actors"] == ["service:agent/u1", "u1"] and answer["to"] == 5 and not answer["truncated"]
    limited = await history.diff(cim_id, 0, 4, 2)
    assert [p["rev"] for p in limited["patches"]] == [1, 2] and limited["truncated"]
    with pytest.raises(InvalidInput):
        await history.diff(cim_id, 4, 2, 10)


async def test_restore_makes_a_past_revision_current_as_a_new_revision_exactly_once(
    engine: MutationEngine, store: CimStore, history: History
) -> None:
    cim_id, docs = await create_with_history(engine, store, 3)  # revisions 1..4
    first = await mutate(engine, "restoreRevision", {"cimId": cim_id, "revision": 2}, mutation_id="restore-1")
    assert first.revision == 5 and first.result == {"restoredFrom": 2, "changed": True} and not first.duplicate
    current = (await store.get(cim_id)).doc

    def strip(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k not in ("revision", "updatedAt")}

    assert strip(current) == strip(docs[2]) and current["revision"] == 5
    # The same mutation id again: the first result, nothing applied.
    again = await mutate(engine, "restoreRevision", {"cimId": cim_id, "revision": 2}, mutation_id="restore-1")
    assert (again.revision, again.duplicate, again.result) == (5, True, first.result)
    assert (await store.get(cim_id)).revision == 5
    # The restore is a normal patch in the log, so history and subscribers see it like any change.
    (entry,) = (await history.diff(cim_id, 4, 5, 10))["patches"]
    assert entry["mutation"] == "restoreRevision" and {"op": "replace", "path": "/title", "value": "t1"} in entry["ops"]
    # Restoring what is already current changes nothing and makes no revision.
    same = await mutate(engine, "restoreRevision", {"cimId": cim_id, "revision": 5})
    assert (same.revision, same.result["changed"]) == (5, False)


async def test_restore_keeps_a_cim_out_of_draft_and_refuses_revisions_outside_the_log(
    engine: MutationEngine, store: CimStore
) -> None:
    cim_id, _ = await create_with_history(engine, store, 0)
    await mutate(engine, "saveBuyerPersona", {"cimId": cim_id, "persona": PERSONA})
    assert (await store.get(cim_id)).doc["status"] == "in_progress"
    await mutate(engine, "restoreRevision", {"cimId": cim_id, "revision": 1})
    restored = (await store.get(cim_id)).doc
    assert restored["status"] == "in_progress" and "buyerPersona" not in restored and restored["stage"] == "welcome"
    with pytest.raises(InvalidInput) as future:
        await mutate(engine, "restoreRevision", {"cimId": cim_id, "revision": 99})
    assert future.value.path == "args.revision"
    with pytest.raises(NotFound):
        await mutate(engine, "restoreRevision", {"cimId": "no-such-cim", "revision": 1})
    assert (await store.get(cim_id)).revision == 3


async def test_restore_without_history_is_an_internal_error_not_a_silent_noop(store: CimStore, clock: Clock) -> None:
    engine = MutationEngine(store, clock=clock)
    cim_id = (await mutate(engine, "create", {"dealId": "d1", "projectId": "p1", "title": "x"})).cim_id
    with pytest.raises(CimhubError) as failed:
        await mutate(engine, "restoreRevision", {"cimId": cim_id, "revision": 1})
    assert failed.value.code == ErrorCode.INTERNAL
