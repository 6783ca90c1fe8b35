"""Real compiled StateGraphs on the Redis savers: what LangGraph users actually do.

Human in the loop (interrupt, resume), time travel (history, replay and fork
from a past checkpoint), subgraphs, parallel branches with pending writes,
every durability mode, with both the async and the sync saver.
"""

from __future__ import annotations

import asyncio
import operator
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Literal, TypedDict

import pytest
import redis.asyncio as aioredis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.types import ERROR
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt

from cimhub.server.checkpoint import AsyncCimhubRedisSaver, CimhubRedisSaver

Durability = Literal["exit", "async", "sync"]
DURABILITIES: list[Durability] = ["exit", "async", "sync"]


class Outline(TypedDict, total=False):
    steps: Annotated[list[str], operator.add]
    answer: str


def thread(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


@pytest.fixture
async def saver(redis_client: aioredis.Redis, key_prefix: str) -> AsyncIterator[AsyncCimhubRedisSaver]:
    yield AsyncCimhubRedisSaver(redis_client, key_prefix=key_prefix)


@pytest.fixture
def sync_saver(redis_url: str, key_prefix: str) -> Iterator[CimhubRedisSaver]:
    with CimhubRedisSaver.from_url(redis_url, key_prefix=key_prefix) as saver:
        yield saver


def review_graph(checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any, Any, Any, Any]:
    """draft -> review (asks a human) -> publish."""

    def review(state: Outline) -> Outline:
        answer = interrupt({"question": "approve the outline?", "steps": state["steps"]})
        return {"answer": answer, "steps": ["review"]}

    builder = StateGraph(Outline)
    builder.add_node("draft", lambda state: {"steps": ["draft"]})
    builder.add_node("review", review)
    builder.add_node("publish", lambda state: {"steps": [f"publish:{state['answer']}"]})
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "review")
    builder.add_edge("review", "publish")
    builder.add_edge("publish", END)
    return builder.compile(checkpointer=checkpointer)


def chain_graph(checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any, Any, Any, Any]:
    """a -> b -> c, each appending its name."""
    builder = StateGraph(Outline)
    for name in ("a", "b", "c"):
        builder.add_node(name, lambda state, name=name: {"steps": [name]})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", END)
    return builder.compile(checkpointer=checkpointer)


