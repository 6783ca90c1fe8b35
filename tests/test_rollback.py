"""Redis coming back older: commit ids keep a stale cache or a stale replica from writing or resuming on it.

A rollback is simulated inside one Redis by saving a CIM's keys (DUMP) and
putting them back later (RESTORE REPLACE), the same state a restore from an
older AOF/RDB leaves; tests/test_durability.py does it with a real copy of
the data directory and real hub processes.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import redis.asyncio as aioredis
from conftest import Clock

from cimhub.protocol.errors import CimhubError
from cimhub.protocol.patch import apply
from cimhub.server.store.cims import CimStore
from cimhub.server.store.engine import MutationEngine
from cimhub.server.store.keys import Keys

_ids = itertools.count()


async def mutate(engine: MutationEngine, name: str, args: dict[str, Any], mutation_id: str | None = None) -> Any:
    return await engine.mutate(name, args, actor="u1", mutation_id=mutation_id or f"m{next(_ids)}", user_id="u1")


async def note(engine: MutationEngine, cim_id: str, name: str) -> int:
    """Record mutation `name` in the CIM (one gatheredContext key each); returns the acknowledged revision."""
    result = await mutate(engine, "updateState", {"cimId": cim_id, "gatheredContext": {name: True}}, f"ack-{name}")
    return int(result.revision)


class Backup:
    """The keys under a prefix as they were at `save` (an older RDB/AOF, in miniature)."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.saved: dict[bytes, bytes] = {}

    async def save(self) -> None:
        self.saved = {}
        async for key in self.client.scan_iter(match=f"{self.prefix}:*"):
            dumped = await self.client.dump(key)
            if dumped is not None:
                self.saved[key] = dumped

    async def restore(self) -> None:
        """Redis as it was at `save`: keys written since are gone, the others hold their old values."""
        async for key in self.client.scan_iter(match=f"{self.prefix}:*"):
            if key not in self.saved:
                await self.client.delete(key)
        for key, dumped in self.saved.items():
            await self.client.restore(key, 0, dumped, replace=True)


@pytest.fixture
async def engines(redis_client: aioredis.Redis, redis_url: str, keys: Keys, clock: Clock) -> Any:
    """Two engines on one Redis, as two hub processes would be (each with its own document cache)."""
    other = aioredis.from_url(redis_url)
    yield MutationEngine(CimStore(redis_client, keys), clock=clock), MutationEngine(CimStore(other, keys), clock=clock)
    await other.aclose()


async def replay(store: CimStore, cim_id: str) -> tuple[Any, int]:
    entries = await store.patches_since(cim_id, 0)
    assert entries is not None
    doc: Any = None
    for entry in entries:
        doc = apply(doc, entry["ops"])
    return doc, entries[-1]["rev"]


async def test_a_stale_cache_cannot_commit_on_a_redis_that_came_back_older(
    engines: tuple[MutationEngine, MutationEngine], redis_client: aioredis.Redis, key_prefix: str
) -> None:
    """The issue's deterministic case: A acked l1, l2; Redis went back; B acked n1, n2; A then acks n3."""
    a, b = engines
    cim_id = (await mutate(a, "create", {"dealId": "d1", "projectId": "p1", "title": "T"})).cim_id
    for name in ("k1", "k2", "k3"):
        await note(a, cim_id, name)
    backup = Backup(redis_client, key_prefix)
    await backup.save()  # revision 4
    assert [await note(a, cim_id, name) for name in ("l1", "l2")] == [5, 6]  # a now caches revision 6
    await backup.restore()  # the same epoch, revision 4 again

    assert [await note(b, cim_id, name) for name in ("n1", "n2")] == [5, 6]
    cached = a.cache.get(cim_id)
    assert cached is not None and cached.revision == 6  # same revision and epoch as Redis, other content
    assert await note(a, cim_id, "n3") == 7

    stored = await a.store.get(cim_id)
    # Every acknowledgement since the restore is there once; those the restore took are visibly gone.
    assert stored.doc["gatheredContext"] == {"k1": True, "k2": True, "k3": True, "n1": True, "n2": True, "n3": True}
    assert await replay(a.store, cim_id) == (stored.doc, 7)


