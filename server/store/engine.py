"""The mutation engine: runs a named mutation and commits its outcome atomically.

For each mutation the engine reads the CIM (from its in-process cache when it
can: the document and its model, validated once per read from Redis), runs the
pure mutation function from cimhub.protocol.mutations on the model, takes the
RFC 6902 patch of what it touched, and hands the store one compare-and-set commit. When the
commit finds that another writer got there first it re-runs the function on
the newer document, up to `max_retries` times. So mutations on one CIM are
serializable: each sees every change committed before it, and a concurrent
edit of another field is never lost (the same field is last-write-wins).

Exactly-once: every mutation carries a caller-chosen id. The commit script
stores the first result under that id for the idempotency window; the same id
again returns that result and applies nothing (the same id with other
arguments is refused as `mutation_id_reused`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.exceptions
from pydantic import ValidationError

from cimhub.protocol.errors import (
    CimhubError,
    Conflict,
    ErrorCode,
    InvalidInput,
    NotFound,
    Unavailable,
)
from cimhub.protocol.mutations import MutationContext, MutationSpec, finalize, get_mutation
from cimhub.protocol.schema import Cim
from cimhub.server.faults import FAULTS, FaultLog, redis_fault
from cimhub.server.store.cims import (
    CimStore,
    Commit,
    Committed,
    Duplicate,
    StoredCim,
    new_commit_id,
    new_epoch,
    summary_json,
)
from cimhub.server.store.history import History, PastCim

MUTATION_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")


@dataclass(frozen=True)
class CommitResult:
    """What the caller of a mutation learns: where the CIM now stands and the mutation's result."""

    cim_id: str
    revision: int
    result: dict[str, Any]
    duplicate: bool = False


class DocumentCache:
    """The last known state of recently used CIMs, bounded (least recently used goes first).

    Only a guess: every commit computed from it is confirmed by the commit
    script (revision, epoch and commit id), and any refusal computed from it
    (a `create` of an id that exists, a stale `expectedRevision`) is checked
    against Redis before it reaches the caller. A stale entry costs one more
    read, never a wrong commit or a wrong error. It keeps whatever Redis said
    last, even an older revision: Redis may come back older (a restore).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, StoredCim] = OrderedDict()

    def get(self, cim_id: str) -> StoredCim | None:
        item = self._items.get(cim_id)
        if item is not None:
            self._items.move_to_end(cim_id)
        return item

    def take(self, cim_id: str) -> StoredCim | None:
        """Remove and return the entry: its model is the caller's to edit until it puts one back."""
        return self._items.pop(cim_id, None)

    def put(self, cim_id: str, stored: StoredCim | None) -> None:
        if stored is None or self.size == 0:
            self._items.pop(cim_id, None)
            return
        self._items[cim_id] = stored
        self._items.move_to_end(cim_id)
        if len(self._items) > self.size:
            self._items.popitem(last=False)


