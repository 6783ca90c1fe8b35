"""Nothing acknowledged is lost: not when the hub is killed, and with `appendfsync always` not when Redis is.

docs/durability.md states what each setting promises; these tests crash real
processes with SIGKILL (no clean shutdown, no final fsync) and count what an
acknowledged client can still read afterwards.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import RedisServer
from hubproc import HubProcess, start_hub


@pytest.fixture
def fsync_always_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, fsync="always")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def client(hub: HubProcess) -> httpx.Client:
    return httpx.Client(base_url=hub.url, headers={"authorization": f"Bearer {hub.token('u1')}"}, timeout=10)


def create(http: httpx.Client) -> str:
    response = http.post(
        "/v1/mutate",
        json={
            "name": "create",
            "args": {"dealId": "d1", "projectId": "p1", "title": "T"},
            "mutationId": uuid.uuid4().hex,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["cimId"])


def test_a_redis_crash_loses_no_acknowledged_mutation_with_fsync_always(fsync_always_redis: RedisServer) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    with start_hub(fsync_always_redis.url, prefix) as hub, client(hub) as http:
        cim = create(http)
        acknowledged = []
        for n in range(40):
            mutation_id = f"m{n}"
            response = http.post(
                "/v1/mutate",
                json={
                    "name": "updateState",
                    "args": {"cimId": cim, "gatheredContext": {f"k{n}": n}},
                    "mutationId": mutation_id,
                },
            )
            assert response.status_code == 200, response.text
            acknowledged.append(mutation_id)
        fsync_always_redis.kill()  # SIGKILL: no shutdown, no final fsync
        fsync_always_redis.start()  # replays the append-only file
    with start_hub(fsync_always_redis.url, prefix) as hub, client(hub) as http:
        doc = http.post("/v1/query", json={"name": "get", "args": {"cimId": cim}}).json()["result"]
        assert doc["revision"] == 1 + len(acknowledged)
        assert doc["cim"]["gatheredContext"] == {f"k{n}": n for n in range(40)}
        log = http.post("/v1/query", json={"name": "patches", "args": {"cimId": cim, "fromRevision": 1}}).json()
        assert [p["mutationId"] for p in log["result"]["patches"]] == acknowledged


def test_killing_the_hub_mid_stream_loses_no_acknowledged_mutation(redis_url: str, key_prefix: str) -> None:
    acknowledged: list[str] = []
    with start_hub(redis_url, key_prefix) as hub:
        with client(hub) as http:
            cim = create(http)

        def writer() -> None:
            with client(hub) as http:
                for n in range(10_000):
                    mutation_id = f"w{n}"
                    try:
                        response = http.post(
                            "/v1/mutate",
                            json={
                                "name": "updateState",
                                "args": {"cimId": cim, "title": f"t{n}"},
                                "mutationId": mutation_id,
                            },
                        )
                    except httpx.HTTPError:
                        return  # the hub died under us: this one was never acknowledged
                    if response.status_code == 200:
                        acknowledged.append(mutation_id)

        thread = threading.Thread(target=writer)
        thread.start()
        while len(acknowledged) < 30:
            thread.join(0.01)
        hub.kill()  # SIGKILL mid-stream
        thread.join(30)
    with start_hub(redis_url, key_prefix) as hub, client(hub) as http:
        log = http.post("/v1/query", json={"name": "patches", "args": {"cimId": cim, "fromRevision": 1}}).json()
        committed = [p["mutationId"] for p in log["result"]["patches"]]
        # Every acknowledged mutation is there, in order; at most the one in flight committed unacknowledged.
        assert committed[: len(acknowledged)] == acknowledged
        assert len(committed) - len(acknowledged) <= 1
