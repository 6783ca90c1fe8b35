"""The Redis clients a saver builds for itself (`from_conn_string`): a blocking pool, with retries.

redis-py's default pool raises `MaxConnectionsError` as soon as more commands
are in flight than it has connections (100 threads of an async graph hit it).
A `BlockingConnectionPool` makes the extra callers wait up to `pool_timeout`
for a free connection instead.

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

from dataclasses import dataclass

import redis
import redis.asyncio as aioredis
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


def sync_client(url: str, options: PoolOptions) -> redis.Redis:
    """A blocking client for `url` on its own pool; closing the client closes the pool."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=options.max_connections,
        timeout=options.pool_timeout_s,
        socket_timeout=options.socket_timeout_s,
        retry=Retry(options._backoff(), options.retries, supported_errors=_RETRIED),
        decode_responses=False,
    )
    return redis.Redis.from_pool(pool)


def async_client(url: str, options: PoolOptions) -> aioredis.Redis:
    """An asyncio client for `url` on its own pool; closing the client closes the pool."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=options.max_connections,
        timeout=options.pool_timeout_s,
        socket_timeout=options.socket_timeout_s,
        retry=AsyncRetry(options._backoff(), options.retries, supported_errors=_RETRIED),
        decode_responses=False,
    )
    return aioredis.Redis.from_pool(pool)
