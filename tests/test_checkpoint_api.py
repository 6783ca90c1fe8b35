"""The official savers' API: code written from LangGraph's persistence docs runs unchanged.

`setup`/`asetup`, `from_conn_string`, sync methods of the async saver from
another thread before any async call (and with no loop at all), uuid.UUID
thread ids, and a package that imports nothing of the hub.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from typing import Annotated, Any, TypedDict

import pytest
import redis.asyncio as aioredis
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from cimhub.server.checkpoint import AsyncCimhubRedisSaver, CimhubRedisSaver, PoolOptions
from cimhub.server.checkpoint.connect import async_client


class Outline(TypedDict):
    sections: Annotated[list[str], lambda old, new: old + new]


def outline_builder() -> StateGraph[Outline]:
    builder = StateGraph(Outline)
    builder.add_node("draft", lambda state: {"sections": ["draft"]})
    builder.add_edge(START, "draft")
    builder.add_edge("draft", END)
    return builder


def test_langgraph_docs_sync_example_runs_unchanged(redis_url: str, key_prefix: str) -> None:
    # As in LangGraph's persistence docs for PostgresSaver, with only the import changed.
    with CimhubRedisSaver.from_conn_string(redis_url, key_prefix=key_prefix) as checkpointer:
        checkpointer.setup()
        graph = outline_builder().compile(checkpointer=checkpointer)
        config: RunnableConfig = {"configurable": {"thread_id": "1"}}
        graph.invoke({"sections": []}, config)
        graph.invoke({"sections": []}, config)
        assert graph.get_state(config).values == {"sections": ["draft", "draft"]}
        assert len(list(graph.get_state_history(config))) == 6
        checkpointer.delete_thread("1")
        assert checkpointer.get_tuple(config) is None


async def test_langgraph_docs_async_example_runs_unchanged(redis_url: str, key_prefix: str) -> None:
    async with AsyncCimhubRedisSaver.from_conn_string(redis_url, key_prefix=key_prefix) as checkpointer:
        await checkpointer.setup()  # a coroutine, as on AsyncPostgresSaver
        await checkpointer.asetup()
        graph = outline_builder().compile(checkpointer=checkpointer)
        config: RunnableConfig = {"configurable": {"thread_id": "1"}}
        await graph.ainvoke({"sections": []}, config)
        assert (await graph.aget_state(config)).values == {"sections": ["draft"]}


async def test_scripts_are_loaded_by_setup(redis_url: str, key_prefix: str) -> None:
    async with AsyncCimhubRedisSaver.from_conn_string(redis_url, key_prefix=key_prefix) as saver:
        await saver.client.script_flush()
        await saver.asetup()
        from cimhub.server.checkpoint.scripts import SCRIPTS

        loaded = await saver.client.script_exists(*(s.sha for s in SCRIPTS.all()))
        assert all(loaded)


async def test_async_saver_sync_methods_work_from_another_thread_before_any_async_call(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    saver = AsyncCimhubRedisSaver(redis_client, key_prefix=key_prefix)
    graph = outline_builder().compile(checkpointer=saver)
    config: RunnableConfig = {"configurable": {"thread_id": "cim-first-sync"}}
    result = await asyncio.to_thread(graph.invoke, {"sections": []}, config)
    assert result == {"sections": ["draft"]}
    assert (await graph.aget_state(config)).values == {"sections": ["draft"]}


def test_async_saver_sync_methods_work_with_no_event_loop(redis_url: str, key_prefix: str) -> None:
    client = async_client(redis_url, PoolOptions())  # on a cluster run, a RedisCluster: its twin is one too
    saver = AsyncCimhubRedisSaver(client, key_prefix=key_prefix)
    graph = outline_builder().compile(checkpointer=saver)
    config: RunnableConfig = {"configurable": {"thread_id": "cim-no-loop"}}
    assert graph.invoke({"sections": []}, config) == {"sections": ["draft"]}
    assert graph.get_state(config).values == {"sections": ["draft"]}

    async def read_async() -> Any:
        try:
            return (await graph.aget_state(config)).values
        finally:
            await client.aclose()

    assert asyncio.run(read_async()) == {"sections": ["draft"]}


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_uuid_thread_ids_are_accepted_in_direct_calls(redis_url: str, key_prefix: str, kind: str) -> None:
    thread_id = uuid.uuid4()
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    if kind == "async":
        async with AsyncCimhubRedisSaver.from_conn_string(redis_url, key_prefix=key_prefix) as a:
            graph = outline_builder().compile(checkpointer=a)
            await graph.ainvoke({"sections": []}, config)
            same = await a.aget_tuple({"configurable": {"thread_id": str(thread_id)}})
            assert same is not None
            await a.adelete_thread(thread_id)
            assert await a.aget_tuple(config) is None
    else:
        with CimhubRedisSaver.from_conn_string(redis_url, key_prefix=key_prefix) as s:
            graph = outline_builder().compile(checkpointer=s)
            graph.invoke({"sections": []}, config)
            assert s.get_tuple({"configurable": {"thread_id": str(thread_id)}}) is not None
            s.copy_thread(thread_id, uuid.uuid4())
            s.delete_thread(thread_id)
            assert s.get_tuple(config) is None


def test_pool_options_are_checked() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        PoolOptions(max_connections=0)
    with pytest.raises(ValueError, match="retries"):
        PoolOptions(retries=-1)


def test_the_saver_package_imports_nothing_of_the_hub() -> None:
    probe = "import json, sys\nimport cimhub.server.checkpoint as saver\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    modules = set(json.loads(done.stdout))
    assert "cimhub.server.checkpoint.aio" in modules
    forbidden = {
        "starlette", "uvicorn", "websockets", "pydantic_settings", "supabase", "numpy",
        "msgpack", "jsonpatch", "httpx", "psycopg", "prometheus_client", "joserfc", "click",
        "langgraph.graph", "langgraph.pregel",
    }  # fmt: skip
    pulled = {m for m in modules if m.split(".")[0] in forbidden or m in forbidden}
    ours = {m for m in modules if m.startswith("cimhub.")}
    hub = {m for m in ours if not m.startswith("cimhub.server.checkpoint")} - {"cimhub.server"}
    assert not pulled, sorted(pulled)
    assert not hub, sorted(hub)
