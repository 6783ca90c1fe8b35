"""The hub: which local connections watch which topics, and getting every change to them.

For each topic with at least one local subscriber the process holds one
broker (Redis pub/sub) subscription. A change arriving from the broker is
decoded once, encoded once per codec, and queued to each subscriber's
connection without awaiting any socket (cimhub.server.hub.session does the
writing).

Per subscription the hub guarantees, for sequenced topics (``cim:``,
``messages:``): a snapshot at revision r (or, on resume, exactly the patches
after the client's revision, and only if the client's commit id is still the
one at that revision), then patches r+1, r+2, ... in order, without gaps or
duplicates, each one's parent being the commit before it. A subscription is subscribed to the broker *before* its
snapshot or catch-up is read, and changes that arrive meanwhile are buffered
and filtered by revision, so nothing slips between snapshot and stream. A gap
(a lost notification, a broker reconnect) is repaired from the patch log, or
by a fresh snapshot marked ``reset`` when the log no longer reaches back or
the epoch changed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, Protocol

from cimhub.protocol.errors import CimhubError, ErrorCode, InvalidInput, NotFound
from cimhub.protocol.frames import Outbound, SnapshotOut, SubscribedOut, UnsubscribedOut, topic_parts
from cimhub.server.hub.feeds import Entry, Feed
from cimhub.server.metrics import Metrics

log = logging.getLogger("cimhub.hub")

# Changes buffered per subscription while its snapshot or catch-up is read;
# past this the buffer is dropped and the subscription catches up again.
MAX_BUFFERED = 10_000
# Catch-up patches queued between two yields to the event loop.
CATCH_UP_BATCH = 64
# A catch-up whose reads fail is tried this often (waiting 0.2, 0.4, 0.8, 1.6 s) before the subscription ends.
CATCH_UP_ATTEMPTS = 5
CATCH_UP_RETRY_S = 0.2


class Connection(Protocol):
    """What the hub needs of a client connection (cimhub.server.hub.session.Session)."""

    codec_name: str
    topics: dict[str, None]

    def send_encoded(self, data: str | bytes) -> None: ...

    def send(self, frame: Outbound) -> None: ...

    def encode(self, frame: Outbound) -> str | bytes: ...


Readmit = Callable[[Any, str], Awaitable[None]]
"""May this connection still watch this topic? (Dispatcher.authorize_topic for its identity)."""


class State(Enum):
    SYNCING = "syncing"  # reading a snapshot or catch-up; changes are buffered
    LIVE = "live"  # changes are delivered as they arrive
    PAUSED = "paused"  # deliveries stopped (token expired); resumes by catching up


class Subscription:
    __slots__ = ("buffer", "commit", "connection", "epoch", "revision", "seen", "state", "task", "topic")

    def __init__(self, connection: Connection, topic: Topic) -> None:
        self.connection = connection
        self.topic = topic
        self.revision = -1
        self.epoch = ""
        self.commit = ""
        self.state = State.SYNCING
        self.buffer: list[Entry] = []
        self.seen: set[str] = set()
        self.task: asyncio.Task[None] | None = None


class Topic:
    __slots__ = ("channel", "feed", "ident", "name", "ready", "subscriptions")

    def __init__(self, name: str, ident: str, feed: Feed) -> None:
        self.name = name
        self.ident = ident
        self.feed = feed
        self.channel = feed.channel(ident)
        self.subscriptions: dict[Connection, Subscription] = {}
        self.ready: asyncio.Future[None] | None = None


class Channels(Protocol):
    """What the hub needs of the broker (cimhub.server.hub.broker.Broker, or a fake in tests)."""

    async def subscribe(self, channel: str) -> None:
        """Return once notifications on `channel` will arrive."""

    async def unsubscribe(self, channel: str) -> None: ...


class Hub:
    """Local topics and subscriptions of one process. Wired by cimhub.server.app."""

    def __init__(
        self,
        feeds: dict[str, Feed],
        metrics: Metrics,
        broker: Channels,
        *,
        sync_concurrency: int = 32,
        readmit: Readmit | None = None,
    ) -> None:
        self.feeds = feeds
        # Asked before a live subscription gets a snapshot of another epoch (the CIM was created
        # again, perhaps under another deal): raises a CimhubError, which ends the subscription.
        self.readmit = readmit
        self.metrics = metrics
        self.broker = broker
        self.topics: dict[str, Topic] = {}
        self.by_channel: dict[str, Topic] = {}
        # Paces snapshot and catch-up reads, so a reconnect storm queues instead of stalling Redis.
        self.sync_slots = asyncio.Semaphore(sync_concurrency)
        self._deliveries = 0
        # Broker unsubscribes run in the background (fan-out never awaits); held here so
        # none is garbage-collected mid-flight and aclose() can wait for them.
        self._unsubscribing: set[asyncio.Task[None]] = set()

    # -- subscribing -------------------------------------------------------

    def feed_of(self, topic: str) -> tuple[Feed, str]:
        kind, ident = topic_parts(topic)
        feed = self.feeds.get(kind)
        if feed is None:
            raise InvalidInput(
                f"unknown topic kind {kind!r}; known: {', '.join(sorted(self.feeds))}",
                code=ErrorCode.UNKNOWN_TOPIC,
                path="topic",
            )
        return feed, ident

    def idents_of(self, kind: str) -> list[str]:
        """The identifiers of the topics of one kind that local connections watch (e.g. presence's CIM ids)."""
        return [topic.ident for topic in self.topics.values() if topic.feed.kind == kind]

    async def subscribe(
        self, connection: Connection, topic_name: str, *, request_id: str, resume: tuple[int, str, str] | None
    ) -> None:
        """Start delivering `topic_name` to `connection`; the first frames answer `request_id`.

        `resume` is the client's (revision, epoch, commit id): the last change it applied.

        Raises NotFound (nothing is subscribed) when the topic has nothing to show.
        """
        feed, ident = self.feed_of(topic_name)
        topic = self.topics.get(topic_name)
        if topic is None:
            topic = Topic(topic_name, ident, feed)
            self.topics[topic_name] = topic
            self.by_channel[topic.channel] = topic
            self.metrics.topics.set(len(self.topics))
        sub = Subscription(connection, topic)
        if resume is not None:
            sub.revision, sub.epoch, sub.commit = resume
        topic.subscriptions[connection] = sub
        self.metrics.subscriptions.inc()
        try:
            await self._ensure_channel(topic)
            await self._sync(sub, request_id=request_id, resuming=resume is not None)
        except BaseException:
            self._remove(sub)
            raise

    async def _ensure_channel(self, topic: Topic) -> None:
        if topic.ready is None:
            topic.ready = asyncio.ensure_future(self.broker.subscribe(topic.channel))
        await asyncio.shield(topic.ready)

    def unsubscribe(self, connection: Connection, topic_name: str) -> bool:
        topic = self.topics.get(topic_name)
        sub = topic.subscriptions.get(connection) if topic is not None else None
        if sub is None:
            return False
        self._remove(sub)
        return True

    def drop(self, connection: Connection, topics: list[str]) -> None:
        """Forget a closed connection's subscriptions."""
        for name in topics:
            self.unsubscribe(connection, name)

    def _remove(self, sub: Subscription) -> None:
        topic = sub.topic
        if topic.subscriptions.get(sub.connection) is not sub:
            return
        del topic.subscriptions[sub.connection]
        sub.connection.topics.pop(topic.name, None)
        self.metrics.subscriptions.dec()
        if sub.task is not None and sub.task is not asyncio.current_task():
            sub.task.cancel()
        if not topic.subscriptions:
            del self.topics[topic.name]
            self.by_channel.pop(topic.channel, None)
            self.metrics.topics.set(len(self.topics))
            task = asyncio.ensure_future(self.broker.unsubscribe(topic.channel))
            self._unsubscribing.add(task)
            task.add_done_callback(self._unsubscribed)

    def _unsubscribed(self, task: asyncio.Task[None]) -> None:
        self._unsubscribing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The broker resubscribes from its own list after a reconnect: a failed
            # unsubscribe costs a few stray notifications, which the hub ignores.
            log.warning("broker unsubscribe failed: %s", task.exception())

    # -- catching up ---------------------------------------------------------

    async def _sync(self, sub: Subscription, *, request_id: str | None, resuming: bool) -> None:
        """Bring `sub` to the topic's current state, then make it live. Buffers changes meanwhile."""
        try:
            await self._sync_once(sub, request_id=request_id, resuming=resuming)
        finally:
            self._count_deliveries()

    async def _sync_once(self, sub: Subscription, *, request_id: str | None, resuming: bool) -> None:
        topic, feed, conn = sub.topic, sub.topic.feed, sub.connection
        sub.state = State.SYNCING
        sub.buffer.clear()
        while True:
            async with self.sync_slots:
                entries = None
                if resuming and feed.sequenced and sub.revision >= 0:
                    entries = await feed.since(topic.ident, sub.revision, sub.epoch, sub.commit)
                if entries is not None:
                    self.metrics.resyncs.labels("patch_log").inc()
                    for n, entry in enumerate(entries, 1):
                        if entry["rev"] > sub.revision:
                            self._send_entry(sub, entry, None)
                        if n % CATCH_UP_BATCH == 0:
                            # Let other connections run: live changes meanwhile go to this subscription's buffer.
                            await asyncio.sleep(0)
                            if sub.state is not State.SYNCING:
                                return
                    if request_id is not None:
                        subscribed: SubscribedOut = {
                            "type": "subscribed",
                            "topic": topic.name,
                            "id": request_id,
                            "revision": sub.revision,
                            "epoch": sub.epoch,
                        }
                        if sub.commit:
                            subscribed["commit"] = sub.commit
                        conn.send(subscribed)
                else:
                    snapshot = await feed.snapshot(topic.ident)
                    if snapshot is None:
                        if request_id is not None:
                            raise NotFound(f"{topic.name} not found", path="topic")
                        self._end(sub, NotFound(f"{topic.name} no longer exists"))
                        return
                    if request_id is None and sub.epoch and snapshot.epoch != sub.epoch and self.readmit:
                        await self.readmit(conn, topic.name)
                    if resuming:
                        self.metrics.resyncs.labels("snapshot").inc()
                    frame: SnapshotOut = {
                        "type": "snapshot",
                        "topic": topic.name,
                        "revision": snapshot.revision,
                        "epoch": snapshot.epoch,
                        "data": snapshot.data,
                        "reset": resuming,
                    }
                    if snapshot.commit:
                        frame["commit"] = snapshot.commit
                    if request_id is not None:
                        frame["id"] = request_id
                    conn.send(frame)
                    sub.revision, sub.epoch, sub.commit = snapshot.revision, snapshot.epoch, snapshot.commit
                    if not feed.sequenced:
                        sub.seen = set(snapshot.data)
            # Deliver what arrived meanwhile; no awaits from here to LIVE.
            if sub.state is not State.SYNCING:
                return  # paused or removed while reading
            buffered, sub.buffer = sub.buffer, []
            if all(self._offer(sub, entry, None) for entry in buffered):
                sub.state = State.LIVE
                return
            # A gap in the buffer: catch up again from where we are.
            resuming, request_id = True, None

    def _start_sync(self, sub: Subscription) -> None:
        if sub.task is not None and not sub.task.done():
            return
        sub.state = State.SYNCING
        sub.buffer.clear()
        sub.task = asyncio.ensure_future(self._sync_quietly(sub))

    async def _sync_quietly(self, sub: Subscription) -> None:
        """Catch `sub` up; a failed read (Redis restarting, still loading) is tried again a few times first.

        The catch-ups that follow a Redis restart meet it while it still loads
        its data: ending every subscription then would send every client back
        through a resubscribe for a wait of a second or two.
        """
        delay = CATCH_UP_RETRY_S
        for attempt in range(1, CATCH_UP_ATTEMPTS + 1):
            try:
                await self._sync(sub, request_id=None, resuming=True)
                return
            except asyncio.CancelledError:
                raise
            except CimhubError as exc:
                self._end(sub, exc)
                return
            except Exception as exc:  # noqa: BLE001 - Redis down or loading: try again, then end it
                if attempt == CATCH_UP_ATTEMPTS:
                    log.warning("catch-up of %s failed %d times: %s", sub.topic.name, attempt, exc)
                    self._end(
                        sub,
                        CimhubError("the hub lost track of this subscription; resubscribe", code=ErrorCode.UNAVAILABLE),
                    )
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _end(self, sub: Subscription, error: CimhubError) -> None:
        """End a subscription from the hub's side, telling the client why."""
        if sub.topic.subscriptions.get(sub.connection) is sub:
            ended: UnsubscribedOut = {"type": "unsubscribed", "topic": sub.topic.name, "error": error.to_wire()}
            sub.connection.send(ended)
            self._remove(sub)

    # -- delivering ------------------------------------------------------------

    def on_message(self, channel: str, data: bytes) -> None:
        """A change from the broker: called for every notification, in order, without awaiting."""
        topic = self.by_channel.get(channel)
        if topic is None:
            return
        entry = topic.feed.decode(data)
        encoded: dict[str, str | bytes] = {}
        for sub in list(topic.subscriptions.values()):
            if sub.state is State.LIVE:
                if not self._offer(sub, entry, encoded):
                    self._start_sync(sub)
            elif sub.state is State.SYNCING:
                if len(sub.buffer) < MAX_BUFFERED:
                    sub.buffer.append(entry)
                else:
                    sub.buffer.clear()
                    if sub.task is not None:
                        sub.task.cancel()
                        sub.task = None
                    self._start_sync(sub)
        self._count_deliveries()
        if entry.get("ts"):
            self.metrics.delivery_latency.observe(max(0.0, time.time() - entry["ts"] / 1000))

    def _offer(self, sub: Subscription, entry: Entry, encoded: dict[str, str | bytes] | None) -> bool:
        """Deliver `entry` if it is next for `sub`; False when there is a gap to repair.

        With commit ids, "next" means the entry's parent is the subscriber's
        commit, and a repeat of the subscriber's revision must be its very
        commit: anything else is another history (Redis came back older), which
        the catch-up then answers with a reset snapshot. Older revisions are
        repeats from before a snapshot or catch-up read (published earlier,
        still in flight); a rollback cannot hide among them, because Redis
        restarting drops the broker's connection and every subscription then
        catches up from the log anyway (`on_resync`).
        """
        feed = sub.topic.feed
        if not feed.sequenced:
            if feed.accept(sub.seen, entry):
                self._send_entry(sub, entry, encoded)
            return True
        rev = entry["rev"]
        if entry["epoch"] != sub.epoch:
            return False
        commit = entry.get("commit")
        if rev < sub.revision:
            return True  # already delivered (snapshot or catch-up covered it)
        if rev == sub.revision:
            return not (commit and sub.commit and commit != sub.commit)
        if rev != sub.revision + 1:
            return False
        if commit and sub.commit and entry.get("parent") != sub.commit:
            return False
        self._send_entry(sub, entry, encoded)
        return True

    def _count_deliveries(self) -> None:
        """Add the deliveries since the last call to the metric: one locked increment per patch, not per subscriber."""
        if self._deliveries:
            self.metrics.deliveries.inc(self._deliveries)
            self._deliveries = 0

    def _send_entry(self, sub: Subscription, entry: Entry, encoded: dict[str, str | bytes] | None) -> None:
        conn = sub.connection
        data = encoded.get(conn.codec_name) if encoded is not None else None
        if data is None:
            data = conn.encode(sub.topic.feed.frame(sub.topic.name, entry))
            if encoded is not None:
                encoded[conn.codec_name] = data
        if sub.topic.feed.sequenced:
            sub.revision = entry["rev"]
            sub.commit = entry.get("commit") or ""
        conn.send_encoded(data)
        self._deliveries += 1
        if entry.get("deleted"):
            self._remove(sub)

    # -- pausing, resyncing ------------------------------------------------------

    def pause(self, connection: Connection, topics: list[str]) -> None:
        """Stop delivering to `connection` (its token expired) until `resume`."""
        for sub in self._subs_of(connection, topics):
            if sub.task is not None:
                sub.task.cancel()
                sub.task = None
            sub.state = State.PAUSED
            sub.buffer.clear()

    def resume(self, connection: Connection, topics: list[str]) -> None:
        """Catch `connection` up on everything it missed while paused, then go live."""
        for sub in self._subs_of(connection, topics):
            if sub.state is State.PAUSED:
                self._start_sync(sub)

    def on_resync(self) -> None:
        """The broker reconnected: notifications may have been lost; catch every subscription up."""
        self.metrics.broker_reconnects.inc()
        for topic in list(self.topics.values()):
            for sub in list(topic.subscriptions.values()):
                if sub.state is not State.PAUSED:
                    if sub.task is not None:
                        sub.task.cancel()
                        sub.task = None
                    self._start_sync(sub)

    def _subs_of(self, connection: Connection, topics: list[str]) -> list[Subscription]:
        subs = []
        for name in topics:
            topic = self.topics.get(name)
            sub = topic.subscriptions.get(connection) if topic is not None else None
            if sub is not None:
                subs.append(sub)
        return subs

    def end(self, connection: Connection, topic_name: str, error: CimhubError) -> None:
        for sub in self._subs_of(connection, [topic_name]):
            self._end(sub, error)

    async def aclose(self) -> None:
        """Stop every catch-up and wait for pending broker unsubscribes; a cancel of aclose itself propagates."""
        tasks = [
            sub.task for topic in self.topics.values() for sub in topic.subscriptions.values() if sub.task is not None
        ]
        for task in tasks:
            task.cancel()
        tasks.extend(self._unsubscribing)
        # return_exceptions collects the tasks' own CancelledErrors; cancelling aclose still raises here.
        await asyncio.gather(*tasks, return_exceptions=True)
