"""The cluster broker on a real 3+3 Redis Cluster: sharded pub/sub, failover and slot migration."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from typing import cast

import pytest
from cluster import RedisClusterProcess, move_slot
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from support.waiting import eventually

from cimhub.server.connect import cluster_seeds, connect, is_cluster_url
from cimhub.server.hub.broker import ClusterBroker, alive_channel_for


class Recorder:
    def __init__(self) -> None:
        self.messages: defaultdict[str, list[bytes]] = defaultdict(list)
        self.resyncs = 0

    def on_message(self, channel: str, data: bytes) -> None:
        self.messages[channel].append(data)

    def on_resync(self) -> None:
        self.resyncs += 1


def channels_on_every_primary(prefix: str, count: int = 12) -> list[str]:
    return [f"{prefix}:ch:cim:{{{uuid.uuid4()}}}" for _ in range(count)]


async def publish_until_seen(publisher: RedisCluster, recorder: Recorder, channel: str, payload: bytes) -> None:
    """SPUBLISH until it arrives: right after a failover the first publish may land nowhere."""

    async def seen() -> bool:
        return payload in recorder.messages[channel]

    deadline = asyncio.get_running_loop().time() + 30
    while payload not in recorder.messages[channel]:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{payload!r} never reached {channel}")
        try:
            await publisher.execute_command("SPUBLISH", channel, payload)
        except Exception:  # noqa: BLE001 - the cluster is mid-failover: try again
            await asyncio.sleep(0.2)
            continue
        await asyncio.sleep(0.1)


def test_cluster_urls_name_their_seeds() -> None:
    url = "redis+cluster://127.0.0.1:7001,127.0.0.1:7002"
    assert is_cluster_url(url) and not is_cluster_url("redis://127.0.0.1:6379/0")
    assert cluster_seeds(url) == [("127.0.0.1", 7001), ("127.0.0.1", 7002)]
    with pytest.raises(ValueError, match="host:port"):
        cluster_seeds("redis+cluster://127.0.0.1")


def test_alive_channel_lies_in_the_node_slots() -> None:
    name = alive_channel_for("t:ch:alive", [(5461, 10922)])
    assert 5461 <= key_slot(name.encode()) <= 10922


async def test_notifications_from_every_shard_arrive(redis_cluster: RedisClusterProcess) -> None:
    client = cast(RedisCluster, connect(redis_cluster.url))
    broker, recorder = ClusterBroker(client, alive_channel="t:ch:alive"), Recorder()
    await broker.start(recorder.on_message, recorder.on_resync)
    try:
        channels = channels_on_every_primary(f"t{uuid.uuid4().hex[:8]}")
        for channel in channels:
            await broker.subscribe(channel)
        owners = {client.get_node_from_key(c).name for c in channels}  # type: ignore[union-attr]
        assert len(owners) == 3, "the channels should spread over all three primaries"
        for channel in channels:
            await client.execute_command("SPUBLISH", channel, channel.encode())
        await eventually(lambda: all(recorder.messages[c] == [c.encode()] for c in channels), 30)
        assert broker.healthy
        await broker.unsubscribe(channels[0])
        await client.execute_command("SPUBLISH", channels[0], b"after")
        await client.execute_command("SPUBLISH", channels[1], b"after")
        await eventually(lambda: recorder.messages[channels[1]][-1] == b"after", 30)
        assert recorder.messages[channels[0]] == [channels[0].encode()]
    finally:
        await broker.aclose()
        await client.aclose()


async def test_a_killed_primary_moves_its_channels_to_the_promoted_replica(
    private_cluster: RedisClusterProcess,
) -> None:
    client = cast(RedisCluster, connect(private_cluster.url))
    publisher = cast(RedisCluster, connect(private_cluster.url))
    broker, recorder = ClusterBroker(client, alive_channel="t:ch:alive"), Recorder()
    await broker.start(recorder.on_message, recorder.on_resync)
    try:
        channels = channels_on_every_primary("fo")
        for channel in channels:
            await broker.subscribe(channel)
        victim = private_cluster.owner_of(channels[0])
        doomed = [c for c in channels if private_cluster.owner_of(c) is victim]
        victim.kill()
        private_cluster.wait_healthy()
        await eventually(lambda: recorder.resyncs >= 1, 30)
        for channel in channels:
            await publish_until_seen(publisher, recorder, channel, b"after failover")
        assert doomed and all(b"after failover" in recorder.messages[c] for c in doomed)
        await eventually(lambda: broker.healthy, 30)
    finally:
        await broker.aclose()
        await client.aclose()
        await publisher.aclose()


async def test_a_migrated_slot_takes_its_channel_along(
    private_cluster: RedisClusterProcess,
) -> None:
    client = cast(RedisCluster, connect(private_cluster.url))
    publisher = cast(RedisCluster, connect(private_cluster.url))
    broker, recorder = ClusterBroker(client, alive_channel="t:ch:alive"), Recorder()
    await broker.start(recorder.on_message, recorder.on_resync)
    try:
        channel = channels_on_every_primary("mig", 1)[0]
        await broker.subscribe(channel)
        source = private_cluster.owner_of(channel)
        target = next(n for n in private_cluster.primaries() if n is not source)
        move_slot(private_cluster, key_slot(channel.encode()), target)
        assert private_cluster.owner_of(channel) is target
        await eventually(lambda: recorder.resyncs >= 1, 30)
        await publish_until_seen(publisher, recorder, channel, b"after migration")
    finally:
        await broker.aclose()
        await client.aclose()
        await publisher.aclose()