def fan_out_graph(
    checkpointer: BaseCheckpointSaver[Any], runs: dict[str, int]
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """START -> (steady, flaky) in parallel -> join. `flaky` fails on its first run.

    The first failure of a step cancels the tasks still running, so `flaky`
    fails only after `steady` has returned (and LangGraph has had a moment to
    record its writes): the point is what the saver keeps, not the race.
    """
    steady_done = threading.Event()

    def steady(state: Outline) -> Outline:
        runs["steady"] = runs.get("steady", 0) + 1
        steady_done.set()
        return {"steps": ["steady"]}

    def flaky(state: Outline) -> Outline:
        runs["flaky"] = runs.get("flaky", 0) + 1
        if runs["flaky"] == 1:
            steady_done.wait(10)
            time.sleep(0.2)
            raise RuntimeError("flaky failed")
        return {"steps": ["flaky"]}

    builder = StateGraph(Outline)
    builder.add_node("steady", steady)
    builder.add_node("flaky", flaky)
    builder.add_node("join", lambda state: {"steps": ["join"]})
    builder.add_edge(START, "steady")
    builder.add_edge(START, "flaky")
    builder.add_edge(["steady", "flaky"], "join")
    builder.add_edge("join", END)
    return builder.compile(checkpointer=checkpointer)


# -- human in the loop ---------------------------------------------------------


@pytest.mark.parametrize("durability", DURABILITIES)
async def test_interrupt_and_resume(
    durability: Durability, saver: AsyncCimhubRedisSaver, redis_url: str, key_prefix: str
) -> None:
    graph = review_graph(saver)
    config = thread("cim-review")
    first = await graph.ainvoke({"steps": []}, config, durability=durability)
    assert first["steps"] == ["draft"]
    assert first["__interrupt__"][0].value["question"] == "approve the outline?"

    # A new saver on a new connection sees the interrupted state: it is in Redis.
    async with AsyncCimhubRedisSaver.from_url(redis_url, key_prefix=key_prefix) as other:
        state = await review_graph(other).aget_state(config)
        assert state.next == ("review",)
        assert state.tasks[0].interrupts[0].value["steps"] == ["draft"]
        final = await review_graph(other).ainvoke(Command(resume="yes"), config, durability=durability)
    assert final == {"steps": ["draft", "review", "publish:yes"], "answer": "yes"}
    history = [snapshot async for snapshot in graph.aget_state_history(config)]
    assert history[0].values == final
    assert history[0].next == ()
    if durability != "exit":
        assert [(h.metadata or {}).get("step") for h in history] == list(range(len(history) - 2, -2, -1))


@pytest.mark.parametrize("durability", DURABILITIES)
def test_interrupt_and_resume_sync(durability: Durability, sync_saver: CimhubRedisSaver) -> None:
    graph = review_graph(sync_saver)
    config = thread("cim-review-sync")
    first = graph.invoke({"steps": []}, config, durability=durability)
    assert "__interrupt__" in first
    assert graph.get_state(config).next == ("review",)
    final = graph.invoke(Command(resume="no"), config, durability=durability)
    assert final == {"steps": ["draft", "review", "publish:no"], "answer": "no"}
    assert next(iter(graph.get_state_history(config))).values == final


# -- time travel -----------------------------------------------------------------


async def test_time_travel_replay_and_fork(saver: AsyncCimhubRedisSaver) -> None:
    graph = chain_graph(saver)
    config = thread("cim-travel")
    assert (await graph.ainvoke({"steps": []}, config))["steps"] == ["a", "b", "c"]
    history = [snapshot async for snapshot in graph.aget_state_history(config)]
    before_b = next(h for h in history if h.next == ("b",))
    assert before_b.values["steps"] == ["a"]

    # Replay from the past: b and c run again on a new branch.
    replayed = await graph.ainvoke(None, before_b.config)
    assert replayed["steps"] == ["a", "b", "c"]

    # Fork: edit the past, then resume from the edit.
    forked = await graph.aupdate_state(before_b.config, {"steps": ["edited"]})
    fork_state = await graph.aget_state(forked)
    assert fork_state.values["steps"] == ["a", "edited"]
    assert fork_state.parent_config is not None
    assert fork_state.parent_config["configurable"]["checkpoint_id"] == before_b.config["configurable"]["checkpoint_id"]
    assert (await graph.ainvoke(None, forked))["steps"] == ["a", "edited", "b", "c"]

    # Every branch still reads back whole: values are shared per version, never overwritten.
    for past in history:
        again = await graph.aget_state(past.config)
        assert again.values == past.values
    latest = await graph.aget_state(config)
    assert latest.values["steps"] == ["a", "edited", "b", "c"]

    # Paging through history with before/limit gives the same sequence as one pass.
    full = [h.config["configurable"]["checkpoint_id"] async for h in graph.aget_state_history(config)]
    paged: list[str] = []
    cursor: RunnableConfig | None = None
    while True:
        page = [h async for h in graph.aget_state_history(config, before=cursor, limit=3)]
        if not page:
            break
        paged += [h.config["configurable"]["checkpoint_id"] for h in page]
        cursor = page[-1].config
    assert paged == full == sorted(full, reverse=True)


def test_time_travel_sync(sync_saver: CimhubRedisSaver) -> None:
    graph = chain_graph(sync_saver)
    config = thread("cim-travel-sync")
    graph.invoke({"steps": []}, config)
    before_c = next(h for h in graph.get_state_history(config) if h.next == ("c",))
    forked = graph.update_state(before_c.config, {"steps": ["x"]})
    assert graph.invoke(None, forked)["steps"] == ["a", "b", "x", "c"]
    assert graph.get_state(before_c.config).values["steps"] == ["a", "b"]


# -- subgraphs -------------------------------------------------------------------


async def test_subgraph_interrupt_resume_and_delete(saver: AsyncCimhubRedisSaver, redis_client: aioredis.Redis) -> None:
    def ask(state: Outline) -> Outline:
        return {"answer": interrupt("hero context?"), "steps": ["ask"]}

    inner = StateGraph(Outline)
    inner.add_node("ask", ask)
    inner.add_node("write", lambda state: {"steps": [f"write:{state['answer']}"]})
    inner.add_edge(START, "ask")
    inner.add_edge("ask", "write")
    inner.add_edge("write", END)
    outer = StateGraph(Outline)
    outer.add_node("plan", lambda state: {"steps": ["plan"]})
    outer.add_node("section", inner.compile())
    outer.add_edge(START, "plan")
    outer.add_edge("plan", "section")
    outer.add_edge("section", END)
    graph = outer.compile(checkpointer=saver)
    config = thread("cim-sub")

    await graph.ainvoke({"steps": []}, config)
    state = await graph.aget_state(config, subgraphs=True)
    assert state.next == ("section",)
    sub_state = state.tasks[0].state
    assert sub_state is not None and not isinstance(sub_state, dict)
    assert sub_state.next == ("ask",)
    assert sub_state.config["configurable"]["checkpoint_ns"].startswith("section:")
    namespaces = await redis_client.smembers(saver.keys.thread("cim-sub").namespaces)
    assert len(namespaces) == 2 and b"" in namespaces

    final = await graph.ainvoke(Command(resume="buyer persona"), config)
    assert final["steps"] == ["plan", "plan", "ask", "write:buyer persona"]

    await saver.adelete_thread("cim-sub")
    assert (await graph.aget_state(config)).values == {}
    assert [key async for key in redis_client.scan_iter(match=f"{saver.keys.thread('cim-sub').base}*")] == []


# -- parallel branches and pending writes -----------------------------------------------


@pytest.mark.parametrize("durability", DURABILITIES)
async def test_parallel_branch_failure_keeps_the_other_branch(
    durability: Durability, saver: AsyncCimhubRedisSaver
) -> None:
    runs: dict[str, int] = {}
    graph = fan_out_graph(saver, runs)
    config = thread("cim-fan")
    with pytest.raises(RuntimeError, match="flaky failed"):
        await graph.ainvoke({"steps": []}, config, durability=durability)

    latest = await saver.aget_tuple(config)
    assert latest is not None
    writes = latest.pending_writes or []
    assert ("steps", ["steady"]) in [(channel, value) for _, channel, value in writes]
    assert any(channel == ERROR for _, channel, _ in writes)
    state = await graph.aget_state(config)
    assert {task.name: task.error is not None for task in state.tasks} == {
        "steady": False,
        "flaky": True,
    }

    final = await graph.ainvoke(None, config, durability=durability)
    assert sorted(final["steps"]) == ["flaky", "join", "steady"]
    assert runs == {"steady": 1, "flaky": 2}  # steady's write was pending, so it did not run again


def test_parallel_branch_failure_sync(sync_saver: CimhubRedisSaver) -> None:
    runs: dict[str, int] = {}
    graph = fan_out_graph(sync_saver, runs)
    config = thread("cim-fan-sync")
    with pytest.raises(RuntimeError):
        graph.invoke({"steps": []}, config)
    assert sorted(graph.invoke(None, config)["steps"]) == ["flaky", "join", "steady"]
    assert runs == {"steady": 1, "flaky": 2}


# -- savers side by side -------------------------------------------------------------


async def test_sync_and_async_savers_share_threads(
    saver: AsyncCimhubRedisSaver, redis_url: str, key_prefix: str
) -> None:
    config = thread("cim-shared")
    await review_graph(saver).ainvoke({"steps": []}, config)
    with CimhubRedisSaver.from_url(redis_url, key_prefix=key_prefix) as sync:
        graph = review_graph(sync)
        final = await asyncio.to_thread(graph.invoke, Command(resume="ok"), config)
    assert final["steps"] == ["draft", "review", "publish:ok"]
    assert (await review_graph(saver).aget_state(config)).values == final


async def test_async_saver_sync_methods_from_another_thread(saver: AsyncCimhubRedisSaver) -> None:
    graph = chain_graph(saver)
    config = thread("cim-bridge")
    await graph.ainvoke({"steps": []}, config)
    state = await asyncio.to_thread(graph.get_state, config)
    assert state.values["steps"] == ["a", "b", "c"]
    assert len(await asyncio.to_thread(lambda: list(graph.get_state_history(config)))) == 5
    with pytest.raises(asyncio.InvalidStateError, match="event loop's thread"):
        graph.get_state(config)  # on the event loop's own thread it would deadlock: refused


async def test_delete_for_runs_keeps_values_other_runs_read(saver: AsyncCimhubRedisSaver) -> None:
    graph = review_graph(saver)
    config: RunnableConfig = {
        "configurable": {"thread_id": "cim-runs"},
        "metadata": {"run_id": "run-1"},
    }
    await graph.ainvoke({"steps": []}, config)
    resumed: RunnableConfig = {
        "configurable": {"thread_id": "cim-runs"},
        "metadata": {"run_id": "run-2"},
    }
    final = await graph.ainvoke(Command(resume="yes"), resumed)

    await saver.adelete_for_runs(["run-1"])
    history = [h async for h in graph.aget_state_history(thread("cim-runs"))]
    assert history and {(h.metadata or {}).get("run_id") for h in history} == {"run-2"}
    # run-2's checkpoints read channel versions run-1 wrote (e.g. "steps" after draft): still there.
    assert (await graph.aget_state(thread("cim-runs"))).values == final
