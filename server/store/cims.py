"""The CIM store: documents, revisions, the patch log and the indexes, in Redis.

Guarantees (each relies on the commit being one Lua script on one Redis primary):

* **Atomic.** A commit writes the document, its revision, the patch-log entry,
  the by-deal/by-user/by-status index entries, the idempotency record and the
  change notification together, or writes nothing.
* **Ordered.** Revisions of one CIM are 1, 2, 3, ... without gaps; the patch log
  holds entry ``r`` under stream id ``r-1``; notifications are published in
  revision order (Redis runs scripts one at a time).
* **Compare-and-set on the commit identity.** Every commit gets a random id
  (`new_commit_id`), stored with the document (field ``commit``) and in its
  patch-log entry (``commit``, and ``parent``: the id it was computed from).
  A commit names the revision, epoch and commit id it was computed from; if
  any moved on, nothing is written and the current document comes back (see
  `CommitConflict`). Revision and epoch alone can repeat when Redis comes back
  older (a restore, a lagging replica, ``everysec`` losing its last second):
  the same revision then names other content. A random id never repeats, so
  a stale document can neither be committed on nor resumed from.
* **Bounded.** The patch log keeps the last `patch_log_retention` entries; a
  subscriber further behind must take a fresh snapshot. With history snapshots
  on (`snapshot_every` K > 0) entry 1 and every K-th entry also hold the whole
  document and the log is trimmed only at those entries: it keeps at least
  `patch_log_retention` and at most `patch_log_retention + K - 1` entries, and
  `history_max_age_ms` drops whole snapshot intervals older than that
  (cimhub.server.store.history reads them).
  The log also holds no more than `patch_log_max_bytes` (the newest entry,
  and with snapshots the newest snapshot interval, always stays).

The store knows nothing of mutations: cimhub.server.store.engine decides what to commit.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from cimhub.protocol.errors import InvalidInput, NotFound
from cimhub.protocol.queries import MAX_PAGE
from cimhub.protocol.schema import Cim, CimSummary
from cimhub.server.lua import load_script
from cimhub.server.store import indexes
from cimhub.server.store.cluster_connection import ClusterConnection
from cimhub.server.store.connection import PipelinedConnection
from cimhub.server.store.keys import Keys
from cimhub.server.store.replicas import ReplicatedCommits

LOG_PAGE = 256
"""Patch-log entries read per XRANGE when catching a subscriber up (see `CimStore._log_from`)."""

CommitKind = Literal["commit", "noop", "delete"]
IndexKind = Literal["deal", "user", "status"]


@dataclass(frozen=True)
class StoredCim:
    """A CIM as read from Redis: the JSON document, the stream it belongs to and its commit id.

    `commit` is "" for a document written before commit ids existed. `doc` is
    never edited in place once built (new revisions share its untouched parts).
    `model` is the same document as a validated model when the engine has one,
    so it need not validate the document again; None when read from Redis.
    """

    doc: dict[str, Any]
    revision: int
    epoch: str
    commit: str = ""
    model: Cim | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Committed:
    revision: int
    epoch: str
    commit: str


@dataclass(frozen=True)
class CommitConflict:
    """The CIM moved on (or appeared, or vanished) since the engine read it."""

    current: StoredCim | None


@dataclass(frozen=True)
class Duplicate:
    """The mutation id was seen within the idempotency window: its first record."""

    record: dict[str, Any]


@dataclass(frozen=True)
class Commit:
    """Everything one commit writes; built by the engine."""

    cim_id: str
    kind: CommitKind
    expected_revision: int
    expected_epoch: str
    expected_commit: str
    """The commit id the outcome was computed from ("" when creating)."""
    commit_id: str
    """This commit's id (the expected one again for a noop)."""
    epoch: str
    revision: int
    doc_json: bytes
    updated_at: int
    entry_json: bytes
    record_json: bytes
    deal_id: str
    user_id: str
    old_status: str
    new_status: str
    deal_event_json: bytes
    mutation_id: str


@dataclass(frozen=True)
class Page:
    items: list[CimSummary]
    next_cursor: str | None


def new_epoch() -> str:
    """A fresh epoch: names one unbroken history of a CIM's revisions."""
    return secrets.token_hex(8)


def new_commit_id() -> str:
    """A fresh commit id: 64 random bits, so no two commits ever share one, not even across a rollback."""
    return secrets.token_hex(8)


