"""AsyncCimhubRedisSaver: the saver for async graphs (ainvoke, astream), on redis.asyncio."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
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
from cimhub.server.checkpoint.connect import AsyncClient, Gate, PoolOptions, async_client, is_cluster, twin_async_client
from cimhub.server.checkpoint.layout import ThreadId
from cimhub.server.checkpoint.maintenance import RegistryRepair
from cimhub.server.checkpoint.scripts import SCRIPTS
from cimhub.server.checkpoint.steps import Emit, Plan, Run

T = TypeVar("T")


class AsyncCimhubRedisSaver(RedisSaverBase):
    """LangGraph checkpointer on plain Redis hashes, for async graphs.

    Guarantees:

    * ``aput`` is atomic: the checkpoint, the values of its new channel
      versions, its index entry and run entry are written by one Lua script, or
      not at all (chunks of a value over 256 KB go just before it, unread until
      it runs). ``aput_writes`` is atomic per call.
    * Pending writes may arrive before their checkpoint; they are kept and show
      up once the checkpoint is stored.
    * ``alist`` returns checkpoints newest first by id (uuid6, so creation
      order); ``before`` is exclusive; ``filter`` matches any metadata key by
      JSON equality.
    * ``adelete_thread`` removes every key of the thread, in all namespaces,
      atomically, finding them through the thread's own registries.
    * With ``ttl_s``, a thread expires whole, between ``ttl_s`` and
      1.25 ``ttl_s`` after its last read (``aget_tuple``) or write; a thread in
      use keeps all of its history (DeltaChannels included).
    * ``aget_delta_channel_history`` walks the parent chain in Redis, up to
      256 ancestors or 1 MB per round trip.

    The sync methods (``get_tuple``, ``put``...) work from any thread but the
    event loop's own: from another thread they run on the loop the saver was
    made on (or last used on); with no such loop running, on a short-lived
    connection of their own. The caller owns ``client`` unless the saver came
    from `from_conn_string` (alias `from_url`).

    ``client`` is a `redis.asyncio.Redis` or, on a Redis Cluster, a
    `redis.asyncio.RedisCluster` (``from_url`` takes ``redis+cluster://``):
    every script reads and writes one thread's slot, the same keys either way.
    """

    def __init__(
        self,
        client: AsyncClient,
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
        # Like LangGraph's own async savers: the loop the saver is made on runs
        # its sync methods when they are called from another thread.
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls,
        conn_string: str,
        *,
        key_prefix: str = "cimhub",
        ttl_s: float | None = None,
        serde: SerializerProtocol | None = None,
        pool: PoolOptions | None = None,
    ) -> AsyncIterator[AsyncCimhubRedisSaver]:
        """A saver with its own client for a ``redis://`` URL, closed when the block exits.

        The client waits for a free connection rather than failing (a
        `BlockingConnectionPool`) and retries connection errors with backoff;
        `pool` sets the sizes and times (see connect.PoolOptions).
        """
        client = async_client(conn_string, pool or PoolOptions())
        saver = cls(client, key_prefix=key_prefix, ttl_s=ttl_s, serde=serde)
        saver._owns_client = True
        try:
            yield saver
        finally:
            await saver.aclose()

    from_url = from_conn_string

    async def setup(self) -> None:
        """Load the Lua scripts. Optional: Redis needs no schema and no module, and a
        missing script is loaded on first use anyway.

        A coroutine, as on LangGraph's own async savers (``await checkpointer.setup()``).
        """
        for script in SCRIPTS.all():
            await self.client.script_load(script.source)

    async def asetup(self) -> None:
        """The same as `setup` (the name langgraph-checkpoint-redis uses)."""
        await self.setup()

    async def aclose(self) -> None:
        """Close the client if the saver created it (`from_conn_string`)."""
        if self._owns_client:
            await self.client.aclose()

    # -- driver -----------------------------------------------------------

    async def _execute(self, run: Run) -> list[Any]:
        self._loop = asyncio.get_running_loop()
        async with self._gate.aio():
            if self.cluster:
                # redis-py 8.1's asyncio cluster client loses connections mid-handshake when many
                # callers make its first commands at once; reading the slot table first (under
                # its own lock, a flag check once done) avoids that race.
                await self.client.initialize()
            for attempt in (1, 2):
                try:
                    if len(run.commands) == 1 and not run.atomic:
                        return [await self.client.execute_command(*run.commands[0])]
                    pipe = self.client.pipeline(transaction=run.atomic)
                    for command in run.commands:
                        pipe.execute_command(*command)
                    return list(await pipe.execute())
                except NoScriptError:
                    if attempt == 2:
                        raise
                    for script in SCRIPTS.all():
                        await self.client.script_load(script.source)
        raise AssertionError("unreachable")

    async def _drive(self, plan: Plan[T]) -> T:
        reply: list[Any] = []
        try:
            step = next(plan)
            while True:
                reply = await self._execute(step) if isinstance(step, Run) else []
                step = plan.send(reply)
        except StopIteration as stop:
            result: T = stop.value
            return result

    async def _stream(self, plan: Plan[None]) -> AsyncIterator[CheckpointTuple]:
        try:
            step = next(plan)
            while True:
                if isinstance(step, Emit):
                    yield step.item
                    step = plan.send([])
                else:
                    step = plan.send(await self._execute(step))
        except StopIteration:
            return

    # -- BaseCheckpointSaver, async ----------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint at config's checkpoint_id, or the newest of its namespace; one round trip."""
        return await self._drive(self._plan_get(config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints newest first; see `RedisSaverBase._plan_list` for the rules."""
        async for item in self._stream(self._plan_list(config, filter=filter, before=before, limit=limit)):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint atomically; only channels in `new_versions` get a new value stored."""
        return await self._drive(self._plan_put(config, checkpoint, metadata, new_versions))

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes atomically, before or after their checkpoint."""
        await self._drive(self._plan_put_writes(config, writes, task_id, task_path))

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Writes and seed of each channel along the parent chain, a few round trips in all."""
        return await self._drive(self._plan_delta_history(config, channels))

    async def adelete_thread(self, thread_id: ThreadId) -> None:
        """Delete every checkpoint, write and value of the thread, in all namespaces."""
        await self._drive(self._plan_delete_thread(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) the given runs created, in every thread."""
        await self._drive(self._plan_delete_for_runs(run_ids))

    async def acopy_thread(self, source_thread_id: ThreadId, target_thread_id: ThreadId) -> None:
        """Copy the whole source thread (every namespace, writes, values) into the target, atomically."""
        await self._drive(self._plan_copy_thread(source_thread_id, target_thread_id))

    async def aprune(self, thread_ids: Sequence[ThreadId], *, strategy: str = "keep_latest", keep: int = 1) -> None:
        """Bound growth: "keep_latest" keeps the newest `keep` checkpoints per namespace, "delete" all.

        Channel values still read by a kept checkpoint stay, and so do the
        ancestors a kept checkpoint's DeltaChannels replay from.
        """
        await self._drive(self._plan_prune(thread_ids, strategy, keep))

    async def arepair_registries(self) -> RegistryRepair:
        """Rebuild the thread and run registries from the threads' own keys (SCAN of every primary).

        Idempotent; safe while graphs run. See maintenance.plan_repair.
        """
        scanned = [key for pattern in self.scan_patterns() async for key in self.client.scan_iter(match=pattern)]
        return await self._drive(self._plan_repair(scanned))

    # -- BaseCheckpointSaver, sync (from another thread) ----------------------

    def _sync(self, call: Callable[[AsyncCimhubRedisSaver], Coroutine[Any, Any, T]]) -> T:
        """Run ``call(saver)`` to completion from sync code.

        On the saver's loop when it runs in another thread (as LangGraph's own
        async savers do); refused on that loop's own thread, where waiting
        would deadlock it. With no loop running, on a twin saver with a
        client of its own for this one call: the saver's client and its
        connections belong to the loop they were made on.
        """
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = self._loop
        if running is not None and (running is loop or loop is None or not loop.is_running()):
            raise asyncio.InvalidStateError(
                "AsyncCimhubRedisSaver's sync methods cannot run on its event loop's thread; "
                "in async code await the a* methods (graph.ainvoke, graph.aget_state), "
                "in sync code use CimhubRedisSaver"
            )
        if loop is not None and loop.is_running():
            return asyncio.run_coroutine_threadsafe(call(self), loop).result()
        return asyncio.run(self._once(call))

    async def _once(self, call: Callable[[AsyncCimhubRedisSaver], Coroutine[Any, Any, T]]) -> T:
        client = twin_async_client(self.client)
        twin = copy.copy(self)
        twin.client = client
        twin._gate = Gate(self._gate.limit)
        try:
            return await call(twin)
        finally:
            await client.aclose()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._sync(lambda saver: saver.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        async def collect(saver: AsyncCimhubRedisSaver) -> list[CheckpointTuple]:
            return [item async for item in saver.alist(config, filter=filter, before=before, limit=limit)]

        yield from self._sync(collect)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._sync(lambda saver: saver.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._sync(lambda saver: saver.aput_writes(config, writes, task_id, task_path))

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return self._sync(lambda saver: saver.aget_delta_channel_history(config=config, channels=channels))

    def delete_thread(self, thread_id: ThreadId) -> None:
        self._sync(lambda saver: saver.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._sync(lambda saver: saver.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: ThreadId, target_thread_id: ThreadId) -> None:
        self._sync(lambda saver: saver.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[ThreadId], *, strategy: str = "keep_latest", keep: int = 1) -> None:
        self._sync(lambda saver: saver.aprune(thread_ids, strategy=strategy, keep=keep))
