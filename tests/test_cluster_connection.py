"""ClusterConnection on a real 3+3 Redis Cluster: script calls routed by slot, through a slot move and a flush."""

from __future__ import annotations

import uuid
from typing import cast

from cluster import RedisClusterProcess, move_slot
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from cimhub.server.connect import connect
from cimhub.server.store.cluster_connection import ClusterConnection

INCR = "return redis.call('INCR', KEYS[1])"


async def test_calls_follow_a_moved_slot_and_a_script_flush(redis_cluster: RedisClusterProcess) -> None:
    client = cast(RedisCluster, connect(redis_cluster.url))
    connection = ClusterConnection(client)
    script = client.register_script(INCR)
    key = f"t{uuid.uuid4().hex[:12]}:{{counter}}"
    try:

        async def incr() -> int:
            return int(await connection.evalsha(script.script, script.sha, [key], []))

        assert [await incr(), await incr()] == [1, 2]  # the first through redis-py (no slot table yet)
        owner = redis_cluster.owner_of(key)
        target = next(node for node in redis_cluster.primaries() if node is not owner)
        move_slot(redis_cluster, key_slot(key.encode()), target)
        assert redis_cluster.owner_of(key) is target
        assert [await incr(), await incr()] == [3, 4]  # MOVED: the table is read again, no call lost or doubled
        for node in redis_cluster.primaries():
            with node.client() as direct:
                direct.script_flush()
        assert await incr() == 5  # NOSCRIPT: loaded on the new owner and run once
        assert int(await client.get(key)) == 5
    finally:
        await client.delete(key)
        await connection.aclose()
        await client.aclose()
