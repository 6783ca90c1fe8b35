"""Commits confirmed by replicas: the commit script and Redis `WAIT` on one connection.

`WAIT n timeout` blocks until `n` replicas acknowledged every write made *on
the same connection* before it, so the script call and the WAIT must share a
connection: a pipeline on a single node; on a Redis Cluster, a pipeline to the
primary that owns the CIM's slot (a client per primary, kept here). A slot
that moved (MOVED/ASK) refreshes the cluster's slot table and tries once more;
the commit is idempotent by mutation id, so a second attempt never applies
twice. Fewer replicas than asked within the timeout is `Unavailable`
(retryable: the mutation may have committed on the primary only; a retry with
the same mutation id answers from the idempotency record once replicated).
"""

from __future__ import annotations

import contextlib
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

from cimhub.protocol.errors import Unavailable


class ReplicatedCommits:
    """Runs a script and then WAIT for `replicas` replicas, on the connection that ran the script."""

    def __init__(self, redis: aioredis.Redis | RedisCluster, *, replicas: int, timeout_ms: int) -> None:
        self.redis = redis
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        self._primaries: dict[str, aioredis.Redis] = {}

    async def call(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """The script's reply, once `replicas` replicas have it; Unavailable when they don't in time."""
        cluster = self.redis
        if isinstance(cluster, RedisCluster):
            try:
                reply, acked = await self._pipeline(self._primary_for(cluster, keys[0]), script, keys, args)
            except redis.exceptions.ResponseError as exc:
                if not str(exc).startswith(("MOVED", "ASK")):
                    raise
                await cluster.nodes_manager.initialize()
                reply, acked = await self._pipeline(self._primary_for(cluster, keys[0]), script, keys, args)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
                # The primary may be gone (a failover under way): forget it and re-read the slot table,
                # so the caller's retry (same mutation id) goes to whoever owns the slot by then.
                await self._forget_primaries()
                with contextlib.suppress(redis.exceptions.RedisError, OSError):
                    await cluster.nodes_manager.initialize()
                raise
        else:
            reply, acked = await self._pipeline(cluster, script, keys, args)
        if int(acked) < self.replicas:
            raise Unavailable(
                f"the commit reached {acked} of {self.replicas} replicas within {self.timeout_ms} ms; "
                "retry with the same mutationId"
            )
        return reply

    async def _pipeline(
        self, client: aioredis.Redis, script: AsyncScript, keys: list[str], args: list[Any]
    ) -> tuple[Any, Any]:
        pipe = client.pipeline(transaction=False)
        await script(keys=keys, args=args, client=pipe)
        pipe.execute_command("WAIT", self.replicas, self.timeout_ms)
        reply, acked = await pipe.execute()
        return reply, acked

    def _primary_for(self, cluster: RedisCluster, key: str) -> aioredis.Redis:
        node = cluster.get_node_from_key(key)
        if node is None:
            raise Unavailable("the Redis Cluster's slot table is incomplete; retry shortly")
        client = self._primaries.get(node.name)
        if client is None:
            kwargs = cluster.nodes_manager.connection_kwargs
            auth = {k: kwargs[k] for k in ("username", "password", "ssl") if kwargs.get(k) is not None}
            client = aioredis.Redis(host=node.host, port=int(node.port), **auth)
            self._primaries[node.name] = client
        return client

    async def _forget_primaries(self) -> None:
        primaries, self._primaries = self._primaries, {}
        for client in primaries.values():
            with contextlib.suppress(Exception):
                await client.aclose()

    async def aclose(self) -> None:
        await self._forget_primaries()
