"""The broker: carries change notifications between hub processes over Redis sharded pub/sub.

Guarantees: **at most once, in order, per channel** while a listener's
connection stays up; a notification published while it is down is lost. That
is why the broker never hides a reconnect: after every new connection (and
after a channel moves to another shard) it calls `on_resync`, and the hub then
catches every live subscription up from the store's patch log (or sends a
fresh snapshot). A listener that dies or that Redis drops (for exceeding
`client-output-buffer-limit pubsub`) is therefore reconnected, never left
silently deaf.

Commits publish with `SPUBLISH` and listeners use `SSUBSCRIBE` (Redis 7.0+)
on a single node and on a Redis Cluster alike. On a single node that is one
listener (`Broker`); on a cluster, where a sharded channel lives on the
primary that owns its slot, one listener per primary (`ClusterBroker`), which
follows failovers and slot migrations: a listener that loses its node, or a
channel whose slot moved away (Redis sends an unsolicited `sunsubscribe`),
makes it refresh the topology, move the channels to their new owners and ask
for a resync.

The process holds one Redis subscription per watched channel, however many
local subscribers the topic has: the hub counts subscribers, the broker counts
channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot

log = logging.getLogger("cimhub.broker")

OnMessage = Callable[[str, bytes], None]
OnResync = Callable[[], None]


def _listener_client(**connection: object) -> aioredis.Redis:
    # A private client with redis-py's own retries off: a silent internal
    # reconnect would drop notifications without telling us.
    return aioredis.Redis(**connection, retry=Retry(NoBackoff(), 0), health_check_interval=0)  # type: ignore[arg-type]


class ShardListener:
    """One supervised SSUBSCRIBE connection to one Redis node, for the channels it is given."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        alive_channel: str,
        on_lost: Callable[[ShardListener], None] = lambda listener: None,
        on_moved: Callable[[str], None] = lambda channel: None,
    ) -> None:
        self._client = client
        self._alive = alive_channel
        self._on_lost = on_lost
        self._on_moved = on_moved
        self.channels: set[str] = set()
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._pubsub: aioredis.client.PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self.reconnects = 0

    @property
    def healthy(self) -> bool:
        return self._connected.is_set()

    def start(self, on_message: OnMessage, on_resync: OnResync) -> None:
        self._task = asyncio.create_task(self._supervise(on_message, on_resync), name="cimhub-broker")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            # wait(), not suppress(CancelledError): a cancel of aclose itself must still propagate.
            await asyncio.wait([self._task])
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._client.aclose()

    async def subscribe(self, channel: str) -> None:
        """Return once Redis confirms the subscription: notifications published after that arrive."""
        future = self._confirmed.get(channel)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._confirmed[channel] = future
            self.channels.add(channel)
            if self._pubsub is not None and self._connected.is_set():
                with contextlib.suppress(redis.exceptions.RedisError, OSError):
                    await self._pubsub.ssubscribe(channel)
            # If the connection is down, the supervisor subscribes on reconnect.
        await asyncio.shield(future)

    async def unsubscribe(self, channel: str) -> None:
        self.channels.discard(channel)
        future = self._confirmed.pop(channel, None)
        if future is not None and not future.done():
            future.cancel()
        if self._pubsub is not None and self._connected.is_set():
            with contextlib.suppress(redis.exceptions.RedisError, OSError):
                await self._pubsub.sunsubscribe(channel)

    async def _supervise(self, on_message: OnMessage, on_resync: OnResync) -> None:
        delay = 0.05
        first = True
        while True:
            try:
                await self._listen(first, on_message, on_resync)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of the listener means: reconnect
                self._connected.clear()
                log.warning("pub/sub listener lost (%s: %s); reconnecting", type(exc).__name__, exc)
                self._on_lost(self)
            first = False
            if self._pubsub is not None:
                with contextlib.suppress(Exception):
                    await self._pubsub.aclose()  # type: ignore[no-untyped-call]
                self._pubsub = None
            await asyncio.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 2.0)

    async def _listen(self, first: bool, on_message: OnMessage, on_resync: OnResync) -> None:
        pubsub = self._client.pubsub()
        self._pubsub = pubsub
        # A pub/sub connection needs a channel before it can read; this one is
        # always there, so an idle hub still notices a dropped connection.
        # Channels added while the SSUBSCRIBEs are on their way are picked up by the next pass;
        # from `_connected.set()` on, `subscribe` sends its own.
        channels: set[str] = set()
        while missing := {self._alive, *self.channels} - channels:
            # One SSUBSCRIBE per slot: a cluster node refuses channels of several slots in one command.
            by_slot: dict[int, list[str]] = {}
            for channel in missing:
                by_slot.setdefault(key_slot(channel.encode()), []).append(channel)
            for group in by_slot.values():
                await pubsub.ssubscribe(*group)
            channels |= missing
        self._connected.set()
        # Resync only once Redis has confirmed every channel: from then on no
        # notification can slip between the catch-up read and the live stream.
        unconfirmed = set(channels)
        resync = not first
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None:
                continue
            kind = message["type"]
            channel = message["channel"].decode()
            if kind == "smessage":
                on_message(channel, message["data"])
            elif kind == "ssubscribe":
                future = self._confirmed.get(channel)
                if future is not None and not future.done():
                    future.set_result(None)
                unconfirmed.discard(channel)
                if resync and not unconfirmed:
                    resync = False
                    self.reconnects += 1
                    log.info("pub/sub listener reconnected; resyncing %d channels", len(self.channels))
                    on_resync()
            elif kind == "sunsubscribe" and channel in self.channels:
                # Not ours to drop: Redis moved the channel's slot to another node.
                self._on_moved(channel)