class CimLocks:
    """One asyncio lock per CIM with mutations in flight in this process (FIFO).

    Writers of one CIM in one process take turns instead of racing: racing
    compare-and-set writers waste a full prepare per lost round, so N of them
    cost O(N^2) work and the slowest ran out of retries (`overloaded`) at ~50.
    Writers in other processes still meet at the compare-and-set.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def acquire(self, cim_id: str) -> asyncio.Lock:
        lock, users = self._locks.get(cim_id, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[cim_id] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:
            self._release_user(cim_id)
            raise
        return lock

    def release(self, cim_id: str, lock: asyncio.Lock) -> None:
        lock.release()
        self._release_user(cim_id)

    def _release_user(self, cim_id: str) -> None:
        lock, users = self._locks[cim_id]
        if users <= 1:
            del self._locks[cim_id]
        else:
            self._locks[cim_id] = (lock, users - 1)


class MutationEngine:
    """Runs mutations against a CimStore. One per process; safe for concurrent use."""

    def __init__(
        self,
        store: CimStore,
        *,
        max_retries: int = 50,
        max_document_bytes: int = 4 * 1024 * 1024,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
        on_delete: Sequence[Callable[[str], Awaitable[None]]] = (),
        faults: FaultLog | None = None,
        history: History | None = None,
    ) -> None:
        """`on_delete` hooks finish a delete outside the CIM's commit (its LangGraph thread, caches).

        `faults` logs Redis faults once per episode (shared with the rest of the process when given);
        `history` reads past revisions for mutations that need one (restoreRevision).
        """
        self.history = history
        self.store = store
        self.faults = faults or FaultLog()
        self.max_retries = max_retries
        self.max_document_bytes = max_document_bytes
        self.cache = DocumentCache(cache_size)
        self.clock = clock
        self.on_delete = tuple(on_delete)
        self._locks = CimLocks()

    async def mutate(
        self,
        name: str,
        args: Any,
        *,
        actor: str,
        mutation_id: str,
        expected_revision: int | None = None,
        user_id: str | None = None,
    ) -> CommitResult:
        """Run mutation `name` exactly once under `mutation_id`.

        Raises a CimhubError: InvalidInput for bad names or arguments (nothing
        written), NotFound, Conflict when `expected_revision` is stale or the id
        was used for another mutation, Unavailable (retryable: send the same
        mutation id again) when Redis cannot be reached or contention persists.
        """
        spec = get_mutation(name)
        return await self.run(
            spec,
            spec.parse_args(args),
            actor=actor,
            mutation_id=mutation_id,
            expected_revision=expected_revision,
            user_id=user_id,
        )

    async def run(
        self,
        spec: MutationSpec[Any],
        parsed: Any,
        *,
        actor: str,
        mutation_id: str,
        expected_revision: int | None = None,
        user_id: str | None = None,
        authorized_deal: str | None = None,
    ) -> CommitResult:
        """Like `mutate`, for arguments already parsed by `spec.parse_args` (and authorized).

        `authorized_deal` is the deal the caller was authorized against, from the
        authorizer's cache: the mutation runs only on a document of that deal, and
        the commit's compare-and-set confirms that document is the one in Redis.
        Otherwise it raises `DealChanged` (the CIM id now names a CIM of another deal).
        """
        if not isinstance(mutation_id, str) or not MUTATION_ID.match(mutation_id):
            raise InvalidInput("mutationId must be 1-128 characters of letters, digits and _.:-", path="mutationId")
        args_hash = hashlib.sha256(
            orjson.dumps(parsed.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        ).hexdigest()[:32]
        try:
            ctx = MutationContext(actor=actor, now=int(self.clock() * 1000), mutation_id=mutation_id, user_id=user_id)
            result = await self._mutate(spec, parsed, args_hash, ctx, expected_revision, authorized_deal)
        except (redis.exceptions.RedisError, OSError) as exc:
            reason = redis_fault(exc)
            if reason is None:
                raise
            self.faults.seen(reason, f"running mutation {spec.name!r}")
            # The commit may or may not have happened: retrying with the same id is safe either way.
            raise Unavailable(f"{FAULTS[reason]}; retry with the same mutationId") from None
        if spec.name == "delete":
            # Parts outside the CIM's commit (its LangGraph threads): idempotent, so a retried delete finishes them.
            for hook in self.on_delete:
                await hook(result.cim_id)
        return result

    async def _mutate(
        self,
        spec: MutationSpec[Any],
        parsed: Any,
        args_hash: str,
        ctx: MutationContext,
        expected_revision: int | None,
        authorized_deal: str | None,
    ) -> CommitResult:
        cim_id = spec.target(parsed, ctx)
        lock = await self._locks.acquire(cim_id)
        try:
            return await self._mutate_locked(spec, parsed, args_hash, ctx, expected_revision, cim_id, authorized_deal)
        finally:
            self._locks.release(cim_id, lock)

    async def _mutate_locked(
        self,
        spec: MutationSpec[Any],
        parsed: Any,
        args_hash: str,
        ctx: MutationContext,
        expected_revision: int | None,
        cim_id: str,
        authorized_deal: str | None = None,
    ) -> CommitResult:
        mutation_id = ctx.mutation_id
        past: PastCim | None = None
        if spec.past_revision is not None:
            try:
                past = await self._read_past(cim_id, spec.past_revision(parsed))
            except CimhubError:
                duplicate = await self._duplicate(cim_id, mutation_id, spec.name, args_hash)
                if duplicate is not None:
                    return duplicate
                raise
            ctx = dataclasses.replace(ctx, past=past.doc)
        # Taken out of the cache: the mutation edits its model in place, so until the commit
        # lands nothing else may see it, and if anything fails the next mutation reloads.
        stored = self.cache.take(cim_id)
        cached = stored is not None
        if stored is None:
            stored = await self.store.load(cim_id)
        for _attempt in range(self.max_retries):
            # Revision 0: the CIM must not exist yet (a create).
            if expected_revision is not None and (stored.revision if stored else 0) != expected_revision:
                if cached:
                    # Another process may have committed since: judge staleness by Redis, not the cache.
                    stored, cached = await self.store.load(cim_id), False
                    continue
                self.cache.put(cim_id, stored)  # untouched: the mutation did not run
                duplicate = await self._duplicate(cim_id, mutation_id, spec.name, args_hash)
                if duplicate is not None:
                    return duplicate
                current = "no CIM" if stored is None else f"revision {stored.revision}"
                raise Conflict(
                    f"expectedRevision {expected_revision} is stale: the CIM is at {current}",
                    path="expectedRevision",
                )
            if past is not None and stored is not None and stored.epoch != past.epoch and cached:
                # The cache may hold an earlier history of this CIM: judge by Redis, not the cache.
                stored, cached = await self.store.load(cim_id), False
                continue
            try:
                if authorized_deal is not None and stored is not None and stored.doc["dealId"] != authorized_deal:
                    raise DealChanged(f"CIM {cim_id!r} not found", path="cimId")
                if past is not None and stored is not None and stored.epoch != past.epoch:
                    raise NotFound(
                        f"revision {past.revision} belongs to an earlier history of this CIM", path="args.revision"
                    )
                commit, result, after = self._prepare(spec, parsed, ctx, cim_id, stored, args_hash)
            except CimhubError:
                if cached:
                    # Refused on a guess (e.g. `create` after Redis lost the CIM): ask Redis before saying so.
                    stored, cached = await self.store.load(cim_id), False
                    continue
                if stored is not None:  # the document stands; the model may be half-edited
                    self.cache.put(cim_id, StoredCim(stored.doc, stored.revision, stored.epoch, stored.commit))
                duplicate = await self._duplicate(cim_id, mutation_id, spec.name, args_hash)
                if duplicate is not None:
                    return duplicate
                raise
            outcome = await self.store.commit(commit)
            if isinstance(outcome, Committed):
                self.cache.put(cim_id, after)
                return CommitResult(cim_id, outcome.revision, result)
            if isinstance(outcome, Duplicate):
                if stored is not None:  # its document still stands; the model ran this mutation
                    self.cache.put(cim_id, StoredCim(stored.doc, stored.revision, stored.epoch, stored.commit))
                return self._from_record(outcome.record, spec.name, args_hash)
            stored, cached = outcome.current, False
            self.cache.put(cim_id, stored)
        raise Unavailable(
            f"CIM {cim_id!r} is changing too fast to commit after {self.max_retries} attempts; retry",
            code=ErrorCode.OVERLOADED,
        )

    def _prepare(
        self,
        spec: MutationSpec[Any],
        parsed: Any,
        ctx: MutationContext,
        cim_id: str,
        stored: StoredCim | None,
        args_hash: str,
    ) -> tuple[Commit, dict[str, Any], StoredCim | None]:
        """Run the mutation on the model of `stored`, in place, and build the commit (pure, no I/O).

        Returns the commit, the mutation's result and what to cache once it
        commits (None after a delete). The model is validated from the stored
        document only when `stored` has none (first use after a read from Redis).
        """
        outcome = spec.run(_working_model(stored), parsed, ctx)
        result = outcome.result
        base = stored.doc if stored is not None else None
        expected_rev = stored.revision if stored is not None else 0
        expected_epoch = stored.epoch if stored is not None else ""
        expected_commit = stored.commit if stored is not None else ""
        commit_id = new_commit_id()
        record: dict[str, Any] = {"name": spec.name, "argsHash": args_hash, "cimId": cim_id, "result": result}
        common: dict[str, Any] = {
            "cim_id": cim_id,
            "expected_revision": expected_rev,
            "expected_epoch": expected_epoch,
            "expected_commit": expected_commit,
            "mutation_id": ctx.mutation_id,
        }
        if outcome.cim is None:
            assert base is not None  # delete runs only on an existing CIM
            rev = expected_rev + 1
            entry = self._entry(
                cim_id, rev, expected_epoch, (commit_id, expected_commit), [], spec.name, ctx, deleted=True
            )
            record["revision"] = rev
            return (
                Commit(
                    kind="delete",
                    commit_id=commit_id,
                    epoch=expected_epoch,
                    revision=rev,
                    doc_json=b"",
                    updated_at=ctx.now,
                    entry_json=entry,
                    record_json=orjson.dumps(record),
                    deal_id=base["dealId"],
                    user_id=base["userId"],
                    old_status=base["status"],
                    new_status=base["status"],
                    deal_event_json=orjson.dumps({"type": "remove", "cimId": cim_id}),
                    **common,
                ),
                result,
                None,
            )
        stamped = finalize(base, outcome.cim, ctx.now)
        if stamped is None:
            assert base is not None
            record["revision"] = expected_rev
            return (
                Commit(
                    kind="noop",
                    commit_id=expected_commit,
                    epoch=expected_epoch,
                    revision=expected_rev,
                    doc_json=b"",
                    updated_at=ctx.now,
                    entry_json=b"",
                    record_json=orjson.dumps(record),
                    deal_id=base["dealId"],
                    user_id=base["userId"],
                    old_status=base["status"],
                    new_status=base["status"],
                    deal_event_json=b"",
                    **common,
                ),
                result,
                StoredCim(base, expected_rev, expected_epoch, expected_commit, model=outcome.cim),
            )
        doc = stamped.doc
        doc_json = orjson.dumps(doc)
        if len(doc_json) > self.max_document_bytes:
            raise InvalidInput(
                f"the CIM would be {len(doc_json)} bytes, over the {self.max_document_bytes}-byte limit",
                code=ErrorCode.PAYLOAD_TOO_LARGE,
            )
        epoch = expected_epoch or new_epoch()
        entry = self._entry(cim_id, stamped.revision, epoch, (commit_id, expected_commit), stamped.ops, spec.name, ctx)
        record["revision"] = stamped.revision
        summary_changed = base is None or summary_json(base) != summary_json(doc)
        deal_event = orjson.dumps({"type": "upsert", "summary": summary_json(doc)}) if summary_changed else b""
        return (
            Commit(
                kind="commit",
                commit_id=commit_id,
                epoch=epoch,
                revision=stamped.revision,
                doc_json=doc_json,
                updated_at=doc["updatedAt"],
                entry_json=entry,
                record_json=orjson.dumps(record),
                deal_id=doc["dealId"],
                user_id=doc["userId"],
                old_status=base["status"] if base is not None else doc["status"],
                new_status=doc["status"],
                deal_event_json=deal_event,
                **common,
            ),
            result,
            StoredCim(doc, stamped.revision, epoch, commit_id, model=outcome.cim),
        )

    @staticmethod
    def _entry(
        cim_id: str,
        rev: int,
        epoch: str,
        commit_and_parent: tuple[str, str],
        ops: list[dict[str, Any]],
        name: str,
        ctx: MutationContext,
        *,
        deleted: bool = False,
    ) -> bytes:
        commit, parent = commit_and_parent
        entry: dict[str, Any] = {
            "cimId": cim_id,
            "rev": rev,
            "epoch": epoch,
            "commit": commit,
            "parent": parent,
            "ops": ops,
            "mutation": name,
            "mutationId": ctx.mutation_id,
            "actor": ctx.actor,
            "ts": ctx.now,
        }
        if deleted:
            entry["deleted"] = True
        return orjson.dumps(entry)

    async def _read_past(self, cim_id: str, revision: int) -> PastCim:
        if self.history is None:
            raise CimhubError("this hub keeps no history (no History given to the engine)", code=ErrorCode.INTERNAL)
        return await self.history.at(cim_id, revision)

    async def _duplicate(self, cim_id: str, mutation_id: str, name: str, args_hash: str) -> CommitResult | None:
        """A mutation that fails now may have committed before: then its first result stands."""
        record = await self.store.mutation_record(cim_id, mutation_id)
        return None if record is None else self._from_record(record, name, args_hash)

    @staticmethod
    def _from_record(record: dict[str, Any], name: str, args_hash: str) -> CommitResult:
        if record["name"] != name or record["argsHash"] != args_hash:
            raise Conflict(
                f"mutationId was already used for another {record['name']} mutation; use a new id",
                code=ErrorCode.MUTATION_ID_REUSED,
                path="mutationId",
            )
        return CommitResult(record["cimId"], record["revision"], record["result"], duplicate=True)


class DealChanged(NotFound):
    """The CIM belongs to another deal than the caller was authorized for.

    The authorizer remembers each CIM's deal; an id deleted and created again
    under another deal (or a Redis that came back without it) makes that a
    wrong guess. Seen as `not_found` if it reaches a client.
    """


def _working_model(stored: StoredCim | None) -> Cim | None:
    if stored is None:
        return None
    if stored.model is not None:
        return stored.model
    try:
        return Cim.model_validate(stored.doc)
    except ValidationError as exc:
        raise CimhubError(f"stored CIM does not match the schema: {exc.errors()[0]['msg']}") from None
