"""Plans that remove or copy whole sets of checkpoints: delete_thread, delete_for_runs, copy_thread, prune.

Each change to one thread is one Lua script or one MULTI/EXEC, so it is atomic
for that thread. The global registries (`<prefix>:cp:threads`, `<prefix>:cp:run:<run>`)
live in other slots and are updated after, in a second round trip; they are
advisory (list(None) and delete_for_runs start from them), so a registry entry
left behind by a crash between the two steps points at an empty thread and is
harmless. The registries are eventually consistent with the threads on one node
and on a Redis Cluster alike; `plan_repair` rebuilds them from the threads'
own keys (`cimhub admin repair-indexes`, or the savers' ``repair_registries``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from langgraph.checkpoint.serde.base import SerializerProtocol

from cimhub.server.checkpoint.codec import as_text, decode_metadata, pairs
from cimhub.server.checkpoint.layout import (
    UNIT_SEPARATOR,
    CheckpointKeys,
    ThreadId,
    check_thread_id,
)
from cimhub.server.checkpoint.scripts import SCRIPTS, Command
from cimhub.server.checkpoint.steps import Plan, Run

_DELTA_COUNTERS = "counters_since_delta_snapshot"


def _leave_runs(keys: CheckpointKeys, thread_id: str, runs: Sequence[Any]) -> list[Command]:
    """Take the thread out of the registries of runs it no longer holds checkpoints of."""
    commands: list[Command] = [("SREM", keys.run_threads(run), thread_id) for run in as_text(runs)]
    return commands


def plan_delete_thread(keys: CheckpointKeys, thread_id: ThreadId) -> Plan[None]:
    """Delete every key of the thread (all namespaces, writes, values, run sets)."""
    thread_id = check_thread_id(thread_id)
    tk = keys.thread(thread_id)
    (runs,) = yield Run([SCRIPTS.delete_thread.call([tk.namespaces, tk.runs], [tk.base])])
    yield Run([("SREM", keys.threads(), thread_id), *_leave_runs(keys, thread_id, runs)])


def plan_delete_for_runs(keys: CheckpointKeys, run_ids: Sequence[str]) -> Plan[None]:
    """Delete the checkpoints of the given runs in every thread, keeping values others still read."""
    runs = list(dict.fromkeys(str(run) for run in run_ids))
    if not runs:
        return
    members = yield Run([("SMEMBERS", keys.run_threads(run)) for run in runs])
    by_thread: dict[str, list[str]] = {}
    for run, threads in zip(runs, members, strict=True):
        for thread_id in sorted(as_text(threads)):
            by_thread.setdefault(thread_id, []).append(run)
    thread_ids = sorted(by_thread)
    replies = yield Run(
        [
            SCRIPTS.delete_runs.call([tk.namespaces, tk.runs], [tk.base, *by_thread[thread_id]])
            for thread_id in thread_ids
            for tk in (keys.thread(thread_id),)
        ]
    )
    # One UNLINK per run: the registries are in different slots of a cluster.
    cleanup: list[Command] = [("UNLINK", keys.run_threads(run)) for run in runs]
    for thread_id, (_deleted, left) in zip(thread_ids, replies, strict=True):
        if not left:
            cleanup.append(("SREM", keys.threads(), thread_id))
    yield Run(cleanup)


def plan_copy_thread(keys: CheckpointKeys, source: ThreadId, target: ThreadId, ttl_ms: int) -> Plan[None]:
    """Copy every checkpoint, pending write and value of `source` into `target`, in one MULTI/EXEC.

    Checkpoint ids, parents and metadata are kept, so the copy lists in the same
    order; what `target` held already stays (same ids are overwritten).
    """
    source, target = check_thread_id(source), check_thread_id(target)
    if source == target:
        return
    sk, tk = keys.thread(source), keys.thread(target)
    (exported,) = yield Run([SCRIPTS.export.call([sk.namespaces], [sk.base])])
    if not exported:
        return
    commands: list[Command] = []
    touched: list[str] = [tk.namespaces]
    runs: set[str] = set()
    for raw_ns, blobs, hashes in exported:
        ns = raw_ns.decode()
        if blobs:
            commands.append(("HSET", tk.blobs(ns), *blobs))
            touched.append(tk.blobs(ns))
        for raw_id, flat in hashes:
            checkpoint_id = raw_id.decode()
            key = tk.checkpoint(ns, checkpoint_id)
            commands.append(("HSET", key, *flat))
            touched.append(key)
            fields = pairs(flat)
            if b"c" not in fields:
                commands.append(("SADD", tk.early(ns), checkpoint_id))
                touched.append(tk.early(ns))
                continue
            commands.append(("ZADD", tk.ids(ns), 0, checkpoint_id))
            run = fields.get(b"r", b"").decode()
            if run:
                runs.add(run)
                commands.append(("SADD", tk.run(run), f"{ns}{UNIT_SEPARATOR}{checkpoint_id}"))
                touched.append(tk.run(run))
        touched.append(tk.ids(ns))
        commands.append(("SADD", tk.namespaces, ns))
    if runs:
        commands.append(("SADD", tk.runs, *sorted(runs)))
        touched.append(tk.runs)
    if ttl_ms:
        commands.extend(("PEXPIRE", key, ttl_ms) for key in dict.fromkeys(touched))
    yield Run(commands, atomic=True)
    yield Run(
        [
            ("SADD", keys.threads(), target),
            *(("SADD", keys.run_threads(run), target) for run in sorted(runs)),
        ]
    )


def plan_prune(
    keys: CheckpointKeys,
    serde: SerializerProtocol,
    thread_ids: Sequence[ThreadId],
    strategy: str,
    keep: int,
) -> Plan[None]:
    """Prune each thread: "delete" removes it, "keep_latest" keeps the newest `keep` per namespace.

    "keep_latest" also keeps, for each kept checkpoint, the parent chain back to
    where every DeltaChannel it holds was last snapshotted (read from the
    `counters_since_delta_snapshot` metadata), so those channels still rebuild.
    """
    if strategy not in ("keep_latest", "delete"):
        raise ValueError(f"strategy must be 'keep_latest' or 'delete', got {strategy!r}")
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    for thread_id in dict.fromkeys(thread_ids):
        if strategy == "delete":
            yield from plan_delete_thread(keys, thread_id)
            continue
        thread_id = check_thread_id(thread_id)
        tk = keys.thread(thread_id)
        pinned = yield from _delta_chains(keys, serde, thread_id, keep)
        (gone,) = yield Run([SCRIPTS.prune.call([tk.namespaces, tk.runs], [tk.base, keep, *sorted(pinned)])])
        if gone:
            yield Run(_leave_runs(keys, thread_id, gone))


def _delta_chains(keys: CheckpointKeys, serde: SerializerProtocol, thread_id: str, keep: int) -> Plan[set[str]]:
    """ "<ns>\\x1f<id>" of the ancestors the kept checkpoints' DeltaChannels replay from."""
    tk = keys.thread(thread_id)
    (namespaces,) = yield Run([("SMEMBERS", tk.namespaces)])
    pinned: set[str] = set()
    for ns in sorted(as_text(namespaces)):
        (newest,) = yield Run([("ZREVRANGEBYLEX", tk.ids(ns), "+", "-", "LIMIT", 0, keep)])
        for checkpoint_id in as_text(newest):
            (head,) = yield Run([("HMGET", tk.checkpoint(ns, checkpoint_id), "m", "p")])
            if head[0] is None:
                continue
            pending = _delta_channels(serde, head[0])
            parent = (head[1] or b"").decode()
            while pending and parent:
                pinned.add(f"{ns}{UNIT_SEPARATOR}{parent}")
                (row,) = yield Run([("HMGET", tk.checkpoint(ns, parent), "m", "p")])
                if row[0] is None:
                    break
                pending &= _delta_channels(serde, row[0])
                parent = (row[1] or b"").decode()
    return pinned


