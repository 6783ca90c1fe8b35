"""The failures a production user of the saver hit first, as tests against a real redis-server.

* 100 threads x 20 steps at once on `from_conn_string` defaults: no call fails
  for want of a connection (the pool blocks instead of raising).
* Redis restarted under a running graph: no call fails, and every step's side
  effect happens exactly once (retries are safe because puts are idempotent).
* ``ttl_s`` on a thread in use: the whole history stays, DeltaChannel included;
  an idle thread then expires whole.
* ``get_delta_channel_history`` answers like LangGraph's default walk, in a
  few round trips instead of one per ancestor.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Any, TypedDict, cast

import pytest
import redis.asyncio as aioredis
from conftest import RedisServer
from langchain_core.runnables import RunnableConfig
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from redis.asyncio.cluster import RedisCluster
from support.waiting import eventually

from cimhub.server.checkpoint import AsyncCimhubRedisSaver, CimhubRedisSaver, PoolOptions, history
from cimhub.server.checkpoint.steps import Run


def thread(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


class Outline(TypedDict):
    sections: Annotated[list[str], lambda old, new: old + new]


def outline_graph(saver: BaseCheckpointSaver[Any], ran: Counter[str], steps: int) -> Any:
    """A chain of `steps` nodes; each counts its runs per (thread, section) in `ran`."""

    def node(name: str) -> Any:
        def write(state: Outline, config: RunnableConfig) -> dict[str, list[str]]:
            section = f"{name}#{len(state['sections'])}"
            ran[f"{config['configurable']['thread_id']}/{section}"] += 1
            return {"sections": [section]}

        return write

    builder = StateGraph(Outline)
    names = [f"s{i}" for i in range(steps)]
    for name in names:
        builder.add_node(name, node(name))
    builder.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        builder.add_edge(a, b)
    builder.add_edge(names[-1], END)
    return builder.compile(checkpointer=saver)


async def test_a_hundred_threads_at_once_never_run_out_of_connections(redis_url: str, key_prefix: str) -> None:
    ran: Counter[str] = Counter()
    # 16 connections (per node on a cluster, whose pools raise when full: the saver makes callers wait).
    pool = PoolOptions(max_connections=16)
    async with AsyncCimhubRedisSaver.from_conn_string(redis_url, key_prefix=key_prefix, pool=pool) as saver:
        graph = outline_graph(saver, ran, steps=1)

        async def deal(n: int) -> None:
            for _ in range(20):
                await graph.ainvoke({"sections": []}, thread(f"cim-{n}"))

        results = await asyncio.gather(*(deal(n) for n in range(100)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, f"{len(errors)} of 100 threads failed, first: {errors[0]!r}"
        assert sum(ran.values()) == 2000 and set(ran.values()) == {1}
        latest = await saver.aget_tuple(thread("cim-99"))
        assert latest is not None and len(latest.checkpoint["channel_values"]["sections"]) == 20
        # So the hundred callers really had to wait their turn:
        if isinstance(saver.client, RedisCluster):
            assert saver.client.get_connection_kwargs()["max_connections"] == 16
        else:
            assert isinstance(saver.client.connection_pool, aioredis.BlockingConnectionPool)
            assert saver.client.connection_pool.max_connections == 16


@pytest.mark.single_node  # restarts a redis-server of its own
async def test_a_redis_restart_under_a_running_graph_runs_every_step_once(
    private_redis: RedisServer, key_prefix: str
) -> None:
    ran: Counter[str] = Counter()
    restarted = asyncio.Event()
    async with AsyncCimhubRedisSaver.from_conn_string(private_redis.url, key_prefix=key_prefix) as saver:
        graph = outline_graph(saver, ran, steps=4)

        async def restart() -> None:
            await eventually(lambda: sum(ran.values()) >= 12, 60, what="12 graph steps ran", interval=0.01)
            # SIGTERM: Redis writes its AOF and exits; the same port comes back with the data.
            await asyncio.to_thread(private_redis.stop)
            await asyncio.to_thread(private_redis.start)
            restarted.set()

        async def deal() -> None:
            invocations = 0
            while not restarted.is_set() or invocations < 8:
                await graph.ainvoke({"sections": []}, thread("cim-restart"))
                invocations += 1
                assert invocations < 10_000

        await asyncio.wait_for(asyncio.gather(restart(), deal()), timeout=120)
        final = await saver.aget_tuple(thread("cim-restart"))
        assert final is not None
        sections = final.checkpoint["channel_values"]["sections"]
        assert len(sections) == sum(ran.values()) and len(sections) % 4 == 0
        assert len(sections) == len(set(sections))
        assert set(ran.values()) == {1}, {k: v for k, v in ran.items() if v != 1}


@pytest.mark.single_node  # restarts a redis-server of its own
def test_a_redis_restart_under_a_running_sync_graph_runs_every_step_once(
    private_redis: RedisServer, key_prefix: str
) -> None:
    ran: Counter[str] = Counter()
    with CimhubRedisSaver.from_conn_string(private_redis.url, key_prefix=key_prefix) as saver:
        graph = outline_graph(saver, ran, steps=4)
        for _ in range(3):
            graph.invoke({"sections": []}, thread("cim-sync"))
        restarter = threading.Thread(target=lambda: (private_redis.stop(), private_redis.start()), daemon=True)
        restarter.start()
        invocations = 3
        while restarter.is_alive() or invocations < 10:
            graph.invoke({"sections": []}, thread("cim-sync"))
            invocations += 1
        restarter.join()
        final = saver.get_tuple(thread("cim-sync"))
        assert final is not None
        assert len(final.checkpoint["channel_values"]["sections"]) == 4 * invocations
        assert sum(ran.values()) == 4 * invocations and set(ran.values()) == {1}


# -- TTL ---------------------------------------------------------------------------------


def append_all(state: list[str], batches: Sequence[list[str]]) -> list[str]:
    return [*state, *(item for batch in batches for item in batch)]


class Conversation(TypedDict):
    messages: Annotated[list[str], DeltaChannel(append_all, snapshot_frequency=3)]
    turn: int


def conversation(saver: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any, Any, Any, Any]:
    builder = StateGraph(Conversation)
    builder.add_node("speak", lambda state: {"messages": [f"m{state['turn']}"], "turn": state["turn"] + 1})
    builder.add_edge(START, "speak")
    builder.add_edge("speak", END)
    return builder.compile(checkpointer=saver)


async def test_ttl_never_cuts_a_live_delta_channel_thread_and_expires_an_idle_one_whole(
    redis_url: str, key_prefix: str, redis_client: aioredis.Redis
) -> None:
    ttl_s = 2.0  # margin: a stall longer than the TTL between two calls would expire it
    async with AsyncCimhubRedisSaver.from_conn_string(redis_url, key_prefix=key_prefix, ttl_s=ttl_s) as saver:
        graph = conversation(saver)
        cfg = thread("cim-ttl-delta")
        started = time.monotonic()
        turns = 0
        # Writes for three times the TTL: the first checkpoints are older than any key's life.
        while time.monotonic() - started < 3 * ttl_s or turns < 8:
            await graph.ainvoke({"messages": [], "turn": turns}, cfg)
            turns += 1
            await asyncio.sleep(0.2)
        state = await graph.aget_state(cfg)
        assert state.values["messages"] == [f"m{i}" for i in range(turns)]
        stored = [c async for c in saver.alist(cfg)]
        assert len(stored) == 3 * turns  # input, loop and "speak" per turn: none expired

        # Reading keeps the thread alive too.
        started = time.monotonic()
        while time.monotonic() - started < 2 * ttl_s:
            assert (await graph.aget_state(cfg)).values["messages"][-1] == f"m{turns - 1}"
            await asyncio.sleep(0.2)

        # Idle (watched with plain Redis commands, since a saver read would keep it alive):
        # while the namespace set, which every read starts from, exists, every checkpoint does.
        tk = saver.keys.thread("cim-ttl-delta")
        deadline = time.monotonic() + 20
        while keys := {k async for k in redis_client.scan_iter(match=f"{tk.base}*", count=1000)}:
            if tk.namespaces.encode() in keys:
                hashes = [k for k in keys if k.startswith(tk.checkpoint_prefix("").encode())]
                assert len(hashes) == 3 * turns
            assert time.monotonic() < deadline, "the idle thread never expired"
            await asyncio.sleep(0.05)
        assert await saver.aget_tuple(cfg) is None


# -- get_delta_channel_history ------------------------------------------------------------


class CountingSaver(AsyncCimhubRedisSaver):
    """Counts round trips to Redis."""

    trips = 0

    async def _execute(self, run: Run) -> list[Any]:
        self.trips += 1
        return await super()._execute(run)


async def test_delta_history_matches_the_default_walk_in_a_few_round_trips(
    redis_client: aioredis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    saver = CountingSaver(redis_client, key_prefix=key_prefix)
    graph = conversation(saver)
    cfg = thread("cim-history")
    for turn in range(40):
        await graph.ainvoke({"messages": [], "turn": turn}, cfg)
    # a fork from the middle: the history follows the fork's own parent chain
    middle = [c async for c in saver.alist(cfg)][50]
    forked = await graph.aupdate_state(middle.config, {"messages": ["fork"]})
    targets = [cfg, middle.config, forked, *[c.config async for c in saver.alist(cfg, limit=7)]]
    for target in targets:
        default = await BaseCheckpointSaver.aget_delta_channel_history(
            saver, config=target, channels=["messages", "turn", "absent"]
        )
        saver.trips = 0
        ours = await saver.aget_delta_channel_history(config=target, channels=["messages", "turn", "absent"])
        assert ours == default
        assert saver.trips == 1  # 120 checkpoints: one bounded script call
        assert await asyncio.to_thread(
            lambda t=target: saver.get_delta_channel_history(config=t, channels=["messages"])
        ) == {"messages": default["messages"]}

    # With a tiny bound the walk takes more calls and gives the same answer.
    monkeypatch.setattr(history, "HISTORY_VISITS", 4)
    default = await BaseCheckpointSaver.aget_delta_channel_history(saver, config=cfg, channels=["messages", "absent"])
    saver.trips = 0
    assert await saver.aget_delta_channel_history(config=cfg, channels=["messages", "absent"]) == (default)
    assert saver.trips > 1
    assert await saver.aget_delta_channel_history(config=cfg, channels=[]) == {}
    missing = thread("cim-nothing")
    assert await saver.aget_delta_channel_history(config=missing, channels=["messages"]) == {"messages": {"writes": []}}


def test_sync_saver_delta_history_matches_the_default_walk(redis_url: str, key_prefix: str) -> None:
    with CimhubRedisSaver.from_conn_string(redis_url, key_prefix=key_prefix) as saver:
        graph = conversation(saver)
        cfg = thread("cim-sync-history")
        for turn in range(10):
            graph.invoke(cast(Any, {"messages": [], "turn": turn}), cfg)
        assert graph.get_state(cfg).values["messages"] == [f"m{i}" for i in range(10)]
        default = BaseCheckpointSaver.get_delta_channel_history(saver, config=cfg, channels=["messages"])
        assert saver.get_delta_channel_history(config=cfg, channels=["messages"]) == default
        assert default["messages"]["writes"]
