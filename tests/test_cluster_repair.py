"""`cimhub admin repair-indexes` on a real 3+3 Redis Cluster: broken index entries and registries come back.

The CIMs are made by the mutation engine on the cluster (as a hub would), then
index entries are deleted, moved and invented by hand, and the command (the
real CLI) must bring every index back to what the documents say, twice in a
row with the same result. The LangGraph saver's registries get the same
treatment.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import pytest
from click.testing import CliRunner
from cluster import RedisClusterProcess
from langgraph.checkpoint.base import empty_checkpoint
from redis.asyncio.cluster import RedisCluster
from support.clock import Clock

from cimhub.clients.cli import cli
from cimhub.server.checkpoint import AsyncCimhubRedisSaver
from cimhub.server.connect import connect
from cimhub.server.store import indexes as index_calls
from cimhub.server.store.cims import CimStore
from cimhub.server.store.engine import MutationEngine
from cimhub.server.store.keys import Keys

_ids = itertools.count()
CLI = [sys.executable, "-m", "cimhub.clients"]


@pytest.fixture
def prefix(redis_cluster: RedisClusterProcess) -> Iterator[str]:
    """A key prefix of this test's own on the session's cluster; its keys are deleted after."""
    value = f"t{uuid.uuid4().hex[:12]}"
    yield value
    with redis_cluster.sync_client() as client:
        for key in list(client.scan_iter(match=f"{value}:*", count=1000)):
            client.delete(key)


@pytest.fixture
async def client(redis_cluster: RedisClusterProcess) -> AsyncIterator[RedisCluster]:
    redis = cast(RedisCluster, connect(redis_cluster.url))
    yield redis
    await redis.aclose()


@pytest.fixture
async def engine(client: RedisCluster, prefix: str) -> AsyncIterator[MutationEngine]:
    store = CimStore(client, Keys(prefix, cluster=True))  # type: ignore[arg-type]
    yield MutationEngine(store, clock=Clock())
    await store.aclose()


async def mutate(engine: MutationEngine, name: str, args: dict[str, Any], user: str) -> Any:
    return await engine.mutate(name, args, actor=user, mutation_id=f"m{next(_ids)}", user_id=user)


async def indexes(client: RedisCluster, prefix: str) -> dict[str, list[tuple[str, float]]]:
    """Every index (not its guard) and its entries, as stored."""
    found: dict[str, list[tuple[str, float]]] = {}
    async for raw in client.scan_iter(match=f"{prefix}:idx:*"):
        key = raw.decode()
        if key.endswith("}"):
            found[key] = sorted((m.decode(), s) for m, s in await client.zrange(key, 0, -1, withscores=True))
    return {key: entries for key, entries in sorted(found.items()) if entries}


async def run_repair(redis_cluster: RedisClusterProcess, prefix: str) -> str:
    """The real command in a process of its own; its stdout (progress lines go to stderr)."""
    done = await asyncio.to_thread(
        subprocess.run,
        [*CLI, "admin", "repair-indexes", "--redis-url", redis_cluster.url, "--key-prefix", prefix, "--batch", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "CIMs read" in done.stderr  # the progress output
    return done.stdout


async def test_repair_brings_deleted_moved_and_invented_entries_back_to_the_documents(
    redis_cluster: RedisClusterProcess, client: RedisCluster, engine: MutationEngine, prefix: str
) -> None:
    cims = []
    for n in range(6):
        created = await mutate(
            engine, "create", {"dealId": f"d{n % 2}", "projectId": "p", "title": f"T{n}"}, f"u{n % 3}"
        )
        cims.append(str(created.cim_id))
    for cim in cims[:3]:
        await mutate(engine, "updateState", {"cimId": cim, "status": "in_progress"}, "u0")
    await mutate(engine, "delete", {"cimId": cims[5]}, "u2")
    keys = Keys(prefix, cluster=True)
    right = await indexes(client, prefix)
    assert sorted(m for m, _ in right[keys.by_status("in_progress")]) == sorted(cims[:3])

    await client.zrem(keys.by_deal("d0"), cims[0])  # a lost index write
    await client.delete(keys.by_user("u1"))  # a whole index gone
    await client.zadd(keys.by_status("draft"), {cims[1]: 1})  # a stale status entry...
    await client.hset(keys.index_guard(keys.by_status("draft")), cims[1], 0)  # ...from an old revision
    await client.zadd(keys.by_user("u0"), {"ghost": 5})  # an entry of a CIM that never existed
    await client.zadd(keys.by_deal("d1"), {cims[5]: 7})  # a deleted CIM back in its deal's list
    assert await indexes(client, prefix) != right

    output = await run_repair(redis_cluster, prefix)
    assert "indexes: 5 CIMs" in output and "3 stray entries removed" in output, output
    assert await indexes(client, prefix) == right
    page = await engine.store.list("deal", "d0")
    assert sorted(item.id for item in page.items) == sorted(cims[0:6:2])

    again = await run_repair(redis_cluster, prefix)
    assert "0 stray entries removed" in again, again
    assert await indexes(client, prefix) == right


async def test_repair_never_undoes_a_newer_commit(client: RedisCluster, engine: MutationEngine, prefix: str) -> None:
    """A repair that read a document before a commit cannot move the indexes back to it (revision guard)."""
    cim = str((await mutate(engine, "create", {"dealId": "d", "projectId": "p", "title": "T"}, "u")).cim_id)
    keys = Keys(prefix, cluster=True)
    stale = await engine.store.get(cim)
    await mutate(engine, "updateState", {"cimId": cim, "status": "in_progress"}, "u")
    script = engine.store.index_script
    assert script is not None
    entries = index_calls.entries_for(keys, stale.doc)  # what a slow repair would write
    at = int(stale.doc["updatedAt"])
    made = index_calls.calls(keys, cim, stale.revision, entries, epoch=stale.epoch, at=at)
    applied = await engine.store.index_calls(script, made)
    assert applied == [0, 0, 0]  # every guard holds revision 2 now
    assert await client.zscore(keys.by_status("draft"), cim) is None
    assert await client.zscore(keys.by_status("in_progress"), cim) is not None


async def test_repair_of_the_saver_registries(
    redis_cluster: RedisClusterProcess, client: RedisCluster, prefix: str
) -> None:
    saver = AsyncCimhubRedisSaver(client, key_prefix=prefix)
    threads = [f"thread-{n}" for n in range(5)]
    for thread in threads:
        config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
        await saver.aput(config, empty_checkpoint(), {"run_id": f"run-{thread[-1:]}"}, {})  # type: ignore[arg-type]
    await client.srem(saver.keys.threads(), threads[0], threads[1])
    await client.sadd(saver.keys.threads(), "gone")
    await client.srem(saver.keys.run_threads("run-2"), threads[2])
    await client.sadd(saver.keys.run_threads("run-3"), "gone")

    repaired = await saver.arepair_registries()
    assert (repaired.threads, repaired.added, repaired.removed) == (5, 3, 2)
    assert {m.decode() for m in await client.smembers(saver.keys.threads())} == set(threads)
    listed = {item.config["configurable"]["thread_id"] async for item in saver.alist(None)}
    assert listed == set(threads)
    assert {m.decode() for m in await client.smembers(saver.keys.run_threads("run-3"))} == {threads[3]}
    again = await saver.arepair_registries()
    assert (again.added, again.removed) == (0, 0)


@pytest.mark.single_node
def test_repair_on_one_node_says_there_is_nothing_to_repair(redis_url: str, key_prefix: str) -> None:
    result = CliRunner().invoke(cli, ["admin", "repair-indexes", "--redis-url", redis_url, "--key-prefix", key_prefix])
    assert result.exit_code == 0, result.output
    assert "nothing to repair" in result.output
    assert "checkpoint registries: 0 threads" in result.output


async def test_a_cim_id_created_again_is_indexed_from_its_first_revision(
    client: RedisCluster, engine: MutationEngine, prefix: str
) -> None:
    """Revisions start again at 1 in a new epoch: the guard must not hold the old epoch's revision against them."""
    keys = Keys(prefix, cluster=True)
    script = engine.store.index_script
    assert script is not None
    cim = "c-recreated"
    old_doc = {"dealId": "d1", "userId": "u", "status": "draft", "updatedAt": 1_000}
    gone = index_calls.entries_for(keys, None, deal_id="d1", user_id="u", status="draft")
    # The old CIM reached revision 9, then was deleted (revision 10); the same id is created again.
    await engine.store.index_calls(script, index_calls.calls(keys, cim, 10, gone, epoch="e-old", at=2_000))
    new_doc = {"dealId": "d2", "userId": "u", "status": "draft", "updatedAt": 3_000}
    made = index_calls.calls(keys, cim, 1, index_calls.entries_for(keys, new_doc), epoch="e-new", at=3_000)
    assert await engine.store.index_calls(script, made) == [1, 1, 1]
    assert await client.zscore(keys.by_deal("d2"), cim) == 3_000
    # A late write of the old epoch (revision 9, committed before the delete) changes nothing now ...
    late = index_calls.calls(keys, cim, 9, index_calls.entries_for(keys, old_doc), epoch="e-old", at=1_000)
    assert await engine.store.index_calls(script, late) == [0, 0, 0]
    assert await client.zscore(keys.by_deal("d1"), cim) is None
    # ... and within the new epoch the revision decides, whatever a hub's clock said.
    two = index_calls.calls(keys, cim, 2, index_calls.entries_for(keys, new_doc), epoch="e-new", at=3_100)
    assert await engine.store.index_calls(script, two) == [1, 1, 1]
    skewed = index_calls.calls(keys, cim, 1, index_calls.entries_for(keys, new_doc), epoch="e-new", at=9_999)
    assert await engine.store.index_calls(script, skewed) == [0, 0, 0]
