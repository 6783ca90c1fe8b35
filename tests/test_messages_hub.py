"""Conversation messages through a real hub: addMessage, the messages: topic, list and search queries, the CLI."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pytest
import redis.asyncio as aioredis
import websockets
from click.testing import CliRunner
from hubproc import HubProcess, start_hub
from support.waiting import eventually

from cimhub.clients.cli import cli
from cimhub.clients.client import Client
from cimhub.protocol.errors import InvalidInput, NotFound

DIM = 8


@pytest.fixture(scope="module")
def hub(redis_server: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    with start_hub(redis_server.url, prefix, embedding_dimension=DIM) as running:  # type: ignore[attr-defined]
        yield running


def unit(seed: int) -> list[float]:
    vector = np.random.default_rng(seed).normal(size=DIM)
    return [float(x) for x in vector / np.linalg.norm(vector)]


async def new_cim(client: Client) -> str:
    created = await client.mutate("create", {"dealId": "d1", "projectId": "p1", "title": "Talk"})
    return str(created.cim_id)


async def test_added_messages_stream_to_subscribers_in_order_and_resume(hub: HubProcess) -> None:
    async with Client(hub.ws_url, token=hub.token("u1")) as writer, Client(hub.ws_url, token=hub.token("u1")) as reader:
        cim = await new_cim(writer)
        await writer.mutate("addMessage", {"cimId": cim, "role": "user", "content": "hello"})
        sub = await reader.subscribe(f"messages:{cim}")
        assert [m["content"] for m in sub.document["messages"]] == ["hello"]
        assert sub.revision == 1
        for i in range(5):
            await writer.mutate("addMessage", {"cimId": cim, "role": "assistant", "content": f"reply {i}"})

        async def five() -> None:
            seen = 0
            async for _change in sub:
                seen += 1
                if seen == 5:
                    return

        await asyncio.wait_for(five(), 10)
        assert sub.revision == 6
        assert [m["content"] for m in sub.document["messages"]] == ["hello"] + [f"reply {i}" for i in range(5)]


async def test_add_message_is_exactly_once_by_mutation_id(hub: HubProcess) -> None:
    async with Client(hub.ws_url, token=hub.token("u1")) as client:
        cim = await new_cim(client)
        first = await client.mutate(
            "addMessage", {"cimId": cim, "role": "user", "content": "once"}, mutation_id="msg-1"
        )
        again = await client.mutate(
            "addMessage", {"cimId": cim, "role": "user", "content": "once"}, mutation_id="msg-1"
        )
        assert first.result == again.result and again.duplicate and not first.duplicate
        page = await client.query("messages", {"cimId": cim, "order": "oldest"})
        assert [m["content"] for m in page["items"]] == ["once"]


async def test_search_returns_the_exact_nearest_messages(hub: HubProcess) -> None:
    async with Client(hub.ws_url, token=hub.token("u1")) as client:
        cim = await new_cim(client)
        vectors = [unit(i) for i in range(20)]
        for i, vector in enumerate(vectors):
            role = "user" if i % 2 else "assistant"
            await client.mutate("addMessage", {"cimId": cim, "role": role, "content": f"m{i}", "embedding": vector})
        query = unit(100)
        scores = np.array(vectors) @ np.array(query)
        expected = [f"m{i}" for i in np.argsort(-scores)[:3]]
        found = await client.query("searchMessages", {"cimId": cim, "vector": query, "k": 3})
        assert [hit["content"] for hit in found["hits"]] == expected
        users = await client.query("searchMessages", {"cimId": cim, "vector": query, "k": 3, "role": "user"})
        assert all(hit["role"] == "user" for hit in users["hits"])


async def test_bad_vectors_and_unknown_cims_are_refused_and_change_nothing(hub: HubProcess) -> None:
    async with Client(hub.ws_url, token=hub.token("u1")) as client:
        cim = await new_cim(client)
        with pytest.raises(InvalidInput) as wrong_size:
            await client.mutate("addMessage", {"cimId": cim, "role": "user", "content": "x", "embedding": [1.0, 2.0]})
        assert wrong_size.value.retryable is False
        with pytest.raises(InvalidInput):
            await client.query("searchMessages", {"cimId": cim, "vector": [math.inf] * DIM})
        with pytest.raises(NotFound):
            await client.mutate("addMessage", {"cimId": "no-such-cim", "role": "user", "content": "x"})
        page = await client.query("messages", {"cimId": cim})
        assert page["items"] == []


async def test_deleting_the_cim_deletes_its_messages(hub: HubProcess) -> None:
    async with Client(hub.ws_url, token=hub.token("u1")) as client:
        cim = await new_cim(client)
        await client.mutate("addMessage", {"cimId": cim, "role": "user", "content": "bye", "embedding": unit(1)})
        await client.mutate("delete", {"cimId": cim})
        with pytest.raises(NotFound):
            await client.query("messages", {"cimId": cim})


def test_the_cli_adds_and_searches_messages(hub: HubProcess) -> None:
    runner = CliRunner()
    base = ["--url", hub.url, "--token", hub.token("u1")]
    created = runner.invoke(
        cli, [*base, "mutate", "create", "--args", '{"dealId":"d1","projectId":"p1","title":"CLI"}']
    )
    assert created.exit_code == 0, created.output
    cim = orjson.loads(created.output)["cimId"]
    args = orjson.dumps({"cimId": cim, "role": "user", "content": "remember EBITDA", "embedding": unit(7)}).decode()
    added = runner.invoke(cli, [*base, "mutate", "addMessage", "--args", args])
    assert added.exit_code == 0, added.output
    search = orjson.dumps({"cimId": cim, "vector": unit(7), "k": 1}).decode()
    found = runner.invoke(cli, [*base, "query", "searchMessages", "--args", search])
    assert found.exit_code == 0, found.output
    hits = orjson.loads(found.output)["hits"]
    assert hits[0]["content"] == "remember EBITDA" and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.single_node  # restores keys by DUMP/RESTORE through a single-node client, as tests/test_rollback.py does
async def test_after_a_rollback_messages_replicas_are_reset_never_given_another_history(
    hub: HubProcess, redis_server: object
) -> None:
    """Redis comes back older (keys restored from a copy): seq 3 and 4 then name other messages.

    A live replica and one resuming from the lost seq 4 both end up equal to the stored conversation
    through a reset snapshot; the acknowledged messages the restore took are visibly gone, never mixed in.
    """
    admin = aioredis.from_url(redis_server.url)  # type: ignore[attr-defined]
    prefix = hub.env["CIMHUB_KEY_PREFIX"]
    async with Client(hub.ws_url, token=hub.token("u1")) as writer, Client(hub.ws_url, token=hub.token("u1")) as live:

        async def say(content: str) -> None:
            await writer.mutate("addMessage", {"cimId": cim, "role": "user", "content": content})

        cim = await new_cim(writer)
        for content in ("k1", "k2"):
            await say(content)
        sub = await live.subscribe(f"messages:{cim}")
        changes: list[Any] = []

        async def follow() -> None:
            async for change in sub:
                changes.append(change)

        following = asyncio.ensure_future(follow())
        saved = {key: await admin.dump(key) async for key in admin.scan_iter(match=f"{prefix}:*{{{cim}}}*")}
        for content in ("l1", "l2"):
            await say(content)
        async with websockets.connect(hub.ws_url) as ws:  # an offline replica: it leaves holding seq 4
            await ws.send(orjson.dumps({"type": "auth", "token": hub.token("u1")}).decode())
            await ws.send(orjson.dumps({"type": "subscribe", "id": "s1", "topic": f"messages:{cim}"}).decode())
            held = await next_frame(ws, "snapshot")
        assert (held["revision"], [m["content"] for m in held["data"]["messages"]]) == (4, ["k1", "k2", "l1", "l2"])
        assert held["commit"]

        async for key in admin.scan_iter(match=f"{prefix}:*{{{cim}}}*"):
            if key not in saved:
                await admin.delete(key)
        for key, dumped in saved.items():
            await admin.restore(key, 0, dumped, replace=True)
        for content in ("n1", "n2", "n3"):
            await say(content)  # seqs 3, 4, 5 of another history, under the same epoch

        stored = ["k1", "k2", "n1", "n2", "n3"]
        await eventually(
            lambda: [m["content"] for m in (sub.document or {}).get("messages", [])] == stored,
            15,
            what="the live replica holds the stored messages",
        )
        assert any(change.reset for change in changes), changes
        assert sub.revision == 5
        following.cancel()

        resume = {"revision": 4, "epoch": held["epoch"], "commit": held["commit"]}
        async with websockets.connect(hub.ws_url) as ws:
            await ws.send(orjson.dumps({"type": "auth", "token": hub.token("u1")}).decode())
            subscribe = {"type": "subscribe", "id": "s2", "topic": f"messages:{cim}", "resume": resume}
            await ws.send(orjson.dumps(subscribe).decode())
            first = await next_frame(ws, "snapshot", "patch", "subscribed")
        assert (first["type"], first["reset"], first["revision"]) == ("snapshot", True, 5)
        assert [m["content"] for m in first["data"]["messages"]] == stored
    await admin.aclose()


async def next_frame(ws: Any, *types: str) -> dict[str, Any]:
    """The next frame of one of `types` (skipping ready, ping and the like)."""
    async with asyncio.timeout(15):
        while True:
            frame: dict[str, Any] = orjson.loads(await ws.recv())
            if frame["type"] in types:
                return frame