class CimStore:
    """CIM documents in Redis. One instance per process, shared by all connections."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        *,
        patch_log_retention: int = 1_000,
        patch_log_max_bytes: int = 16 * 1024 * 1024,
        idempotency_window_s: int = 86_400,
        snapshot_every: int = 0,
        history_max_age_ms: int = 0,
        extra_keys: Callable[[str], Sequence[str]] = lambda cim_id: (),
        replicated: ReplicatedCommits | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.patch_log_retention = patch_log_retention
        self.patch_log_max_bytes = patch_log_max_bytes
        self.idempotency_window_s = idempotency_window_s
        self.snapshot_every = snapshot_every
        self.history_max_age_ms = history_max_age_ms
        # Keys of other parts (conversation messages) deleted in the same step as the CIM.
        self.extra_keys = extra_keys
        self._commit = load_script(redis, "cimhub.server.store", "commit")
        # The commit is the hot call: it goes over its own pipelined connection (see connection.py),
        # on a cluster one per primary (cluster_connection.py).
        self._commits: PipelinedConnection | ClusterConnection | None = None
        if PipelinedConnection.supports(redis):
            self._commits = PipelinedConnection(redis)
        elif ClusterConnection.supports(redis):
            self._commits = ClusterConnection(redis)  # type: ignore[arg-type]
        # With `commit_replicas` set, a commit is acknowledged only once replicas have it.
        self._replicated = replicated
        # On a Redis Cluster (keys.cluster) the indexes and the deal event live in other slots than
        # the CIM: `_follow_up` writes them after the commit, before the engine acknowledges it.
        self._index = load_script(redis, "cimhub.server.store", "index") if keys.cluster else None

    async def aclose(self) -> None:
        """Close the commit connections (the redis client is the caller's to close)."""
        if self._commits is not None:
            await self._commits.aclose()
        if self._replicated is not None:
            await self._replicated.aclose()

    async def load(self, cim_id: str) -> StoredCim | None:
        """The current document, or None if there is no such CIM."""
        reply: list[Any] = await self.redis.hmget(self.keys.cim(cim_id), ["doc", "rev", "epoch", "commit"])
        doc, rev, epoch, commit = reply
        if doc is None:
            return None
        return StoredCim(orjson.loads(doc), int(rev), epoch.decode(), commit.decode() if commit else "")

    async def epoch(self, cim_id: str) -> str | None:
        """The CIM's epoch (new at each create), None if there is no such CIM."""
        raw: Any = await self.redis.hget(self.keys.cim(cim_id), "epoch")
        return None if raw is None else bytes(raw).decode()

    async def epochs(self, cim_ids: list[str]) -> list[str | None]:
        """`epoch` of each CIM, in one pipelined round trip (one per node on a cluster)."""
        if not cim_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for cim_id in cim_ids:
            pipe.hget(self.keys.cim(cim_id), "epoch")
        replies: list[bytes | None] = await pipe.execute()
        return [None if raw is None else raw.decode() for raw in replies]

    async def exists(self, cim_id: str) -> bool:
        return bool(await self.redis.exists(self.keys.cim(cim_id)))

    async def mutation_record(self, cim_id: str, mutation_id: str) -> dict[str, Any] | None:
        """The idempotency record of `mutation_id`, if it committed within the window."""
        raw = await self.redis.get(self.keys.mutation(cim_id, mutation_id))
        return None if raw is None else orjson.loads(raw)

    async def commit(self, commit: Commit) -> Committed | CommitConflict | Duplicate:
        """Write `commit` atomically if the CIM is still at its expected revision, epoch and commit id."""
        k = self.keys
        keys = [k.cim(commit.cim_id), k.log(commit.cim_id), k.mutation(commit.cim_id, commit.mutation_id)]
        if not k.cluster:
            keys += [
                k.by_deal(commit.deal_id),
                k.by_user(commit.user_id),
                k.by_status(commit.old_status),
                k.by_status(commit.new_status),
            ]
        if commit.kind == "delete":
            keys.extend(self.extra_keys(commit.cim_id))
        args: list[Any] = [
            commit.expected_revision,
            commit.expected_epoch,
            commit.epoch,
            commit.doc_json,
            commit.revision,
            commit.updated_at,
            commit.entry_json,
            commit.record_json,
            self.idempotency_window_s,
            self.patch_log_retention,
            commit.cim_id,
            k.cim_channel(commit.cim_id),
            k.deal_channel(commit.deal_id),
            commit.deal_event_json,
            commit.kind,
            self.snapshot_every,
            self.history_max_age_ms,
            self.patch_log_max_bytes,
            commit.expected_commit,
            commit.commit_id,
            "0" if k.cluster else "1",
        ]
        if self._replicated is not None:
            reply = await self._replicated.call(self._commit, keys, args)
        elif self._commits is not None:
            reply = await self._commits.evalsha(self._commit.script, self._commit.sha, keys, args)
        else:
            reply = await self._commit(keys=keys, args=args)
        status = reply[0]
        if status == b"ok":
            if self._index is not None:
                await self._follow_up(self._index, commit)
            return Committed(int(reply[1]), reply[2].decode(), reply[3].decode())
        if status == b"dup":
            if self._index is not None:
                await self._reindex(self._index, commit.cim_id)
            return Duplicate(orjson.loads(reply[1]))
        doc = reply[3]
        current = StoredCim(orjson.loads(doc), int(reply[1]), reply[2].decode(), reply[4].decode()) if doc else None
        return CommitConflict(current)

    async def _follow_up(self, script: AsyncScript, commit: Commit) -> None:
        """Cluster only: the index entries and deal-list event of a commit that landed.

        One index.lua call per slot (indexes.calls), all sent at once: one round trip.
        """
        if commit.kind == "noop":
            return
        k = self.keys
        if commit.kind == "delete":
            entries = [
                indexes.IndexEntry(k.by_deal(commit.deal_id), "remove"),
                indexes.IndexEntry(k.by_user(commit.user_id), "remove"),
                indexes.IndexEntry(k.by_status(commit.old_status), "remove"),
            ]
        else:
            entries = [
                indexes.IndexEntry(k.by_deal(commit.deal_id), "add", commit.updated_at),
                indexes.IndexEntry(k.by_user(commit.user_id), "add", commit.updated_at),
                indexes.IndexEntry(k.by_status(commit.new_status), "add", commit.updated_at),
            ]
            if commit.old_status != commit.new_status:
                entries.append(indexes.IndexEntry(k.by_status(commit.old_status), "remove"))
        publish = (k.deal_channel(commit.deal_id), commit.deal_event_json) if commit.deal_event_json else None
        made = indexes.calls(
            k, commit.cim_id, commit.revision, entries, epoch=commit.epoch, at=commit.updated_at, publish=publish
        )
        await self.index_calls(script, made)

    async def index_calls(self, script: AsyncScript, calls: list[indexes.IndexCall]) -> list[int]:
        """Run index.lua calls at once (each on its own slot's primary); how many entries each applied."""
        if self._commits is not None:
            commits = self._commits
            sent = [commits.evalsha(script.script, script.sha, call.keys, call.args) for call in calls]
        else:
            sent = [script(keys=call.keys, args=call.args) for call in calls]
        return [int(applied) for applied in await asyncio.gather(*sent)]

    @property
    def index_script(self) -> AsyncScript | None:
        """index.lua on a cluster (where the indexes are written beside the commit), else None."""
        return self._index

    async def _reindex(self, script: AsyncScript, cim_id: str) -> None:
        """Cluster only: write the CIM's index entries from its current document.

        Run when a retried mutation finds its first attempt committed (that
        attempt's hub may have died before its follow-up); the repair command
        (repair.py) does the same for every CIM. The revision guard makes it
        harmless when nothing was missing.
        """
        stored = await self.load(cim_id)
        if stored is None:
            return  # deleted: listings skip ids whose document is gone; the repair command drops them
        entries = indexes.entries_for(self.keys, stored.doc)
        await self.index_calls(script, self.index_calls_as_of(cim_id, stored, entries))

    def index_calls_as_of(
        self, cim_id: str, stored: StoredCim, entries: list[indexes.IndexEntry]
    ) -> list[indexes.IndexCall]:
        """index.lua calls writing `entries` as of `stored` (its revision, epoch and updatedAt order them)."""
        at = int(stored.doc["updatedAt"])
        return indexes.calls(self.keys, cim_id, stored.revision, entries, epoch=stored.epoch, at=at)

    async def patches_since(self, cim_id: str, revision: int, limit: int | None = None) -> list[dict[str, Any]] | None:
        """Patch-log entries after `revision`, oldest first; None if some were trimmed away.

        An empty list means the caller is up to date. None means the log no
        longer reaches back to revision + 1: the caller needs a snapshot.
        """
        entries: Any = await self.redis.xrange(self.keys.log(cim_id), min=f"{revision + 1}-1", max="+", count=limit)
        patches = [orjson.loads(fields[b"p"]) for _id, fields in entries]
        if patches and patches[0]["rev"] != revision + 1:
            return None
        if not patches:
            # Nothing newer in the log: up to date only if the document agrees.
            rev = await self.redis.hget(self.keys.cim(cim_id), "rev")
            if rev is not None and int(rev) > revision:
                return None
        return patches

    async def patches_after_commit(
        self, cim_id: str, revision: int, commit: str, limit: int | None = None
    ) -> list[dict[str, Any]] | None:
        """Patch-log entries after `revision`, if `commit` is the CIM's commit at `revision`; else None.

        The caller holds the document as of commit `commit`. Only when the log
        (or the document, when nothing came after) confirms that this very
        commit is the one at `revision` do the entries after it continue the
        caller's history: after a rollback the same revision may name other
        content. None means "take a snapshot": an unknown commit, a log that
        no longer reaches back, or more than `limit` entries to send.
        """
        if revision < 1 or not commit:
            return None
        if limit is not None:
            # Too far behind shows in the head's revision: not worth reading (and decoding) `limit` entries first.
            head = await self.redis.hget(self.keys.cim(cim_id), "rev")
            if head is None or int(head) - revision > limit:
                return None
        entries = await self._log_from(cim_id, revision, None if limit is None else limit + 2)
        if not entries:
            # Nothing logged at or after `revision`: up to date only if the document is that very commit.
            current: list[Any] = await self.redis.hmget(self.keys.cim(cim_id), ["rev", "commit"])
            rev, head = current
            return [] if rev is not None and int(rev) == revision and head == commit.encode() else None
        first = entries[0]
        if first["rev"] != revision or first.get("commit") != commit:
            return None
        patches = entries[1:]
        if limit is not None and len(patches) > limit:
            return None
        previous, previous_rev = commit, revision
        for patch in patches:
            if patch.get("parent") != previous or patch["rev"] != previous_rev + 1:
                return None  # not one unbroken history (commit.lua never writes one; checked, not assumed)
            previous, previous_rev = patch["commit"], patch["rev"]
        return patches

    async def _log_from(self, cim_id: str, revision: int, count: int | None) -> list[dict[str, Any]]:
        """Decoded log entries from `revision` on, at most `count`, read `LOG_PAGE` at a time.

        Each page is parsed and decoded between two awaits: read at once, the
        thousands of entries of a long catch-up held the event loop (every other
        subscriber and mutation of the process) for tens of milliseconds
        (bench/bench_catchup.py). Pages may straddle a concurrent append or trim;
        the caller's parent-chain check turns any seam into a snapshot.
        """
        key, start = self.keys.log(cim_id), f"{revision}-1"
        entries: list[dict[str, Any]] = []
        while count is None or len(entries) < count:
            want = LOG_PAGE if count is None else min(LOG_PAGE, count - len(entries))
            page: Any = await self.redis.xrange(key, min=start, max="+", count=want)
            entries.extend(orjson.loads(fields[b"p"]) for _id, fields in page)
            if len(page) < want:
                break
            last_id = page[-1][0]
            start = "(" + (last_id.decode() if isinstance(last_id, bytes) else str(last_id))
        return entries

    async def list(self, index: IndexKind, value: str, *, cursor: str | None = None, limit: int = 50) -> Page:
        """CIM summaries of one deal, user or status, most recently updated first.

        The cursor names the last row returned (its updatedAt and id), so a page
        boundary stays put while other CIMs are added; a CIM updated while the
        caller pages moves to the front and may be seen twice or not at all,
        as in any index ordered by a changing key.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}, not {limit}", path="args.limit")
        key = {"deal": self.keys.by_deal, "user": self.keys.by_user, "status": self.keys.by_status}[index](value)
        max_score, after_id = _decode_cursor(cursor) if cursor else ("+inf", None)
        rows: list[tuple[bytes, float]] = []
        offset = 0
        while len(rows) < limit + 1:
            batch: list[Any] = await self.redis.zrevrangebyscore(
                key, max_score, "-inf", start=offset, num=limit + 1, withscores=True
            )
            if not batch:
                break
            offset += len(batch)
            for member, score in batch:
                # Same-score rows come in descending id order; skip those at or before the cursor.
                if after_id is not None and score == float(max_score) and member.decode() >= after_id:
                    continue
                rows.append((member, score))
        page, more = rows[:limit], len(rows) > limit
        pipe = self.redis.pipeline(transaction=False)
        for member, _ in page:
            pipe.hget(self.keys.cim(member.decode()), "doc")
        raws = await pipe.execute()
        items = [_summary(orjson.loads(raw)) for raw in raws if raw is not None]
        next_cursor = _encode_cursor(page[-1][1], page[-1][0].decode()) if more and page else None
        return Page(items, next_cursor)

    async def get(self, cim_id: str) -> StoredCim:
        """The document; NotFound if there is none."""
        stored = await self.load(cim_id)
        if stored is None:
            raise NotFound(f"CIM {cim_id!r} not found", path="args.cimId")
        return stored


def _summary(doc: dict[str, Any]) -> CimSummary:
    return CimSummary(
        id=doc["id"], title=doc["title"], status=doc["status"], stage=doc["stage"], updatedAt=doc["updatedAt"]
    )


def summary_json(doc: dict[str, Any]) -> dict[str, Any]:
    """A deal-list row of `doc`, as JSON data."""
    return {k: doc[k] for k in ("id", "title", "status", "stage", "updatedAt")}


def _encode_cursor(score: float, cim_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([int(score), cim_id])).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        score, cim_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return str(int(score)), str(cim_id)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("cursor is not one this hub issued", path="args.cursor") from exc
