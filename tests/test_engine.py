"""MutationEngine on a real Redis: each mutation, the seed's cascade table and §9 test,
exactly-once retries, expectedRevision, bad input (structured error, nothing written),
two engines on one Redis, and the patch log replaying to the stored document.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import uuid
from collections.abc import AsyncIterator
from typing import Any

import jsonpatch
import orjson
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.clock import Clock

from cimhub.protocol.errors import (
    CimhubError,
    Conflict,
    ErrorCode,
    InvalidInput,
    NotFound,
    Unavailable,
)
from cimhub.protocol.mutations import derived_cim_id, imported_cim_id
from cimhub.protocol.schema import STAGES
from cimhub.server.embedded import free_port
from cimhub.server.store.cims import CimStore, StoredCim
from cimhub.server.store.engine import CommitResult, DocumentCache, MutationEngine
from cimhub.server.store.keys import Keys

PERSONA = {"type": "strategic", "motivations": ["synergies"], "concerns": ["integration"]}
OTHER_PERSONA = {"type": "financial", "motivations": ["returns"], "concerns": ["leverage"]}
HERO = {"selectedHero": "Leader", "investmentThesis": {"asset": "a", "timing": "t", "opportunity": "o"}}
OTHER_HERO = {**HERO, "selectedHero": "Grower"}
OUTLINE = [
    {"id": "s1", "title": "Overview", "description": "the company"},
    {"id": "s2", "title": "Market", "description": "the market"},
]
_ids = itertools.count()


def canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@pytest.fixture
def store(redis_client: aioredis.Redis, keys: Keys) -> CimStore:
    return CimStore(redis_client, keys, extra_keys=lambda cim_id: [keys.cim(cim_id) + ":msg"])


@pytest.fixture
def engine(store: CimStore, clock: Clock) -> MutationEngine:
    return MutationEngine(store, clock=clock)


async def mutate(engine: MutationEngine, name: str, args: dict[str, Any], **kw: Any) -> CommitResult:
    kw.setdefault("actor", "u1")
    kw.setdefault("user_id", "u1")
    kw.setdefault("mutation_id", f"m{next(_ids)}")
    return await engine.mutate(name, args, **kw)


async def create(engine: MutationEngine) -> str:
    result = await mutate(engine, "create", {"dealId": "d1", "projectId": "p1", "title": "Alpha"})
    return str(result.cim_id)


async def built(engine: MutationEngine, *slide_statuses: str) -> str:
    """A CIM with persona, hero context, outline and one slide per status (alternating s1, s2)."""
    cim_id = await create(engine)
    await mutate(engine, "saveBuyerPersona", {"cimId": cim_id, "persona": PERSONA})
    await mutate(engine, "saveHeroContext", {"cimId": cim_id, "heroContext": HERO})
    await mutate(engine, "createOutline", {"cimId": cim_id, "outline": OUTLINE})
    for i, status in enumerate(slide_statuses):
        slide = {"id": f"sl{i}", "sectionId": f"s{1 + i % 2}", "title": f"Slide {i}", "status": status}
        await mutate(engine, "updateSlide", {"cimId": cim_id, "slide": slide})
    return cim_id


async def snapshot(client: aioredis.Redis, prefix: str) -> dict[bytes, bytes | None]:
    return {key: await client.dump(key) async for key in client.scan_iter(match=f"{prefix}:*")}


@contextlib.asynccontextmanager
async def nothing_written(client: aioredis.Redis, prefix: str) -> AsyncIterator[None]:
    """Asserts the block changed no key under `prefix` and published nothing on its channels."""
    pubsub = client.pubsub()
    await pubsub.psubscribe(f"{prefix}:ch:*")
    assert (await pubsub.get_message(timeout=5) or {}).get("type") == "psubscribe"
    before = await snapshot(client, prefix)
    yield
    assert await snapshot(client, prefix) == before
    # A sentinel on the same pattern: anything the block published arrives before it.
    await client.publish(f"{prefix}:ch:sentinel", b"end")
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
    assert message is not None and message["channel"] == f"{prefix}:ch:sentinel".encode(), message
    await pubsub.aclose()  # type: ignore[no-untyped-call]


async def committed_as_patch(
    store: CimStore, cim_id: str, before: dict[str, Any], result: CommitResult
) -> dict[str, Any]:
    """Asserts `result` committed one revision whose logged patch turns `before` into the stored doc."""
    stored = await store.get(cim_id)
    assert stored.revision == result.revision == before["revision"] + 1
    entries = await store.patches_since(cim_id, before["revision"])
    assert entries is not None and [e["rev"] for e in entries] == [result.revision]
    assert canonical(jsonpatch.apply_patch(before, entries[0]["ops"])) == canonical(stored.doc)
    return dict(stored.doc)


# -- each mutation ---------------------------------------------------------------------------


async def test_create_stores_revision_one_and_logs_the_whole_document(
    engine: MutationEngine, store: CimStore, keys: Keys, redis_client: aioredis.Redis
) -> None:
    result = await mutate(engine, "create", {"dealId": "d1", "projectId": "p1", "title": "Alpha"}, mutation_id="c-1")
    assert result.cim_id == derived_cim_id("u1", "c-1") and result.result == {"cimId": result.cim_id}
    stored = await store.get(result.cim_id)
    assert (stored.revision, stored.doc["status"], stored.doc["stage"], stored.doc["userId"]) == (
        1,
        "draft",
        "welcome",
        "u1",
    )
    assert len(stored.epoch) == 16
    entries = await store.patches_since(result.cim_id, 0)
    assert entries is not None and entries[0]["ops"] == [{"op": "replace", "path": "", "value": stored.doc}]
    assert await redis_client.zscore(keys.by_deal("d1"), result.cim_id) == stored.doc["updatedAt"]


async def test_create_with_expected_revision_zero(engine: MutationEngine, store: CimStore) -> None:
    result = await mutate(engine, "create", {"dealId": "d1", "projectId": "p1", "title": "A"}, expected_revision=0)
    assert result.revision == 1 and not result.duplicate
    with pytest.raises(Conflict):
        await mutate(engine, "updateState", {"cimId": result.cim_id, "title": "B"}, expected_revision=0)


async def test_update_state(engine: MutationEngine, store: CimStore, clock: Clock) -> None:
    cim_id = await create(engine)
    before = (await store.get(cim_id)).doc
    clock.ms += 500
    result = await mutate(engine, "updateState", {"cimId": cim_id, "title": "Beta", "gatheredContext": {"a": 1}})
    doc = await committed_as_patch(store, cim_id, before, result)
    assert (doc["title"], doc["gatheredContext"], doc["updatedAt"]) == ("Beta", {"a": 1}, clock.ms)


async def test_save_buyer_persona_hero_context_and_outline(engine: MutationEngine, store: CimStore) -> None:
    cim_id = await create(engine)
    steps: list[tuple[str, dict[str, Any], str]] = [
        ("saveBuyerPersona", {"persona": PERSONA}, "hero_concept"),
        ("saveHeroContext", {"heroContext": HERO}, "outline"),
        ("createOutline", {"outline": OUTLINE}, "building_sections"),
    ]
    for name, args, stage in steps:
        before = (await store.get(cim_id)).doc
        doc = await committed_as_patch(store, cim_id, before, await mutate(engine, name, {"cimId": cim_id, **args}))
        assert doc["stage"] == stage
    assert doc["status"] == "in_progress"
    assert doc["completedStages"] == ["buyer_persona", "hero_concept", "outline"]


async def test_update_slide_and_navigate_to_slide(engine: MutationEngine, store: CimStore) -> None:
    cim_id = await built(engine)
    before = (await store.get(cim_id)).doc
    result = await mutate(
        engine,
        "updateSlide",
        {"cimId": cim_id, "slide": {"id": "x", "sectionId": "s2", "title": "X", "components": [1]}},
    )
    assert result.result == {"slideId": "x", "created": True}
    doc = await committed_as_patch(store, cim_id, before, result)
    assert doc["sectionProgress"]["s2"] == {"status": "in_progress", "slideIds": ["x"]}
    result = await mutate(engine, "navigateToSlide", {"cimId": cim_id, "slideId": "x"})
    doc = await committed_as_patch(store, cim_id, doc, result)
    assert (doc["currentSectionId"], doc["currentSlideId"]) == ("s2", "x")


async def test_navigate_to_stage(engine: MutationEngine, store: CimStore) -> None:
    cim_id = await built(engine, "approved")
    before = (await store.get(cim_id)).doc
    result = await mutate(engine, "navigateToStage", {"cimId": cim_id, "targetStage": "outline", "reason": "r"})
    assert result.result == {"invalidated": ["slides"]}
    doc = await committed_as_patch(store, cim_id, before, result)
    assert doc["stage"] == "outline" and doc["slides"][0]["staleReason"] == "outline_changed"


async def test_import_from_supabase_is_idempotent_by_source_id(engine: MutationEngine, store: CimStore) -> None:
    legacy = {
        "sourceId": "row-7",
        "dealId": "d1",
        "projectId": "p1",
        "userId": "u9",
        "title": "Legacy",
        "workflowState": {"current_stage": "outline", "completed_stages": ["buyer_persona", "hero_concept"]},
        "buyerPersona": PERSONA,
        "heroContext": HERO,
    }
    first = await mutate(engine, "importFromSupabase", legacy, actor="service:migrate", user_id=None)
    assert first.cim_id == imported_cim_id("row-7") and first.result["imported"] is True
    doc = (await store.get(first.cim_id)).doc
    assert (doc["userId"], doc["stage"], doc["status"]) == ("u9", "outline", "in_progress")
    again = await mutate(engine, "importFromSupabase", legacy, actor="service:migrate", user_id=None)
    assert again.result == {"cimId": first.cim_id, "imported": False}
    assert again.revision == 1 and (await store.get(first.cim_id)).doc == doc


async def test_delete_runs_its_hooks(store: CimStore) -> None:
    deleted: list[str] = []

    async def hook(cid: str) -> None:
        deleted.append(cid)

    engine = MutationEngine(store, on_delete=[hook])
    cim_id = await create(engine)
    result = await mutate(engine, "delete", {"cimId": cim_id})
    assert result.result == {"deleted": True} and deleted == [cim_id]
    assert await store.load(cim_id) is None
    with pytest.raises(NotFound):
        await mutate(engine, "updateState", {"cimId": cim_id, "title": "x"})


async def test_a_mutation_that_changes_nothing_keeps_the_revision(
    engine: MutationEngine, store: CimStore, keys: Keys, redis_client: aioredis.Redis
) -> None:
    cim_id = await create(engine)
    result = await mutate(engine, "updateState", {"cimId": cim_id, "title": "Alpha"}, mutation_id="same-title")
    assert result.revision == 1
    assert await redis_client.xlen(keys.log(cim_id)) == 1
    assert await store.mutation_record(cim_id, "same-title") is not None


# -- the seed's cascade table (§3 Mutation Summary) and §9 test ----------------------------------


async def test_seed_row_create_cascades_nothing(engine: MutationEngine, store: CimStore) -> None:
    doc = (await store.get(await create(engine))).doc
    assert "heroStale" not in doc and "outlineStale" not in doc and doc["slides"] == []


async def test_seed_row_update_state_cascades_nothing(engine: MutationEngine, store: CimStore) -> None:
    cim_id = await built(engine, "approved")
    await mutate(engine, "updateState", {"cimId": cim_id, "title": "Renamed", "gatheredContext": {"x": 1}})
    doc = (await store.get(cim_id)).doc
    assert doc["slides"][0]["status"] == "approved" and "heroStale" not in doc and "outlineStale" not in doc


async def test_seed_row_navigate_back_marks_downstream_slides(engine: MutationEngine, store: CimStore) -> None:
    cim_id = await built(engine, "approved", "draft")
    await mutate(engine, "navigateToStage", {"cimId": cim_id, "targetStage": "hero_concept", "reason": "r"})
    doc = (await store.get(cim_id)).doc
    assert [(s["status"], s["staleReason"]) for s in doc["slides"]] == [("needs_review", "hero_concept_changed")] * 2
    assert doc["outlineStale"]["reason"] == "hero_concept_changed" and "heroStale" not in doc


async def test_seed_row_changed_persona_invalidates_hero_outline_and_slides(
    engine: MutationEngine, store: CimStore
) -> None:
    cim_id = await built(engine, "approved")
    same = await mutate(engine, "saveBuyerPersona", {"cimId": cim_id, "persona": PERSONA})
    assert same.result == {"changed": False, "invalidated": []}
    changed = await mutate(engine, "saveBuyerPersona", {"cimId": cim_id, "persona": OTHER_PERSONA})
    assert changed.result == {"changed": True, "invalidated": ["heroContext", "outline", "slides"]}
    doc = (await store.get(cim_id)).doc
    assert doc["heroStale"]["reason"] == doc["outlineStale"]["reason"] == "buyer_persona_changed"
    assert doc["slides"][0]["status"] == "needs_review"
    assert doc["heroContext"] == HERO  # marked, not deleted


async def test_seed_row_changed_hero_invalidates_outline_and_slides(engine: MutationEngine, store: CimStore) -> None:
    cim_id = await built(engine, "approved")
    result = await mutate(engine, "saveHeroContext", {"cimId": cim_id, "heroContext": OTHER_HERO})
    assert result.result == {"changed": True, "invalidated": ["outline", "slides"]}
    doc = (await store.get(cim_id)).doc
    assert "heroStale" not in doc and doc["outlineStale"]["reason"] == "hero_context_changed"
    assert doc["slides"][0]["staleReason"] == "hero_context_changed"


async def test_seed_row_create_outline_initialises_section_progress(engine: MutationEngine, store: CimStore) -> None:
    doc = (await store.get(await built(engine))).doc
    assert doc["sectionProgress"] == {
        "s1": {"status": "pending", "slideIds": []},
        "s2": {"status": "pending", "slideIds": []},
    }


async def test_seed_row_update_slide_cascades_nothing(engine: MutationEngine, store: CimStore) -> None:
    cim_id = await built(engine, "approved", "approved")
    await mutate(engine, "updateSlide", {"cimId": cim_id, "slide": {"id": "sl0", "title": "Edited"}})
    doc = (await store.get(cim_id)).doc
    assert [s["status"] for s in doc["slides"]] == ["draft", "approved"]
    assert "outlineStale" not in doc and "heroStale" not in doc


async def test_seed_row_delete_cascades_to_messages(
    engine: MutationEngine, store: CimStore, keys: Keys, redis_client: aioredis.Redis
) -> None:
    cim_id = await create(engine)
    await redis_client.rpush(keys.cim(cim_id) + ":msg", "hello")
    await mutate(engine, "delete", {"cimId": cim_id})
    assert await redis_client.exists(keys.cim(cim_id), keys.cim(cim_id) + ":msg", keys.log(cim_id)) == 0


async def test_seed_section_9_backward_navigation_marks_approved_slides(
    engine: MutationEngine, store: CimStore
) -> None:
    cim_id = await built(engine)
    await mutate(
        engine,
        "updateSlide",
        {"cimId": cim_id, "slide": {"id": "a", "sectionId": "s1", "title": "A", "status": "approved"}},
    )
    await mutate(
        engine, "navigateToStage", {"cimId": cim_id, "targetStage": "buyer_persona", "reason": "User requested change"}
    )
    cim = (await store.get(cim_id)).doc
    assert cim["slides"][0]["status"] == "needs_review"
    assert cim["slides"][0]["staleReason"] == "buyer_persona_changed"


# -- exactly once ------------------------------------------------------------------------------


async def test_a_retried_mutation_returns_its_first_result_and_writes_nothing(
    engine: MutationEngine, store: CimStore, redis_client: aioredis.Redis, key_prefix: str, clock: Clock
) -> None:
    cim_id = await built(engine)
    args = {"cimId": cim_id, "slide": {"id": "a", "sectionId": "s1", "title": "A"}}
    first = await mutate(engine, "updateSlide", args, mutation_id="slide-a")
    await mutate(engine, "updateState", {"cimId": cim_id, "title": "later"})
    clock.ms += 1_000
    cold = MutationEngine(store, clock=clock)  # another process: nothing cached
    for retrying in (engine, cold):
        async with nothing_written(redis_client, key_prefix):
            again = await mutate(retrying, "updateSlide", args, mutation_id="slide-a")
        assert again.duplicate and not first.duplicate
        assert (again.cim_id, again.revision, again.result) == (first.cim_id, first.revision, first.result)


async def test_a_retried_create_finds_the_same_cim(
    engine: MutationEngine, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    args = {"dealId": "d1", "projectId": "p1", "title": "A"}
    first = await mutate(engine, "create", args, mutation_id="create-1")
    async with nothing_written(redis_client, key_prefix):
        again = await mutate(engine, "create", args, mutation_id="create-1")
    assert again.duplicate and (again.cim_id, again.revision) == (first.cim_id, 1)


async def test_a_mutation_id_reused_with_other_arguments_is_refused(
    engine: MutationEngine, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    cim_id = await create(engine)
    await mutate(engine, "updateState", {"cimId": cim_id, "title": "one"}, mutation_id="dup")
    for name, args in (
        ("updateState", {"cimId": cim_id, "title": "two"}),
        ("navigateToStage", {"cimId": cim_id, "targetStage": "buyer_persona"}),
    ):
        async with nothing_written(redis_client, key_prefix):
            with pytest.raises(Conflict) as info:
                await mutate(engine, name, args, mutation_id="dup")
        assert info.value.code == ErrorCode.MUTATION_ID_REUSED
        assert info.value.to_wire() == {
            "code": "mutation_id_reused",
            "message": info.value.message,
            "retryable": False,
            "path": "mutationId",
        }
    await mutate(engine, "create", {"dealId": "d1", "projectId": "p1", "title": "One"}, mutation_id="c-dup")
    async with nothing_written(redis_client, key_prefix):
        with pytest.raises(Conflict) as info:
            await mutate(engine, "create", {"dealId": "d1", "projectId": "p1", "title": "Other"}, mutation_id="c-dup")
    assert info.value.code == ErrorCode.MUTATION_ID_REUSED


# -- expectedRevision ----------------------------------------------------------------------------


async def test_a_stale_expected_revision_is_a_conflict_and_writes_nothing(
    engine: MutationEngine, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    cim_id = await create(engine)
    await mutate(engine, "updateState", {"cimId": cim_id, "title": "two"})
    async with nothing_written(redis_client, key_prefix):
        with pytest.raises(Conflict) as info:
            await mutate(engine, "updateState", {"cimId": cim_id, "title": "three"}, expected_revision=1)
    assert info.value.code == ErrorCode.CONFLICT and info.value.path == "expectedRevision"
    assert "revision 2" in info.value.message and info.value.retryable is False
    result = await mutate(engine, "updateState", {"cimId": cim_id, "title": "three"}, expected_revision=2)
    assert result.revision == 3


async def test_expected_revision_is_judged_by_redis_not_a_stale_cache(
    redis_client: aioredis.Redis, redis_url: str, keys: Keys, clock: Clock
) -> None:
    other_client = aioredis.from_url(redis_url)
    a = MutationEngine(CimStore(redis_client, keys), clock=clock)
    b = MutationEngine(CimStore(other_client, keys), clock=clock)
    try:
        cim_id = await create(a)
        await mutate(b, "updateState", {"cimId": cim_id, "title": "by b"})  # a's cache is now at revision 1
        result = await mutate(a, "updateState", {"cimId": cim_id, "gatheredContext": {"a": 1}}, expected_revision=2)
        assert result.revision == 3
        doc = (await a.store.get(cim_id)).doc
        assert (doc["title"], doc["gatheredContext"]) == ("by b", {"a": 1})
        await mutate(b, "updateState", {"cimId": cim_id, "title": "b again"})  # a's cache: 3, Redis: 4
        with pytest.raises(Conflict):
            await mutate(a, "updateState", {"cimId": cim_id, "title": "lost"}, expected_revision=3)
        assert (await a.store.get(cim_id)).doc["title"] == "b again"
    finally:
        await other_client.aclose()


# -- bad input: a structured error and nothing written ---------------------------------------


BAD_INPUT = [
    ("unknown mutation", "dropTable", {"cimId": "{cim}"}, ErrorCode.UNKNOWN_MUTATION, "name"),
    ("wrong type", "updateState", {"cimId": "{cim}", "title": 42}, ErrorCode.INVALID_ARGS, "args.title"),
    (
        "wrong type nested",
        "updateSlide",
        {"cimId": "{cim}", "slide": {"id": "a", "components": "no"}},
        ErrorCode.INVALID_ARGS,
        "args.slide.components",
    ),
    ("unknown field", "updateState", {"cimId": "{cim}", "colour": "red"}, ErrorCode.INVALID_ARGS, "args.colour"),
    ("not an object", "updateState", ["{cim}"], ErrorCode.INVALID_ARGS, "args"),
    (
        "unknown stage",
        "navigateToStage",
        {"cimId": "{cim}", "targetStage": "drafting"},
        ErrorCode.INVALID_ARGS,
        "args.targetStage",
    ),
    (
        "unknown stage in updateState",
        "updateState",
        {"cimId": "{cim}", "stage": "drafting"},
        ErrorCode.INVALID_ARGS,
        "args.stage",
    ),
    ("missing CIM", "updateState", {"cimId": "no-such-cim", "title": "x"}, ErrorCode.NOT_FOUND, "args.cimId"),
    ("missing CIM delete", "delete", {"cimId": "no-such-cim"}, ErrorCode.NOT_FOUND, "args.cimId"),
    ("oversize field", "updateState", {"cimId": "{cim}", "title": "x" * 1_001}, ErrorCode.INVALID_ARGS, "args.title"),
    (
        "oversize document",
        "updateState",
        {"cimId": "{cim}", "gatheredContext": {"blob": "x" * 5_000}},
        ErrorCode.PAYLOAD_TOO_LARGE,
        None,
    ),
    (
        "backward updateState",
        "updateState",
        {"cimId": "{cim}", "stage": "welcome"},
        ErrorCode.INVALID_TRANSITION,
        "args.stage",
    ),
]


def _fill(value: Any, cim_id: str) -> Any:
    return orjson.loads(orjson.dumps(value).replace(b"{cim}", cim_id.encode()))


@pytest.mark.parametrize(("case", "name", "args", "code", "path"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
async def test_bad_input_is_a_structured_error_and_writes_nothing(
    store: CimStore,
    clock: Clock,
    redis_client: aioredis.Redis,
    key_prefix: str,
    case: str,
    name: str,
    args: Any,
    code: ErrorCode,
    path: str | None,
) -> None:
    engine = MutationEngine(store, clock=clock, max_document_bytes=4_000)
    cim_id = await create(engine)
    await mutate(engine, "saveBuyerPersona", {"cimId": cim_id, "persona": PERSONA})
    async with nothing_written(redis_client, key_prefix):
        with pytest.raises(CimhubError) as info:
            await mutate(engine, name, _fill(args, cim_id))
    wire = info.value.to_wire()
    assert (wire["code"], wire.get("path"), wire["retryable"]) == (code.value, path, False)
    assert isinstance(info.value, InvalidInput | NotFound) and wire["message"]


@pytest.mark.parametrize("mutation_id", ["", "has space", "x" * 129, "brace{"])
async def test_a_bad_mutation_id_is_refused(
    engine: MutationEngine, redis_client: aioredis.Redis, key_prefix: str, mutation_id: str
) -> None:
    async with nothing_written(redis_client, key_prefix):
        with pytest.raises(InvalidInput) as info:
            await mutate(engine, "create", {"dealId": "d", "projectId": "p", "title": "T"}, mutation_id=mutation_id)
    assert info.value.path == "mutationId"


async def test_unreachable_redis_is_retryable_unavailable(clock: Clock) -> None:
    client = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=2)
    engine = MutationEngine(CimStore(client, Keys("unreachable")), clock=clock)
    try:
        with pytest.raises(Unavailable) as info:
            await mutate(engine, "create", {"dealId": "d", "projectId": "p", "title": "T"})
        assert info.value.code == ErrorCode.UNAVAILABLE and info.value.retryable is True
    finally:
        await client.aclose()


# -- two engines (two processes) on one Redis ----------------------------------------------------


async def test_two_engines_with_stale_caches_lose_no_update(
    redis_client: aioredis.Redis, redis_url: str, keys: Keys, clock: Clock
) -> None:
    other_client = aioredis.from_url(redis_url)
    a = MutationEngine(CimStore(redis_client, keys), clock=clock)
    b = MutationEngine(CimStore(other_client, keys), clock=clock)
    try:
        cim_id = await built(a)
        await mutate(b, "updateState", {"cimId": cim_id, "gatheredContext": {"warm": True}})  # b caches
        for i in range(6):
            writer = a if i % 2 == 0 else b
            # Each engine's cache is one revision behind when it writes.
            await mutate(
                writer,
                "updateSlide",
                {"cimId": cim_id, "slide": {"id": f"x{i}", "sectionId": "s1", "title": f"by {i}"}},
            )
        stored = await a.store.get(cim_id)
        assert [s["id"] for s in stored.doc["slides"]] == [f"x{i}" for i in range(6)]
        assert stored.doc["gatheredContext"] == {"warm": True}
        entries = await a.store.patches_since(cim_id, 0)
        assert entries is not None and [e["rev"] for e in entries] == list(range(1, stored.revision + 1))
        for engine in (a, b):
            cached = engine.cache.get(cim_id)
            assert cached is not None and cached.revision <= stored.revision
    finally:
        await other_client.aclose()


async def test_a_cim_deleted_by_another_engine_is_not_found(
    redis_client: aioredis.Redis, redis_url: str, keys: Keys, clock: Clock
) -> None:
    other_client = aioredis.from_url(redis_url)
    a = MutationEngine(CimStore(redis_client, keys), clock=clock)
    b = MutationEngine(CimStore(other_client, keys), clock=clock)
    try:
        cim_id = await create(a)
        await mutate(b, "delete", {"cimId": cim_id})
        with pytest.raises(NotFound):
            await mutate(a, "updateState", {"cimId": cim_id, "title": "zombie"})  # a still caches it
        assert await a.store.load(cim_id) is None
    finally:
        await other_client.aclose()


# -- the document cache ------------------------------------------------------------------------


def stored(revision: int, epoch: str = "e1") -> StoredCim:
    return StoredCim({"revision": revision}, revision, epoch)


def test_document_cache_evicts_the_least_recently_used() -> None:
    cache = DocumentCache(2)
    cache.put("a", stored(1))
    cache.put("b", stored(1))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", stored(1))
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None


def test_document_cache_never_moves_backwards_within_an_epoch() -> None:
    cache = DocumentCache(4)
    cache.put("a", stored(5))
    cache.put("a", stored(4))
    assert cache.get("a") == stored(5)
    cache.put("a", stored(1, "e2"))  # a new history (deleted and imported again) replaces it
    assert cache.get("a") == stored(1, "e2")
    cache.put("a", None)
    assert cache.get("a") is None


def test_document_cache_of_size_zero_keeps_nothing() -> None:
    cache = DocumentCache(0)
    cache.put("a", stored(1))
    assert cache.get("a") is None


# -- property: replaying the patch log from any revision reproduces the stored document ------------

SECTIONS = [
    {"id": "s1", "title": "Overview", "description": "d"},
    {"id": "s1", "title": "Overview v2", "description": "d"},
    {"id": "s2", "title": "Market", "description": "d"},
    {"id": "s3", "title": "Numbers", "description": "d"},
]
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.sampled_from([0.0, -0.0, 1.0, 2.5]),
    st.text(alphabet="ab/~", max_size=3),
)
json_values = st.recursive(
    leaves,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["x", "y", "a/b", "~0"]), c, max_size=3),
    max_leaves=6,
)
# Values Python's == equates (1 == 1.0 == True, 0.0 == -0.0) but JSON does not.
confusable = st.lists(st.sampled_from([0, 1, True, False, 0.0, 1.0, -0.0, "a", "b"]), min_size=2, max_size=2)
components = st.one_of(confusable, st.lists(json_values, max_size=3))
slide_ids = st.sampled_from(["a", "b", "c"])
section_ids = st.sampled_from(["s1", "s2", "s3"])
new_or_moved_slide = st.tuples(
    st.just("updateSlide"),
    st.fixed_dictionaries(
        {
            "slide": st.fixed_dictionaries(
                {"id": slide_ids, "sectionId": section_ids, "title": st.sampled_from(["A", "B"])},
                optional={
                    "components": components,
                    "status": st.sampled_from(["draft", "needs_review", "approved"]),
                    "layoutType": st.sampled_from(["title", "chart"]),
                },
            )
        }
    ),
)
edited_slide = st.tuples(
    st.just("updateSlide"),
    st.fixed_dictionaries(
        {
            "slide": st.fixed_dictionaries(
                {"id": slide_ids, "components": components},
                optional={"status": st.sampled_from(["draft", "approved"])},
            )
        }
    ),
)
operations = st.one_of(
    new_or_moved_slide,
    edited_slide,
    edited_slide,
    edited_slide,
    st.tuples(
        st.just("updateState"),
        st.fixed_dictionaries(
            {},
            optional={
                "title": st.sampled_from(["T1", "T2"]),
                "gatheredContext": st.dictionaries(st.sampled_from(["k1", "k2"]), json_values, max_size=2),
                "currentSectionId": section_ids,
                "status": st.sampled_from(["in_progress", "complete"]),
                "stage": st.sampled_from(STAGES),
            },
        ),
    ),
    st.tuples(st.just("navigateToStage"), st.fixed_dictionaries({"targetStage": st.sampled_from(STAGES)})),
    st.tuples(
        st.just("saveBuyerPersona"), st.fixed_dictionaries({"persona": st.sampled_from([PERSONA, OTHER_PERSONA])})
    ),
    st.tuples(st.just("saveHeroContext"), st.fixed_dictionaries({"heroContext": st.sampled_from([HERO, OTHER_HERO])})),
    st.tuples(
        st.just("createOutline"),
        st.fixed_dictionaries(
            {"outline": st.lists(st.sampled_from(SECTIONS), min_size=1, max_size=3, unique_by=lambda s: s["id"])}
        ),
    ),
    st.tuples(
        st.just("navigateToSlide"),
        st.one_of(st.fixed_dictionaries({"slideId": slide_ids}), st.fixed_dictionaries({"sectionId": section_ids})),
    ),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(operations, st.booleans()), min_size=8, max_size=30))
def test_replaying_the_patch_log_from_any_revision_reproduces_the_stored_document(
    redis_url: str, plan: list[tuple[tuple[str, dict[str, Any]], bool]]
) -> None:
    asyncio.run(_replay_property(redis_url, plan))


async def _replay_property(redis_url: str, plan: list[tuple[tuple[str, dict[str, Any]], bool]]) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    keys = Keys(prefix)
    clock = Clock()
    client_a, client_b = aioredis.from_url(redis_url), aioredis.from_url(redis_url)
    # Two engines, as two processes: each op goes to one of them, so caches go stale.
    engines = [MutationEngine(CimStore(c, keys), clock=clock) for c in (client_a, client_b)]
    store = engines[0].store
    setup: list[tuple[str, dict[str, Any]]] = [
        ("saveBuyerPersona", {"persona": PERSONA}),
        ("saveHeroContext", {"heroContext": HERO}),
        ("createOutline", {"outline": OUTLINE}),
    ]
    try:
        cim_id = await create(engines[0])
        snapshots: dict[int, Any] = {0: None, 1: (await store.get(cim_id)).doc}
        for (name, args), use_b in [(op, False) for op in setup] + plan:
            clock.ms += 7
            try:
                await mutate(engines[use_b], name, {"cimId": cim_id, **copy.deepcopy(args)})
            except (InvalidInput, NotFound):
                continue  # a refused mutation (e.g. a backward updateState): nothing to replay
            current = await store.get(cim_id)
            snapshots[current.revision] = current.doc
        final = await store.get(cim_id)
        assert sorted(snapshots) == list(range(final.revision + 1)), "revisions must be contiguous"
        for start, start_doc in snapshots.items():
            entries = await store.patches_since(cim_id, start)
            assert entries is not None
            assert [e["rev"] for e in entries] == list(range(start + 1, final.revision + 1))
            doc = copy.deepcopy(start_doc)
            for entry in entries:
                assert entry["epoch"] == final.epoch
                doc = jsonpatch.apply_patch(doc, entry["ops"], in_place=True)
                assert canonical(doc) == canonical(snapshots[entry["rev"]])
            assert canonical(doc) == canonical(final.doc)
    finally:
        async for key in client_a.scan_iter(match=f"{prefix}:*"):
            await client_a.delete(key)
        await client_a.aclose()
        await client_b.aclose()


async def test_a_type_change_python_equality_hides_still_reaches_the_patch_log(
    engine: MutationEngine, store: CimStore
) -> None:
    cim_id = await built(engine)
    await mutate(
        engine,
        "updateSlide",
        {"cimId": cim_id, "slide": {"id": "a", "sectionId": "s1", "title": "A", "components": [1, "a"]}},
    )
    before = (await store.get(cim_id)).doc
    result = await mutate(engine, "updateSlide", {"cimId": cim_id, "slide": {"id": "a", "components": [True, "b"]}})
    doc = await committed_as_patch(store, cim_id, before, result)
    assert doc["slides"][0]["components"] == [True, "b"]
