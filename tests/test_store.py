"""CimStore on a real Redis: compare-and-set, idempotency records, indexes and cursors, patch log, delete."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from support.clock import Clock

from cimhub.protocol.errors import InvalidInput, NotFound
from cimhub.protocol.patch import apply
from cimhub.server.store.cims import (
    CimStore,
    Commit,
    CommitConflict,
    Committed,
    Duplicate,
    IndexKind,
)
from cimhub.server.store.engine import MutationEngine
from cimhub.server.store.keys import Keys

_ids = itertools.count()
PERSONA = {"type": "strategic", "motivations": ["m"], "concerns": ["c"]}


@pytest.fixture
def store(redis_client: aioredis.Redis, keys: Keys) -> CimStore:
    return CimStore(redis_client, keys, patch_log_retention=5)


@pytest.fixture
def engine(store: CimStore, clock: Clock) -> MutationEngine:
    return MutationEngine(store, clock=clock)


async def mutate(engine: MutationEngine, name: str, args: dict[str, Any], user: str = "u1") -> Any:
    return await engine.mutate(name, args, actor=user, mutation_id=f"m{next(_ids)}", user_id=user)


async def create(engine: MutationEngine, deal: str = "d1", user: str = "u1", title: str = "T") -> str:
    result = await mutate(engine, "create", {"dealId": deal, "projectId": "p1", "title": title}, user)
    return str(result.cim_id)


def commit_of(
    doc: dict[str, Any], *, expected: tuple[int, str, str], epoch: str, mutation_id: str, commit_id: str = "c-new"
) -> Commit:
    """A hand-built commit of `doc` (the engine normally builds these); `expected` is (revision, epoch, commit id)."""
    rev = doc["revision"]
    return Commit(
        cim_id=doc["id"],
        kind="commit",
        expected_revision=expected[0],
        expected_epoch=expected[1],
        expected_commit=expected[2],
        commit_id=commit_id,
        epoch=epoch,
        revision=rev,
        doc_json=orjson.dumps(doc),
        updated_at=doc["updatedAt"],
        entry_json=orjson.dumps(
            {"cimId": doc["id"], "rev": rev, "epoch": epoch, "commit": commit_id, "parent": expected[2], "ops": []}
        ),
        record_json=orjson.dumps({"name": "x", "argsHash": "h", "cimId": doc["id"], "result": {}, "revision": rev}),
        deal_id=doc["dealId"],
        user_id=doc["userId"],
        old_status=doc["status"],
        new_status=doc["status"],
        deal_event_json=b"",
        mutation_id=mutation_id,
    )


async def snapshot(client: aioredis.Redis, prefix: str) -> dict[bytes, Any]:
    """Every key's content. Hashes by field, not by DUMP: a read can advance Redis' incremental
    rehashing of a hash, which reorders its DUMP without any write."""
    content: dict[bytes, Any] = {}
    async for key in client.scan_iter(match=f"{prefix}:*"):
        content[key] = await client.hgetall(key) if await client.type(key) == b"hash" else await client.dump(key)
    return content


# -- compare-and-set and idempotency records ---------------------------------------------


async def test_commit_writes_nothing_when_the_revision_moved_on(
    engine: MutationEngine, store: CimStore, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    cim_id = await create(engine)
    await mutate(engine, "updateState", {"cimId": cim_id, "title": "two"})
    stored = await store.get(cim_id)
    assert stored.revision == 2
    doc = {**stored.doc, "title": "lost", "revision": 2}
    before = await snapshot(redis_client, key_prefix)
    outcome = await store.commit(
        commit_of(doc, expected=(1, stored.epoch, stored.commit), epoch=stored.epoch, mutation_id="x1")
    )
    assert isinstance(outcome, CommitConflict)
    assert outcome.current is not None and outcome.current.revision == 2
    assert outcome.current.doc == stored.doc and outcome.current.epoch == stored.epoch
    assert await snapshot(redis_client, key_prefix) == before


async def test_commit_writes_nothing_when_the_epoch_differs(
    engine: MutationEngine, store: CimStore, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    cim_id = await create(engine)
    stored = await store.get(cim_id)
    doc = {**stored.doc, "title": "other history", "revision": 2}
    before = await snapshot(redis_client, key_prefix)
    outcome = await store.commit(commit_of(doc, expected=(1, "another", ""), epoch="another", mutation_id="x1"))
    assert isinstance(outcome, CommitConflict) and outcome.current is not None
    assert await snapshot(redis_client, key_prefix) == before


async def test_commit_to_a_missing_cim_conflicts_with_nothing(store: CimStore) -> None:
    doc = {"id": "ghost", "dealId": "d", "userId": "u", "status": "draft", "updatedAt": 1, "revision": 5}
    outcome = await store.commit(commit_of(doc, expected=(4, "e", ""), epoch="e", mutation_id="x1"))
    assert outcome == CommitConflict(None)
    assert await store.load("ghost") is None


async def test_a_committed_mutation_id_returns_its_first_record(engine: MutationEngine, store: CimStore) -> None:
    cim_id = await create(engine)
    stored = await store.get(cim_id)
    doc = {**stored.doc, "title": "two", "revision": 2}
    first = await store.commit(
        commit_of(
            doc, expected=(1, stored.epoch, stored.commit), epoch=stored.epoch, mutation_id="same", commit_id="c2"
        )
    )
    assert first == Committed(2, stored.epoch, "c2")
    again = await store.commit(
        commit_of(
            {**doc, "title": "three", "revision": 3},
            expected=(2, stored.epoch, "c2"),
            epoch=stored.epoch,
            mutation_id="same",
        )
    )
    assert isinstance(again, Duplicate) and again.record["revision"] == 2
    assert (await store.get(cim_id)).doc["title"] == "two"
    assert await store.mutation_record(cim_id, "same") == again.record


async def test_idempotency_records_expire_after_the_window(
    redis_client: aioredis.Redis, keys: Keys, clock: Clock
) -> None:
    store = CimStore(redis_client, keys, idempotency_window_s=60)
    engine = MutationEngine(store, clock=clock)
    result = await engine.mutate(
        "create", {"dealId": "d", "projectId": "p", "title": "T"}, actor="u1", mutation_id="c1", user_id="u1"
    )
    ttl = await redis_client.ttl(keys.mutation(result.cim_id, "c1"))
    assert 0 < ttl <= 60


async def test_load_and_get_of_a_missing_cim(store: CimStore) -> None:
    assert await store.load("nope") is None
    with pytest.raises(NotFound):
        await store.get("nope")


# -- indexes ----------------------------------------------------------------------------------


async def test_indexes_follow_each_commit(
    engine: MutationEngine, keys: Keys, redis_client: aioredis.Redis, clock: Clock
) -> None:
    cim_id = await create(engine, deal="d1", user="u1")
    created = clock.ms
    for key in (keys.by_deal("d1"), keys.by_user("u1"), keys.by_status("draft")):
        assert await redis_client.zscore(key, cim_id) == created
    clock.ms += 1_000
    await mutate(engine, "saveBuyerPersona", {"cimId": cim_id, "persona": PERSONA})  # draft -> in_progress
    for key in (keys.by_deal("d1"), keys.by_user("u1"), keys.by_status("in_progress")):
        assert await redis_client.zscore(key, cim_id) == clock.ms
    assert await redis_client.zscore(keys.by_status("draft"), cim_id) is None


async def test_readers_never_see_a_document_and_its_indexes_disagree(
    engine: MutationEngine, keys: Keys, redis_client: aioredis.Redis, redis_url: str, clock: Clock
) -> None:
    cim_id = await create(engine)
    reader = aioredis.from_url(redis_url)
    stop = asyncio.Event()
    seen = 0

    async def read() -> None:
        nonlocal seen
        while not stop.is_set():
            pipe = reader.pipeline(transaction=True)  # MULTI/EXEC: one atomic view
            pipe.hget(keys.cim(cim_id), "doc")
            pipe.zscore(keys.by_deal("d1"), cim_id)
            pipe.zscore(keys.by_status("in_progress"), cim_id)
            pipe.zscore(keys.by_status("complete"), cim_id)
            raw, deal_score, in_progress, complete = await pipe.execute()
            doc = orjson.loads(raw)
            assert deal_score == doc["updatedAt"]
            assert {"in_progress": in_progress, "complete": complete}.get(doc["status"]) == doc["updatedAt"]
            other = complete if doc["status"] == "in_progress" else in_progress
            assert other is None
            seen += 1

    await mutate(engine, "saveBuyerPersona", {"cimId": cim_id, "persona": PERSONA})
    await mutate(
        engine,
        "saveHeroContext",
        {
            "cimId": cim_id,
            "heroContext": {"selectedHero": "h", "investmentThesis": {"asset": "a", "timing": "t", "opportunity": "o"}},
        },
    )
    await mutate(engine, "createOutline", {"cimId": cim_id, "outline": [{"id": "s1", "title": "S", "description": ""}]})
    task = asyncio.create_task(read())
    try:
        for i in range(60):
            clock.ms += 1
            await mutate(engine, "updateState", {"cimId": cim_id, "status": "complete" if i % 2 else "in_progress"})
            await asyncio.sleep(0)
    finally:
        stop.set()
        await task
        await reader.aclose()
    assert seen > 0


async def collect(store: CimStore, index: IndexKind, value: str, limit: int) -> list[tuple[int, str]]:
    rows: list[tuple[int, str]] = []
    cursor = None
    for _ in range(1_000):
        page = await store.list(index, value, cursor=cursor, limit=limit)
        assert len(page.items) <= limit
        assert page.items or page.next_cursor is None
        rows.extend((item.updatedAt, item.id) for item in page.items)
        if page.next_cursor is None:
            return rows
        assert len(page.items) == limit
        cursor = page.next_cursor
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("limit", [1, 3, 4, 50])
async def test_paging_returns_every_cim_once_newest_first(
    engine: MutationEngine, store: CimStore, clock: Clock, limit: int
) -> None:
    expected: dict[str, list[tuple[int, str]]] = {"d1": [], "u1": [], "draft": []}
    for i in range(13):
        clock.ms = 1_700_000_000_000 + (i // 4) * 1_000  # runs of 4 CIMs share one updatedAt
        deal, user = ("d1", "u1") if i % 3 else ("d2", "u2")
        cim_id = await create(engine, deal=deal, user=user)
        row = (clock.ms, cim_id)
        expected["draft"].append(row)
        if deal == "d1":
            expected["d1"].append(row)
        if user == "u1":
            expected["u1"].append(row)
    indexes: list[tuple[IndexKind, str]] = [("deal", "d1"), ("user", "u1"), ("status", "draft")]
    for index, value in indexes:
        rows = await collect(store, index, value, limit)
        assert len(rows) == len(set(rows)), "duplicates across pages"
        assert rows == sorted(expected[value], reverse=True)


async def test_a_page_boundary_stays_put_while_cims_are_added(
    engine: MutationEngine, store: CimStore, clock: Clock
) -> None:
    first_batch = [await create(engine) for _ in range(6)]  # all at one updatedAt
    page = await store.list("deal", "d1", limit=4)
    clock.ms += 1_000
    newer = [await create(engine) for _ in range(3)]
    rest = await store.list("deal", "d1", cursor=page.next_cursor, limit=4)
    seen = [item.id for item in page.items + rest.items]
    assert sorted(seen) == sorted(first_batch) and len(set(seen)) == 6
    assert rest.next_cursor is None
    assert not set(newer) & set(seen)


async def test_a_deleted_cim_leaves_every_index(
    engine: MutationEngine, store: CimStore, keys: Keys, redis_client: aioredis.Redis
) -> None:
    keep, gone = await create(engine), await create(engine)
    await mutate(engine, "delete", {"cimId": gone})
    for key in (keys.by_deal("d1"), keys.by_user("u1"), keys.by_status("draft")):
        assert await redis_client.zrange(key, 0, -1) == [keep.encode()]
    assert [item.id for item in (await store.list("deal", "d1")).items] == [keep]


async def test_bad_cursors_and_limits_are_invalid_input(store: CimStore) -> None:
    for cursor in ("!!!", "bm90IGpzb24", "WzFd"):  # not base64, not JSON, wrong shape
        with pytest.raises(InvalidInput) as info:
            await store.list("deal", "d1", cursor=cursor)
        assert info.value.path == "args.cursor"
    for limit in (0, 201):
        with pytest.raises(InvalidInput):
            await store.list("deal", "d1", limit=limit)


# -- patch log --------------------------------------------------------------------------------


async def test_patch_log_keeps_the_last_entries_and_says_when_it_no_longer_reaches_back(
    engine: MutationEngine, store: CimStore, keys: Keys, redis_client: aioredis.Redis
) -> None:
    cim_id = await create(engine)
    for i in range(11):
        await mutate(engine, "updateState", {"cimId": cim_id, "gatheredContext": {"i": i}})
    assert (await store.get(cim_id)).revision == 12
    assert await redis_client.xlen(keys.log(cim_id)) == 5  # retention
    assert await store.patches_since(cim_id, 12) == []
    tail = await store.patches_since(cim_id, 7)
    assert tail is not None and [p["rev"] for p in tail] == [8, 9, 10, 11, 12]
    assert await store.patches_since(cim_id, 6) is None
    assert await store.patches_since(cim_id, 0) is None
    limited = await store.patches_since(cim_id, 9, limit=2)
    assert limited is not None and [p["rev"] for p in limited] == [10, 11]


async def test_patch_log_is_bounded_by_bytes_as_well_as_entries(
    redis_client: aioredis.Redis, keys: Keys, clock: Clock
) -> None:
    """The attack: big patches on one CIM filling Redis although the entry count is within retention."""
    store = CimStore(redis_client, keys, patch_log_retention=1_000, patch_log_max_bytes=200_000)
    engine = MutationEngine(store, clock=clock)
    cim_id = await create(engine)
    for i in range(12):
        await mutate(engine, "updateState", {"cimId": cim_id, "gatheredContext": {"blob": f"{i:02d}" * 25_000}})
    entries = await redis_client.xrange(keys.log(cim_id))
    kept = sum(len(fields[b"p"]) for _id, fields in entries)
    assert kept <= 200_000 and len(entries) == 3  # ~50 kB each after the first; the newest always stays
    assert int(await redis_client.hget(keys.cim(cim_id), "logbytes")) == kept
    tail = await store.patches_since(cim_id, 10)
    assert tail is not None and [p["rev"] for p in tail] == [11, 12, 13]
    assert await store.patches_since(cim_id, 9) is None  # trimmed away: the subscriber needs a snapshot
    await mutate(engine, "updateState", {"cimId": cim_id, "gatheredContext": {"blob": "x" * 300_000}})
    assert await redis_client.xlen(keys.log(cim_id)) == 1  # one entry over the bound is kept alone


async def test_patch_log_entries_name_the_mutation_and_replay_to_the_document(
    engine: MutationEngine, store: CimStore
) -> None:
    cim_id = await create(engine)
    first = (await store.get(cim_id)).doc
    result = await engine.mutate(
        "updateState", {"cimId": cim_id, "title": "Renamed"}, actor="u1", mutation_id="rename-1"
    )
    (entry,) = await store.patches_since(cim_id, 1) or [None]
    assert entry is not None
    stored = await store.get(cim_id)
    assert (entry["rev"], entry["epoch"], entry["mutation"], entry["mutationId"], entry["actor"]) == (
        result.revision,
        stored.epoch,
        "updateState",
        "rename-1",
        "u1",
    )
    assert {"op": "replace", "path": "/title", "value": "Renamed"} in entry["ops"]
    assert apply(first, entry["ops"]) == stored.doc


# -- delete -----------------------------------------------------------------------------------


async def test_delete_removes_document_log_index_entries_and_extra_keys(
    redis_client: aioredis.Redis, keys: Keys, key_prefix: str, clock: Clock
) -> None:
    store = CimStore(redis_client, keys, extra_keys=lambda cim_id: [keys.cim(cim_id) + ":msg"])
    engine = MutationEngine(store, clock=clock)
    cim_id = await create(engine)
    await mutate(engine, "updateState", {"cimId": cim_id, "title": "x"})
    await redis_client.set(keys.cim(cim_id) + ":msg", "a message")
    pubsub = redis_client.pubsub()
    await pubsub.ssubscribe(keys.cim_channel(cim_id), keys.deal_channel("d1"))
    await pubsub.get_message(timeout=1)
    await pubsub.get_message(timeout=1)

    result = await engine.mutate("delete", {"cimId": cim_id}, actor="u1", mutation_id="del-1")
    assert result.revision == 3 and result.result == {"deleted": True}
    assert await store.load(cim_id) is None
    gone = [
        keys.cim(cim_id),
        keys.log(cim_id),
        keys.cim(cim_id) + ":msg",
        keys.by_deal("d1"),
        keys.by_user("u1"),
        keys.by_status("draft"),
    ]
    assert await redis_client.exists(*gone) == 0
    remaining = {key.decode() async for key in redis_client.scan_iter(match=f"{key_prefix}:*")}
    # Only idempotency records stay (they expire): a retried delete must find its own.
    assert keys.mutation(cim_id, "del-1") in remaining
    assert all(key.startswith(keys.mutation(cim_id, "")) for key in remaining)

    events = [await pubsub.get_message(timeout=5) for _ in range(2)]
    by_channel = {e["channel"].decode(): orjson.loads(e["data"]) for e in events if e is not None}
    assert by_channel[keys.cim_channel(cim_id)]["deleted"] is True
    assert by_channel[keys.cim_channel(cim_id)]["rev"] == 3
    assert by_channel[keys.deal_channel("d1")] == {"type": "remove", "cimId": cim_id}
    await pubsub.aclose()  # type: ignore[no-untyped-call]

    again = await engine.mutate("delete", {"cimId": cim_id}, actor="u1", mutation_id="del-1")
    assert again.duplicate and again.revision == 3
