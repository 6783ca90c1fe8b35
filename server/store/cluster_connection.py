"""Script calls on a Redis Cluster over one pipelined connection per primary, routed by slot.

Why: redis-py's `RedisCluster` spends ~1 ms of client CPU per EVALSHA (slot
lookup, node selection, retry and metrics wrappers around its own connection
pool), about three times what a whole single-node commit costs the hub. This
sends each call over a `PipelinedConnection` (connection.py) to the primary
that owns the first key's slot, as read from redis-py's own slot table, so the
hot path costs what it costs on one node.

redis-py stays in charge of the topology. Whatever the fast path cannot
settle goes to the `RedisCluster` client instead, which knows how:

* a slot table not read yet, or a slot with no known owner;
* ``MOVED`` (the slot moved: the table is re-read, and this call goes through
  redis-py) and ``ASK`` (a slot being migrated: redis-py sends ``ASKING``);
* a lost or timed-out connection (a failover under way): the connection is
  dropped and the call goes through redis-py, which retries while the
  replica takes over. Whether the first attempt ran is then unknown, so the
  caller's scripts must be idempotent: a commit is, by its mutation id, and an
  index write is, by its revision guard.

TLS connections are left to redis-py (`supports`).
"""

from __future__ import annotations

import contextlib
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from cimhub.server.store.connection import PipelinedConnection


class ClusterConnection:
    """EVALSHA on the primary owning the first key's slot; redis-py for everything else."""

    def __init__(self, cluster: RedisCluster) -> None:
        self.cluster = cluster
        self._primaries: dict[str, PipelinedConnection] = {}

    @staticmethod
    def supports(client: object) -> bool:
        """True for a cluster client on plain TCP (TLS stays with redis-py)."""
        if not isinstance(client, RedisCluster):
            return False
        return client.get_connection_kwargs().get("connection_class", aioredis.Connection) is aioredis.Connection

    async def evalsha(self, script: str | bytes | memoryview, sha: str, keys: list[Any], args: list[Any]) -> Any:
        """The script's reply; every key must be in the first key's slot (as for any cluster script)."""
        node = self._owner(keys[0])
        if node is not None:
            connection = self._connection(node)
            try:
                return await connection.evalsha(script, sha, keys, args)
            except redis.exceptions.ResponseError as exc:
                if not str(exc).startswith(("MOVED", "ASK")):
                    raise
                if str(exc).startswith("MOVED"):
                    await self.cluster.nodes_manager.initialize()
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                await self._forget(node)
        return await self._through_redis_py(script, sha, keys, args)

    async def aclose(self) -> None:
        primaries, self._primaries = self._primaries, {}
        for connection in primaries.values():
            with contextlib.suppress(Exception):
                await connection.aclose()

    def _owner(self, key: Any) -> ClusterNode | None:
        encoded = key.encode() if isinstance(key, str) else key
        try:
            return self.cluster.nodes_manager.get_node_from_slot(key_slot(encoded))
        except (KeyError, redis.exceptions.RedisClusterException):
            return None  # no slot table yet (redis-py reads it on its first call) or an uncovered slot

    def _connection(self, node: ClusterNode) -> PipelinedConnection:
        connection = self._primaries.get(node.name)
        if connection is None:
            kwargs = self.cluster.get_connection_kwargs()
            names = ("username", "password", "socket_timeout", "socket_connect_timeout")
            settings: dict[str, Any] = {name: kwargs[name] for name in names if kwargs.get(name) is not None}
            # A client object only to carry the node's address and settings: it opens no connection itself.
            carrier = aioredis.Redis(host=node.host, port=int(node.port), **settings)
            connection = self._primaries[node.name] = PipelinedConnection(carrier)
        return connection

    async def _forget(self, node: ClusterNode) -> None:
        connection = self._primaries.pop(node.name, None)
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.aclose()

    async def _through_redis_py(
        self, script: str | bytes | memoryview, sha: str, keys: list[Any], args: list[Any]
    ) -> Any:
        try:
            return await self.cluster.execute_command("EVALSHA", sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            await self.cluster.script_load(script)
            return await self.cluster.execute_command("EVALSHA", sha, len(keys), *keys, *args)