async def test_the_patch_log_is_one_chain_of_commit_ids(
    engines: tuple[MutationEngine, MutationEngine],
) -> None:
    a, _ = engines
    cim_id = (await mutate(a, "create", {"dealId": "d1", "projectId": "p1", "title": "T"})).cim_id
    for name in ("x", "y"):
        await note(a, cim_id, name)
    entries = await a.store.patches_since(cim_id, 0)
    assert entries is not None
    assert entries[0]["parent"] == ""
    assert [e["parent"] for e in entries[1:]] == [e["commit"] for e in entries[:-1]]
    assert len({e["commit"] for e in entries}) == 3
    assert (await a.store.get(cim_id)).commit == entries[-1]["commit"]


async def test_resume_is_served_only_from_the_very_commit_the_client_holds(
    engines: tuple[MutationEngine, MutationEngine], redis_client: aioredis.Redis, key_prefix: str
) -> None:
    a, b = engines
    store = a.store
    cim_id = (await mutate(a, "create", {"dealId": "d1", "projectId": "p1", "title": "T"})).cim_id
    await note(a, cim_id, "k1")
    at_two = await store.get(cim_id)
    backup = Backup(redis_client, key_prefix)
    await backup.save()
    await note(a, cim_id, "l1")
    await note(a, cim_id, "l2")
    lost = await store.get(cim_id)  # an offline subscriber's replica: revision 4
    assert [p["rev"] for p in await store.patches_after_commit(cim_id, 2, at_two.commit) or []] == [3, 4]
    assert await store.patches_after_commit(cim_id, 4, lost.commit) == []

    await backup.restore()
    for name in ("n1", "n2", "n3"):
        await note(b, cim_id, name)  # revisions 3, 4, 5 of another history
    # Revision 4 is in the log again, as another commit: no patches, a snapshot.
    assert await store.patches_after_commit(cim_id, 4, lost.commit) is None
    # From before the rollback point the history is shared: exactly the new patches.
    patches = await store.patches_after_commit(cim_id, 2, at_two.commit)
    assert patches is not None and [p["rev"] for p in patches] == [3, 4, 5]
    doc = at_two.doc
    for patch in patches:
        doc = apply(doc, patch["ops"])
    assert doc == (await store.get(cim_id)).doc
    # No commit id (a protocol-1 client) or an unknown one: a snapshot, never a guess.
    assert await store.patches_after_commit(cim_id, 2, "") is None
    assert await store.patches_after_commit(cim_id, 2, "feedfacefeedface") is None
    # More than the limit: a snapshot is cheaper.
    assert await store.patches_after_commit(cim_id, 2, at_two.commit, limit=2) is None
    assert await store.patches_after_commit(cim_id, 2, at_two.commit, limit=3) is not None


async def test_up_to_date_resume_checks_the_document_when_the_log_is_gone(
    engines: tuple[MutationEngine, MutationEngine], redis_client: aioredis.Redis, keys: Keys
) -> None:
    a, _ = engines
    cim_id = (await mutate(a, "create", {"dealId": "d1", "projectId": "p1", "title": "T"})).cim_id
    stored = await a.store.get(cim_id)
    await redis_client.delete(keys.log(cim_id))
    assert await a.store.patches_after_commit(cim_id, 1, stored.commit) == []
    assert await a.store.patches_after_commit(cim_id, 1, "other") is None


async def test_create_after_redis_lost_everything_works_without_a_restart(
    engines: tuple[MutationEngine, MutationEngine], redis_client: aioredis.Redis, key_prefix: str, keys: Keys
) -> None:
    """The cache said "already exists" after a FLUSHALL until the hub restarted; Redis now has the last word."""
    a, _ = engines
    args = {"dealId": "d1", "projectId": "p1", "title": "T"}
    first = await mutate(a, "create", args, "create-1")
    await note(a, first.cim_id, "k1")
    row = {"sourceId": "legacy-1", "dealId": "d1", "projectId": "p1", "userId": "u1", "title": "Old"}
    imported = await mutate(a, "importFromSupabase", row, "import-1")
    await Backup(redis_client, key_prefix).restore()  # nothing saved: every key of the prefix goes
    again = await mutate(a, "create", args, "create-1")
    assert (again.cim_id, again.revision, again.duplicate) == (first.cim_id, 1, False)
    assert (await a.store.get(first.cim_id)).doc["title"] == "T"
    reimported = await mutate(a, "importFromSupabase", row, "import-1")
    assert reimported.cim_id == imported.cim_id and await a.store.exists(imported.cim_id)
    # A refusal the cache gives is still given once Redis confirms it (the create's record expired, the CIM is there).
    await redis_client.delete(keys.mutation(first.cim_id, "create-1"))
    with pytest.raises(CimhubError, match="already exists"):
        await mutate(a, "create", args, "create-1")
