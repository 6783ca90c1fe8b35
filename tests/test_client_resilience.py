"""The Python client and the CLI through failures of real processes.

A hub restarted on the same port mid-stream, Redis stopped and restarted
while the client keeps mutating, and the CLI's live view in a real terminal
(a pty), as a person debugging a CIM would run it.
"""

from __future__ import annotations

import asyncio
import os
import pty
import select
import subprocess
import sys
import time
import uuid

import pytest
from conftest import RedisServer
from hubproc import start_hub
from support.waiting import eventually

from cimhub.clients.backoff import Backoff
from cimhub.clients.client import Client
from cimhub.clients.http import HttpClient
from cimhub.protocol.errors import CimhubError

pytestmark = pytest.mark.slow


async def test_a_hub_restart_mid_stream_loses_and_repeats_nothing(redis_url: str, key_prefix: str) -> None:
    with start_hub(redis_url, key_prefix) as first:
        port, token = first.port, first.token("u1")
        http = HttpClient(first.url, token, retries=20, backoff=Backoff(0.05, 0.5))
        cim = http.mutate("create", {"dealId": "d1", "projectId": "p1", "title": "t0"}).cim_id
        client = Client(first.ws_url, token=token, backoff=Backoff(0.05, 0.3))
        await client.connect()
        sub = await client.subscribe(f"cim:{cim}")
        seen: list[int] = [sub.revision]

        async def watch() -> None:
            async for change in sub:
                seen.append(change.revision)

        watcher = asyncio.create_task(watch())
        for n in range(1, 6):
            await asyncio.to_thread(http.mutate, "updateState", {"cimId": cim, "title": f"t{n}"})
        first.terminate()
    with start_hub(redis_url, key_prefix, port=port):
        for n in range(6, 11):
            await asyncio.to_thread(http.mutate, "updateState", {"cimId": cim, "title": f"t{n}"})
        final = await asyncio.to_thread(http.query, "get", {"cimId": cim})
        try:
            await eventually(lambda: sub.revision >= final["revision"], 15, what="the subscription caught up")
        finally:
            watcher.cancel()
            await client.aclose()
            http.close()
    assert seen == list(range(seen[0], final["revision"] + 1)), "every revision once, in order"
    assert sub.document == final["cim"]


async def test_redis_restarted_while_mutating_applies_each_mutation_exactly_once(
    private_redis: RedisServer, key_prefix: str
) -> None:
    with start_hub(private_redis.url, key_prefix) as hub:
        token = hub.token("u1")
        async with Client(hub.ws_url, token=token, backoff=Backoff(0.05, 0.3), retry_limit=2) as client:
            cim = (await client.mutate("create", {"dealId": "d1", "projectId": "p1", "title": "T"})).cim_id
            ids = [f"m-{uuid.uuid4().hex[:8]}-{n}" for n in range(12)]
            failed: list[str] = []
            for n, mutation_id in enumerate(ids):
                if n == 4:
                    private_redis.stop()
                if n == 8:
                    private_redis.start()
                try:
                    await client.mutate(
                        "updateState",
                        {"cimId": cim, "gatheredContext": {f"k{n}": n}},
                        mutation_id=mutation_id,
                        timeout=5,
                    )
                except CimhubError as exc:
                    assert exc.retryable, exc  # the outage is reported as retryable, never as a refusal
                    failed.append(mutation_id)
            assert failed, "some mutations must have met the outage"
            # Retry the failed ones with the same ids, as a caller would.
            for mutation_id in failed:
                n = ids.index(mutation_id)
                for _attempt in range(50):
                    try:
                        await client.mutate(
                            "updateState",
                            {"cimId": cim, "gatheredContext": {f"k{n}": n}},
                            mutation_id=mutation_id,
                            timeout=5,
                        )
                        break
                    except CimhubError as exc:
                        assert exc.retryable, exc
                        await asyncio.sleep(0.2)
            log = await client.query("patches", {"cimId": cim, "fromRevision": 1})
            applied = [p["mutationId"] for p in log["patches"]]
            assert sorted(applied) == sorted(ids), "each mutation applied exactly once"
            doc = (await client.query("get", {"cimId": cim}))["cim"]
            assert doc["gatheredContext"] == {f"k{n}": n for n in range(12)}


def test_cli_subscribe_in_a_terminal_shows_a_live_change(redis_url: str, key_prefix: str) -> None:
    with start_hub(redis_url, key_prefix) as hub:
        token = hub.token("u1")
        with HttpClient(hub.url, token) as http:
            cim = http.mutate("create", {"dealId": "d1", "projectId": "p1", "title": "Before"}).cim_id
            leader, follower = pty.openpty()
            process = subprocess.Popen(
                [sys.executable, "-m", "cimhub.clients", "--url", hub.url, "--token", token, "subscribe", str(cim)],
                stdin=follower,
                stdout=follower,
                stderr=follower,
                env={**os.environ, "TERM": "xterm"},
            )
            os.close(follower)
            try:
                screen = read_until(leader, b"Before", 15)
                assert b"r1" in screen
                http.mutate("updateState", {"cimId": cim, "title": "After"})
                screen = read_until(leader, b"After", 15)
                assert b"r2" in screen and b"updateState" in screen
                assert b"\x1b[" in screen, "a terminal gets colour"
            finally:
                process.terminate()
                process.wait(10)
                os.close(leader)


def read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    """Read a pty until `needle` shows up; fails with what was on screen."""
    screen = b""
    deadline = time.monotonic() + timeout
    while needle not in screen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{needle!r} never appeared; screen: {screen.decode(errors='replace')}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                screen += os.read(fd, 65536)
            except OSError:
                break
    return screen
