"""History and restore end to end: a real hub process and Redis, over HTTP, the socket and the CLI.

The hub keeps a short log (10 patches, snapshots every 5 revisions) so the
retention boundary is reached with a few dozen edits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import redis
from click.testing import CliRunner
from conftest import RedisServer
from hubproc import HubProcess, start_hub

from cimhub.clients.cli import cli
from cimhub.clients.client import Client
from cimhub.protocol.patch import apply

TIMEOUT = 20.0
RETENTION = 10
EVERY = 5


@pytest.fixture(scope="module")
def hub(redis_server: RedisServer) -> Iterator[HubProcess]:
    prefix = f"hist{uuid.uuid4().hex[:10]}"
    with start_hub(redis_server.url, prefix, patch_log_retention=RETENTION, history_snapshot_every=EVERY) as process:
        yield process
    with contextlib.suppress(redis.RedisError), redis_server.sync_client() as client:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)


@pytest.fixture
async def http(hub: HubProcess) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {hub.token('banker-1')}"}
    async with httpx.AsyncClient(base_url=hub.url, timeout=TIMEOUT, headers=headers) as client:
        yield client


async def mutate(
    http: httpx.AsyncClient, name: str, args: dict[str, Any], mutation_id: str | None = None
) -> dict[str, Any]:
    response = await http.post(
        "/v1/mutate", json={"name": name, "args": args, "mutationId": mutation_id or uuid.uuid4().hex}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def current(http: httpx.AsyncClient, cim: str) -> dict[str, Any]:
    response = await http.post("/v1/query", json={"name": "get", "args": {"cimId": cim}})
    return dict(response.json()["result"])


async def cim_with_edits(http: httpx.AsyncClient, edits: int) -> tuple[str, dict[int, dict[str, Any]]]:
    cim = (await mutate(http, "create", {"dealId": "d-hist", "projectId": "p1", "title": "v0"}))["cimId"]
    docs = {1: (await current(http, cim))["cim"]}
    for i in range(1, edits + 1):
        await mutate(http, "updateState", {"cimId": cim, "title": f"v{i}"})
        got = await current(http, cim)
        docs[got["revision"]] = got["cim"]
    return cim, docs


async def test_http_reads_any_revision_in_the_log_and_refuses_one_past_the_retention_boundary(
    http: httpx.AsyncClient,
) -> None:
    cim, docs = await cim_with_edits(http, 24)  # revisions 1..25
    listing = (await http.get(f"/v1/cims/{cim}/history", params={"limit": 100})).json()
    oldest = listing["oldest"]
    assert listing["revision"] == 25 and oldest % EVERY == 0 and 25 - oldest + 1 >= RETENTION
    assert [row["revision"] for row in listing["items"]] == list(range(25, oldest - 1, -1))
    for revision in range(oldest, 26):
        answer = (await http.get(f"/v1/cims/{cim}/revisions/{revision}")).json()
        assert answer["cim"] == docs[revision] and answer["patchesApplied"] < EVERY
    trimmed = await http.get(f"/v1/cims/{cim}/revisions/{oldest - 1}")
    assert trimmed.status_code == 404
    error = trimmed.json()["error"]
    assert error["code"] == "not_found" and f"oldest kept is {oldest}" in error["message"]
    diff = (await http.get(f"/v1/cims/{cim}/diff", params={"from": oldest, "to": oldest + 3})).json()
    assert [p["rev"] for p in diff["patches"]] == [oldest + 1, oldest + 2, oldest + 3] and diff["actors"] == [
        "banker-1"
    ]
    replayed = docs[oldest]
    for patch in diff["patches"]:
        replayed = apply(replayed, patch["ops"])
    assert replayed == docs[oldest + 3]
    assert (await http.get(f"/v1/cims/{cim}/diff", params={"from": 1})).status_code == 404
    bad = await http.get(f"/v1/cims/{cim}/diff", params={"from": "yesterday"})
    assert bad.status_code == 400 and bad.json()["error"]["path"] == "args.from"
    anonymous = await http.get(f"/v1/cims/{cim}/revisions/{oldest}", headers={"authorization": ""})
    assert anonymous.status_code == 401


async def test_restore_reaches_subscribers_as_a_normal_patch_exactly_once(
    hub: HubProcess, http: httpx.AsyncClient
) -> None:
    cim, docs = await cim_with_edits(http, 6)  # revisions 1..7
    async with Client(hub.url, token=hub.token("banker-2")) as watcher:
        sub = await watcher.subscribe(f"cim:{cim}")
        assert sub.revision == 7
        first = await mutate(http, "restoreRevision", {"cimId": cim, "revision": 3}, mutation_id="restore-e2e")
        again = await mutate(http, "restoreRevision", {"cimId": cim, "revision": 3}, mutation_id="restore-e2e")
        assert (first["revision"], first["duplicate"], again["revision"], again["duplicate"]) == (8, False, 8, True)
        change = await asyncio.wait_for(sub.__anext__(), TIMEOUT)
        assert (change.revision, change.mutation, change.snapshot) == (8, "restoreRevision", False)
        assert change.document["title"] == docs[3]["title"] == "v2"
        assert change.document == (await current(http, cim))["cim"]
        # The next change the subscriber sees is the next edit: the duplicate made no patch.
        await mutate(http, "updateState", {"cimId": cim, "title": "after"})
        following = await asyncio.wait_for(sub.__anext__(), TIMEOUT)
        assert (following.revision, following.document["title"]) == (9, "after")


def run_cli(hub: HubProcess, *args: str) -> str:
    result = CliRunner().invoke(
        cli, ["--url", hub.url, "--token", hub.token("banker-1"), *args], env={"CIMHUB_URL": None}
    )
    assert result.exit_code == 0, result.output
    return result.output


async def test_cli_lists_reads_and_diffs_revisions(hub: HubProcess, http: httpx.AsyncClient) -> None:
    cim, _docs = await cim_with_edits(http, 3)
    await mutate(
        http,
        "saveBuyerPersona",
        {"cimId": cim, "persona": {"type": "strategic", "motivations": ["scale"], "concerns": []}},
    )
    listing = await asyncio.to_thread(run_cli, hub, "history", cim)
    assert "r5 saveBuyerPersona by banker-1" in listing and "r1 create by banker-1" in listing
    assert "readable history: r1..r5" in listing
    at = await asyncio.to_thread(run_cli, hub, "history", cim, "--at", "2")
    assert '"title": "v1"' in at and '"revision": 2' in at
    diff = await asyncio.to_thread(run_cli, hub, "history", cim, "--diff", "2..5")
    assert '~ /title "v1" -> "v2"' in diff and '~ /title "v2" -> "v3"' in diff
    assert "+ /buyerPersona" in diff and "/revision" not in diff
    created = await asyncio.to_thread(run_cli, hub, "history", cim, "--diff", "0..1")
    assert "r1 create by banker-1" in created and "the whole CIM" in created
    refused = CliRunner().invoke(
        cli, ["--url", hub.url, "--token", hub.token("banker-1"), "history", cim, "--diff", "5..2"]
    )
    assert refused.exit_code == 2 and "ends before it starts" in refused.output


async def test_cli_subscribe_shows_who_joins_and_leaves(hub: HubProcess, http: httpx.AsyncClient) -> None:
    cim, _ = await cim_with_edits(http, 0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIMHUB_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cimhub.clients",
        "--url",
        hub.url,
        "--token",
        hub.token("banker-1"),
        "subscribe",
        cim,
        "--present",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    seen: list[str] = []

    async def line_with(text: str) -> str:
        async with asyncio.timeout(TIMEOUT):
            while True:
                line = (await process.stdout.readline()).decode()  # type: ignore[union-attr]
                assert line, f"the CLI exited; it printed: {seen}"
                seen.append(line)
                if text in line:
                    return line

    try:
        await line_with("nobody is here")
        await line_with("banker-1 joined: viewing")  # itself, once --present took effect
        async with Client(hub.url, token=hub.token("banker-2")) as bob:
            await bob.set_presence(cim, {"activity": "editing", "slideId": "slide-7", "name": "Bob"})
            assert "Bob (banker-2) joined: editing slide slide-7" in await line_with("banker-2")
        assert "Bob (banker-2) left" in await line_with("left")
    finally:
        process.terminate()
        await process.wait()
