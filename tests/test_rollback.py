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
from cimhub.server.messages.feed import MessageFeed
from cimhub.server.messages.store import MessageStore
from cimhub.server.store.cims import LOG_PAGE, CimStore
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


async def test_a_messages_resume_after_a_rollback_gets_a_reset_never_another_history(
    engines: tuple[MutationEngine, MutationEngine], redis_client: aioredis.Redis, key_prefix: str, keys: Keys
) -> None:
    """The messages: topic has commit ids too: seq 4 after a restore is another message than the one held."""
    a, _ = engines
    cim_id = (await mutate(a, "create", {"dealId": "d1", "projectId": "p1", "title": "T"})).cim_id
    epoch = (await a.store.get(cim_id)).epoch
    messages = MessageStore(redis_client, keys, dimension=4)
    feed = MessageFeed(messages, a.store)

    async def say(content: str) -> str:
        added = await messages.add(cim_id, "user", content)
        assert added.commit
        return added.commit

    await say("k1")
    at_two = await say("k2")
    backup = Backup(redis_client, key_prefix)
    await backup.save()  # seq 2
    await say("l1")
    lost = await say("l2")  # an offline subscriber holds seq 4 of this history
    caught_up = await feed.since(cim_id, 2, epoch, at_two)
    assert caught_up is not None and [e["rev"] for e in caught_up] == [3, 4]
    assert await feed.since(cim_id, 4, epoch, lost) == []

    await backup.restore()
    for content in ("n1", "n2", "n3"):
        await say(content)  # seqs 3, 4, 5 of another history
    # Seq 4 is there again, as another message: no patches, a snapshot.
    assert await feed.since(cim_id, 4, epoch, lost) is None
    # From before the rollback point the history is shared: exactly the new messages, one unbroken chain.
    entries = await feed.since(cim_id, 2, epoch, at_two)
    assert entries is not None
    assert [(e["rev"], e["ops"][0]["value"]["content"]) for e in entries] == [(3, "n1"), (4, "n2"), (5, "n3")]
    assert [e["parent"] for e in entries] == [at_two, entries[0]["commit"], entries[1]["commit"]]
    # The snapshot names its newest message's commit id, which a later resume is served from.
    snapshot = await feed.snapshot(cim_id)
    assert snapshot is not None
    assert (snapshot.revision, snapshot.commit) == (5, entries[-1]["commit"])
    assert [m["content"] for m in snapshot.data["messages"]] == ["k1", "k2", "n1", "n2", "n3"]
    assert await feed.since(cim_id, 5, epoch, snapshot.commit) == []
    # No commit id or an unknown one past revision 0: a snapshot, never a guess. From 0 there is nothing to confirm.
    assert await feed.since(cim_id, 2, epoch, "") is None
    assert await feed.since(cim_id, 2, epoch, "feedfacefeedface") is None
    assert [e["rev"] for e in await feed.since(cim_id, 0, epoch, "") or []] == [1, 2, 3, 4, 5]
    # Another epoch, or more than max_catch_up messages: a snapshot.
    assert await feed.since(cim_id, 2, "other-epoch", at_two) is None
    assert await MessageFeed(messages, a.store, max_catch_up=2).since(cim_id, 2, epoch, at_two) is None
    assert await MessageFeed(messages, a.store, max_catch_up=3).since(cim_id, 2, epoch, at_two) is not None


async def test_a_resume_is_checked_across_pages_of_messages(
    engines: tuple[MutationEngine, MutationEngine], redis_client: aioredis.Redis, keys: Keys
) -> None:
    """More than one page (200) to catch up: every page continues the chain of the one before."""
    a, _ = engines
    cim_id = (await mutate(a, "create", {"dealId": "d1", "projectId": "p1", "title": "T"})).cim_id
    epoch = (await a.store.get(cim_id)).epoch
    messages = MessageStore(redis_client, keys, dimension=4)
    first = await messages.add(cim_id, "user", "m1")
    for n in range(2, 451):
        await messages.add(cim_id, "user", f"m{n}")
    entries = await MessageFeed(messages, a.store).since(cim_id, 1, epoch, first.commit)
    assert entries is not None and [e["rev"] for e in entries] == list(range(2, 451))
    assert all(e["parent"] == p["commit"] for p, e in itertools.pairwise(entries))


async def test_a_long_catch_up_is_read_in_pages_and_still_checked_as_one_chain(
    engines: tuple[MutationEngine, MutationEngine], redis_client: aioredis.Redis, keys: Keys
) -> None:
    """More entries than one page (LOG_PAGE): every page continues the chain, a seam between pages is refused."""
    a, _ = engines
    cim_id = (await mutate(a, "create", {"dealId": "d1", "projectId": "p1", "title": "T"})).cim_id
    first = await a.store.get(cim_id)
    for n in range(LOG_PAGE + 50):
        await note(a, cim_id, f"k{n}")
    patches = await a.store.patches_after_commit(cim_id, 1, first.commit)
    assert patches is not None and [p["rev"] for p in patches] == list(range(2, LOG_PAGE + 52))
    limited = await a.store.patches_after_commit(cim_id, 1, first.commit, limit=LOG_PAGE + 50)
    assert limited == patches
    # An entry missing in the middle of a page (a trim, a rollback between two reads): a snapshot, never a gap.
    await redis_client.xdel(keys.log(cim_id), f"{LOG_PAGE + 1}-1")
    assert await a.store.patches_after_commit(cim_id, 1, first.commit) is None
