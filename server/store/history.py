"""CIM history: any revision still in the patch log, and what changed between two revisions.

The patch log (a stream per CIM, see cimhub.server.store.cims) holds each
revision's RFC 6902 ops, who made it and when. With history snapshots on
(`snapshot_every` K > 0) entry 1 and every K-th entry also hold the whole
document (field ``s``), and commit.lua trims the log only at such entries. So
revision R is rebuilt from the newest snapshot at or before R plus fewer than K
patches: one XREVRANGE of at most K entries, whatever R and however long the log.

Guarantees:

* `at` returns the document exactly as committed at revision R, for every R
  from `oldest` to the current revision, all under the CIM's current epoch.
* Reads are not atomic with commits. A commit meanwhile only adds later
  revisions; a trim meanwhile can make an old revision unavailable, which is
  reported as NotFound naming the oldest revision still kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis

from cimhub.protocol.errors import InvalidInput, NotFound
from cimhub.protocol.patch import apply
from cimhub.server.store.keys import Keys

# How many entries one XREVRANGE reads when the snapshot interval is unknown or off.
PAGE = 100
# At most this many entries are read looking for a snapshot (a log written with a larger interval).
MAX_SCAN = 10_000


@dataclass(frozen=True)
class PastCim:
    """A CIM as it was committed at `revision` (`patches` applied on top of the nearest snapshot)."""

    doc: dict[str, Any]
    revision: int
    epoch: str
    patches: int


@dataclass(frozen=True)
class Head:
    """Where the CIM stands now."""

    revision: int
    epoch: str
    doc: bytes


class History:
    """Reads past revisions from the patch log. One per process; holds no state."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, *, snapshot_every: int) -> None:
        self.redis = redis
        self.keys = keys
        self.snapshot_every = snapshot_every

    async def head(self, cim_id: str) -> Head:
        """The current revision and epoch; NotFound if there is no such CIM."""
        reply: list[Any] = await self.redis.hmget(self.keys.cim(cim_id), ["rev", "epoch", "doc"])
        rev, epoch, doc = reply
        if rev is None or doc is None:
            raise NotFound(f"CIM {cim_id!r} not found", path="args.cimId")
        return Head(int(rev), epoch.decode(), doc)

    async def oldest(self, cim_id: str) -> int | None:
        """The oldest revision that `at` can rebuild (the oldest snapshot in the log), or None."""
        page = self.snapshot_every + 1 if self.snapshot_every else PAGE
        start = "-"
        scanned = 0
        while scanned < MAX_SCAN:
            batch: Any = await self.redis.xrange(self.keys.log(cim_id), min=start, max="+", count=page)
            for entry_id, fields in batch:
                if b"s" in fields:
                    return _rev_of(entry_id)
            if len(batch) < page:
                return None
            scanned += len(batch)
            start = "(" + batch[-1][0].decode()
        return None

    async def at(self, cim_id: str, revision: int) -> PastCim:
        """The CIM as committed at `revision`.

        Raises NotFound when there is no such CIM, or when `revision` is older
        than the history kept (the message names the oldest one kept), and
        InvalidInput when `revision` is past the current one.
        """
        head = await self.head(cim_id)
        if revision < 1 or revision > head.revision:
            raise InvalidInput(
                f"revision {revision} does not exist: CIM {cim_id!r} is at revision {head.revision}",
                path="args.revision",
            )
        if revision == head.revision:
            return PastCim(orjson.loads(head.doc), head.revision, head.epoch, 0)
        newest_first = await self._back_to_snapshot(cim_id, revision)
        if newest_first is None:
            raise await self._trimmed(cim_id, revision)
        entries = newest_first[::-1]
        doc: dict[str, Any] = orjson.loads(entries[0][1][b"s"])
        expected = _rev_of(entries[0][0])
        for entry_id, fields in entries:
            rev = _rev_of(entry_id)
            patch = orjson.loads(fields[b"p"])
            if rev != expected or patch["epoch"] != head.epoch:
                # A hole or another history: nothing sound can be built from this.
                raise await self._trimmed(cim_id, revision)
            expected += 1
            if rev != _rev_of(entries[0][0]):
                doc = apply(doc, patch["ops"], in_place=True)
        return PastCim(doc, revision, head.epoch, len(entries) - 1)

    async def _back_to_snapshot(self, cim_id: str, revision: int) -> list[tuple[bytes, dict[bytes, bytes]]] | None:
        """Entries from `revision` back to the newest snapshot at or before it, newest first."""
        page = self.snapshot_every if self.snapshot_every else PAGE
        top = f"{revision}-1"
        found: list[tuple[bytes, dict[bytes, bytes]]] = []
        while len(found) < MAX_SCAN:
            batch: Any = await self.redis.xrevrange(self.keys.log(cim_id), max=top, min="-", count=page)
            for entry_id, fields in batch:
                found.append((entry_id, fields))
                if b"s" in fields:
                    return found if _rev_of(found[0][0]) == revision else None
            if len(batch) < page:
                return None
            top = "(" + batch[-1][0].decode()
        return None

    async def _trimmed(self, cim_id: str, revision: int) -> NotFound:
        oldest = await self.oldest(cim_id)
        kept = f"the oldest kept is {oldest}" if oldest is not None else "no history is kept for it"
        return NotFound(
            f"revision {revision} of CIM {cim_id!r} is no longer in its history; {kept}", path="args.revision"
        )

    async def diff(self, cim_id: str, from_revision: int, to_revision: int | None, limit: int) -> dict[str, Any]:
        """The patch-log entries after `from_revision` up to `to_revision` (default: current), oldest first.

        `truncated` is True when `limit` entries came back before `to_revision`.
        Raises NotFound when the log no longer reaches back to `from_revision` + 1.
        """
        head = await self.head(cim_id)
        to = head.revision if to_revision is None else to_revision
        if to > head.revision:
            raise InvalidInput(f"revision {to} does not exist: the CIM is at revision {head.revision}", path="args.to")
        if from_revision > to:
            raise InvalidInput(f"from ({from_revision}) must not be after to ({to})", path="args.from")
        patches: list[dict[str, Any]] = []
        if from_revision < to:
            batch: Any = await self.redis.xrange(
                self.keys.log(cim_id), min=f"{from_revision + 1}-1", max=f"{to}-1", count=limit
            )
            patches = [orjson.loads(fields[b"p"]) for _id, fields in batch]
            if not patches or patches[0]["rev"] != from_revision + 1 or patches[0]["epoch"] != head.epoch:
                oldest: Any = await self.redis.xrange(self.keys.log(cim_id), min="-", max="+", count=1)
                first = _rev_of(oldest[0][0]) if oldest else head.revision + 1
                raise NotFound(
                    f"the history of CIM {cim_id!r} no longer reaches back to revision {from_revision + 1}; "
                    f"it starts at revision {first}",
                    path="args.from",
                )
        last = patches[-1]["rev"] if patches else from_revision
        actors = sorted({str(p.get("actor")) for p in patches})
        return {
            "cimId": cim_id,
            "epoch": head.epoch,
            "from": from_revision,
            "to": last,
            "patches": patches,
            "actors": actors,
            "truncated": last < to,
        }

    async def revisions(self, cim_id: str, before: int | None, limit: int) -> dict[str, Any]:
        """Who changed what, newest first: one row per revision (no ops), for a history list."""
        head = await self.head(cim_id)
        top = f"({before}-1" if before is not None else "+"
        batch: Any = await self.redis.xrevrange(self.keys.log(cim_id), max=top, min="-", count=limit)
        rows = []
        for entry_id, fields in batch:
            patch = orjson.loads(fields[b"p"])
            rows.append(
                {
                    "revision": _rev_of(entry_id),
                    "mutation": patch.get("mutation"),
                    "actor": patch.get("actor"),
                    "ts": patch.get("ts"),
                    "changes": len(patch.get("ops", [])),
                    "snapshot": b"s" in fields,
                }
            )
        more = len(rows) == limit and rows[-1]["revision"] > 1
        return {
            "cimId": cim_id,
            "revision": head.revision,
            "epoch": head.epoch,
            "oldest": await self.oldest(cim_id),
            "items": rows,
            "nextBefore": rows[-1]["revision"] if more else None,
        }


def _rev_of(entry_id: bytes) -> int:
    """Revision of a log entry id ``b"<revision>-1"``."""
    return int(entry_id.split(b"-", 1)[0])
