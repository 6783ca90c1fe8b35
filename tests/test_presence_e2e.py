"""Presence end to end: real hub processes, real Redis, the Python client; a hub killed with SIGKILL.

Members are watched through ``presence:<cimId>`` on one hub while people and
an agent join through others, so every join and leave crosses processes
through Redis pub/sub. Waits are bounded (`TIMEOUT`), never timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import redis
from conftest import RedisServer
from hubproc import HubProcess, start_hub

from cimhub.clients.client import Client
from cimhub.clients.replica import Change
from cimhub.clients.subscription import Subscription
from cimhub.protocol.errors import CimhubError, ErrorCode
from cimhub.server.embedded import free_port

TIMEOUT = 20.0
PRESENCE_TTL_S = 1.5


@pytest.fixture(scope="module")
def prefix(redis_server: RedisServer) -> Iterator[str]:
    name = f"pres{uuid.uuid4().hex[:10]}"
    yield name
    with contextlib.suppress(redis.RedisError), redis_server.sync_client() as client:
        for key in client.scan_iter(match=f"{name}:*", count=1000):
            client.delete(key)


@pytest.fixture(scope="module")
def hubs(redis_server: RedisServer, prefix: str) -> Iterator[tuple[HubProcess, HubProcess]]:
    """Two hubs on one Redis, with a short presence TTL and room for three members per CIM."""
    settings: dict[str, Any] = {"presence_ttl_s": PRESENCE_TTL_S, "presence_max_per_cim": 3}
    with start_hub(redis_server.url, prefix, **settings) as one, start_hub(redis_server.url, prefix, **settings) as two:
        yield one, two


async def create_cim(hub: HubProcess) -> str:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        response = await http.post(
            f"{hub.url}/v1/mutate",
            json={
                "name": "create",
                "args": {"dealId": "d-pres", "projectId": "p1", "title": "Atlas"},
                "mutationId": uuid.uuid4().hex,
            },
            headers={"authorization": f"Bearer {hub.token('banker-1')}"},
        )
    assert response.status_code == 200, response.text
    return str(response.json()["cimId"])


@contextlib.asynccontextmanager
async def client(hub: HubProcess, user: str, *, service: bool = False, retries: int = 8) -> AsyncIterator[Client]:
    token = hub.token("agent" if service else user, role="service_role" if service else "authenticated")
    async with Client(hub.url, token=token, act_as=user if service else None, retry_limit=retries) as c:
        yield c


async def next_change(sub: Subscription) -> Change:
    return await asyncio.wait_for(sub.__anext__(), TIMEOUT)


async def until(sub: Subscription, predicate: Any) -> Change:
    """The first change whose resulting members map satisfies `predicate`."""
    while True:
        change = await next_change(sub)
        if predicate(change.document):
            return change


def who(members: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["actor"]: m["state"] for m in members.values()}


async def test_two_people_and_an_agent_see_each_others_presence_across_hubs(
    hubs: tuple[HubProcess, HubProcess],
) -> None:
    one, two = hubs
    cim = await create_cim(one)
    async with (
        client(one, "banker-1") as alice,
        client(two, "banker-2") as bob,
        client(two, "banker-1", service=True) as agent,
    ):
        watch = await alice.subscribe(f"presence:{cim}")
        assert watch.document == {}
        mine = await alice.set_presence(cim, {"activity": "viewing", "name": "Alice"})
        joined = await until(watch, lambda m: "banker-1" in who(m))
        assert joined.mutation == "join" and joined.ops[0]["op"] == "add" and joined.ops[0]["path"] == f"/{mine}"
        await bob.set_presence(cim, {"activity": "editing", "slideId": "slide-3"})
        await agent.set_presence(cim, {"activity": "drafting", "sectionId": "financials"})
        members = (await until(watch, lambda m: len(m) == 3)).document
        assert who(members) == {
            "banker-1": {"activity": "viewing", "name": "Alice"},
            "banker-2": {"activity": "editing", "slideId": "slide-3"},
            "service:service_role/banker-1": {"activity": "drafting", "sectionId": "financials"},
        }
        # A watcher on the other hub gets the same snapshot.
        seen_from_two = await bob.subscribe(f"presence:{cim}")
        assert who(seen_from_two.document) == who(members)
        # An update keeps the presence id; leaving removes it; both reach the other hub.
        await bob.set_presence(cim, {"activity": "editing", "slideId": "slide-4"})
        update = await until(watch, lambda m: who(m).get("banker-2", {}).get("slideId") == "slide-4")
        assert update.mutation == "update"
        await agent.set_presence(cim, None)
        left = await until(watch, lambda m: len(m) == 2)
        assert left.mutation == "leave" and left.ops[0]["op"] == "remove"
        await until(seen_from_two, lambda m: len(m) == 2)
    # The clients closed their sockets: their members leave at once (no TTL wait needed, but none asserted).
    async with client(one, "banker-3") as carol:
        watch = await carol.subscribe(f"presence:{cim}")
        final = watch.document if not watch.document else (await until(watch, lambda m: m == {})).document
        assert final == {}


async def test_a_killed_hubs_members_expire_and_their_leave_reaches_other_hubs(
    redis_server: RedisServer,
    prefix: str,
    hubs: tuple[HubProcess, HubProcess],
) -> None:
    one, _two = hubs
    cim = await create_cim(one)
    with start_hub(redis_server.url, prefix, presence_ttl_s=PRESENCE_TTL_S) as doomed:
        async with client(one, "banker-1") as watcher:
            watch = await watcher.subscribe(f"presence:{cim}")
            victim = Client(doomed.url, token=doomed.token("banker-2"))
            await victim.connect()
            try:
                await victim.set_presence(cim, {"activity": "editing", "slideId": "s1"})
                await until(watch, lambda m: "banker-2" in who(m))
                doomed.kill()  # SIGKILL: no leave is ever sent by that hub
                gone = await until(watch, lambda m: "banker-2" not in who(m))
                assert gone.mutation == "leave" and gone.actor == "banker-2"
            finally:
                await victim.aclose()
    with redis_server.sync_client() as raw:
        assert raw.hlen(f"{prefix}:cim:{{{cim}}}:presence") == 0


async def test_presence_is_validated_bounded_and_checked_like_the_cim(hubs: tuple[HubProcess, HubProcess]) -> None:
    one, _ = hubs
    cim = await create_cim(one)
    async with client(one, "banker-1") as alice:
        for state, path in (
            ({"activity": "dancing"}, "state.activity"),
            ({"activity": "viewing", "mood": "happy"}, "state.mood"),
            ({"name": "x" * 500}, "state.name"),
        ):
            with pytest.raises(CimhubError) as bad:
                await alice.set_presence(cim, state)
            assert bad.value.code == ErrorCode.INVALID_ARGS and bad.value.path == path
        with pytest.raises(CimhubError) as missing:
            await alice.set_presence("no-such-cim", {"activity": "viewing"})
        assert missing.value.code == ErrorCode.NOT_FOUND
        with pytest.raises(CimhubError) as no_topic:
            await alice.subscribe("presence:no-such-cim")
        assert no_topic.value.code == ErrorCode.NOT_FOUND
        watch = await alice.subscribe(f"presence:{cim}")
        assert watch.document == {}
        # Three members fit (the hubs' presence_max_per_cim); the fourth is refused, retryably.
        async with client(one, "u2") as u2, client(one, "u3") as u3, client(one, "u4", retries=0) as u4:
            for c in (alice, u2, u3):
                await c.set_presence(cim, {"activity": "viewing"})
            with pytest.raises(CimhubError) as full:
                await u4.set_presence(cim, {"activity": "viewing"})
            assert full.value.code == ErrorCode.OVERLOADED and full.value.retryable
            await until(watch, lambda m: len(m) == 3)


async def test_a_graceful_restart_says_leave_and_the_python_client_joins_again(
    redis_server: RedisServer,
    prefix: str,
    hubs: tuple[HubProcess, HubProcess],
) -> None:
    one, _ = hubs
    cim = await create_cim(one)
    port = free_port()
    async with client(one, "banker-1") as watcher:
        watch = await watcher.subscribe(f"presence:{cim}")
        with start_hub(redis_server.url, prefix, port=port, presence_ttl_s=PRESENCE_TTL_S) as first:
            bob = Client(first.url, token=first.token("banker-2"))
            await bob.connect()
            try:
                joined = await bob.set_presence(cim, {"activity": "editing", "slideId": "s2"})
                await until(watch, lambda m: joined in m)
                first.terminate()  # SIGTERM: a graceful shutdown says leave at once
                gone = await until(watch, lambda m: joined not in m)
                assert gone.mutation == "leave"
                with start_hub(redis_server.url, prefix, port=port, presence_ttl_s=PRESENCE_TTL_S):
                    # The client reconnects by itself and sets its presence again (a new presence id).
                    back = await until(watch, lambda m: "banker-2" in who(m))
                    assert back.mutation == "join" and who(back.document)["banker-2"] == {
                        "activity": "editing",
                        "slideId": "s2",
                    }
            finally:
                await bob.aclose()


async def test_presence_changes_share_the_connections_rate_limit(redis_server: RedisServer, prefix: str) -> None:
    with start_hub(redis_server.url, prefix, mutations_per_second=0.5, mutation_burst=2) as slow:
        cim = await create_cim(slow)  # over HTTP: not this connection's bucket
        async with client(slow, "banker-1", retries=0) as alice:
            await alice.set_presence(cim, {"activity": "viewing"})
            await alice.set_presence(cim, {"activity": "editing", "slideId": "s1"})
            with pytest.raises(CimhubError) as limited:
                await alice.set_presence(cim, {"activity": "editing", "slideId": "s2"})
            assert limited.value.code == ErrorCode.RATE_LIMITED and limited.value.retryable
            watch = await alice.subscribe(f"presence:{cim}")
            assert who(watch.document) == {"banker-1": {"activity": "editing", "slideId": "s1"}}
