"""MessageStore on a real Redis: ordering, cursors, live topic, exact search, validation, cascade.

Exactness is checked against a brute-force float64 reference. The store scores
in float32 (about 1e-6 accurate), so on random data the ids must match exactly,
and on data built to tie, the checks are: no better message was left out, and
equal float32 scores come back in seq order.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cimhub.protocol.errors import CimhubError, ErrorCode, InvalidInput, NotFound
from cimhub.protocol.schema import MessageRole
from cimhub.server.messages import reader as messages_search
from cimhub.server.messages.store import MessageStore, SearchHit, parse_event
from cimhub.server.messages.vectors import VectorCache, VectorSet
from cimhub.server.store.keys import Keys

CIM = "cim-1"
_examples = itertools.count()


async def make_cim(client: aioredis.Redis, keys: Keys, cim_id: str = CIM, epoch: str = "e1") -> None:
    """Stand-in for the CIM store: the CIM hash that `add` requires."""
    await client.hset(keys.cim(cim_id), mapping={"doc": "{}", "rev": 1, "epoch": epoch})


async def message_keys(client: aioredis.Redis, keys: Keys, cim_id: str = CIM) -> set[str]:
    found = client.scan_iter(match=f"{keys.cim(cim_id).replace('{', '[{]').replace('}', '[}]')}:msg*")
    return {key.decode() async for key in found}


@pytest.fixture
async def store(redis_client: aioredis.Redis, keys: Keys) -> MessageStore:
    await make_cim(redis_client, keys)
    return MessageStore(redis_client, keys, dimension=8)


def role_of(i: int) -> MessageRole:
    return "user" if i % 2 == 0 else "assistant"


def reference(
    vectors: dict[int, np.ndarray], roles: dict[int, str], query: np.ndarray, role: str | None
) -> dict[int, float]:
    """Cosine of every candidate message (by seq), in float64."""
    q = query.astype(np.float64)
    return {
        seq: float(v.astype(np.float64) @ q / (np.linalg.norm(v.astype(np.float64)) * np.linalg.norm(q)))
        for seq, v in vectors.items()
        if role is None or roles[seq] == role
    }


def assert_exact_top_k(hits: Sequence[SearchHit], ref: dict[int, float], k: int) -> None:
    assert len(hits) == min(k, len(ref))
    returned = [hit.seq for hit in hits]
    assert len(set(returned)) == len(returned)
    for hit in hits:
        assert hit.score == pytest.approx(ref[hit.seq], abs=1e-5)
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)
    for a, b in itertools.pairwise(hits):
        if a.score == b.score:
            assert a.seq < b.seq, "ties go to the older message"
    if hits:
        worst = min(ref[seq] for seq in returned)
        left_out = [score for seq, score in ref.items() if seq not in set(returned)]
        assert all(score <= worst + 1e-5 for score in left_out), "a better message was left out"


# -- add, ids, live topic -------------------------------------------------------


async def test_add_assigns_contiguous_seqs_and_keeps_fields(store: MessageStore) -> None:
    added = [
        await store.add(CIM, role_of(i), f"message {i}", timestamp=1_700_000_000_000 + i, message_id=f"m{i}")
        for i in range(3)
    ]
    assert [m.seq for m in added] == [1, 2, 3]
    assert await store.latest_seq(CIM) == 3
    page = await store.list(CIM, order="oldest")
    assert [(m.seq, m.message.id, m.message.role, m.message.content, m.message.timestamp) for m in page.messages] == [
        (1, "m0", "user", "message 0", 1_700_000_000_000),
        (2, "m1", "assistant", "message 1", 1_700_000_000_001),
        (3, "m2", "user", "message 2", 1_700_000_000_002),
    ]
    assert all(m.message.cimId == CIM and m.message.embedding is None for m in page.messages)


async def test_concurrent_adds_get_distinct_contiguous_seqs(store: MessageStore) -> None:
    added = await asyncio.gather(*(store.add(CIM, "user", f"m{i}") for i in range(50)))
    assert sorted(m.seq for m in added) == list(range(1, 51))
    assert len({m.message.id for m in added}) == 50


async def test_add_refuses_a_missing_cim_and_writes_nothing(redis_client: aioredis.Redis, keys: Keys) -> None:
    store = MessageStore(redis_client, keys, dimension=8)
    with pytest.raises(NotFound) as caught:
        await store.add("no-such-cim", "user", "hello", embedding=[1.0] * 8)
    assert caught.value.to_wire()["code"] == "not_found"
    assert await message_keys(redis_client, keys, "no-such-cim") == set()


async def test_same_id_again_returns_the_stored_message(store: MessageStore) -> None:
    first = await store.add(CIM, "user", "hello", message_id="m1", timestamp=5)
    again = await store.add(CIM, "user", "hello", message_id="m1", timestamp=9, embedding=[1.0] * 8)
    assert (again.seq, again.message, again.duplicate) == (first.seq, first.message, True)
    assert first.duplicate is False
    assert await store.latest_seq(CIM) == 1
    assert await store.search(CIM, [1.0] * 8) == [], "the retry stored no embedding"
    with pytest.raises(CimhubError) as caught:
        await store.add(CIM, "user", "something else", message_id="m1")
    assert caught.value.code == ErrorCode.MUTATION_ID_REUSED
    assert caught.value.path == "id"


async def test_live_topic_streams_appended_messages_and_read_since_resumes(
    redis_client: aioredis.Redis, keys: Keys, store: MessageStore
) -> None:
    pubsub = redis_client.pubsub()
    await pubsub.ssubscribe(store.channel(CIM))
    try:
        await store.add(CIM, "user", "one", embedding=[0.5] * 8)
        await store.add(CIM, "assistant", "two")
        await redis_client.hset(keys.cim(CIM), "epoch", "e2")
        await store.add(CIM, "user", "three")
        payloads: list[bytes] = []
        async with asyncio.timeout(5):
            while len(payloads) < 3:
                got = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if got is not None:
                    payloads.append(got["data"])
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
    assert all(b"embedding" not in payload for payload in payloads)
    events = [parse_event(payload) for payload in payloads]
    assert [(e.seq, e.epoch, e.message.content) for e in events] == [
        (1, "e1", "one"),
        (2, "e1", "two"),
        (3, "e2", "three"),
    ]
    assert [m.message.content for m in await store.read_since(CIM, 1)] == ["two", "three"]
    assert await store.read_since(CIM, 3) == []
    assert [m.seq for m in await store.read_since(CIM, 0, limit=2)] == [1, 2]


# -- validation ---------------------------------------------------------------


BAD_ADDS: list[tuple[dict[str, Any], str]] = [
    ({"role": "system"}, "role"),
    ({"content": ""}, "content"),
    ({"content": "x" * 100_001}, "content"),
    ({"timestamp": -1}, "timestamp"),
    ({"message_id": "a b"}, "id"),
    ({"embedding": [1.0] * 7}, "embedding"),
    ({"embedding": [1.0] * 9}, "embedding"),
    ({"embedding": [1.0] * 7 + [math.nan]}, "embedding"),
    ({"embedding": [1.0] * 7 + [math.inf]}, "embedding"),
    ({"embedding": [1.0] * 7 + [-math.inf]}, "embedding"),
    ({"embedding": [1.0] * 7 + [1e39]}, "embedding"),
    ({"embedding": [0.0] * 8}, "embedding"),
    ({"embedding": [1.0] * 7 + ["1"]}, "embedding"),
    ({"embedding": [1.0] * 7 + [True]}, "embedding"),
    ({"embedding": np.ones((2, 4))}, "embedding"),
    ({"embedding": "12345678"}, "embedding"),
]


@pytest.mark.parametrize(("change", "path"), BAD_ADDS)
async def test_add_refuses_bad_input_with_a_path(store: MessageStore, change: dict[str, Any], path: str) -> None:
    args: dict[str, Any] = {"role": "user", "content": "hello", **change}
    with pytest.raises(InvalidInput) as caught:
        await store.add(CIM, **args)
    wire = caught.value.to_wire()
    assert (wire["code"], wire["path"], wire["retryable"]) == ("invalid_args", path, False)
    assert wire["message"].startswith(path)
    assert await store.latest_seq(CIM) == 0


async def test_add_refuses_a_malformed_cim_id(store: MessageStore) -> None:
    with pytest.raises(InvalidInput) as caught:
        await store.add("a}b", "user", "hello")
    assert caught.value.path == "cimId"


async def test_dimension_mismatch_message_names_both_sizes(store: MessageStore) -> None:
    with pytest.raises(InvalidInput, match="expected 8 numbers, got 1024"):
        await store.add(CIM, "user", "hello", embedding=[0.1] * 1024)


@pytest.mark.parametrize(
    ("query", "kwargs", "path"),
    [
        ([1.0] * 7, {}, "query"),
        ([1.0] * 7 + [math.nan], {}, "query"),
        ([1.0] * 7 + [math.inf], {}, "query"),
        ([0.0] * 8, {}, "query"),
        ([1.0] * 8, {"k": 0}, "k"),
        ([1.0] * 8, {"k": 101}, "k"),
        ([1.0] * 8, {"role": "system"}, "role"),
        ("words", {}, "query"),
    ],
)
async def test_search_refuses_bad_input(store: MessageStore, query: Any, kwargs: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        await store.search(CIM, query, **kwargs)
    assert caught.value.path == path


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"order": "sideways"}, "order"),
        ({"cursor": "!!!"}, "cursor"),
        ({"cursor": "bjo1"}, "cursor"),  # "n:5", a newest-first cursor, used oldest-first
    ],
)
async def test_list_refuses_bad_input(store: MessageStore, kwargs: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        await store.list(CIM, **{"order": "oldest", **kwargs})
    assert caught.value.path == path


async def test_stores_with_different_dimensions_cannot_mix(redis_client: aioredis.Redis, keys: Keys) -> None:
    await make_cim(redis_client, keys)
    small = MessageStore(redis_client, keys, dimension=8)
    large = MessageStore(redis_client, keys, dimension=16)
    await small.add(CIM, "user", "hello", embedding=[1.0] * 8)
    with pytest.raises(InvalidInput, match="stores 8-dimension embeddings"):
        await large.add(CIM, "user", "hello", embedding=[1.0] * 16)
    with pytest.raises(InvalidInput, match="stores 8-dimension embeddings"):
        await large.search(CIM, [1.0] * 16)
    with pytest.raises(InvalidInput, match="stores 8-dimension embeddings"):
        await large.list(CIM, include_embeddings=True)
    assert await small.latest_seq(CIM) == 1


async def test_a_store_needs_a_bytes_client(redis_url: str, keys: Keys) -> None:
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses=False"):
            MessageStore(client, keys)
    finally:
        await client.aclose()


async def test_vector_rows_per_cim_are_bounded(redis_client: aioredis.Redis, keys: Keys) -> None:
    await make_cim(redis_client, keys)
    store = MessageStore(redis_client, keys, dimension=8, max_vector_rows=2)
    for i in range(2):
        await store.add(CIM, "user", f"m{i}", embedding=[1.0] * 8)
    with pytest.raises(InvalidInput) as caught:
        await store.add(CIM, "user", "one too many", embedding=[1.0] * 8)
    assert caught.value.code == ErrorCode.PAYLOAD_TOO_LARGE
    assert (await store.add(CIM, "user", "no embedding")).seq == 3


# -- pagination ------------------------------------------------------------------


async def collect(store: MessageStore, order: Any, limit: int) -> tuple[list[int], list[bool]]:
    seqs: list[int] = []
    more: list[bool] = []
    cursor = None
    for _ in range(100):
        page = await store.list(CIM, order=order, limit=limit, cursor=cursor)
        seqs += [m.seq for m in page.messages]
        more.append(page.has_more)
        cursor = page.next_cursor
        if not page.has_more:
            return seqs, more
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("count", [0, 1, 4, 5, 6, 10, 11])
async def test_pages_cover_every_message_once_in_order(store: MessageStore, count: int) -> None:
    for i in range(count):
        await store.add(CIM, role_of(i), f"m{i}")
    newest, newest_more = await collect(store, "newest", 5)
    oldest, oldest_more = await collect(store, "oldest", 5)
    assert newest == list(range(count, 0, -1))
    assert oldest == list(range(1, count + 1))
    pages = max(1, math.ceil(count / 5))
    assert newest_more == [True] * (pages - 1) + [False]
    assert oldest_more == [True] * (pages - 1) + [False]


async def test_page_cursors_at_the_ends(store: MessageStore) -> None:
    empty = await store.list(CIM, order="newest")
    assert (empty.messages, empty.next_cursor, empty.has_more) == ([], None, False)
    for i in range(3):
        await store.add(CIM, "user", f"m{i}")
    newest = await store.list(CIM, order="newest", limit=3)
    assert (newest.next_cursor, newest.has_more) == (None, False), "nothing can appear before seq 1"
    oldest = await store.list(CIM, order="oldest", limit=3)
    assert oldest.has_more is False and oldest.next_cursor is not None
    await store.add(CIM, "user", "later")
    later = await store.list(CIM, order="oldest", cursor=oldest.next_cursor)
    assert [m.message.content for m in later.messages] == ["later"]


async def test_cursors_are_stable_while_messages_are_added(store: MessageStore) -> None:
    for i in range(10):
        await store.add(CIM, "user", f"m{i}")
    first_newest = await store.list(CIM, order="newest", limit=3)
    first_oldest = await store.list(CIM, order="oldest", limit=3)
    for i in range(10, 15):
        await store.add(CIM, "user", f"m{i}")

    seqs = [m.seq for m in first_newest.messages]
    cursor = first_newest.next_cursor
    while cursor is not None:
        page = await store.list(CIM, order="newest", limit=3, cursor=cursor)
        seqs += [m.seq for m in page.messages]
        cursor = page.next_cursor
    assert seqs == list(range(10, 0, -1)), "newest-first continues below the first page, no repeats"

    seqs = [m.seq for m in first_oldest.messages]
    page = first_oldest
    while page.has_more:
        page = await store.list(CIM, order="oldest", limit=3, cursor=page.next_cursor)
        seqs += [m.seq for m in page.messages]
    assert seqs == list(range(1, 16)), "oldest-first runs into the new messages without gaps"


async def test_paging_during_concurrent_appends_never_repeats_or_skips(store: MessageStore) -> None:
    for i in range(20):
        await store.add(CIM, "user", f"m{i}")

    async def writer() -> None:
        for i in range(20, 60):
            await store.add(CIM, "assistant", f"m{i}")

    async def newest_reader() -> list[int]:
        seqs: list[int] = []
        cursor = None
        while True:
            page = await store.list(CIM, order="newest", limit=2, cursor=cursor)
            seqs += [m.seq for m in page.messages]
            if page.next_cursor is None:
                return seqs
            cursor = page.next_cursor

    _, newest = await asyncio.gather(writer(), newest_reader())
    assert newest == list(range(newest[0], 0, -1))
    assert newest[0] >= 20
    oldest, _ = await collect(store, "oldest", 7)
    assert oldest == list(range(1, 61))


# -- search ---------------------------------------------------------------------


async def test_search_matches_brute_force_on_random_1024_dimension_data(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    await make_cim(redis_client, keys)
    store = MessageStore(redis_client, keys)
    rng = np.random.default_rng(7)
    vectors: dict[int, np.ndarray] = {}
    roles: dict[int, str] = {}
    for i in range(600):
        role = role_of(i)
        embedding = rng.normal(size=1024) if i % 5 else None  # every fifth message has none
        added = await store.add(CIM, role, f"m{i}", embedding=embedding)
        roles[added.seq] = role
        if embedding is not None:
            vectors[added.seq] = embedding.astype(np.float32)
    filters: list[MessageRole | None] = [None, "user", "assistant"]
    for trial in range(6):
        query = rng.normal(size=1024)
        wanted = filters[trial % 3]
        for k in (1, 10, 100):
            ref = reference(vectors, roles, query, wanted)
            hits = await store.search(CIM, query, k=k, role=wanted)
            expected = sorted(ref, key=lambda seq: (-ref[seq], seq))[:k]
            assert [hit.seq for hit in hits] == expected
            assert_exact_top_k(hits, ref, k)
            assert all(hit.message.role == wanted for hit in hits if wanted is not None)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(st.lists(st.integers(-3, 3), min_size=4, max_size=4), st.sampled_from(["user", "assistant"])),
        max_size=40,
    ),
    query=st.lists(st.integers(-3, 3), min_size=4, max_size=4).filter(any),
    k=st.integers(1, 12),
    role=st.sampled_from([None, "user", "assistant"]),
)
async def test_search_is_exact_with_ties_and_duplicates(
    redis_client: aioredis.Redis,
    keys: Keys,
    rows: list[tuple[list[int], str]],
    query: list[int],
    k: int,
    role: MessageRole | None,
) -> None:
    # Small integer components make many equal and duplicate vectors.
    cim_id = f"example-{next(_examples)}"
    await make_cim(redis_client, keys, cim_id)
    store = MessageStore(redis_client, keys, dimension=4)
    vectors: dict[int, np.ndarray] = {}
    roles: dict[int, str] = {}
    try:
        for components, row_role in rows:
            embedding = components if any(components) else None
            added = await store.add(cim_id, row_role, "x", embedding=embedding)  # type: ignore[arg-type]
            roles[added.seq] = row_role
            if embedding is not None:
                vectors[added.seq] = np.asarray(embedding, dtype=np.float32)
        hits = await store.search(cim_id, query, k=k, role=role)
        assert_exact_top_k(hits, reference(vectors, roles, np.asarray(query, dtype=np.float64), role), k)
        # Identical vectors score identically in any arithmetic, so the tie rule
        # is exact for them: a returned message implies its older duplicates are too.
        returned = {hit.seq for hit in hits}
        for seq in returned:
            for older, vector in vectors.items():
                if older < seq and (role is None or roles[older] == role) and np.array_equal(vector, vectors[seq]):
                    assert older in returned, f"seq {seq} returned before its older duplicate {older}"
    finally:
        await store.delete_all(cim_id)


async def test_search_sees_every_append_and_survives_a_rewrite_behind_its_cache(
    redis_client: aioredis.Redis, keys: Keys, store: MessageStore
) -> None:
    other = MessageStore(redis_client, keys, dimension=8)
    uncached = MessageStore(redis_client, keys, dimension=8, cache_bytes=0)
    basis = np.eye(8)
    for i in range(4):
        await store.add(CIM, "user", f"old {i}", embedding=basis[i])
    assert [h.message.content for h in await store.search(CIM, basis[2], k=1)] == ["old 2"]

    await other.add(CIM, "user", "appended", embedding=basis[5])
    assert [h.message.content for h in await store.search(CIM, basis[5], k=1)] == ["appended"]

    # Same row count, new generation: a cache keyed by count alone would answer from stale rows.
    await other.delete_all(CIM)
    for i in range(5):
        await other.add(CIM, "user", f"new {i}", embedding=basis[7 - i])
    for i in range(5):
        hits = await store.search(CIM, basis[7 - i], k=1)
        assert [(h.seq, h.message.content) for h in hits] == [(i + 1, f"new {i}")]
        assert hits == await uncached.search(CIM, basis[7 - i], k=1)


async def test_large_reads_come_in_chunks_and_notice_a_rewrite_between_steps(
    redis_client: aioredis.Redis, keys: Keys, store: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(messages_search, "CHUNK_BYTES", 3 * 8 * 4)  # three rows per piece
    rng = np.random.default_rng(11)
    vectors: dict[int, np.ndarray] = {}
    roles: dict[int, str] = {}

    async def add(writer: MessageStore, count: int) -> None:
        for _ in range(count):
            embedding = rng.normal(size=8).astype(np.float32)
            added = await writer.add(CIM, "user", "x", embedding=embedding)
            vectors[added.seq], roles[added.seq] = embedding, "user"

    await add(store, 20)
    query = rng.normal(size=8)
    assert_exact_top_k(await store.search(CIM, query, k=20), reference(vectors, roles, query, None), 20)
    await add(store, 7)  # a suffix bigger than one piece
    assert_exact_top_k(await store.search(CIM, query, k=30), reference(vectors, roles, query, None), 30)

    other = MessageStore(redis_client, keys, dimension=8)
    fresh = MessageStore(redis_client, keys, dimension=8)
    read_rows = fresh.reader._read_rows
    calls = 0

    async def rewrite_then_read(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:  # between the script and the MULTI: delete and write again
            await other.delete_all(CIM)
            vectors.clear()
            await add(other, 10)
        return await read_rows(*args)

    monkeypatch.setattr(fresh.reader, "_read_rows", rewrite_then_read)
    hits = await fresh.search(CIM, query, k=30)
    assert calls == 2
    assert_exact_top_k(hits, reference(vectors, roles, query, None), 30)
    assert len(hits) == 10


async def test_embeddings_round_trip_as_float32(store: MessageStore) -> None:
    rng = np.random.default_rng(3)
    embedding = rng.normal(size=8)
    await store.add(CIM, "user", "with", embedding=embedding)
    await store.add(CIM, "assistant", "without")
    page = await store.list(CIM, order="oldest", include_embeddings=True)
    assert page.messages[0].message.embedding == embedding.astype(np.float32).tolist()
    assert page.messages[1].message.embedding is None
    (hit,) = await store.search(CIM, embedding, k=5, include_embeddings=True)
    assert hit.message.embedding == embedding.astype(np.float32).tolist()
    assert hit.score == pytest.approx(1.0, abs=1e-6)
    plain = await store.list(CIM, order="oldest")
    assert plain.messages[0].message.embedding is None
    stored = await store.redis.get(store.key_names(CIM)[3])
    assert stored == embedding.astype("<f4").tobytes(), "vectors are packed float32, not JSON"


async def test_an_embedding_provider_fills_in_embeddings(redis_client: aioredis.Redis, keys: Keys) -> None:
    class Letters:
        """Counts of a, b, c, d: deterministic and offline."""

        dimension = 4

        async def embed(self, texts: Sequence[str]) -> list[list[float]]:
            return [[float(text.count(c)) + 0.01 for c in "abcd"] for text in texts]

    await make_cim(redis_client, keys)
    store = MessageStore(redis_client, keys, dimension=4, embedder=Letters())
    await store.add(CIM, "user", "aaaa")
    await store.add(CIM, "user", "dddd")
    assert [h.message.content for h in await store.search(CIM, "dd", k=1)] == ["dddd"]
    with pytest.raises(ValueError, match="4-dimension"):
        MessageStore(redis_client, keys, dimension=8, embedder=Letters())


# -- deletion ---------------------------------------------------------------------


async def test_key_names_cover_every_message_key(redis_client: aioredis.Redis, keys: Keys, store: MessageStore) -> None:
    await store.add(CIM, "user", "hello", embedding=[1.0] * 8)
    found = await message_keys(redis_client, keys)
    assert found == set(store.key_names(CIM))
    assert all(name.startswith(f"{keys.prefix}:cim:{{{CIM}}}:msg") for name in found)


async def test_delete_all_removes_everything_and_numbering_restarts(
    redis_client: aioredis.Redis, keys: Keys, store: MessageStore
) -> None:
    for i in range(3):
        await store.add(CIM, "user", f"m{i}", embedding=[1.0 + i] * 8, message_id=f"m{i}")
    await store.search(CIM, [1.0] * 8)
    await store.delete_all(CIM)
    assert await message_keys(redis_client, keys) == set()
    assert await store.latest_seq(CIM) == 0
    assert (await store.list(CIM)).messages == []
    assert await store.search(CIM, [1.0] * 8) == []
    again = await store.add(CIM, "user", "fresh", message_id="m0")
    assert (again.seq, again.message.content) == (1, "fresh"), "the old id is forgotten too"


async def test_deleting_the_cim_with_key_names_cascades(
    redis_client: aioredis.Redis, keys: Keys, store: MessageStore
) -> None:
    await store.add(CIM, "user", "hello", embedding=[1.0] * 8)
    # What the CIM store's delete script does, in one atomic DEL.
    await redis_client.delete(keys.cim(CIM), *store.key_names(CIM))
    assert await message_keys(redis_client, keys) == set()
    with pytest.raises(NotFound):
        await store.add(CIM, "user", "too late")
    assert await store.search(CIM, [1.0] * 8) == []


# -- vector cache (no Redis) ---------------------------------------------------


def test_vector_cache_evicts_least_recently_used_within_its_budget() -> None:
    def filled(gen: str, rows: int) -> VectorSet:
        vectors = VectorSet(gen, 4)
        records = np.zeros(rows, dtype=[("seq", "<u4"), ("role", "u1"), ("norm", "<f4")])
        vectors.extend(np.ones((rows, 4), dtype="<f4").tobytes(), records.tobytes())
        return vectors

    one = filled("a", 64)
    cache = VectorCache(max_bytes=2 * one.nbytes)
    cache.put("a", one)
    cache.put("b", filled("b", 64))
    assert cache.get("a") is one
    cache.put("c", filled("c", 64))
    assert (cache.get("a") is one, cache.get("b"), cache.total_bytes) == (True, None, 2 * one.nbytes)
    cache.put("huge", filled("h", 1000))
    assert cache.get("huge") is None, "a set bigger than the budget is not kept"
