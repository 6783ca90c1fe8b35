"""The Redis clients a saver builds for itself (`from_conn_string`): a blocking pool, with retries.

    redis://host:port/0                       one node (rediss:// with TLS, unix:// a socket)
    redis+cluster://host:port[,host:port...]  a Redis Cluster; any reachable nodes as seeds
    rediss+cluster://...                      the same over TLS

These are the forms the hub's ``REDIS_URL`` takes (cimhub.server.connect);
parsed again here because the saver installs without the hub.

redis-py's default pool raises `MaxConnectionsError` as soon as more commands
are in flight than it has connections (100 threads of an async graph hit it).
A `BlockingConnectionPool` makes the extra callers wait up to `pool_timeout`
for a free connection instead. redis-py's cluster clients have no blocking
pool (a pool per node that raises when full), so on a cluster the saver's
drivers let at most `max_connections` calls in flight at once (`Gate`), and
the others wait their turn: each call takes at most one connection per node.

Connection and timeout errors are retried with exponential backoff
(`retries` attempts, waits doubling from `backoff_base_s` up to `backoff_cap_s`),
so a Redis restart or failover shorter than about ten seconds is invisible to
the graph. Retrying is safe because every command the saver sends is
idempotent: a put is keyed by its checkpoint id and rewrites the same fields,
a regular pending write is kept if already stored (HSETNX), and a special write
replaces itself with the same value. So a write that landed before its reply
was lost lands again as the same write, never as a second one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry


@dataclass(frozen=True)
class PoolOptions:
    """How a saver-owned client connects: pool size, wait for a connection, retries."""

    max_connections: int = 64
    """Connections in the pool; more concurrent calls wait for one (never fail at once)."""
    pool_timeout_s: float = 30.0
    """How long a call waits for a free connection before `redis.ConnectionError`."""
    retries: int = 8
    """Attempts after the first on a connection or timeout error."""
    backoff_base_s: float = 0.05
    backoff_cap_s: float = 2.0
    """Waits between attempts double from base to cap: about 9 s in all with the defaults."""
    socket_timeout_s: float | None = 30.0
    """A reply slower than this counts as a lost connection (and is retried)."""

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {self.max_connections}")
        if self.pool_timeout_s <= 0:
            raise ValueError(f"pool_timeout_s must be positive, got {self.pool_timeout_s}")
        if self.retries < 0:
            raise ValueError(f"retries must not be negative, got {self.retries}")

    def _backoff(self) -> ExponentialBackoff:
        return ExponentialBackoff(cap=self.backoff_cap_s, base=self.backoff_base_s)


_RETRIED = (RedisConnectionError, RedisTimeoutError)

_CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}

SyncClient = redis.Redis | redis.RedisCluster
AsyncClient = aioredis.Redis | aiocluster.RedisCluster


def is_cluster(client: object) -> bool:
    """True for redis-py's cluster clients (sync or asyncio)."""
    return isinstance(client, redis.RedisCluster | aiocluster.RedisCluster)


def _cluster_parts(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]] | None:
    """Seeds and credentials of a cluster URL; None for a single-node URL."""
    parts = urlsplit(url)
    if parts.scheme not in _CLUSTER_SCHEMES:
        return None
    seeds = []
    for part in parts.netloc.rpartition("@")[2].split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"a cluster URL lists host:port seeds, comma-separated; got {part!r} in {url!r}")
        seeds.append((host.strip("[]"), int(port)))
    auth: dict[str, Any] = {"ssl": _CLUSTER_SCHEMES[parts.scheme]}
    if parts.username:
        auth["username"] = unquote(parts.username)
    if parts.password is not None:
        auth["password"] = unquote(parts.password)
    return seeds, auth


def sync_client(url: str, options: PoolOptions) -> SyncClient:
    """A blocking client for `url` on its own pool; closing the client closes the pool."""
    cluster = _cluster_parts(url)
    if cluster is not None:
        seeds, auth = cluster
        return redis.RedisCluster(
            startup_nodes=[redis.cluster.ClusterNode(host, port) for host, port in seeds],  # type: ignore[no-untyped-call]
            max_connections=options.max_connections,
            socket_timeout=options.socket_timeout_s,
            retry=Retry(options._backoff(), options.retries, supported_errors=_RETRIED),
            decode_responses=False,
            **auth,
        )
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=options.max_connections,
        timeout=options.pool_timeout_s,
        socket_timeout=options.socket_timeout_s,
        retry=Retry(options._backoff(), options.retries, supported_errors=_RETRIED),
        decode_responses=False,
    )
    return redis.Redis.from_pool(pool)


def async_client(url: str, options: PoolOptions) -> AsyncClient:
    """An asyncio client for `url` on its own pool; closing the client closes the pool."""
    cluster = _cluster_parts(url)
    if cluster is not None:
        seeds, auth = cluster
        return aiocluster.RedisCluster(
            startup_nodes=[aiocluster.ClusterNode(host, port) for host, port in seeds],
            max_connections=options.max_connections,
            socket_timeout=options.socket_timeout_s,
            retry=AsyncRetry(options._backoff(), options.retries, supported_errors=_RETRIED),
            decode_responses=False,
            **auth,
        )
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=options.max_connections,
        timeout=options.pool_timeout_s,
        socket_timeout=options.socket_timeout_s,
        retry=AsyncRetry(options._backoff(), options.retries, supported_errors=_RETRIED),
        decode_responses=False,
    )
    return aioredis.Redis.from_pool(pool)


def twin_async_client(client: AsyncClient) -> AsyncClient:
    """A new client to the same Redis as `client`, for a call on another event loop.

    A client's connections belong to the loop they were made on. For a cluster
    the twin starts from the nodes `client` knows, with its credentials, TLS
    and timeouts (redis-py has no public way to copy a cluster client).
    """
    if isinstance(client, aiocluster.RedisCluster):
        kwargs = client.get_connection_kwargs()
        copied = ("username", "password", "socket_timeout", "socket_connect_timeout", "max_connections")
        # The nodes it found, else (never used yet) the seeds it was given.
        known = client.get_nodes() or list(client.nodes_manager.startup_nodes.values())
        settings: dict[str, Any] = {name: kwargs[name] for name in copied if kwargs.get(name) is not None}
        return aiocluster.RedisCluster(
            startup_nodes=[aiocluster.ClusterNode(node.host, node.port) for node in known],
            ssl=kwargs.get("connection_class") is aioredis.SSLConnection,
            retry=client.retry,
            decode_responses=False,
            **settings,
        )
    pool = client.connection_pool
    return aioredis.Redis.from_pool(type(pool)(connection_class=pool.connection_class, **pool.connection_kwargs))


class Gate:
    """At most `limit` saver calls in flight on a cluster client (see the module docstring).

    Both drivers hold one: the sync one a thread semaphore, the async one an
    asyncio semaphore made on first use, on the loop that uses it.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._threads = threading.BoundedSemaphore(limit) if limit else None
        self._tasks: asyncio.Semaphore | None = None

    @contextmanager
    def sync(self) -> Iterator[None]:
        if self._threads is None:
            yield
            return
        with self._threads:
            yield

    @asynccontextmanager
    async def aio(self) -> AsyncIterator[None]:
        if not self.limit:
            yield
            return
        if self._tasks is None:
            self._tasks = asyncio.Semaphore(self.limit)
        async with self._tasks:
            yield
