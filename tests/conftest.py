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

import httpx
import pytest
import redis
import redis.asyncio as aioredis
from support.clock import Clock
from support.wire import TIMEOUT

from cimhub.server.connect import connect, is_cluster_url
from cimhub.server.embedded import free_port
from cimhub.server.store.keys import Keys

# PostgreSQL and PostgREST fixtures (pg_cluster, pg_database_url, postgrest), started on first use.
pytest_plugins = ["pg", "cluster"]


# -- tiers ---------------------------------------------------------------------------
#
# Every test module belongs to exactly one tier, and each test gets its tier's marker:
#   unit         pure logic, no servers, no sockets across a process boundary (`pytest -m unit`, seconds)
#   integration  one real server (Redis, PostgreSQL/PostgREST, a loopback socket) in the test's process
#   e2e          hub processes (uvicorn on loopback), the CLI, Chromium
# A module missing here stops the run, so a new one cannot be left out of its tier.
TIERS: dict[str, frozenset[str]] = {
    "unit": frozenset(
        {
            "test_auth_cache",
            "test_auth_tokens",
            "test_cascade",
            "test_checkpoint_codec",
            "test_cli_service_key",
            "test_client_cli",
            "test_client_http",
            "test_client_replica",
            "test_client_session",
            "test_close_codes",
            "test_frames",
            "test_golden",
            "test_history_unit",
            "test_hub_direct",
            "test_hub_pipelining",
            "test_hub_unit",
            "test_index_calls",
            "test_js",
            "test_keys",
            "test_layout",
            "test_mutations",
            "test_patch",
            "test_patch_emission",
        }
    ),
    "integration": frozenset(
        {
            "test_auth_backends",
            "test_checkpoint_api",
            "test_checkpoint_conformance",
            "test_checkpoint_crash",
            "test_checkpoint_graphs",
            "test_checkpoint_production",
            "test_checkpoint_storage",
            "test_client_transport",
            "test_concurrency",
            "test_connection",
            "test_engine",
            "test_history",
            "test_rollback",
            "test_js_package",
            "test_messages",
            "test_store",
            "test_typecheck",
        }
    ),
    "e2e": frozenset(
        {
            "test_agent",
            "test_auth_hub",
            "test_board_history",
            "test_board_presence",
            "test_browser",
            "test_browser_react",
            "test_catch_up",
            "test_client_e2e",
            "test_cluster_broker",
            "test_cluster_connection",
            "test_cluster_failover",
            "test_cluster_repair",
            "test_client_resilience",
            "test_connection_limits",
            "test_durability",
            "test_docs_commands",
            "test_faults",
            "test_first_run",
            "test_floors",
            "test_history_e2e",
            "test_hub_e2e",
            "test_logging",
            "test_messages_hub",
            "test_packaging",
            "test_presence_e2e",
            "test_redis_faults",
            "test_slow_sockets",
        }
    ),
}
TIER_OF = {module: tier for tier, modules in TIERS.items() for module in modules}
FOLDER_TIERS = {"security": "e2e", "chaos": "e2e"}
"""Every module in these folders of tests/ is of this tier (real hubs in production auth mode, or chaos)."""


def tier_of(path: Path) -> str | None:
    return TIER_OF.get(path.stem) or FOLDER_TIERS.get(path.parent.name)


def _selected_tiers(config: pytest.Config) -> frozenset[str] | None:
    """The tiers `-m` asks for when it names only tiers ("unit", "unit or integration"); None otherwise."""
    words = str(config.getoption("markexpr", "") or "").split()
    if not words or words[::2] != [w for w in words[::2] if w in TIERS] or any(w != "or" for w in words[1::2]):
        return None
    return frozenset(words[::2])


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under `-m unit` (or another tier), skip importing the other tiers' modules: most of the time is imports."""
    tiers = _selected_tiers(config)
    tier = tier_of(collection_path)
    if tiers is not None and tier is not None and tier not in tiers:
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = tier_of(item.path)
        if tier is None:
            raise pytest.UsageError(f"{item.path.name} is in no test tier: add it to TIERS in tests/conftest.py")
        item.add_marker(getattr(pytest.mark, tier))


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
                need("redis-server"),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.data_dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                self.fsync,
                "--save",
                "",
                "--logfile",
                str(self.data_dir / "redis.log"),
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
    """A client of the suite's Redis: on a cluster run a `RedisCluster` (same commands, routed by key)."""
    client = connect(redis_url) if is_cluster_url(redis_url) else aioredis.from_url(redis_url)
    yield client  # type: ignore[misc]
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


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the hub's /v1 endpoints (pass full URLs)."""
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        yield client


@pytest.fixture
def clock() -> Clock:
    """A clock the test moves by hand (tests/support/clock.py)."""
    return Clock()


def pytest_configure(config: pytest.Config) -> None:
    # tests/chaos: real processes broken on purpose under load; short versions run in the normal suite.
    config.addinivalue_line("markers", "chaos: real hubs and redis-server broken on purpose under load")
