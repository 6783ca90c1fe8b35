"""Rebuild the cluster's secondary indexes from the CIM documents (`cimhub admin repair-indexes`).

On a Redis Cluster the by-deal, by-user and by-status indexes are written
after each commit, before it is acknowledged (docs/scaling.md). A hub that
dies in between leaves them behind the document until the CIM's next commit;
so can a failover that loses an index write but keeps the commit. The
documents are the truth, and this makes the indexes agree with them:

1. every document found by SCAN (on every primary) has its entries written
   at its revision;
2. every entry found in an index whose CIM is gone is forgotten, and one whose
   document names another deal, user or status is removed.

Idempotent, and safe beside live hubs: every write goes through index.lua's
revision guard, so a commit made meanwhile (a newer revision) is never undone.
The one race left: an entry whose CIM is being created while step 2 reads it
may be forgotten just after its first index write; the CIM's next commit (or
the next repair) puts it back. On one Redis node the commit script writes
the indexes itself, atomically, and there is nothing to repair.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import orjson
from redis.commands.core import AsyncScript

from cimhub.server.checkpoint.layout import glob_escape
from cimhub.server.store import indexes
from cimhub.server.store.cims import CimStore, StoredCim

# The document field each index kind follows.
FIELD_OF = {"deal": "dealId", "user": "userId", "status": "status"}


@dataclass
class IndexRepair:
    """Counts so far; `progress` gets this object after every batch."""

    cims: int = 0
    """Documents read."""
    written: int = 0
    """Entries written from documents (already right ones included: each is rewritten once)."""
    entries: int = 0
    """Index entries checked against their documents."""
    removed: int = 0
    """Entries dropped: the CIM is gone, or its document names another deal, user or status."""


async def repair_indexes(
    store: CimStore, *, batch: int = 200, progress: Callable[[IndexRepair], None] = lambda _: None
) -> IndexRepair:
    """Make every index agree with the documents; see the module docstring. Cluster only."""
    script = store.index_script
    if script is None:
        raise ValueError("one Redis node writes the indexes inside each commit: there is nothing to repair")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    report = IndexRepair()
    prefix = glob_escape(store.keys.prefix)
    ids: list[str] = []
    async for cim_id in _cim_ids(store, f"{prefix}:cim:{{*}}"):
        ids.append(cim_id)
        if len(ids) == batch:
            await _write_from_documents(store, script, ids, report)
            progress(report)
            ids = []
    if ids:
        await _write_from_documents(store, script, ids, report)
        progress(report)
    async for raw in store.redis.scan_iter(match=f"{prefix}:idx:*", count=1000):
        key = raw.decode()
        parsed = _index_kind(store, key)
        if parsed is None:
            continue  # a guard hash
        members: list[str] = []
        async for member, _score in store.redis.zscan_iter(key, count=batch):
            members.append(member.decode())
            if len(members) == batch:
                await _drop_strays(store, script, key, parsed, members, report)
                members = []
        if members:
            await _drop_strays(store, script, key, parsed, members, report)
        progress(report)
    return report


async def _cim_ids(store: CimStore, pattern: str) -> AsyncIterator[str]:
    head = f"{store.keys.prefix}:cim:{{"
    async for raw in store.redis.scan_iter(match=pattern, count=1000):
        key = raw.decode()
        if key.startswith(head) and key.endswith("}"):
            yield key[len(head) : -1]


def _index_kind(store: CimStore, key: str) -> tuple[str, str] | None:
    """(kind, value) of an index key ``<prefix>:idx:<kind>:{<value>}``; None for anything else."""
    head = f"{store.keys.prefix}:idx:"
    kind, _, tagged = key[len(head) :].partition(":")
    if kind not in FIELD_OF or not (tagged.startswith("{") and tagged.endswith("}")):
        return None
    return kind, tagged[1:-1]


async def _documents(store: CimStore, ids: list[str]) -> list[StoredCim | None]:
    pipe = store.redis.pipeline(transaction=False)
    for cim_id in ids:
        pipe.hmget(store.keys.cim(cim_id), ["doc", "rev", "epoch"])
    rows = await pipe.execute()
    return [None if doc is None else StoredCim(orjson.loads(doc), int(rev), epoch.decode()) for doc, rev, epoch in rows]


async def _write_from_documents(store: CimStore, script: AsyncScript, ids: list[str], report: IndexRepair) -> None:
    calls: list[indexes.IndexCall] = []
    for cim_id, found in zip(ids, await _documents(store, ids), strict=True):
        if found is None:
            continue  # deleted since the scan
        report.cims += 1
        calls += store.index_calls_as_of(cim_id, found, indexes.entries_for(store.keys, found.doc))
    report.written += sum(await store.index_calls(script, calls))


async def _drop_strays(
    store: CimStore,
    script: AsyncScript,
    index: str,
    parsed: tuple[str, str],
    members: list[str],
    report: IndexRepair,
) -> None:
    kind, value = parsed
    calls: list[indexes.IndexCall] = []
    for cim_id, found in zip(members, await _documents(store, members), strict=True):
        report.entries += 1
        if found is None:
            entry = indexes.IndexEntry(index, "forget")  # unguarded: no version to name
            calls += indexes.calls(store.keys, cim_id, 0, [entry], epoch="", at=0)
        elif str(found.doc.get(FIELD_OF[kind])) != value:
            calls += store.index_calls_as_of(cim_id, found, [indexes.IndexEntry(index, "remove")])
    report.removed += sum(await store.index_calls(script, calls))