class Broker:
    """One supervised listener on a single Redis node."""

    def __init__(self, redis_url: str, *, alive_channel: str) -> None:
        pool = aioredis.ConnectionPool.from_url(redis_url)
        self._listener = ShardListener(_listener_client(connection_pool=pool), alive_channel=alive_channel)

    @property
    def healthy(self) -> bool:
        return self._listener.healthy

    @property
    def reconnects(self) -> int:
        return self._listener.reconnects

    async def start(self, on_message: OnMessage, on_resync: OnResync) -> None:
        """Listen, handing each notification to `on_message` and each reconnect to `on_resync`."""
        self._listener.start(on_message, on_resync)

    async def aclose(self) -> None:
        await self._listener.aclose()

    async def subscribe(self, channel: str) -> None:
        """Return once Redis confirms the subscription: notifications published after that arrive."""
        await self._listener.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        await self._listener.unsubscribe(channel)


def alive_channel_for(base: str, slots: Iterable[tuple[int, int]]) -> str:
    """A channel name whose slot lies in `slots`, so a node's listener always has one channel it owns."""
    ranges = list(slots)
    for n in range(100_000):
        name = f"{base}:{{{n}}}"
        slot = key_slot(name.encode())
        if any(start <= slot <= end for start, end in ranges):
            return name
    raise LookupError("no alive channel found for these slots")


