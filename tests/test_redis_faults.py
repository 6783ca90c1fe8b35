"""Redis faults with explicit limits: a hung, full, read-only or restarted Redis, against a real hub process.

Each fault must give clients a retryable `unavailable` naming it (never `internal`, never a traceback),
make /readyz answer not-ready with the reason, and pass without losing an acknowledged mutation.
No timing thresholds: waits are bounded generously and the tests assert what comes back.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
import redis.asyncio as aioredis
import redis.exceptions
import websockets
from conftest import RedisServer
from hubproc import HubProcess, start_hub

from cimhub.server.connect import RedisLimits, open_redis
from cimhub.server.faults import FAULTS, FaultLog, client_error, redis_fault
from cimhub.server.settings import Settings

# -- pure classification ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (redis.exceptions.OutOfMemoryError("OOM command not allowed when used memory > 'maxmemory'."), "out_of_memory"),
        (redis.exceptions.ReadOnlyError("You can't write against a read only replica."), "read_only"),
        (redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"), "loading"),
        (redis.exceptions.ResponseError("MISCONF Redis is configured to save RDB snapshots"), "cannot_persist"),
        (redis.exceptions.TimeoutError("Timeout reading from socket"), "timeout"),
        (redis.exceptions.ConnectionError("Connection closed by server."), "unreachable"),
        (ConnectionRefusedError(111, "refused"), "unreachable"),
        (redis.exceptions.ResponseError("WRONGTYPE Operation against a key"), None),
        (KeyError("x"), None),
    ],
)
def test_redis_faults_are_named(exc: BaseException, reason: str | None) -> None:
    assert redis_fault(exc) == reason
    error = client_error(exc, "running a query")
    if reason is None:
        assert error.code == "internal"
    else:
        assert (error.code, error.retryable) == ("unavailable", True)
        assert error.message.startswith(FAULTS[reason])


def test_a_fault_is_logged_once_per_episode(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    faults = FaultLog(quiet_s=30, clock=lambda: now[0])
    oom = redis.exceptions.OutOfMemoryError("OOM command not allowed")
    with caplog.at_level("WARNING", logger="cimhub.faults"):
        for step in range(100):
            now[0] = step * 0.1
            client_error(oom, "running a mutation", faults)
        now[0] = 100.0  # a quiet half minute later: a new episode
        client_error(oom, "running a mutation", faults)
    lines = [r for r in caplog.records if r.name == "cimhub.faults"]
    assert len(lines) == 2 and all("out of memory" in r.getMessage() and r.exc_info is None for r in lines)
    assert faults.counts == {"out_of_memory": 101}


async def test_every_pooled_connection_gets_the_hubs_own_limits() -> None:
    """Not redis-py's defaults, which changed between releases (no read timeout at all in some)."""
    limits = Settings(
        redis_timeout_s=1.5,
        redis_connect_timeout_s=0.5,
        redis_retries=2,
        redis_max_connections=7,
        redis_pool_timeout_s=3,
    ).redis_limits()
    assert limits == RedisLimits(connect_timeout_s=0.5, timeout_s=1.5, retries=2, max_connections=7, pool_timeout_s=3)
    client = open_redis("redis://127.0.0.1:1/0", limits)
    pool = client.connection_pool
    assert isinstance(pool, aioredis.BlockingConnectionPool)
    assert (pool.max_connections, pool.timeout) == (7, 3)
    connection = pool.make_connection()
    assert (connection.socket_timeout, connection.socket_connect_timeout) == (1.5, 0.5)
    # A dead connection is retried; a timeout never is (a hung Redis would double every wait).
    for error, calls_expected in (
        (redis.exceptions.ConnectionError("dead"), 3),
        (redis.exceptions.TimeoutError("hung"), 1),
    ):
        calls: list[int] = []

        async def do(error: Exception = error, calls: list[int] = calls) -> None:
            calls.append(1)
            raise error

        async def fail(_error: Exception) -> None:
            return None

        with pytest.raises(type(error)):
            await connection.retry.call_with_retry(do, fail)
        assert len(calls) == calls_expected, type(error).__name__
    await client.aclose()


