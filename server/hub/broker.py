"""The broker: carries change notifications between hub processes over Redis pub/sub.

Guarantees: **at most once, in order, per channel** while the pub/sub
connection stays up; a notification published while it is down is lost. That
is why the broker never hides a reconnect: after every new connection it calls
`on_resync`, and the hub then catches every live subscription up from the
store's patch log (or sends a fresh snapshot). A listener that dies or that
Redis drops (for exceeding `client-output-buffer-limit pubsub`) is therefore
reconnected, never left silently deaf.

The process holds one Redis subscription per watched channel, however many
local subscribers the topic has: the hub counts subscribers, the broker counts
channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger("cimhub.broker")

OnMessage = Callable[[str, bytes], None]
OnResync = Callable[[], None]


class Broker:
    """One supervised pub/sub connection per process."""

    def __init__(self, redis_url: str, *, alive_channel: str) -> None:
        # A private client with redis-py's own retries off: a silent internal
        # reconnect would drop notifications without telling us.
        self._client = aioredis.from_url(redis_url, retry=Retry(NoBackoff(), 0), health_check_interval=0)
        self._alive_channel = alive_channel  # Keys.alive_channel
        self._channels: set[str] = set()
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._pubsub: aioredis.client.PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self.reconnects = 0

    @property
    def healthy(self) -> bool:
        return self._connected.is_set()

    async def start(self, on_message: OnMessage, on_resync: OnResync) -> None:
        """Listen, handing each notification to `on_message` and each reconnect to `on_resync`."""
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
            self._channels.add(channel)
            if self._pubsub is not None and self._connected.is_set():
                with contextlib.suppress(redis.exceptions.RedisError, OSError):
                    await self._pubsub.subscribe(channel)
            # If the connection is down, the supervisor subscribes on reconnect.
        await asyncio.shield(future)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        future = self._confirmed.pop(channel, None)
        if future is not None and not future.done():
            future.cancel()
        if self._pubsub is not None and self._connected.is_set():
            with contextlib.suppress(redis.exceptions.RedisError, OSError):
                await self._pubsub.unsubscribe(channel)

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
        await pubsub.subscribe(self._alive_channel)
        # From here `subscribe` sends its own SUBSCRIBE; the channels taken
        # before are all in this set (no await between): none is left out.
        self._connected.set()
        channels = {self._alive_channel, *self._channels}
        if len(channels) > 1:
            await pubsub.subscribe(*(channels - {self._alive_channel}))
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
            if kind == "message":
                on_message(channel, message["data"])
            elif kind == "subscribe":
                future = self._confirmed.get(channel)
                if future is not None and not future.done():
                    future.set_result(None)
                unconfirmed.discard(channel)
                if resync and not unconfirmed:
                    resync = False
                    self.reconnects += 1
                    log.info("pub/sub listener reconnected; resyncing %d channels", len(self._channels))
                    on_resync()