class ClusterBroker:
    """One listener per primary of a Redis Cluster; channels follow their slot's owner."""

    def __init__(self, cluster: RedisCluster, *, alive_channel: str) -> None:
        self._cluster = cluster
        self._alive_base = alive_channel
        self._listeners: dict[str, ShardListener] = {}  # node name -> listener
        self._owner: dict[str, str] = {}  # channel -> node name
        self._handlers: tuple[OnMessage, OnResync] | None = None
        self._refresh = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._moves: set[asyncio.Task[None]] = set()
        self.reconnects = 0

    @property
    def healthy(self) -> bool:
        return not self._refresh.is_set() and all(listener.healthy for listener in self._listeners.values())

    async def start(self, on_message: OnMessage, on_resync: OnResync) -> None:
        self._handlers = (on_message, on_resync)
        await self._cluster.initialize()
        self._task = asyncio.create_task(self._follow_topology(), name="cimhub-cluster-broker")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for listener in self._listeners.values():
            await listener.aclose()
        self._listeners.clear()

    def _owner_of(self, channel: str) -> str:
        node = self._cluster.get_node_from_key(channel)
        if node is None:
            raise LookupError(f"no cluster node serves {channel!r}: the slot table is incomplete")
        return str(node.name)

    async def subscribe(self, channel: str) -> None:
        """Return once the primary owning `channel`'s slot confirms it (after a move, the new one)."""
        while True:
            name = self._owner_of(channel)
            self._owner[channel] = name
            try:
                await self._listener(name).subscribe(channel)
                return
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if (task is not None and task.cancelling()) or channel not in self._owner:
                    raise
                # The channel moved to another node while we waited: subscribe there.

    async def unsubscribe(self, channel: str) -> None:
        name = self._owner.pop(channel, None)
        if name is not None and name in self._listeners:
            await self._listeners[name].unsubscribe(channel)

    def _listener(self, node_name: str) -> ShardListener:
        listener = self._listeners.get(node_name)
        if listener is None:
            if self._handlers is None:
                raise RuntimeError("the broker is not started")
            node = self._cluster.get_node(node_name=node_name)
            if node is None:
                raise LookupError(f"unknown cluster node {node_name}")
            slots = self._slots_of(node_name)
            listener = ShardListener(
                _listener_client(host=node.host, port=node.port, **self._auth()),
                alive_channel=alive_channel_for(self._alive_base, slots),
                on_lost=lambda _: self._refresh.set(),
                on_moved=lambda _: self._refresh.set(),
            )
            self._listeners[node_name] = listener
            listener.start(*self._handlers)
        return listener

    def _auth(self) -> dict[str, object]:
        kwargs = self._cluster.nodes_manager.connection_kwargs
        return {k: kwargs[k] for k in ("username", "password", "ssl") if kwargs.get(k) is not None}

    def _slots_of(self, node_name: str) -> list[tuple[int, int]]:
        """The slot ranges `node_name` owns as primary, from the client's slot table."""
        table = self._cluster.nodes_manager.slots_cache
        owned = sorted(slot for slot, nodes in table.items() if nodes and nodes[0].name == node_name)
        ranges: list[tuple[int, int]] = []
        for slot in owned:
            if ranges and ranges[-1][1] == slot - 1:
                ranges[-1] = (ranges[-1][0], slot)
            else:
                ranges.append((slot, slot))
        return ranges

    async def _follow_topology(self) -> None:
        """On a lost listener or a moved slot: refresh the slot table, move channels, resync."""
        while True:
            await self._refresh.wait()
            await asyncio.sleep(0.2)  # let a burst of notices (a whole node going away) settle
            try:
                await self._cluster.nodes_manager.initialize()
            except Exception as exc:  # noqa: BLE001 - the cluster is mid-failover: try again shortly
                log.warning("cluster topology refresh failed (%s); retrying", exc)
                await asyncio.sleep(0.5)
                continue
            self._refresh.clear()
            await self._rehome()

    async def _rehome(self) -> None:
        moved = False
        for channel, old in list(self._owner.items()):
            new = self._owner_of(channel)
            if new == old and old in self._listeners and self._listeners[old].healthy:
                continue
            old_listener = self._listeners.get(old)
            if old_listener is not None:
                with contextlib.suppress(Exception):
                    await old_listener.unsubscribe(channel)
            self._owner[channel] = new
            # In the background: a subscribe waiting on the old node retries on the new one itself.
            move = asyncio.ensure_future(self._listener(new).subscribe(channel))
            self._moves.add(move)
            move.add_done_callback(self._moves.discard)
            moved = True
        primaries = {node.name for node in self._cluster.get_primaries()}
        for name in [n for n in self._listeners if n not in primaries or not self._listeners[n].channels]:
            if name not in set(self._owner.values()):
                await self._listeners.pop(name).aclose()
        if moved and self._handlers is not None:
            self.reconnects += 1
            log.info("cluster topology changed; channels moved to their new owners, resyncing")
            self._handlers[1]()
