"""The hub's Redis client from REDIS_URL, with its own limits instead of whatever the installed redis-py defaults to.

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
  `pool_timeout_s` for a free connection instead of failing at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff


@dataclass(frozen=True)
class RedisLimits:
    connect_timeout_s: float = 2.0
    timeout_s: float = 5.0
    retries: int = 1
    max_connections: int = 100
    pool_timeout_s: float = 5.0


def open_redis(url: str, limits: RedisLimits) -> aioredis.Redis:
    """A client for `url` whose every connection obeys `limits`. The caller closes it (`aclose`)."""
    retry = Retry(
        ExponentialBackoff(cap=0.5, base=0.05), limits.retries, supported_errors=(redis.exceptions.ConnectionError,)
    )
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=limits.max_connections,
        timeout=limits.pool_timeout_s,
        socket_connect_timeout=limits.connect_timeout_s,
        socket_timeout=limits.timeout_s,
        retry=retry,
        retry_on_timeout=False,
        health_check_interval=0,
    )
    return aioredis.Redis.from_pool(pool)
