"""CimhubRedisSaver: the saver for sync graphs (invoke, stream), on the blocking redis client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from redis.exceptions import NoScriptError

from cimhub.server.checkpoint.base import RedisSaverBase, check_client, gate_limit
from cimhub.server.checkpoint.connect import Gate, PoolOptions, SyncClient, is_cluster, sync_client
from cimhub.server.checkpoint.layout import ThreadId
from cimhub.server.checkpoint.maintenance import RegistryRepair
from cimhub.server.checkpoint.scripts import SCRIPTS
from cimhub.server.checkpoint.steps import Emit, Plan, Run

T = TypeVar("T")


class CimhubRedisSaver(RedisSaverBase):
    """LangGraph checkpointer on plain Redis hashes, for sync graphs.

    Same storage, layout and guarantees as `AsyncCimhubRedisSaver` (the two
    read each other's threads): ``put`` is one atomic Lua script, pending
    writes may precede their checkpoint, ``delete_thread`` removes every key of
    the thread atomically, with ``ttl_s`` a thread expires whole after
    ``ttl_s`` to 1.25 ``ttl_s`` without reads or writes. Safe to share between
    threads (redis-py's connection pool is).

    The async methods run the sync ones in a worker thread (`asyncio.to_thread`),
    so this class also works under ``ainvoke``; `AsyncCimhubRedisSaver` is
    cheaper there. The caller owns ``client`` unless the saver came from
    `from_conn_string` (alias `from_url`). ``client`` is a `redis.Redis` or,
    on a Redis Cluster, a `redis.RedisCluster` (``from_url`` takes
    ``redis+cluster://``).
    """

    def __init__(
        self,
        client: SyncClient,
        *,
        key_prefix: str = "cimhub",
        ttl_s: float | None = None,
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(key_prefix=key_prefix, ttl_s=ttl_s, serde=serde, cluster=is_cluster(client))
        check_client(client)
        self.client = client
        self._owns_client = False
        self._gate = Gate(gate_limit(client))

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        conn_string: str,
        *,
        key_prefix: str = "cimhub",
        ttl_s: float | None = None,
        serde: SerializerProtocol | None = None,
        pool: PoolOptions | None = None,
    ) -> Iterator[CimhubRedisSaver]:
        """A saver with its own client for a ``redis://`` URL, closed when the block exits.

        The client waits for a free connection rather than failing (a
        `BlockingConnectionPool`) and retries connection errors with backoff;
        `pool` sets the sizes and times (see connect.PoolOptions).
        """
        client = sync_client(conn_string, pool or PoolOptions())
        saver = cls(client, key_prefix=key_prefix, ttl_s=ttl_s, serde=serde)
        saver._owns_client = True
        try:
            yield saver
        finally:
            saver.close()

    from_url = from_conn_string

    def setup(self) -> None:
        """Load the Lua scripts. Optional: Redis needs no schema and no module, and a
        missing script is loaded on first use anyway."""
        for script in SCRIPTS.all():
            self.client.script_load(script.source)

    async def asetup(self) -> None:
        await asyncio.to_thread(self.setup)

    def close(self) -> None:
        """Close the client if the saver created it (`from_conn_string`)."""
        if self._owns_client:
            self.client.close()

    # -- driver -----------------------------------------------------------

    def _execute(self, run: Run) -> list[Any]:
        with self._gate.sync():
            for attempt in (1, 2):
                try:
                    if len(run.commands) == 1 and not run.atomic:
                        return [self.client.execute_command(*run.commands[0])]  # type: ignore[no-untyped-call]
                    pipe = self.client.pipeline(transaction=run.atomic)
                    for command in run.commands:
                        pipe.execute_command(*command)
                    return list(pipe.execute())
                except NoScriptError:
                    if attempt == 2:
                        raise
                    for script in SCRIPTS.all():
                        self.client.script_load(script.source)
        raise AssertionError("unreachable")

    def _drive(self, plan: Plan[T]) -> T:
        try:
            step = next(plan)
            while True:
                step = plan.send(self._execute(step) if isinstance(step, Run) else [])
        except StopIteration as stop:
            result: T = stop.value
            return result

    def _stream(self, plan: Plan[None]) -> Iterator[CheckpointTuple]:
        try:
            step = next(plan)
            while True:
                if isinstance(step, Emit):
                    yield step.item
                    step = plan.send([])
                else:
                    step = plan.send(self._execute(step))
        except StopIteration:
            return

    # -- BaseCheckpointSaver, sync ------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint at config's checkpoint_id, or the newest of its namespace; one round trip."""
        return self._drive(self._plan_get(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first; see `RedisSaverBase._plan_list` for the rules."""
        return self._stream(self._plan_list(config, filter=filter, before=before, limit=limit))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint atomically; only channels in `new_versions` get a new value stored."""
        return self._drive(self._plan_put(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes atomically, before or after their checkpoint."""
        self._drive(self._plan_put_writes(config, writes, task_id, task_path))

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Writes and seed of each channel along the parent chain, a few round trips in all."""
        return self._drive(self._plan_delta_history(config, channels))

    def delete_thread(self, thread_id: ThreadId) -> None:
        """Delete every checkpoint, write and value of the thread, in all namespaces."""
        self._drive(self._plan_delete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) the given runs created, in every thread."""
        self._drive(self._plan_delete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: ThreadId, target_thread_id: ThreadId) -> None:
        """Copy the whole source thread (every namespace, writes, values) into the target, atomically."""
        self._drive(self._plan_copy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[ThreadId], *, strategy: str = "keep_latest", keep: int = 1) -> None:
        """Bound growth: "keep_latest" keeps the newest `keep` checkpoints per namespace, "delete" all.

        Channel values still read by a kept checkpoint stay, and so do the
        ancestors a kept checkpoint's DeltaChannels replay from.
        """
        self._drive(self._plan_prune(thread_ids, strategy, keep))

    def repair_registries(self) -> RegistryRepair:
        """Rebuild the thread and run registries from the threads' own keys (SCAN of every primary).

        Idempotent; safe while graphs run. See maintenance.plan_repair.
        """
        scanned = [key for pattern in self.scan_patterns() for key in self.client.scan_iter(match=pattern)]
        return self._drive(self._plan_repair(scanned))

    # -- BaseCheckpointSaver, async (in a worker thread) ---------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        items = await asyncio.to_thread(lambda: list(self.list(config, filter=filter, before=before, limit=limit)))
        for item in items:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return await asyncio.to_thread(lambda: self.get_delta_channel_history(config=config, channels=channels))

    async def adelete_thread(self, thread_id: ThreadId) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: ThreadId, target_thread_id: ThreadId) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[ThreadId], *, strategy: str = "keep_latest", keep: int = 1) -> None:
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy, keep=keep)
