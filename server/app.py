"""The application factory: the one place that wires store, engine, hub, broker and auth.

`create_app(settings)` returns a Starlette app whose lifespan opens Redis,
builds every part through its constructor (`open_services`), starts the
broker and the access re-check, and closes everything in reverse order.
Nothing here is a module-level global: tests build as many apps as they like.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from cimhub.protocol.frames import topic_parts
from cimhub.server import http
from cimhub.server.auth.access import access_from_settings
from cimhub.server.auth.authorizer import Authorizer
from cimhub.server.auth.recheck import AccessRecheck
from cimhub.server.auth.tokens import TokenVerifier
from cimhub.server.board import board_routes, cors_middleware
from cimhub.server.checkpoint import AsyncCimhubRedisSaver
from cimhub.server.connect import connect
from cimhub.server.dispatch import Dispatcher
from cimhub.server.faults import FaultLog
from cimhub.server.hub.admission import Admission
from cimhub.server.hub.broker import Broker, ClusterBroker
from cimhub.server.hub.connections import Connections
from cimhub.server.hub.endpoint import websocket_endpoint
from cimhub.server.hub.feeds import DealFeed, DocumentFeed, Feed
from cimhub.server.hub.hub import Hub
from cimhub.server.hub.presence import PresenceFeed, PresenceStore
from cimhub.server.hub.presence_tracker import PresenceTracker
from cimhub.server.hub.sender import KeepTransport
from cimhub.server.messages.feed import MessageFeed
from cimhub.server.messages.ops import MessageOps
from cimhub.server.messages.store import MessageStore
from cimhub.server.metrics import Metrics
from cimhub.server.settings import Settings
from cimhub.server.store.cims import CimStore
from cimhub.server.store.engine import MutationEngine
from cimhub.server.store.history import History
from cimhub.server.store.history_queries import HistoryQueries
from cimhub.server.store.keys import Keys
from cimhub.server.store.queries import Queries
from cimhub.server.store.replicas import ReplicatedCommits


@dataclass(frozen=True)
class Services:
    """Everything one hub process runs on, as the endpoints see it (`app.state.services`)."""

    settings: Settings
    redis: aioredis.Redis
    metrics: Metrics
    verifier: Any
    access: Any
    store: CimStore
    engine: MutationEngine
    dispatcher: Dispatcher
    hub: Hub
    broker: Broker | ClusterBroker
    connections: Connections
    admission: Admission
    presence: PresenceTracker | None = None
    faults: FaultLog | None = None
    """Logs each Redis fault once per episode, whichever path (mutation, query, subscribe, HTTP) met it."""


@contextlib.asynccontextmanager
async def open_services(settings: Settings, redis_url: str, verifier: Any, access: Any) -> AsyncIterator[Services]:
    """Build and start every part of one hub process; stop them in reverse order on exit."""
    metrics = Metrics()
    faults = FaultLog()
    # The store, messages and saver use only commands a cluster client routes by key, with every
    # script's keys in one slot (docs/scaling.md); their annotations name the single-node client.
    redis = cast(aioredis.Redis, connect(redis_url, settings.redis_limits()))
    keys = Keys(settings.key_prefix, cluster=isinstance(redis, RedisCluster))
    messages = MessageStore(redis, keys, settings.embedding_dimension)
    store = CimStore(
        redis,
        keys,
        patch_log_retention=settings.patch_log_retention,
        patch_log_max_bytes=settings.patch_log_max_bytes,
        idempotency_window_s=settings.idempotency_window_s,
        snapshot_every=settings.history_snapshot_every,
        history_max_age_ms=settings.history_max_age_s * 1000,
        extra_keys=messages.key_names,
        replicated=ReplicatedCommits(
            redis, replicas=settings.commit_replicas, timeout_ms=settings.commit_replica_timeout_ms
        )
        if settings.commit_replicas
        else None,
    )
    history = History(redis, keys, snapshot_every=settings.history_snapshot_every)
    authorizer = Authorizer(access, store)
    # The CIM agent's LangGraph thread is the CIM id: deleting a CIM deletes its checkpoints.
    checkpoints = AsyncCimhubRedisSaver(redis, key_prefix=settings.key_prefix)

    async def forget_deleted(cim_id: str) -> None:
        authorizer.forget(cim_id)

    engine = MutationEngine(
        store,
        max_retries=settings.max_commit_retries,
        max_document_bytes=settings.max_document_bytes,
        cache_size=settings.document_cache_size,
        on_delete=(checkpoints.adelete_thread, forget_deleted),
        faults=faults,
        history=history,
    )
    dispatcher = Dispatcher(
        engine=engine,
        queries=Queries(store, authorizer),
        message_ops=MessageOps(messages, authorizer),
        authorizer=authorizer,
        metrics=metrics,
        history=HistoryQueries(history, authorizer),
    )
    presence_store = PresenceStore(
        redis, keys, ttl_ms=int(settings.presence_ttl_s * 1000), max_per_cim=settings.presence_max_per_cim
    )
    feeds: dict[str, Feed] = {
        "cim": DocumentFeed(store, keys, max_catch_up=settings.max_catch_up),
        "deal": DealFeed(store, keys),
        "messages": MessageFeed(messages, store, max_catch_up=settings.max_catch_up),
        "presence": PresenceFeed(presence_store, store, keys),
    }
    broker: Broker | ClusterBroker = (
        ClusterBroker(redis, alive_channel=keys.alive_channel)
        if isinstance(redis, RedisCluster)
        else Broker(redis_url, alive_channel=keys.alive_channel)
    )

    async def readmit(connection: Any, topic_name: str) -> None:
        await dispatcher.authorize_topic(connection.identity, *topic_parts(topic_name))

    hub = Hub(
        feeds,
        metrics,
        broker,
        sync_concurrency=settings.sync_concurrency,
        catch_up_concurrency=settings.catch_up_concurrency,
        catch_up_wait_s=settings.catch_up_wait_s,
        faults=faults,
        readmit=readmit,
    )
    presence = PresenceTracker(
        presence_store, watched=lambda: hub.idents_of("presence"), max_per_connection=settings.max_subscriptions
    )
    connections = Connections(max_unauthenticated=settings.max_unauthenticated)
    recheck = AccessRecheck(
        connections,
        authorizer,
        hub,
        interval_s=settings.access_recheck_s,
        outage_grace_s=settings.access_outage_grace_s,
        presence=presence,
        faults=faults,
    )
    services = Services(
        settings=settings,
        redis=redis,
        metrics=metrics,
        verifier=verifier,
        access=access,
        store=store,
        engine=engine,
        dispatcher=dispatcher,
        hub=hub,
        broker=broker,
        connections=connections,
        admission=Admission(settings),
        presence=presence,
        faults=faults,
    )
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(redis.aclose)
        stack.push_async_callback(store.aclose)  # its commit connection, before the client it copies
        for part in (verifier, access):
            stack.push_async_callback(_close_quietly, part)
        await broker.start(hub.on_message, hub.on_resync)
        stack.push_async_callback(broker.aclose)
        stack.push_async_callback(hub.aclose)
        recheck.start()
        stack.push_async_callback(recheck.aclose)
        presence.start()
        stack.push_async_callback(presence.aclose)
        yield services


async def _close_quietly(part: Any) -> None:
    """Close a pluggable part (token verifier, access backend) if it has anything to close."""
    closer = getattr(part, "aclose", None)
    if closer is not None:
        with contextlib.suppress(Exception):
            await closer()


def create_app(
    settings: Settings, *, redis_url: str | None = None, verifier: Any = None, access: Any = None
) -> Starlette:
    """The hub as an ASGI app. `redis_url` overrides settings.redis_url (the embedded Redis passes its own)."""
    url = redis_url or settings.redis_url
    if url is None:
        raise ValueError("create_app needs a Redis URL: set REDIS_URL, or run `cimhub serve` for the embedded Redis")
    if verifier is None:
        verifier = TokenVerifier.from_settings(
            settings, service_keys=settings.service_keys, allow_anonymous=settings.allow_anonymous
        )
    if access is None:
        access = access_from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_services(settings, url, verifier, access) as services:
            app.state.services = services
            yield

    return Starlette(
        routes=[
            WebSocketRoute("/v1/ws", websocket_endpoint),
            Route("/v1/mutate", http.mutate, methods=["POST"]),
            Route("/v1/query", http.query, methods=["POST"]),
            Route("/v1/cims/{cimId}/history", http.cim_history),
            Route("/v1/cims/{cimId}/revisions/{revision:int}", http.cim_at),
            Route("/v1/cims/{cimId}/diff", http.cim_diff),
            Route("/v1/schema", http.schema),
            Route("/healthz", http.healthz),
            Route("/readyz", http.readyz),
            Route("/metrics", http.metrics),
            # The browser client and the board's script, built from clients/js (docs/browser.md).
            Mount("/static", StaticFiles(packages=[("cimhub.server", "static")]), name="static"),
            *board_routes(settings),  # the live CIM board at / (docs/browser.md)
        ],
        # KeepTransport lets a connection's writer abort a client that stopped reading (hub/sender.py).
        middleware=[Middleware(KeepTransport), *cors_middleware(settings)],
        lifespan=lifespan,
    )
