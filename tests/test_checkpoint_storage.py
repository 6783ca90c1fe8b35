"""What the saver promises about Redis itself: layout, sharing, atomic units, TTL, prune, paging.

Most tests run against both classes through the async API: `CimhubRedisSaver`'s
async methods call its sync ones in a thread, so both code paths are covered.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, TypedDict, cast

import pytest
import redis
import redis.asyncio as aioredis
from langchain_core.runnables import RunnableConfig
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.serde.types import ERROR
from langgraph.graph import END, START, StateGraph
from redis.crc import key_slot

from cimhub.server.checkpoint import AsyncCimhubRedisSaver, CimhubRedisSaver, chunks
from cimhub.server.checkpoint.base import RedisSaverBase
from cimhub.server.checkpoint.codec import blob_field
from cimhub.server.connect import cluster_seeds, is_cluster_url


@pytest.fixture(params=["async", "sync"])
async def saver(request: pytest.FixtureRequest, redis_url: str, key_prefix: str) -> AsyncIterator[RedisSaverBase]:
    if request.param == "async":
        async with AsyncCimhubRedisSaver.from_url(redis_url, key_prefix=key_prefix) as saver:
            yield saver
    else:
        with CimhubRedisSaver.from_url(redis_url, key_prefix=key_prefix) as sync:
            yield sync


def config(thread_id: str, ns: str = "", checkpoint_id: str | None = None) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ns}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def checkpoint(values: dict[str, Any], versions: dict[str, Any]) -> Checkpoint:
    return Checkpoint(
        v=1,
        id=str(uuid6(clock_seq=-1)),
        ts="2025-01-01T00:00:00+00:00",
        channel_values=values,
        channel_versions=versions,
        versions_seen={},
        updated_channels=None,
    )


async def put(
    saver: RedisSaverBase,
    thread_id: str,
    values: dict[str, Any],
    versions: dict[str, Any],
    new: dict[str, Any],
    parent: RunnableConfig | None = None,
    ns: str = "",
    **metadata: Any,
) -> RunnableConfig:
    cfg = config(thread_id, ns, parent["configurable"]["checkpoint_id"] if parent else None)
    stored_metadata = cast(CheckpointMetadata, {"source": "loop", "step": 0, **metadata})
    return await saver.aput(cfg, checkpoint(values, versions), stored_metadata, new)


async def listed(saver: RedisSaverBase, cfg: RunnableConfig | None, **kwargs: Any) -> list[CheckpointTuple]:
    return [item async for item in saver.alist(cfg, **kwargs)]


async def thread_keys(client: aioredis.Redis, saver: RedisSaverBase, thread_id: str) -> list[bytes]:
    return [key async for key in client.scan_iter(match=f"{saver.keys.thread(thread_id).base}*", count=1000)]


# -- layout --------------------------------------------------------------------------


async def test_every_key_of_a_thread_is_in_the_slot_of_its_cim(
    saver: RedisSaverBase, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    first = await put(saver, "cim-1", {"outline": [1]}, {"outline": 1}, {"outline": 1}, run_id="run-a")
    await saver.aput_writes(first, [("outline", [2])], "task-1")
    await put(saver, "cim-1", {"slide": "x"}, {"slide": 1}, {"slide": 1}, ns="section:1", run_id="run-a")
    await saver.aput_writes(config("cim-1", "", str(uuid6())), [("slide", "early")], "task-2")
    keys = await thread_keys(redis_client, saver, "cim-1")
    assert len(keys) >= 10
    cim_slot = key_slot(f"{key_prefix}:cim:{{cim-1}}".encode())
    assert {key_slot(key) for key in keys} == {cim_slot}


@pytest.mark.parametrize("bad", ["", "a{b", "a}b"])
async def test_thread_ids_that_would_break_the_hash_tag_are_refused(saver: RedisSaverBase, bad: str) -> None:
    with pytest.raises(ValueError, match="thread_id"):
        await saver.aget_tuple(config(bad))


def test_a_client_that_decodes_replies_is_refused(redis_url: str) -> None:
    client: redis.Redis | redis.RedisCluster
    if is_cluster_url(redis_url):
        host, port = cluster_seeds(redis_url)[0]
        client = redis.RedisCluster(host=host, port=port, decode_responses=True)
    else:
        client = redis.Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        CimhubRedisSaver(client)
    client.close()


# -- values stored once per version ------------------------------------------------------


async def test_unchanged_channels_are_not_stored_again(saver: RedisSaverBase, redis_client: aioredis.Redis) -> None:
    deal = {f"field{i}": "x" * 200 for i in range(100)}  # ~20 KB
    messages: list[str] = []
    parent = None
    blobs = saver.keys.thread("cim-big").blobs("")
    for step in range(1, 11):
        messages = [*messages, f"message {step}"]
        new = {"deal": 1, "messages": step} if step == 1 else {"messages": step}
        parent = await put(
            saver,
            "cim-big",
            {"deal": deal, "messages": messages},
            {"deal": 1, "messages": step},
            new,
            parent,
        )
        if step == 1:
            one = await redis_client.memory_usage(blobs, samples=0)
    assert await redis_client.hlen(blobs) == 11  # 1 deal version + 10 messages versions
    ten = await redis_client.memory_usage(blobs, samples=0)
    assert one is not None and ten is not None and ten - one < 5_000  # nine puts, no second copy of the deal
    latest = await saver.aget_tuple(config("cim-big"))
    assert latest is not None and latest.checkpoint["channel_values"] == {
        "deal": deal,
        "messages": messages,
    }


# -- pending writes ----------------------------------------------------------------------


async def test_a_large_value_is_stored_in_chunks_that_live_as_long_as_it(
    saver: RedisSaverBase, redis_client: aioredis.Redis
) -> None:
    big = "x" * (chunks.CHUNK_BYTES * 2 + 10)  # three chunks
    first = await put(saver, "cim-big", {"doc": big, "n": 1}, {"doc": 1, "n": 1}, {"doc": 1, "n": 1})
    blobs = saver.keys.thread("cim-big").blobs("")
    fields = await redis_client.hgetall(blobs)
    doc_field = blob_field("doc", 1).encode()
    assert chunks.count(fields[doc_field]) == 3  # a marker, not the value
    parts = [k for k in fields if k.startswith(doc_field + b"\x1f")]
    assert len(parts) == 3 and all(len(fields[k]) <= chunks.CHUNK_BYTES for k in parts)

    second = await put(saver, "cim-big", {"doc": big, "n": 2}, {"doc": 1, "n": 2}, {"n": 2}, first)
    for tuple_ in [await saver.aget_tuple(second), *await listed(saver, config("cim-big"))]:
        assert tuple_ is not None and tuple_.checkpoint["channel_values"]["doc"] == big
    await saver.aprune(["cim-big"], keep=1)  # the kept checkpoint still reads doc version 1
    assert len(await redis_client.hkeys(blobs)) == 5  # doc marker + 3 chunks + n version 2
    latest = await saver.aget_tuple(config("cim-big"))
    assert latest is not None and latest.checkpoint["channel_values"]["doc"] == big

    await put(saver, "cim-big", {"doc": "small", "n": 3}, {"doc": 2, "n": 3}, {"doc": 2, "n": 3})
    await saver.aprune(["cim-big"], keep=1)  # now nothing reads the big version: chunks go too
    assert sorted(await redis_client.hkeys(blobs)) == sorted(
        [blob_field("doc", 2).encode(), blob_field("n", 3).encode()]
    )


async def test_a_large_pending_write_is_stored_in_chunks_beside_it(
    saver: RedisSaverBase, redis_client: aioredis.Redis
) -> None:
    big = ["y" * 1000] * (chunks.CHUNK_BYTES // 500)  # about two chunks once serialized
    first = await put(saver, "cim-bigw", {"n": 1}, {"n": 1}, {"n": 1})
    await saver.aput_writes(first, [("doc", big), ("n", 2)], "task-1", "path")
    await saver.aput_writes(first, [("doc", ["retry"])], "task-1", "path")  # kept: the first
    key = saver.keys.thread("cim-bigw").checkpoint("", first["configurable"]["checkpoint_id"])
    names = await redis_client.hkeys(key)
    assert len([n for n in names if n.startswith(b"x:task-1:0")]) >= 2
    sizes = [len(await redis_client.hget(key, n) or b"") for n in names]
    assert max(sizes) <= chunks.CHUNK_BYTES

    latest = await saver.aget_tuple(config("cim-bigw"))
    assert latest is not None and latest.pending_writes == [
        ("task-1", "doc", big),
        ("task-1", "n", 2),
    ]
    second = await put(saver, "cim-bigw", {"n": 2}, {"n": 2}, {"n": 2}, first)
    history = await saver.aget_delta_channel_history(config=second, channels=["doc"])
    assert history["doc"]["writes"] == [("task-1", "doc", big)]


async def test_writes_that_arrive_before_their_checkpoint_are_kept(
    saver: RedisSaverBase, redis_client: aioredis.Redis
) -> None:
    early = checkpoint({"x": 1}, {"x": 1})
    cfg = config("cim-early", checkpoint_id=early["id"])
    await saver.aput_writes(cfg, [("x", 2), ("y", 3)], "task-1")
    assert await saver.aget_tuple(cfg) is None  # writes alone are not a checkpoint
    assert await listed(saver, config("cim-early")) == []
    await saver.aput(config("cim-early"), early, {"source": "loop", "step": 0}, {"x": 1})
    stored = await saver.aget_tuple(cfg)
    assert stored is not None and stored.pending_writes == [("task-1", "x", 2), ("task-1", "y", 3)]
    assert await redis_client.scard(saver.keys.thread("cim-early").early("")) == 0

    orphan = config("cim-early", checkpoint_id=str(uuid6()))
    await saver.aput_writes(orphan, [("x", 9)], "task-2")
    await saver.adelete_thread("cim-early")
    assert await thread_keys(redis_client, saver, "cim-early") == []


async def test_regular_writes_are_kept_and_special_writes_replaced(saver: RedisSaverBase) -> None:
    stored = await put(saver, "cim-w", {}, {}, {})
    await saver.aput_writes(stored, [("x", "first"), (ERROR, "boom 1")], "task")
    await saver.aput_writes(stored, [("x", "retry"), (ERROR, "boom 2")], "task")
    latest = await saver.aget_tuple(stored)
    assert latest is not None
    assert sorted((c, v) for _, c, v in latest.pending_writes or []) == [
        (ERROR, "boom 2"),
        ("x", "first"),
    ]


async def test_pending_writes_come_back_in_writes_sort_key_order(saver: RedisSaverBase) -> None:
    stored = await put(saver, "cim-order", {}, {}, {})
    await saver.aput_writes(stored, [("a", 1), ("b", 2)], "task-z", task_path="~__pregel_pull, b")
    await saver.aput_writes(stored, [("a", 3)], "task-a", task_path="~__pregel_pull, a")
    await saver.aput_writes(stored, [("c", 4)], "task-m", task_path="")
    latest = await saver.aget_tuple(stored)
    assert latest is not None
    assert latest.pending_writes == [
        ("task-m", "c", 4),
        ("task-a", "a", 3),
        ("task-z", "a", 1),
        ("task-z", "b", 2),
    ]


# -- list ---------------------------------------------------------------------------------


async def test_list_pages_and_merges_namespaces_by_id(saver: RedisSaverBase) -> None:
    ids: list[str] = []
    for i in range(150):
        stored = await put(saver, "cim-many", {}, {}, {}, ns="" if i % 3 else "section:1", step=i)
        ids.append(stored["configurable"]["checkpoint_id"])
    newest_first = sorted(ids, reverse=True)
    every = await listed(saver, {"configurable": {"thread_id": "cim-many"}})
    assert [t.checkpoint["id"] for t in every] == newest_first
    root = await listed(saver, config("cim-many"))
    assert len(root) == 100 and all(t.config["configurable"]["checkpoint_ns"] == "" for t in root)

    cursor = config("cim-many", checkpoint_id=newest_first[70])
    page = await listed(saver, {"configurable": {"thread_id": "cim-many"}}, before=cursor, limit=65)
    assert [t.checkpoint["id"] for t in page] == newest_first[71:136]
    filtered = await listed(saver, {"configurable": {"thread_id": "cim-many"}}, filter={"step": 3})
    assert [t.metadata["step"] for t in filtered] == [3]


async def test_list_filters_any_metadata_key_by_json_equality(saver: RedisSaverBase) -> None:
    await put(saver, "cim-f", {}, {}, {}, deal={"id": "d1", "stage": "draft"}, flag=True)
    await put(saver, "cim-f", {}, {}, {}, deal={"id": "d2", "stage": "draft"}, flag=1)
    assert len(await listed(saver, config("cim-f"), filter={"deal": {"stage": "draft", "id": "d1"}})) == 1
    # Equality, not containment: a part of the stored dict does not match.
    assert len(await listed(saver, config("cim-f"), filter={"deal": {"id": "d1"}})) == 0
    flagged = await listed(saver, config("cim-f"), filter={"flag": True})
    assert [dict(t.metadata)["flag"] for t in flagged] == [True]
    assert len(await listed(saver, config("cim-f"), filter={"missing": None})) == 0


async def test_list_without_config_covers_every_thread(saver: RedisSaverBase) -> None:
    for thread_id in ("cim-x", "cim-y", "cim-z"):
        await put(saver, thread_id, {}, {}, {}, source="input")
    assert {t.config["configurable"]["thread_id"] for t in await listed(saver, None)} == {
        "cim-x",
        "cim-y",
        "cim-z",
    }
    assert len(await listed(saver, None, limit=2)) == 2
    await saver.adelete_thread("cim-y")
    assert {t.config["configurable"]["thread_id"] for t in await listed(saver, None)} == {
        "cim-x",
        "cim-z",
    }


# -- delete, copy, prune, TTL ------------------------------------------------------------


async def test_delete_thread_removes_every_key_and_nothing_else(
    saver: RedisSaverBase, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    await redis_client.hset(f"{key_prefix}:cim:{{cim-d}}", "doc", "{}")
    stored = await put(saver, "cim-d", {"x": 1}, {"x": 1}, {"x": 1}, run_id="run-d")
    await saver.aput_writes(stored, [("x", 2)], "task")
    await put(saver, "cim-d", {"y": 1}, {"y": 1}, {"y": 1}, ns="section:1|slide:2", run_id="run-d")
    await put(saver, "cim-other", {"x": 1}, {"x": 1}, {"x": 1})
    await saver.adelete_thread("cim-d")
    assert await thread_keys(redis_client, saver, "cim-d") == []
    assert not await redis_client.exists(saver.keys.run_threads("run-d"))
    assert await redis_client.exists(f"{key_prefix}:cim:{{cim-d}}")
    assert await saver.aget_tuple(config("cim-other")) is not None


async def test_copy_thread_is_independent_of_its_source(saver: RedisSaverBase) -> None:
    first = await put(saver, "cim-src", {"x": "a"}, {"x": 1}, {"x": 1})
    await put(saver, "cim-src", {"x": "a", "y": "b"}, {"x": 1, "y": 1}, {"y": 1}, first)
    await saver.acopy_thread("cim-src", "cim-dst")
    await saver.adelete_thread("cim-src")
    copied = await listed(saver, config("cim-dst"))
    assert [t.checkpoint["channel_values"] for t in copied] == [{"x": "a", "y": "b"}, {"x": "a"}]
    assert copied[0].parent_config == config("cim-dst", checkpoint_id=first["configurable"]["checkpoint_id"])


async def test_prune_keeps_values_a_kept_checkpoint_reads(saver: RedisSaverBase, redis_client: aioredis.Redis) -> None:
    root = await put(saver, "cim-p", {"deal": "big", "msgs": [1]}, {"deal": 1, "msgs": 1}, {"deal": 1, "msgs": 1})
    await put(saver, "cim-p", {"deal": "big", "msgs": [1, 2]}, {"deal": 1, "msgs": 2}, {"msgs": 2}, root)
    fork = await put(saver, "cim-p", {"deal": "big", "msgs": [1, 3]}, {"deal": 1, "msgs": 3}, {"msgs": 3}, root)
    await saver.aput_writes(fork, [("msgs", [4])], "task")
    await saver.aprune(["cim-p"], strategy="keep_latest")
    kept = await listed(saver, config("cim-p"))
    assert [t.checkpoint["id"] for t in kept] == [fork["configurable"]["checkpoint_id"]]
    assert kept[0].checkpoint["channel_values"] == {"deal": "big", "msgs": [1, 3]}
    assert kept[0].pending_writes == [("task", "msgs", [4])]
    fields = cast(list[bytes], await redis_client.hkeys(saver.keys.thread("cim-p").blobs("")))
    # One value per channel is left; the deal's, shared with the pruned root, stayed.
    assert sorted(f.split(b"\x1f")[0] for f in fields) == [b"deal", b"msgs"]


def append_all(state: list[str], batches: Sequence[list[str]]) -> list[str]:
    return [*state, *(message for batch in batches for message in batch)]


async def test_prune_keeps_the_chain_a_delta_channel_replays(saver: RedisSaverBase) -> None:
    class Conversation(TypedDict):
        messages: Annotated[list[str], DeltaChannel(append_all, snapshot_frequency=4)]
        turn: int

    builder = StateGraph(Conversation)
    builder.add_node("speak", lambda state: {"messages": [f"m{state['turn']}"], "turn": state["turn"] + 1})
    builder.add_edge(START, "speak")
    builder.add_conditional_edges("speak", lambda state: END if state["turn"] >= 10 else "speak")
    graph = builder.compile(checkpointer=saver)
    cfg: RunnableConfig = {"configurable": {"thread_id": "cim-delta"}}
    await graph.ainvoke({"messages": [], "turn": 0}, cfg)
    before = (await graph.aget_state(cfg)).values
    assert before["messages"] == [f"m{i}" for i in range(10)]
    await saver.aprune(["cim-delta"], strategy="keep_latest")
    kept = await listed(saver, config("cim-delta"))
    assert 1 < len(kept) <= 6  # the newest, and its parents back to the last snapshot
    assert (await graph.aget_state(cfg)).values == before
    after = await graph.ainvoke(cast(Any, {"messages": ["more"]}), cfg)
    assert after["messages"] == [*before["messages"], "more", "m10"]


async def test_ttl_gives_every_key_a_life_and_the_namespace_set_the_shortest(
    redis_url: str, key_prefix: str, redis_client: aioredis.Redis
) -> None:
    async with AsyncCimhubRedisSaver.from_url(redis_url, key_prefix=key_prefix, ttl_s=30) as saver:
        stored = await put(saver, "cim-ttl", {"x": 1}, {"x": 1}, {"x": 1}, run_id="run-t")
        await saver.aput_writes(stored, [("x", 2)], "task")
        keys = [
            *await thread_keys(redis_client, saver, "cim-ttl"),
            saver.keys.run_threads("run-t").encode(),
        ]
        ttls = dict(zip(keys, [await redis_client.pttl(key) for key in keys], strict=True))
        assert all(25_000 < ttl <= 37_500 for ttl in ttls.values()), ttls
        # the thread expires whole: its namespace set, which get/list read first, goes first
        own = await thread_keys(redis_client, saver, "cim-ttl")
        ends = {key: await redis_client.execute_command("PEXPIRETIME", key) for key in own}
        namespaces = saver.keys.thread("cim-ttl").namespaces.encode()
        assert ends[namespaces] == min(ends.values()), ends

    async with AsyncCimhubRedisSaver.from_url(redis_url, key_prefix=key_prefix, ttl_s=0.2) as short:
        await put(short, "cim-short", {"x": 1}, {"x": 1}, {"x": 1})
        deadline = time.monotonic() + 10
        while await thread_keys(redis_client, short, "cim-short"):
            assert time.monotonic() < deadline, "keys did not expire"
            await asyncio.sleep(0.1)
        assert await short.aget_tuple(config("cim-short")) is None


async def test_scripts_are_loaded_again_after_a_script_flush(
    saver: RedisSaverBase, redis_client: aioredis.Redis
) -> None:
    await put(saver, "cim-flush", {"x": 1}, {"x": 1}, {"x": 1})
    await redis_client.script_flush()
    stored = await put(saver, "cim-flush", {"x": 2}, {"x": 2}, {"x": 2})
    latest = await saver.aget_tuple(stored)
    assert latest is not None and latest.checkpoint["channel_values"] == {"x": 2}


def _run_ids(items: Sequence[CheckpointTuple]) -> set[Any]:
    return {t.metadata.get("run_id") for t in items}


async def test_delete_for_runs_spans_threads(saver: RedisSaverBase, redis_client: aioredis.Redis) -> None:
    run = str(uuid.uuid4())
    for thread_id in ("cim-r1", "cim-r2"):
        await put(saver, thread_id, {"x": 1}, {"x": 1}, {"x": 1}, run_id=run)
        await put(saver, thread_id, {"x": 1}, {"x": 1}, {}, run_id="keep")
    await saver.adelete_for_runs([run])
    for thread_id in ("cim-r1", "cim-r2"):
        left = await listed(saver, config(thread_id))
        assert _run_ids(left) == {"keep"}
        assert left[0].checkpoint["channel_values"] == {"x": 1}  # value written by the deleted run
    assert not await redis_client.exists(saver.keys.run_threads(run))
