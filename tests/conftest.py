"""Shared fixtures: a real redis-server for the whole session, a unique key prefix per test.

Tests never FLUSHALL: each test gets its own key prefix and deletes only its
own keys afterwards. When redis-server is missing, tests fail under CI=true
(so a green run cannot mean "skipped everything") and skip elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from cimhub.server.embedded import free_port
from cimhub.server.store.keys import Keys

# PostgreSQL and PostgREST fixtures (pg_cluster, pg_database_url, postgrest), started on first use.
pytest_plugins = ["pg", "cluster"]


def need(binary: str) -> str:
    """Path of `binary`; fails the test under CI=true when missing, skips elsewhere."""
    path = shutil.which(binary)
    if path is None:
        message = f"{binary} is not installed (scripts/test installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


class RedisServer:
    """A redis-server process the tests own; can be stopped and started again on the same port."""

    def __init__(self, data_dir: Path, fsync: str = "everysec") -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.fsync = fsync
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                need("redis-server"), "--bind", "127.0.0.1", "--port", str(self.port),
                "--dir", str(self.data_dir), "--appendonly", "yes", "--appendfsync", self.fsync,
                "--save", "", "--logfile", str(self.data_dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 15
        while True:
            try:
                if client.ping():
                    break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        """SIGKILL: a crash, not a clean shutdown."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def sync_client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    """The suite's Redis: one node, or with CIMHUB_TEST_REDIS=cluster a 3+3 Redis Cluster.

    Both have `.url` (what the hub's REDIS_URL takes) and `.sync_client()`.
    Tests that reach past the hub into single-node Redis are marked
    `single_node`, and the cluster run deselects them (scripts/test).
    """
    if os.environ.get("CIMHUB_TEST_REDIS") == "cluster":
        from cluster import RedisClusterProcess  # the plugin module: imported by pytest first

        with tempfile.TemporaryDirectory(prefix="cimhub-cluster-") as root:
            cluster = RedisClusterProcess(Path(root))
            cluster.start()
            try:
                yield cluster
            finally:
                cluster.stop()
        return
    external = os.environ.get("CIMHUB_TEST_REDIS_URL")
    if external:
        server = RedisServer(Path(tempfile.gettempdir()))
        server.url = external
        yield server
        return
    with tempfile.TemporaryDirectory(prefix="cimhub-redis-") as data_dir:
        server = RedisServer(Path(data_dir))
        server.start()
        yield server
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def key_prefix(redis_server: Any) -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted after the test."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    yield prefix
    try:
        with redis_server.sync_client() as client:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            for key in keys:  # one by one: on a cluster the keys live in many slots
                client.delete(key)
    except redis.RedisError:
        pass  # a test that stopped Redis cleans up nothing; the server is private to the run


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server only this test uses: it may be stopped, killed or reconfigured."""
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def keys(key_prefix: str) -> Keys:
    return Keys(key_prefix)


class Clock:
    """A clock the test moves by hand: `ms` milliseconds, read as seconds like time.time."""

    def __init__(self, ms: int = 1_700_000_000_000) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000


@pytest.fixture
def clock() -> Clock:
    return Clock()
