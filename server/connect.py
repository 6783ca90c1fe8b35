"""One way to reach Redis from `REDIS_URL`: a single node, or a Redis Cluster from a seed list.

    redis://host:port/0                      one node (rediss:// with TLS, unix:// a socket)
    redis+cluster://host:port[,host:port...]  a Redis Cluster; any reachable node is enough as a seed
    rediss+cluster://...                      the same over TLS

The embedded default is always a single node. Everything that opens a Redis
connection for the hub goes through `connect`, so both kinds get the same
options (timeouts, retries) from one place.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster

CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}

AnyRedis = aioredis.Redis | RedisCluster


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


def connect(url: str, **options: Any) -> AnyRedis:
    """A client for `url` (see the module docstring); `options` go to redis-py's constructor."""
    parts = urlsplit(url)
    if parts.scheme not in CLUSTER_SCHEMES:
        return aioredis.from_url(url, **options)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in cluster_seeds(url)],
        ssl=CLUSTER_SCHEMES[parts.scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        **options,
    )
