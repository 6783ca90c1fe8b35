"""The CIM agent: a real LangGraph graph on cimhub's Redis saver, driving a real hub.

It must pause for the banker (interrupt), resume from its checkpoints, build a
slide per outline section through mutations, and never apply a step twice
when LangGraph runs it again.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from click.testing import CliRunner
from hubproc import HubProcess, start_hub
from langgraph.types import Command

from cimhub.clients.agent import build_graph, run_until_pause
from cimhub.clients.cli import cli
from cimhub.clients.client import Client
from cimhub.server.checkpoint import AsyncCimhubRedisSaver


@pytest.fixture
def hub(redis_url: str, key_prefix: str) -> Iterator[HubProcess]:
    with start_hub(redis_url, key_prefix) as running:
        yield running


@pytest.fixture
async def saver(redis_url: str, key_prefix: str) -> AsyncIterator[AsyncCimhubRedisSaver]:
    async with AsyncCimhubRedisSaver.from_url(redis_url, key_prefix=key_prefix) as running:
        yield running


async def test_agent_pauses_for_the_banker_and_builds_every_section(
    hub: HubProcess, saver: AsyncCimhubRedisSaver
) -> None:
    async with Client(hub.ws_url, token=hub.token("banker")) as client:
        sent: list[tuple[str, str, bool]] = []

        async def mutate(name: str, args: dict[str, Any], mutation_id: str) -> dict[str, Any]:
            done = await client.mutate(name, args, mutation_id=mutation_id)
            sent.append((name, mutation_id, done.duplicate))
            return {"result": done.result, "revision": done.revision}

        cim = str((await client.mutate("create", {"dealId": "d1", "projectId": "p1", "title": "Acme"})).cim_id)
        watcher = await client.subscribe(f"cim:{cim}")
        graph = build_graph(mutate, saver)

        question = await run_until_pause(graph, cim, {"cimId": cim, "dealName": "Acme"})
        assert question is not None and "buyer" in question["question"]
        assert (await client.query("get", {"cimId": cim}))["cim"]["stage"] == "buyer_persona"

        persona = {"type": "strategic acquirer", "motivations": ["synergies"], "concerns": ["integration"]}
        question = await run_until_pause(graph, cim, Command(resume=persona))
        assert question is not None and question["outline"]
        assert await run_until_pause(graph, cim, Command(resume="accept")) is None

        final = (await client.query("get", {"cimId": cim}))["cim"]
        assert final["buyerPersona"] == persona
        assert final["stage"] == "building_sections"
        assert [s["sectionId"] for s in final["slides"]] == [s["id"] for s in final["outline"]]
        assert all(progress["status"] == "in_progress" for progress in final["sectionProgress"].values())
        # The subscriber saw every step land.
        async for _change in watcher:
            if watcher.revision == final["revision"]:
                break
        assert watcher.document == final
        assert not any(duplicate for _, _, duplicate in sent)


async def test_a_step_run_again_applies_nothing_twice(hub: HubProcess, saver: AsyncCimhubRedisSaver) -> None:
    async with Client(hub.ws_url, token=hub.token("banker")) as client:
        duplicates: list[bool] = []

        async def mutate(name: str, args: dict[str, Any], mutation_id: str) -> dict[str, Any]:
            done = await client.mutate(name, args, mutation_id=mutation_id)
            duplicates.append(done.duplicate)
            return {"result": done.result, "revision": done.revision}

        cim = str((await client.mutate("create", {"dealId": "d1", "projectId": "p1", "title": "Beta"})).cim_id)
        graph = build_graph(mutate, saver)
        await run_until_pause(graph, cim, {"cimId": cim, "dealName": "Beta"})
        await run_until_pause(graph, cim, Command(resume="accept"))
        await run_until_pause(graph, cim, Command(resume="accept"))
        revision = (await client.query("get", {"cimId": cim}))["revision"]

        # Time travel: run the graph again from the checkpoint before the first slide.
        config = {"configurable": {"thread_id": cim}}
        history = [state async for state in graph.aget_state_history(config)]
        before_slides = next(s for s in reversed(history) if s.next == ("build_section",))
        duplicates.clear()
        await graph.ainvoke(None, before_slides.config)
        assert duplicates and all(duplicates), "every replayed mutation must be answered as a duplicate"
        assert (await client.query("get", {"cimId": cim}))["revision"] == revision


async def test_deleting_the_cim_deletes_the_agents_checkpoints(
    hub: HubProcess, saver: AsyncCimhubRedisSaver, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    async with Client(hub.ws_url, token=hub.token("banker")) as client:

        async def mutate(name: str, args: dict[str, Any], mutation_id: str) -> dict[str, Any]:
            done = await client.mutate(name, args, mutation_id=mutation_id)
            return {"result": done.result, "revision": done.revision}

        cim = str((await client.mutate("create", {"dealId": "d1", "projectId": "p1", "title": "Gamma"})).cim_id)
        await run_until_pause(build_graph(mutate, saver), cim, {"cimId": cim, "dealName": "Gamma"})
        assert await saver.aget_tuple({"configurable": {"thread_id": cim}}) is not None
        await client.mutate("delete", {"cimId": cim})
        assert await saver.aget_tuple({"configurable": {"thread_id": cim}}) is None
        leftovers = [key async for key in redis_client.scan_iter(match=f"{key_prefix}:*{{{cim}}}*")]
        # Only idempotency records stay, so a retried delete still answers; each expires.
        ttls = [await redis_client.ttl(key) for key in leftovers]
        assert all(b":mut:" in key for key in leftovers), leftovers
        assert all(ttl > 0 for ttl in ttls)


def test_the_agent_command_runs_to_the_end(hub: HubProcess, redis_url: str, key_prefix: str) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "--url",
            hub.url,
            "--token",
            hub.token("banker"),
            "agent",
            "--auto",
            "--delay",
            "0",
            "--redis-url",
            redis_url,
            "--key-prefix",
            key_prefix,
            "--title",
            f"Delta {uuid.uuid4().hex[:6]}",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "done: every section has a slide" in result.output
    assert result.output.count("updateSlide") == 4
