"""The hub's Redis client from `REDIS_URL`, with its own limits instead of whatever redis-py defaults to.

    redis://host:port/0                       one node (rediss:// with TLS, unix:// a socket)
    redis+cluster://host:port[,host:port...]  a Redis Cluster; any reachable node is enough as a seed
    rediss+cluster://...                      the same over TLS

The embedded default is always a single node. Everything that opens a Redis
connection for the hub goes through `connect`, so both kinds get the same
limits from one place.

redis-py's defaults moved between releases (no read timeout at all in some,
retries on or off in others), so a hung Redis once meant 40 s per request on
one version and 5 s on another. Every limit here is a setting
(docs/operations.md) applied to every pooled connection:

* a connect timeout and a read timeout per command, so a hung Redis (SIGSTOP,
  a full disk) fails a request in bounded time as `unavailable`;
* one retry (by default) of a command whose connection turned out dead, as
  after a Redis restart every pooled connection is: the first request on each
  would otherwise fail. Only connection errors are retried, never timeouts (a
  hung Redis would double every wait), and every write the hub retries is
  idempotent: a commit carries its mutation id, a message its message id;
* a blocking pool: past `max_connections` a request waits up to
  `pool_timeout_s` for a free connection instead of failing at once (on a
  cluster, redis-py keeps a pool per node of `max_connections`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}


@dataclass(frozen=True)
class RedisLimits:
    connect_timeout_s: float = 2.0
    timeout_s: float = 5.0
    retries: int = 1
    max_connections: int = 100
    pool_timeout_s: float = 5.0


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def cluster_seeds(url: str) -> list[tuple[str, int]]:
    """The (host, port) seed nodes of a cluster URL; ValueError when it names none or a bad port."""
    netloc = urlsplit(url).netloc.rpartition("@")[2]
    seeds = []
    for part in netloc.split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"a cluster URL lists host:port seeds, comma-separated; got {part!r} in {url!r}")
        seeds.append((host.strip("[]"), int(port)))
    return seeds


def _retry(limits: RedisLimits) -> Retry:
    return Retry(
        ExponentialBackoff(cap=0.5, base=0.05), limits.retries, supported_errors=(redis.exceptions.ConnectionError,)
    )


def open_redis(url: str, limits: RedisLimits) -> aioredis.Redis:
    """A single-node client for `url` whose every connection obeys `limits`. The caller closes it (`aclose`)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=limits.max_connections,
        timeout=limits.pool_timeout_s,
        socket_connect_timeout=limits.connect_timeout_s,
        socket_timeout=limits.timeout_s,
        retry=_retry(limits),
        retry_on_timeout=False,
        health_check_interval=0,
    )
    return aioredis.Redis.from_pool(pool)


def connect(url: str, limits: RedisLimits | None = None) -> aioredis.Redis | RedisCluster:
    """A client for `url` (a node or a cluster, see the module docstring) obeying `limits`."""
    limits = limits or RedisLimits()
    parts = urlsplit(url)
    if parts.scheme not in CLUSTER_SCHEMES:
        return open_redis(url, limits)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in cluster_seeds(url)],
        ssl=CLUSTER_SCHEMES[parts.scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        max_connections=limits.max_connections,
        socket_connect_timeout=limits.connect_timeout_s,
        socket_timeout=limits.timeout_s,
        retry=_retry(limits),
    )
