"""The embedded default: a local redis-server that cimhub starts and stops itself.

Used by `cimhub serve` when no REDIS_URL is given, and by the test suite. The
server listens on loopback only, keeps an append-only file under the data
folder (persistence on), and is shut down with SHUTDOWN (which fsyncs the AOF)
when the context exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis


class EmbeddedRedisError(RuntimeError):
    """redis-server is missing or would not start."""


@dataclass(frozen=True)
class EmbeddedRedis:
    url: str
    port: int
    data_dir: Path
    process: asyncio.subprocess.Process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise EmbeddedRedisError(
            "redis-server is not installed: run `apt-get install -y redis-server`, "
            "or set REDIS_URL to use an existing Redis"
        )
    return binary


@contextlib.asynccontextmanager
async def embedded_redis(
    data_dir: Path, *, port: int | None = None, fsync: str = "everysec", start_timeout_s: float = 15.0
) -> AsyncIterator[EmbeddedRedis]:
    """Run redis-server with AOF persistence in `data_dir` for the duration of the block."""
    data_dir = await asyncio.to_thread(data_dir.resolve)
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    port = port or free_port()
    process = await asyncio.create_subprocess_exec(
        redis_server_binary(),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        fsync,
        "--save",
        "",
        "--daemonize",
        "no",
        "--logfile",
        str(data_dir / "redis.log"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        await _wait_ready(url, process, start_timeout_s, data_dir)
        yield EmbeddedRedis(url=url, port=port, data_dir=data_dir, process=process)
    finally:
        await _stop(url, process)


async def _wait_ready(url: str, process: asyncio.subprocess.Process, timeout: float, data_dir: Path) -> None:
    client = aioredis.from_url(url)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if process.returncode is not None:
                raise EmbeddedRedisError(f"redis-server exited with {process.returncode}; see {data_dir / 'redis.log'}")
            try:
                # Loading a large AOF answers LOADING until done: wait it out.
                if await client.ping():
                    return
            except (OSError, aioredis.RedisError):
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise EmbeddedRedisError(f"redis-server did not answer within {timeout:.0f}s")
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()


async def _stop(url: str, process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        client = aioredis.from_url(url)
        with contextlib.suppress(Exception):
            await client.shutdown(nosave=False)
        with contextlib.suppress(Exception):
            await client.aclose()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def redis_url_or_embedded(url: str | None = None) -> AsyncIterator[str]:
    """`url` (or $REDIS_URL) if set; else a throwaway embedded Redis in a temporary folder.

    For benchmarks and scripts that need some Redis for a while.
    """
    url = url or os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="cimhub-redis-") as data_dir:
        async with embedded_redis(Path(data_dir)) as server:
            yield server.url