def test_the_installed_redis_py_is_at_least_the_declared_floor() -> None:
    """pyproject's floor is the oldest redis-py these limits were checked against."""
    text = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    floor = next(line for line in text.splitlines() if '"redis[hiredis]>=' in line).split(">=")[1].split('"')[0]
    installed = tuple(int(part) for part in redis.__version__.split(".")[:2])
    assert installed >= tuple(int(part) for part in floor.split(".")[:2])
    assert hasattr(aioredis.Redis, "from_pool")  # 5.0.1+: the client owns and closes its pool


# -- a real hub on a Redis the test breaks ------------------------------------------------------


@pytest.fixture
def hub(private_redis: RedisServer) -> Iterator[HubProcess]:
    with start_hub(private_redis.url, f"t{uuid.uuid4().hex[:8]}", redis_timeout_s=1.0) as process:
        yield process


def http_client(hub: HubProcess) -> httpx.Client:
    return httpx.Client(base_url=hub.url, headers={"authorization": f"Bearer {hub.token('u1')}"}, timeout=15)


def mutate(http: httpx.Client, name: str, args: dict[str, Any], mutation_id: str | None = None) -> httpx.Response:
    return http.post("/v1/mutate", json={"name": name, "args": args, "mutationId": mutation_id or uuid.uuid4().hex})


def create(http: httpx.Client) -> str:
    response = mutate(http, "create", {"dealId": "d1", "projectId": "p1", "title": "T"})
    assert response.status_code == 200, response.text
    return str(response.json()["cimId"])


def readyz(hub: HubProcess) -> httpx.Response:
    return httpx.get(hub.url + "/readyz", timeout=10)


def admin(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url)


def test_a_hung_redis_fails_requests_in_bounded_time_and_readyz_says_so(
    hub: HubProcess, private_redis: RedisServer
) -> None:
    with http_client(hub) as http:
        cim = create(http)
        assert private_redis.process is not None
        os.kill(private_redis.process.pid, signal.SIGSTOP)
        try:
            ready = readyz(hub)  # bounded by readiness_timeout_s, not by Redis
            assert ready.status_code == 503 and ready.json()["redis"] == "timeout", ready.text
            response = mutate(http, "updateState", {"cimId": cim, "title": "during the hang"}, "m-hang")
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert (error["code"], error["retryable"]) == ("unavailable", True)
            assert hub.alive() and httpx.get(hub.url + "/healthz", timeout=10).status_code == 200
        finally:
            os.kill(private_redis.process.pid, signal.SIGCONT)
        # Retried with the same id once Redis is back: applied exactly once.
        for _ in range(50):
            response = mutate(http, "updateState", {"cimId": cim, "title": "during the hang"}, "m-hang")
            if response.status_code == 200:
                break
        assert response.status_code == 200, response.text
        assert readyz(hub).status_code == 200
    assert "Traceback" not in hub.log_tail(400)


def test_out_of_memory_is_a_retryable_unavailable_logged_once(hub: HubProcess, private_redis: RedisServer) -> None:
    with http_client(hub) as http, admin(private_redis) as r:
        cim = create(http)
        r.config_set("maxmemory-policy", "noeviction")
        r.config_set("maxmemory", "1")
        try:
            for n in range(5):
                response = mutate(http, "updateState", {"cimId": cim, "title": f"full {n}"})
                assert response.status_code == 503, response.text
                error = response.json()["error"]
                assert (error["code"], error["retryable"]) == ("unavailable", True)
                assert "out of memory" in error["message"]
            ready = readyz(hub)
            assert ready.status_code == 503 and ready.json()["redis"] == "out_of_memory"
        finally:
            r.config_set("maxmemory", "0")
        assert mutate(http, "updateState", {"cimId": cim, "title": "room again"}).status_code == 200
        assert readyz(hub).status_code == 200
    log = hub.log_tail(400)
    assert log.count("out of memory") == 1, log
    assert "Traceback" not in log and "internal" not in log


