"""The commit's pipelined connection against a real redis-server: order, script reloads, failures as redis-py's."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
import redis.asyncio as aioredis
import redis.exceptions
from conftest import RedisServer

from cimhub.server.store.connection import PipelinedConnection

ECHO = "return {KEYS[1], ARGV[1]}"


async def test_concurrent_calls_each_get_their_own_reply(redis_client: aioredis.Redis, key_prefix: str) -> None:
    script = redis_client.register_script(ECHO)
    connection = PipelinedConnection(redis_client)
    try:
        replies = await asyncio.gather(
            *(connection.evalsha(script.script, script.sha, [f"{key_prefix}:{i}"], [i]) for i in range(500))
        )
        assert replies == [[f"{key_prefix}:{i}".encode(), str(i).encode()] for i in range(500)]
    finally:
        await connection.aclose()


async def test_an_unknown_script_is_loaded_once_and_run(redis_client: aioredis.Redis, key_prefix: str) -> None:
    source = f"return '{key_prefix}'"  # a script this Redis has never seen
    script = redis_client.register_script(source)
    connection = PipelinedConnection(redis_client)
    try:
        assert await connection.evalsha(source, script.sha, [], []) == key_prefix.encode()
        assert await redis_client.script_exists(script.sha) == [True]
    finally:
        await connection.aclose()


async def test_an_error_reply_is_a_response_error_and_the_connection_goes_on(redis_client: aioredis.Redis) -> None:
    connection = PipelinedConnection(redis_client)
    try:
        with pytest.raises(redis.exceptions.ResponseError):
            await connection.call("EVAL", "return redis.error_reply('bad')", 0)
        assert await connection.call("PING") == b"PONG"
    finally:
        await connection.aclose()


async def test_a_killed_redis_fails_calls_with_connection_error_and_a_restart_reconnects(
    private_redis: RedisServer,
) -> None:
    client = aioredis.from_url(private_redis.url)
    connection = PipelinedConnection(client)
    try:
        assert await connection.call("PING") == b"PONG"
        private_redis.kill()
        with pytest.raises(redis.exceptions.ConnectionError):
            await connection.call("PING")
        private_redis.start()
        assert await connection.call("PING") == b"PONG"
    finally:
        await connection.aclose()
        await client.aclose()


async def test_a_hung_redis_times_out_like_redis_py_and_every_call_in_flight_fails(
    private_redis: RedisServer,
) -> None:
    client = aioredis.from_url(private_redis.url, socket_timeout=0.5)
    connection = PipelinedConnection(client)
    assert private_redis.process is not None
    pid = private_redis.process.pid
    try:
        assert await connection.call("PING") == b"PONG"
        os.kill(pid, signal.SIGSTOP)
        try:
            results = await asyncio.gather(connection.call("PING"), connection.call("PING"), return_exceptions=True)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert all(isinstance(r, redis.exceptions.TimeoutError) for r in results), results
        assert await connection.call("PING") == b"PONG"  # a fresh connection, not a late reply
    finally:
        await connection.aclose()
        await client.aclose()
