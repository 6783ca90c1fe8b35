"""What the sync and async savers share: layout, encoding of each call, and the plans.

Nothing here does I/O. `put`, `put_writes` and `get_tuple` each become one
command (a Lua script called by SHA, plus the thread registry on first sight of
a thread); `list` (listing.py) and the maintenance calls (maintenance.py)
are plans (see steps.py) that the drivers in aio.py and sync.py run.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from cimhub.server.checkpoint import chunks, history, maintenance
from cimhub.server.checkpoint.codec import (
    blob_field,
    blob_refs,
    check_name,
    config_of,
    decode_tuple,
    encode_checkpoint,
    encode_write,
    pack_typed,
    write_index,
)
from cimhub.server.checkpoint.connect import is_cluster
from cimhub.server.checkpoint.layout import CheckpointKeys, ThreadId, check_thread_id, encode_ns
from cimhub.server.checkpoint.listing import Listing
from cimhub.server.checkpoint.scripts import SCRIPTS, Command
from cimhub.server.checkpoint.steps import Plan, Run

# (thread, run) pairs a saver remembers having registered, before it starts over.
SEEN_LIMIT = 10_000


class Seen:
    """(thread id, run id) pairs this saver already put in the global registries.

    Lets a put skip the registry round trip. Bounded: when full it starts over,
    which only costs one extra SADD per thread.
    """

    def __init__(self, limit: int = SEEN_LIMIT) -> None:
        self._items: set[tuple[str, str]] = set()
        self._limit = limit

    def __contains__(self, item: tuple[str, str]) -> bool:
        return item in self._items

    def add(self, item: tuple[str, str]) -> None:
        if len(self._items) >= self._limit:
            self._items.clear()
        self._items.add(item)


def check_client(client: Any) -> None:
    """Refuse a client that decodes replies: stored values are binary."""
    if client.get_connection_kwargs().get("decode_responses"):
        raise ValueError("the Redis client must be created with decode_responses=False (values are binary)")


def gate_limit(client: Any) -> int | None:
    """How many calls a driver lets in flight on `client`: None (no limit) but on a cluster client.

    A cluster client's per-node pools raise when full instead of waiting (connect.Gate).
    """
    if not is_cluster(client):
        return None
    limit = client.get_connection_kwargs().get("max_connections")
    return int(limit) if limit else None


class Located:
    """Thread id and encoded namespace of a config, checked once."""

    __slots__ = ("checkpoint_ns", "ns", "thread_id")

    def __init__(self, config: RunnableConfig) -> None:
        configurable = config["configurable"]
        self.thread_id = check_thread_id(configurable["thread_id"])
        self.checkpoint_ns: str = check_name("checkpoint_ns", configurable.get("checkpoint_ns") or "")
        self.ns = encode_ns(self.checkpoint_ns)


class RedisSaverBase(BaseCheckpointSaver[str]):
    """Layout, encoding and plans shared by `CimhubRedisSaver` and `AsyncCimhubRedisSaver`."""

    def __init__(
        self,
        *,
        key_prefix: str = "cimhub",
        ttl_s: float | None = None,
        serde: SerializerProtocol | None = None,
        cluster: bool = False,
    ) -> None:
        super().__init__(serde=serde)
        if ttl_s is not None and ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive or None, got {ttl_s}")
        self.keys = CheckpointKeys(key_prefix)
        self.key_prefix = key_prefix
        self.ttl_s = ttl_s
        self.ttl_ms = 0 if ttl_s is None else max(1, round(ttl_s * 1000))
        # Keys get the TTL plus a quarter, and the whole thread is refreshed once
        # less than the TTL is left: so an idle thread lives between ttl_s and
        # 1.25 ttl_s, and a whole-thread refresh happens at most every ttl_s / 4.
        self.expiry_ms = self.ttl_ms + self.ttl_ms // 4
        self._seen = Seen()
        # On a Redis Cluster the registries live on other primaries than the thread: a pipeline
        # sends to each primary at once, so "registry before data" takes a round trip of its own.
        self.cluster = cluster

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Next channel version: a counter plus a random fraction.

        The random part keeps versions unique across forks: resuming from a past
        checkpoint twice gives two different "next" versions, so the two branches
        never overwrite each other's stored value (values are stored per version).
        """
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(str(current).split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"

    # -- one-command calls ------------------------------------------------

    def _put_command(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> tuple[Located, str, list[Command], RunnableConfig]:
        """The commands of a put (chunks of large values, then the script), the run id
        ("" for none), and the config to return."""
        at = Located(config)
        tk = self.keys.thread(at.thread_id)
        checkpoint_id = checkpoint["id"]
        stored_metadata = get_checkpoint_metadata(config, metadata)
        run = stored_metadata.get("run_id")
        run_id = str(run) if run else ""
        values = checkpoint["channel_values"]
        blobs: list[Any] = []
        pieces: list[Command] = []
        for channel, version in new_versions.items():
            if channel in values:
                field = blob_field(channel, version)
                stored, parts = chunks.split(field, pack_typed(self.serde.dumps_typed(values[channel])))
                blobs += [field, stored]
                pieces += [("HSET", tk.blobs(at.ns), *part) for part in parts]
        keys = [
            tk.namespaces,
            tk.ids(at.ns),
            tk.blobs(at.ns),
            tk.checkpoint(at.ns, checkpoint_id),
            tk.early(at.ns),
            tk.runs,
        ]
        if run_id:
            keys.append(tk.run(run_id))
        command = SCRIPTS.put.call(
            keys,
            [
                at.ns,
                checkpoint_id,
                self.expiry_ms,
                encode_checkpoint(self.serde, checkpoint),
                pack_typed(self.serde.dumps_typed(stored_metadata)),
                config["configurable"].get("checkpoint_id") or "",
                blob_refs(checkpoint["channel_versions"]),
                run_id,
                *blobs,
            ],
        )
        return (
            at,
            run_id,
            [*pieces, command],
            config_of(at.thread_id, at.checkpoint_ns, checkpoint_id),
        )

    def _put_writes_command(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> tuple[Located, list[Command]] | None:
        """The commands of a put_writes: chunks of large writes, then the script."""
        if not writes:
            return None
        at = Located(config)
        tk = self.keys.thread(at.thread_id)
        checkpoint_id = config["configurable"]["checkpoint_id"]
        args: list[Any] = [at.ns, checkpoint_id, self.expiry_ms]
        hash_key = tk.checkpoint(at.ns, checkpoint_id)
        pieces: list[Command] = []
        for position, (channel, value) in enumerate(writes):
            idx = write_index(channel, position)
            field, encoded = encode_write(self.serde, task_id, task_path, idx, channel, value)
            stored, parts = chunks.split_write(field, encoded)
            # A regular write already stored is kept, its chunks too; a special one replaced.
            write = "HSET" if idx < 0 else "HSETNX"
            pieces += [(write, hash_key, *part) for part in parts]
            args += [field, stored, b"1" if idx < 0 else b"0"]
        keys = [
            tk.namespaces,
            tk.checkpoint(at.ns, checkpoint_id),
            tk.early(at.ns),
            tk.ids(at.ns),
        ]
        if pieces:  # tells the scripts this hash holds chunks, to read around (common.lua)
            pieces.append(("HSET", hash_key, "x", "1"))
        return at, [*pieces, SCRIPTS.put_writes.call(keys, args)]

    def _registry_commands(self, thread_id: str, run_id: str) -> list[Command]:
        """Global registry entries for a thread (and run) seen for the first time."""
        commands: list[Command] = [("SADD", self.keys.threads(), thread_id)]
        if run_id:
            commands.append(("SADD", self.keys.run_threads(run_id), thread_id))
            if self.ttl_ms:
                commands.append(("PEXPIRE", self.keys.run_threads(run_id), self.expiry_ms))
        return commands

    def _get_command(self, config: RunnableConfig) -> tuple[Located, Command]:
        at = Located(config)
        tk = self.keys.thread(at.thread_id)
        checkpoint_id = get_checkpoint_id(config)
        args = [tk.checkpoint_prefix(at.ns), at.ns] + ([checkpoint_id] if checkpoint_id else [])
        return at, SCRIPTS.get.call([tk.ids(at.ns), tk.blobs(at.ns), tk.namespaces], args)

    def _decode_get(self, at: Located, reply: Sequence[Any]) -> CheckpointTuple | None:
        if not reply:
            return None
        return decode_tuple(self.serde, at.thread_id, at.ns, reply[0])

    # -- plans ------------------------------------------------------------

    def _plan_put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> Plan[RunnableConfig]:
        """One round trip once the registries know the thread and run; two the first time.

        The first put of a thread (or run) sends the registry SADDs before the
        script, so no crash leaves data the registries do not point to (on a
        Redis Cluster in a round trip of their own, since a pipeline reaches
        every primary at once). Later puts send the script alone; it reports a
        namespace or run new to the thread (a new subgraph, or a thread another
        process deleted meanwhile), and the thread is registered again. With a
        TTL the registries are always refreshed with the put.
        """
        at, run_id, commands, stored = self._put_command(config, checkpoint, metadata, new_versions)
        seen = (at.thread_id, run_id)
        flags = yield from self._plan_registered(seen, commands)
        if seen in self._seen and not self.ttl_ms and (flags[0] or flags[1]):
            yield Run(self._registry_commands(at.thread_id, run_id))
        self._seen.add(seen)
        yield from self._plan_keep_alive(at.thread_id, flags[2])
        return stored

    def _plan_registered(self, seen: tuple[str, str], commands: list[Command]) -> Plan[Any]:
        """Run `commands` (ending with a script) with the registry entries of `seen` if due.

        Due: the first time this saver sees the (thread, run), and with a TTL
        every time. Returns the script's reply.
        """
        thread_id, run_id = seen
        if seen in self._seen and not self.ttl_ms:
            return (yield Run(commands))[-1]
        registry = self._registry_commands(thread_id, run_id)
        if self.cluster and seen not in self._seen:
            yield Run(registry)
            return (yield Run(commands))[-1]
        return (yield Run([*registry, *commands]))[-1]

    def _plan_put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> Plan[None]:
        """Like `_plan_put`: writes can be the first thing a thread stores."""
        built = self._put_writes_command(config, writes, task_id, task_path)
        if built is None:
            return
        at, commands = built
        seen = (at.thread_id, "")
        flags = yield from self._plan_registered(seen, commands)
        if seen in self._seen and not self.ttl_ms and flags[0]:
            yield Run(self._registry_commands(at.thread_id, ""))
        self._seen.add(seen)
        yield from self._plan_keep_alive(at.thread_id, flags[1])

    def _plan_get(self, config: RunnableConfig) -> Plan[CheckpointTuple | None]:
        """One round trip; with a TTL, reading a thread keeps it alive like writing does."""
        at, command = self._get_command(config)
        tk = self.keys.thread(at.thread_id)
        blobs, prefix = tk.blobs(at.ns), tk.checkpoint_prefix(at.ns)
        if not self.ttl_ms:
            (reply,) = yield Run([command])
            yield from chunks.plan_join(blobs, prefix, reply)
            return self._decode_get(at, reply)
        reply, left_ms = yield Run([command, ("PTTL", self.keys.thread(at.thread_id).namespaces)])
        if reply:
            yield from chunks.plan_join(blobs, prefix, reply)
            yield from self._plan_keep_alive(at.thread_id, left_ms)
        return self._decode_get(at, reply)

    def _plan_keep_alive(self, thread_id: str, left_ms: int) -> Plan[None]:
        """Refresh the whole thread's expiry once less than the TTL is left (never with no TTL).

        `left_ms` is the PTTL of the thread's namespace set, which expires
        first; -2 (gone) means there is nothing to keep.
        """
        if self.ttl_ms and -2 < left_ms < self.ttl_ms:
            yield from maintenance.plan_touch(self.keys, thread_id, self.expiry_ms)

    def _plan_delta_history(
        self, config: RunnableConfig, channels: Sequence[str]
    ) -> Plan[dict[str, DeltaChannelHistory]]:
        """The writes and seed of each channel along the parent chain (see history.py)."""
        at = Located(config)
        return history.plan_delta_history(
            self.keys, self.serde, at.thread_id, at.ns, get_checkpoint_id(config) or "", channels
        )

    def _plan_list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Plan[None]:
        return Listing(self.keys, self.serde, filter, limit).plan(config, before)

    def _plan_delete_thread(self, thread_id: ThreadId) -> Plan[None]:
        return maintenance.plan_delete_thread(self.keys, thread_id)

    def _plan_delete_for_runs(self, run_ids: Sequence[str]) -> Plan[None]:
        return maintenance.plan_delete_for_runs(self.keys, run_ids)

    def _plan_copy_thread(self, source_thread_id: ThreadId, target_thread_id: ThreadId) -> Plan[None]:
        """The copy, then (with a TTL) one expiry for the whole target, old keys included."""
        yield from maintenance.plan_copy_thread(self.keys, source_thread_id, target_thread_id, self.expiry_ms)
        if self.ttl_ms:
            target = check_thread_id(target_thread_id)
            yield from maintenance.plan_touch(self.keys, target, self.expiry_ms)

    def _plan_prune(self, thread_ids: Sequence[ThreadId], strategy: str, keep: int) -> Plan[None]:
        return maintenance.plan_prune(self.keys, self.serde, thread_ids, strategy, keep)

    def _plan_repair(self, scanned: Sequence[bytes | str]) -> Plan[maintenance.RegistryRepair]:
        """Repair the registries from the keys SCAN found (`scan_patterns`, on every primary)."""
        threads: list[str] = []
        runs: list[str] = []
        for raw in scanned:
            key = raw.decode() if isinstance(raw, bytes) else raw
            if (thread_id := maintenance.thread_of_namespaces_key(self.keys, key)) is not None:
                threads.append(thread_id)
            elif (run_id := maintenance.run_of_registry_key(self.keys, key)) is not None:
                runs.append(run_id)
        return maintenance.plan_repair(self.keys, threads, runs)

    def scan_patterns(self) -> tuple[str, str]:
        """What a registry repair scans for: every thread's namespace set, every run registry."""
        return self.keys.namespaces_pattern(), self.keys.run_registry_pattern()