def test_a_read_only_redis_is_a_retryable_unavailable(hub: HubProcess, private_redis: RedisServer) -> None:
    with http_client(hub) as http, admin(private_redis) as r:
        cim = create(http)
        r.execute_command("REPLICAOF", "127.0.0.1", "1")  # a replica of nothing: read-only, data kept
        try:
            response = mutate(http, "updateState", {"cimId": cim, "title": "refused"})
            assert response.status_code == 503, response.text
            assert "read-only" in response.json()["error"]["message"]
            ready = readyz(hub)
            assert ready.status_code == 503 and ready.json()["redis"] == "read_only"
            got = http.post("/v1/query", json={"name": "get", "args": {"cimId": cim}})
            assert got.status_code == 200 and got.json()["result"]["cim"]["title"] == "T"  # reads still work
        finally:
            r.execute_command("REPLICAOF", "NO", "ONE")
        assert mutate(http, "updateState", {"cimId": cim, "title": "writable"}).status_code == 200
    assert "Traceback" not in hub.log_tail(400)


def test_dead_pooled_connections_after_a_redis_restart_are_retried_not_failed(
    hub: HubProcess, private_redis: RedisServer
) -> None:
    """After a restart every pooled connection is dead; the first request on each must not fail for it."""
    with http_client(hub) as http:
        cim = create(http)
        # Fill the pool with several connections, then restart Redis under them.
        for n in range(8):
            assert mutate(http, "updateState", {"cimId": cim, "title": f"warm {n}"}).status_code == 200
        private_redis.stop()
        private_redis.start()
        for n in range(8):
            response = mutate(http, "updateState", {"cimId": cim, "title": f"after {n}"})
            assert response.status_code == 200, response.text
            got = http.post("/v1/query", json={"name": "get", "args": {"cimId": cim}})
            assert got.status_code == 200, got.text


async def test_every_path_logs_a_redis_fault_once_per_episode(hub: HubProcess, private_redis: RedisServer) -> None:
    """Messages over HTTP and over the WebSocket, and CIM mutations through the engine, share one FaultLog.

    An addMessage refused by a full Redis passes through the HTTP endpoint's and
    the session's error paths (not the engine's): each must give `unavailable`
    and the episode must still be one log line, not one per request.
    """
    with http_client(hub) as http, admin(private_redis) as r:
        cim = create(http)
        r.config_set("maxmemory-policy", "noeviction")
        r.config_set("maxmemory", "1")
        try:
            errors = []
            for n in range(4):
                response = mutate(http, "addMessage", {"cimId": cim, "role": "user", "content": f"full {n}"})
                assert response.status_code == 503, response.text
                errors.append(response.json()["error"])
                response = mutate(http, "updateState", {"cimId": cim, "title": f"full {n}"})
                assert response.status_code == 503, response.text
                errors.append(response.json()["error"])
            async with websockets.connect(hub.ws_url) as ws:
                await ws.send(orjson.dumps({"type": "auth", "token": hub.token("u1")}).decode())
                for n in range(4):
                    frame = {
                        "type": "mutate",
                        "id": f"w{n}",
                        "name": "addMessage",
                        "args": {"cimId": cim, "role": "user", "content": f"ws {n}"},
                        "mutationId": f"ws-{n}",
                    }
                    await ws.send(orjson.dumps(frame).decode())
                while len(errors) < 12:
                    answer = orjson.loads(await asyncio.wait_for(ws.recv(), 15))
                    if answer["type"] == "error":
                        errors.append(answer["error"])
            assert all((e["code"], e["retryable"]) == ("unavailable", True) for e in errors), errors
            assert all("out of memory" in e["message"] for e in errors), errors
        finally:
            r.config_set("maxmemory", "0")
        assert mutate(http, "addMessage", {"cimId": cim, "role": "user", "content": "room"}).status_code == 200
    log = hub.log_tail(400)
    assert log.count("out of memory") == 1, log
    assert "Traceback" not in log and "internal" not in log
