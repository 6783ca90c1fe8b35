"""AsyncRedisSaver: the saver for async graphs (ainvoke, astream), on redis.asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import redis.asyncio as aioredis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from redis.exceptions import NoScriptError

from cimhub.server.checkpoint.base import RedisSaverBase, check_client
from cimhub.server.checkpoint.scripts import SCRIPTS
from cimhub.server.checkpoint.steps import Emit, Plan, Run

T = TypeVar("T")


class AsyncRedisSaver(RedisSaverBase):
    """LangGraph checkpointer on plain Redis hashes, for async graphs.

    Guarantees:

    * ``aput`` is atomic: the checkpoint, the values of its new channel
      versions, its index entry and run entry are written by one Lua script, or
      not at all. ``aput_writes`` is atomic per call.
    * Pending writes may arrive before their checkpoint; they are kept and show
      up once the checkpoint is stored.
    * ``alist`` returns checkpoints newest first by id (uuid6, so creation
      order); ``before`` is exclusive; ``filter`` matches any metadata key by
      JSON equality.
    * ``adelete_thread`` removes every key of the thread, in all namespaces,
      atomically, finding them through the thread's own registries.
    * With ``ttl_s``, every key a put or put_writes touches lives ``ttl_s``
      after that write: an idle thread disappears whole; in a busy thread,
      checkpoints not written for ``ttl_s`` drop out of the history.

    The sync methods (``get_tuple``, ``put``...) work only from a thread other
    than the event loop's, while that loop runs; sync graphs should use
    `RedisSaver`. The caller owns ``client`` unless the saver came from
    `from_url`.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        key_prefix: str = "cimhub",
        ttl_s: float | None = None,
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(key_prefix=key_prefix, ttl_s=ttl_s, serde=serde)
        check_client(client)
        self.client = client
        self._owns_client = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    @asynccontextmanager
    async def from_url(
        cls,
        url: str,
        *,
        key_prefix: str = "cimhub",
        ttl_s: float | None = None,
        serde: SerializerProtocol | None = None,
        **client_kwargs: Any,
    ) -> AsyncIterator[AsyncRedisSaver]:
        """A saver with its own client for `url`, closed when the block exits."""
        client = aioredis.from_url(url, **{**client_kwargs, "decode_responses": False})
        saver = cls(client, key_prefix=key_prefix, ttl_s=ttl_s, serde=serde)
        saver._owns_client = True
        try:
            yield saver
        finally:
            await saver.aclose()

    async def aclose(self) -> None:
        """Close the client if the saver created it (`from_url`)."""
        if self._owns_client:
            await self.client.aclose()

    # -- driver -----------------------------------------------------------

    async def _execute(self, run: Run) -> list[Any]:
        self._loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            try:
                if len(run.commands) == 1 and not run.atomic:
                    return [await self.client.execute_command(*run.commands[0])]  # type: ignore[no-untyped-call]
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
        async for item in self._stream(
            self._plan_list(config, filter=filter, before=before, limit=limit)
        ):
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

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, write and value of the thread, in all namespaces."""
        await self._drive(self._plan_delete_thread(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) the given runs created, in every thread."""
        await self._drive(self._plan_delete_for_runs(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy the whole source thread (every namespace, writes, values) into the target, atomically."""
        await self._drive(self._plan_copy_thread(source_thread_id, target_thread_id))

    async def aprune(
        self, thread_ids: Sequence[str], *, strategy: str = "keep_latest", keep: int = 1
    ) -> None:
        """Bound growth: "keep_latest" keeps the newest `keep` checkpoints per namespace, "delete" all.

        Channel values still read by a kept checkpoint stay, and so do the
        ancestors a kept checkpoint's DeltaChannels replay from.
        """
        await self._drive(self._plan_prune(thread_ids, strategy, keep))

    # -- BaseCheckpointSaver, sync (from another thread only) ---------------

    def _sync(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = self._loop
        if loop is None or loop.is_closed() or running is loop:
            coro.close()
            raise RuntimeError(
                "AsyncRedisSaver's sync methods run on its event loop from another thread; "
                "in async code await the a* methods (graph.ainvoke), in sync code use RedisSaver"
            )
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._sync(self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        async def collect() -> list[CheckpointTuple]:
            return [
                item async for item in self.alist(config, filter=filter, before=before, limit=limit)
            ]

        yield from self._sync(collect())

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._sync(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._sync(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._sync(self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._sync(self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._sync(self.acopy_thread(source_thread_id, target_thread_id))

    def prune(
        self, thread_ids: Sequence[str], *, strategy: str = "keep_latest", keep: int = 1
    ) -> None:
        self._sync(self.aprune(thread_ids, strategy=strategy, keep=keep))
