"""The Python client, the HTTP client and the CLI against real hub processes (``python -m cimhub.server``).

Each test runs its own hub(s) on loopback ports against the session's Redis,
under a key prefix of its own (tests/hubproc.py). Resuming is tested with two
hubs sharing one Redis: the client loses hub A, mutations land through hub B,
then the client is let through to hub B and must catch up from the patch log.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from hubproc import HubProcess, start_hub
from support.waiting import eventually

from cimhub.clients.backoff import Backoff
from cimhub.clients.cli import cli
from cimhub.clients.client import Client
from cimhub.clients.events import Connected, Disconnected, Event, Resumed, TokenRefreshed
from cimhub.clients.http import HttpClient
from cimhub.clients.transport import Transport, connect_websocket
from cimhub.protocol.errors import InvalidInput, NotFound, Unauthenticated

pytestmark = pytest.mark.slow


@pytest.fixture
def hub(redis_url: str, key_prefix: str) -> Iterator[HubProcess]:
    with start_hub(redis_url, key_prefix) as running:
        yield running


def create_cim(http: HttpClient, title: str = "Acme") -> str:
    created = http.mutate("create", {"dealId": f"d-{uuid.uuid4().hex[:8]}", "projectId": "p1", "title": title})
    assert created.cim_id is not None
    return created.cim_id


async def wait_for_event(events: list[Event], kind: type, timeout: float = 15.0) -> Any:
    """The latest event of `kind`, once there is one."""
    found = await eventually(
        lambda: [e for e in events if isinstance(e, kind)], timeout, what=f"a {kind.__name__} event"
    )
    return found[-1]


@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_subscribe_mutate_and_see_the_patch(hub: HubProcess, codec: str) -> None:
    async with Client(hub.url, token=hub.token("u1"), codec=codec) as client:  # type: ignore[arg-type]
        created = await client.mutate("create", {"dealId": "d1", "projectId": "p1", "title": "Acme"})
        cim_id = created.cim_id
        sub = await client.subscribe(f"cim:{cim_id}")
        assert sub.document["title"] == "Acme" and sub.revision == created.revision
        result = await client.mutate("updateState", {"cimId": cim_id, "title": "Acme II"}, mutation_id="m-1")
        change = await asyncio.wait_for(sub.__anext__(), 10)
        assert (change.revision, change.mutation, change.mutation_id, change.actor) == (
            result.revision,
            "updateState",
            "m-1",
            "u1",
        )
        assert change.document["title"] == "Acme II" == sub.document["title"]
        again = await client.mutate("updateState", {"cimId": cim_id, "title": "Acme II"}, mutation_id="m-1")
        assert again.duplicate and again.revision == result.revision
        got = await client.query("get", {"cimId": cim_id})
        assert got["cim"] == sub.document


async def test_hub_errors_are_typed(hub: HubProcess) -> None:
    async with Client(hub.url, token=hub.token("u1")) as client:
        with pytest.raises(NotFound):
            await client.subscribe("cim:does-not-exist")
        with pytest.raises(InvalidInput):
            await client.mutate("noSuchMutation", {})
        with pytest.raises(NotFound):
            await client.query("get", {"cimId": "does-not-exist"})


async def test_a_bad_token_fails_connect(hub: HubProcess) -> None:
    with pytest.raises(Unauthenticated):
        async with Client(hub.url, token="not-a-token"):
            pass


async def test_resume_after_losing_the_hub_and_the_outbox_applies_once(redis_url: str, key_prefix: str) -> None:
    with start_hub(redis_url, key_prefix) as hub_a, start_hub(redis_url, key_prefix) as hub_b:
        target = [hub_a.ws_url]

        async def connector() -> Transport:
            return await connect_websocket(target[0])

        events: list[Event] = []
        with HttpClient(hub_b.url, hub_b.token("u1")) as http:
            cim_id = create_cim(http)
            async with Client(
                hub_a.url,
                token=hub_a.token("u1"),
                connector=connector,
                backoff=Backoff(0.05, 0.2),
                on_event=events.append,
            ) as client:
                sub = await client.subscribe(f"cim:{cim_id}")
                start = sub.revision
                hub_a.terminate()  # graceful: 1012, reconnect elsewhere
                disconnected = await wait_for_event(events, Disconnected)
                assert disconnected.code == 1012
                for n in range(3):
                    http.mutate("updateState", {"cimId": cim_id, "title": f"t{n}"})
                pending = asyncio.create_task(client.mutate("updateState", {"cimId": cim_id, "title": "from outbox"}))
                await asyncio.sleep(0.3)
                assert not pending.done()
                target[0] = hub_b.ws_url
                result = await asyncio.wait_for(pending, 15)
                changes = [await asyncio.wait_for(sub.__anext__(), 10) for _ in range(4)]
                assert [c.revision for c in changes] == list(range(start + 1, start + 5))
                assert not any(c.snapshot for c in changes)
                assert result.revision == start + 4 and not result.duplicate
                resumed = await wait_for_event(events, Resumed)
                # The outbox is re-sent right after the resubscribe; the hub may commit it before or
                # after it has caught the subscription up.
                assert resumed.from_revision == start and resumed.revision in (start + 3, start + 4)
                assert sub.document == http.query("get", {"cimId": cim_id})["cim"]
                assert any(isinstance(e, Connected) and e.reconnect for e in events)


async def test_token_expiry_is_refreshed_on_the_open_connection(redis_url: str, key_prefix: str) -> None:
    with start_hub(redis_url, key_prefix, jwt_leeway_s=0) as hub:
        minted: list[str] = []

        async def provider() -> str:
            minted.append(hub.token("u1", ttl_s=2 if not minted else 3600))
            return minted[-1]

        events: list[Event] = []
        with HttpClient(hub.url, hub.token("u1")) as http:
            cim_id = create_cim(http)
            async with Client(hub.url, token_provider=provider, on_event=events.append) as client:
                sub = await client.subscribe(f"cim:{cim_id}")
                await wait_for_event(events, TokenRefreshed, timeout=20)
                http.mutate("updateState", {"cimId": cim_id, "title": "after refresh"})
                change = await asyncio.wait_for(sub.__anext__(), 10)
                assert change.document["title"] == "after refresh"
                assert not any(isinstance(e, Disconnected) for e in events)
                assert len(minted) == 2


async def test_pongs_keep_a_quiet_connection_alive(redis_url: str, key_prefix: str) -> None:
    with start_hub(redis_url, key_prefix, heartbeat_s=0.2, idle_timeout_s=0.7) as hub:
        events: list[Event] = []
        async with Client(hub.url, token=hub.token("u1"), on_event=events.append) as client:
            await asyncio.sleep(2.0)
            assert client.connected
            assert not any(isinstance(e, Disconnected) for e in events)


def test_http_client_against_the_hub(hub: HubProcess) -> None:
    with HttpClient(hub.url, hub.token("u1")) as http:
        cim_id = create_cim(http)
        mutation_id = str(uuid.uuid4())
        first = http.mutate("updateState", {"cimId": cim_id, "title": "x"}, mutation_id=mutation_id)
        again = http.mutate("updateState", {"cimId": cim_id, "title": "x"}, mutation_id=mutation_id)
        assert again.duplicate and again.revision == first.revision
        with pytest.raises(NotFound):
            http.query("get", {"cimId": "nope"})
    with HttpClient(hub.url, "bad") as anonymous, pytest.raises(Unauthenticated):
        anonymous.query("get", {"cimId": cim_id})


def test_cli_against_the_hub(hub: HubProcess) -> None:
    runner = CliRunner()
    env = {"CIMHUB_URL": hub.url, "CIMHUB_TOKEN": hub.token("u1")}
    created = runner.invoke(
        cli, ["mutate", "create", "--args", '{"dealId": "d-cli", "projectId": "p", "title": "Acme"}'], env=env
    )
    assert created.exit_code == 0, created.output
    cim_id = orjson.loads(created.output)["cimId"]
    got = runner.invoke(cli, ["get", cim_id], env=env)
    assert got.exit_code == 0 and orjson.loads(got.output)["title"] == "Acme"
    listed = runner.invoke(cli, ["ls", "--deal", "d-cli"], env=env)
    assert listed.exit_code == 0 and cim_id in listed.output
    runner.invoke(
        cli, ["mutate", "updateState", "--args", orjson.dumps({"cimId": cim_id, "title": "B"}).decode()], env=env
    )
    log = runner.invoke(cli, ["patches", cim_id, "--from", "1", "--json"], env=env)
    assert log.exit_code == 0 and orjson.loads(log.output.splitlines()[0])["mutation"] == "updateState"
    missing = runner.invoke(cli, ["get", "nope"], env=env)
    assert missing.exit_code == 1 and "not_found" in missing.output
    refused = runner.invoke(cli, ["get", cim_id], env={**env, "CIMHUB_TOKEN": "bad"})
    assert refused.exit_code == 4


def test_cli_subscribe_streams_json_lines(hub: HubProcess) -> None:
    token = hub.token("u1")
    with HttpClient(hub.url, token) as http:
        cim_id = create_cim(http)
        process = subprocess.Popen(
            [sys.executable, "-m", "cimhub.clients", "--url", hub.url, "--token", token, "subscribe", cim_id, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            lines = [orjson.loads(process.stdout.readline()) for _ in range(2)]
            assert [line["type"] for line in lines] == ["connected", "snapshot"]
            http.mutate("updateState", {"cimId": cim_id, "title": "live"})
            patch = orjson.loads(process.stdout.readline())
            assert patch["type"] == "patch" and patch["mutation"] == "updateState"
            assert {"op": "replace", "path": "/title", "value": "live"} in patch["ops"]
            process.send_signal(signal.SIGINT)  # Ctrl-C: a quiet exit 0
            _, stderr = process.communicate(timeout=10)
            assert process.returncode == 0 and b"Traceback" not in stderr, stderr
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