def _delta_channels(serde: SerializerProtocol, raw_metadata: bytes) -> set[str]:
    """DeltaChannels written since their last snapshot, per a checkpoint's metadata."""
    counters = cast(dict[str, Any], decode_metadata(serde, raw_metadata)).get(_DELTA_COUNTERS)
    return set(counters) if isinstance(counters, dict) else set()


# Checkpoint hashes one touch.lua call refreshes at most.
TOUCH_PAGE = 1000


def plan_touch(keys: CheckpointKeys, thread_id: str, expiry_ms: int) -> Plan[None]:
    """Give every key of the thread `expiry_ms` to live, the namespace set last.

    The namespace set carries the thread's expiry and every other key must
    outlive it; refreshing it last keeps that true if this plan stops halfway.
    A page of TOUCH_PAGE checkpoints per script call bounds each call's work.
    """
    tk = keys.thread(thread_id)
    namespaces, runs = yield Run([("SMEMBERS", tk.namespaces), ("SMEMBERS", tk.runs)])
    for ns in sorted(as_text(namespaces)):
        start = 0
        while True:
            (start,) = yield Run(
                [
                    SCRIPTS.touch.call(
                        [tk.ids(ns), tk.blobs(ns), tk.early(ns)],
                        [tk.checkpoint_prefix(ns), expiry_ms, start, TOUCH_PAGE],
                    )
                ]
            )
            if not start:
                break
    yield Run(
        [
            *(("PEXPIRE", tk.run(run), expiry_ms) for run in as_text(runs)),
            ("PEXPIRE", tk.runs, expiry_ms),
            ("PEXPIRE", tk.namespaces, expiry_ms),
        ]
    )


@dataclass(frozen=True)
class RegistryRepair:
    """What `plan_repair` changed in the registries."""

    threads: int
    """Threads found by their keys."""
    added: int
    """Registry entries written that were missing."""
    removed: int
    """Registry entries dropped that pointed at a thread (or run) holding nothing."""


def thread_of_namespaces_key(keys: CheckpointKeys, key: str) -> str | None:
    """The thread id of a ``<prefix>:cp:{<thread>}:ns`` key (as SCAN finds it), else None."""
    head, tail = f"{keys.prefix}:cp:{{", "}:ns"
    if key.startswith(head) and key.endswith(tail):
        thread_id = key[len(head) : -len(tail)]
        return thread_id or None
    return None


def run_of_registry_key(keys: CheckpointKeys, key: str) -> str | None:
    """The run id of a ``<prefix>:cp:run:<run>`` registry key, else None."""
    head = keys.run_threads("")
    return key[len(head) :] or None if key.startswith(head) else None


REPAIR_BATCH = 100


def plan_repair(keys: CheckpointKeys, thread_ids: Sequence[str], run_ids: Sequence[str]) -> Plan[RegistryRepair]:
    """Make the registries agree with the threads: add what is missing, drop what points at nothing.

    `thread_ids` are the threads found by SCAN (their namespace sets),
    `run_ids` the run registries found by SCAN; the driver scans every
    primary. Idempotent, and safe while the saver is in use: an entry is added
    only for a thread (and run) that holds checkpoints when it is read, and
    one is dropped only when its thread's own keys no longer hold it.
    """
    added = removed = 0
    threads = sorted(set(thread_ids))
    expected_runs: dict[str, set[str]] = {}
    for start in range(0, len(threads), REPAIR_BATCH):
        batch = threads[start : start + REPAIR_BATCH]
        replies = yield Run([("SMEMBERS", keys.thread(thread_id).runs) for thread_id in batch])
        for thread_id, runs in zip(batch, replies, strict=True):
            for run in as_text(runs):
                expected_runs.setdefault(run, set()).add(thread_id)
    (registered,) = yield Run([("SMEMBERS", keys.threads())])
    known = set(as_text(registered))
    missing = [thread_id for thread_id in threads if thread_id not in known]
    if missing:
        added += sum((yield Run([("SADD", keys.threads(), *missing)])))
    gone = yield from _without_data(keys, sorted(known - set(threads)))
    if gone:
        removed += sum((yield Run([("SREM", keys.threads(), *gone)])))
    for run in sorted(set(run_ids) | set(expected_runs)):
        (members,) = yield Run([("SMEMBERS", keys.run_threads(run))])
        have, want = set(as_text(members)), expected_runs.get(run, set())
        if want - have:
            added += sum((yield Run([("SADD", keys.run_threads(run), *sorted(want - have))])))
        stale = sorted(have - want)
        if stale:
            # Read again: a put since the scan may have given the thread this run.
            still = yield Run([("SISMEMBER", keys.thread(thread_id).runs, run) for thread_id in stale])
            drop = [thread_id for thread_id, held in zip(stale, still, strict=True) if not held]
            if drop:
                removed += sum((yield Run([("SREM", keys.run_threads(run), *drop)])))
    return RegistryRepair(threads=len(threads), added=added, removed=removed)


def _without_data(keys: CheckpointKeys, thread_ids: Sequence[str]) -> Plan[list[str]]:
    """The threads among `thread_ids` whose namespace set is gone (deleted or expired)."""
    if not thread_ids:
        return []
    replies = yield Run([("EXISTS", keys.thread(thread_id).namespaces) for thread_id in thread_ids])
    return [thread_id for thread_id, exists in zip(thread_ids, replies, strict=True) if not exists]
