"""The application factory: the one place that wires store, engine, hub, broker and auth.

`create_app(settings)` returns a Starlette app whose lifespan opens Redis,
starts the broker, and closes everything in reverse order. Nothing here is a
module-level global: tests build as many apps as they like.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import redis.asyncio as aioredis
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from cimhub.protocol import frames as f
from cimhub.protocol.codec import codec_for
from cimhub.protocol.errors import (
    AccessDenied,
    CimhubError,
    ErrorCode,
    InvalidInput,
    Unauthenticated,
)
from cimhub.protocol.frames import topic_parts
from cimhub.protocol.mutations import get_mutation

from cimhub.server.auth.access import access_from_settings
from cimhub.server.auth.tokens import TokenVerifier
from cimhub.server.auth.authorizer import Authorizer
from cimhub.server.hub.broker import Broker
from cimhub.server.checkpoint import AsyncRedisSaver
from cimhub.server.store.engine import CommitResult, MutationEngine
from cimhub.server.faults import client_error
from cimhub.server.hub.feeds import DealFeed, DocumentFeed, Feed
from cimhub.server.hub.hub import Hub
from cimhub.server.store.keys import Keys
from cimhub.server.messages.feed import MessageFeed
from cimhub.server.messages.ops import MessageOps
from cimhub.server.messages.store import MessageStore
from cimhub.server.metrics import Metrics
from cimhub.server.store.queries import Queries
from cimhub.server.hub.session import Session, actor_of
from cimhub.server.settings import Settings
from cimhub.server.store.cims import CimStore
from cimhub.server.store.connection import open_redis

log = logging.getLogger("cimhub.app")

HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_FRAME: 400,
    ErrorCode.INVALID_ARGS: 400,
    ErrorCode.UNKNOWN_MUTATION: 400,
    ErrorCode.UNKNOWN_QUERY: 400,
    ErrorCode.UNKNOWN_TOPIC: 400,
    ErrorCode.INVALID_TRANSITION: 409,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.MUTATION_ID_REUSED: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.TOO_MANY_SUBSCRIPTIONS: 400,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.ACCESS_DENIED: 403,
    ErrorCode.OVERLOADED: 503,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}


class Services:
    """Everything one hub process runs on; built in the lifespan, shared by all connections."""

    def __init__(self, settings: Settings, redis_url: str, verifier: Any, access: Any) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.redis = open_redis(redis_url, settings.redis_limits())
        self.keys = Keys(settings.key_prefix)
        self.store = CimStore(
            self.redis,
            self.keys,
            patch_log_retention=settings.patch_log_retention,
            idempotency_window_s=settings.idempotency_window_s,
        )
        self.engine = MutationEngine(
            self.store,
            max_retries=settings.max_commit_retries,
            max_document_bytes=settings.max_document_bytes,
            cache_size=settings.document_cache_size,
        )
        # The CIM agent's LangGraph thread is the CIM id: deleting a CIM deletes its checkpoints.
        self.checkpoints = AsyncRedisSaver(self.redis, key_prefix=settings.key_prefix)
        self.engine.on_delete.append(self.checkpoints.adelete_thread)
        self.verifier = verifier
        self.access = access
        self.authorizer = Authorizer(access, self.store)
        self.engine.on_delete.append(self._forget_deleted)
        self.queries = Queries(self.store, self.authorizer)
        self.messages = MessageStore(self.redis, self.keys, settings.embedding_dimension)
        self.message_ops = MessageOps(self.messages, self.authorizer)
        self.store.extra_keys = self.messages.key_names
        self.feeds: dict[str, Feed] = {
            "cim": DocumentFeed(self.store, self.keys, max_catch_up=settings.max_catch_up),
            "deal": DealFeed(self.store, self.keys),
            "messages": MessageFeed(self.messages, self.store),
        }
        self.hub = Hub(self.feeds, self.metrics, sync_concurrency=settings.sync_concurrency)
        self.broker = Broker(redis_url, self.hub.on_message, self.hub.on_resync)
        self.hub.broker = self.broker
        self.sessions: set[Session] = set()
        self.unauthenticated = 0
        self.draining = False

    async def start(self) -> None:
        await self.broker.start()
        self._recheck = asyncio.create_task(self._recheck_access(), name="cimhub-access-recheck")

    async def _recheck_access(self) -> None:
        """End live subscriptions whose access was revoked in Supabase.

        Runs every `access_recheck_s`; each check goes through the access
        cache, so Supabase is asked again only once a decision is older than its
        TTL. Revocation therefore takes effect within access_cache_ttl_s +
        access_recheck_s.
        """
        while True:
            await asyncio.sleep(self.settings.access_recheck_s)
            for session in list(self.sessions):
                identity = session.identity
                if identity is None or self.authorizer.trusted(identity):
                    continue
                for topic in list(session.topics):
                    kind, ident = topic_parts(topic)
                    try:
                        deal = ident if kind == "deal" else await self.authorizer.deal_of(ident)
                        allowed = deal is not None and await self.authorizer.may_see_deal(identity, deal)
                    except CimhubError:
                        continue  # Supabase unreachable: keep what was allowed, ask again next round
                    except Exception:
                        log.exception("access re-check failed")
                        continue
                    if not allowed:
                        session.topics.pop(topic, None)
                        self.hub.end(session, topic, AccessDenied(f"access to {topic} was revoked"))

    async def aclose(self) -> None:
        self._recheck.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._recheck
        await self.hub.aclose()
        await self.broker.aclose()
        await self.redis.aclose()
        for closer in (getattr(self.verifier, "aclose", None), getattr(self.access, "aclose", None)):
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()

    async def _forget_deleted(self, cim_id: str) -> None:
        self.authorizer.forget(cim_id)

    async def authorize_topic(self, identity: Any, kind: str, ident: str) -> None:
        if kind == "deal":
            await self.authorizer.require_deal(identity, ident)
        else:
            await self.authorizer.require_cim(identity, ident)

    async def query(self, identity: Any, name: str, args: Any) -> Any:
        if name in self.message_ops.QUERIES:
            return await self.message_ops.query(identity, name, args)
        return await self.queries.run(identity, name, args)

    async def mutate(
        self, identity: Any, name: str, args: Any, mutation_id: str, expected_revision: int | None
    ) -> CommitResult:
        """Validate, authorize and run one mutation, counting its outcome."""
        outcome = "error"
        try:
            if name == "addMessage":
                # Not a document mutation: the conversation is its own log, idempotent by message id.
                result = await self.message_ops.add(identity, args, mutation_id)
                outcome = "duplicate" if result.duplicate else "committed"
                return result
            spec = get_mutation(name)
            parsed = spec.parse_args(args)
            await self.authorizer.require_mutation(identity, name, parsed)
            result = await self.engine.run(
                spec, parsed, actor=actor_of(identity), mutation_id=mutation_id,
                expected_revision=expected_revision, user_id=identity.user_id,
            )
            outcome = "duplicate" if result.duplicate else "committed"
            return result
        except CimhubError as exc:
            outcome = exc.code.value
            raise
        finally:
            self.metrics.mutations.labels(name if name in _KNOWN_NAMES else "unknown", outcome).inc()

    async def drain(self, code: int = f.CLOSE_RESTART, reason: str = "hub restarting: reconnect and resume") -> None:
        """Tell every client to reconnect elsewhere, after sending what is queued; refuse newcomers."""
        self.draining = True
        for session in list(self.sessions):
            session.close(code, reason)


def _known_names() -> frozenset[str]:
    from cimhub.protocol.mutations import MUTATIONS

    return frozenset(MUTATIONS) | {"addMessage"}


_KNOWN_NAMES = _known_names()


def error_response(exc: CimhubError) -> JSONResponse:
    return JSONResponse({"error": exc.to_wire()}, status_code=HTTP_STATUS.get(exc.code, 500))


def create_app(settings: Settings, *, redis_url: str | None = None, verifier: Any = None, access: Any = None) -> Starlette:
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
        services = Services(settings, url, verifier, access)
        await services.start()
        app.state.services = services
        try:
            yield
        finally:
            await services.aclose()

    async def websocket_endpoint(websocket: WebSocket) -> None:
        services: Services = websocket.app.state.services
        origin = websocket.headers.get("origin")
        if origin is not None and settings.allowed_origins and origin not in settings.allowed_origins:
            # Closing before accepting refuses the handshake: the browser sees HTTP 403.
            await websocket.close(f.CLOSE_FORBIDDEN_ORIGIN, "origin not allowed")
            return
        if services.draining:
            await websocket.accept()
            await websocket.close(f.CLOSE_RESTART, "hub restarting: connect to another")
            return
        offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        codec = codec_for(offered)
        await websocket.accept(subprotocol=codec.subprotocol if codec.subprotocol in offered else None)
        await Session(websocket, codec, services).run()

    async def identity_of(request: Request) -> Any:
        services: Services = request.app.state.services
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("send `Authorization: Bearer <token>`")
        return await services.verifier.verify(token.strip(), on_behalf_of=request.headers.get("x-cimhub-act-as"))

    async def read_json(request: Request) -> dict[str, Any]:
        body = await request.body()
        if len(body) > settings.max_frame_bytes:
            raise InvalidInput(f"body over {settings.max_frame_bytes} bytes", code=ErrorCode.PAYLOAD_TOO_LARGE)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"body is not valid JSON: {exc}", code=ErrorCode.BAD_FRAME) from None
        if not isinstance(data, dict):
            raise InvalidInput("body must be a JSON object", code=ErrorCode.BAD_FRAME)
        return data

    async def http_mutate(request: Request) -> Response:
        services: Services = request.app.state.services
        try:
            identity = await identity_of(request)
            body = await read_json(request)
            name, args, mutation_id = body.get("name"), body.get("args", {}), body.get("mutationId")
            if not isinstance(name, str) or not isinstance(mutation_id, str) or not isinstance(args, dict):
                raise InvalidInput("body needs name (string), args (object) and mutationId (string)", code=ErrorCode.BAD_FRAME)
            expected = body.get("expectedRevision")
            if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool)):
                raise InvalidInput("expectedRevision must be an integer", path="expectedRevision")
            result = await services.mutate(identity, name, args, mutation_id, expected)
        except Exception as exc:  # noqa: BLE001 - every failure is a structured error, never a traceback
            return error_response(client_error(exc, "running a mutation"))
        return JSONResponse({
            "result": result.result, "cimId": result.cim_id, "revision": result.revision, "duplicate": result.duplicate,
        })

    async def http_query(request: Request) -> Response:
        services: Services = request.app.state.services
        try:
            identity = await identity_of(request)
            body = await read_json(request)
            name, args = body.get("name"), body.get("args", {})
            if not isinstance(name, str) or not isinstance(args, dict):
                raise InvalidInput("body needs name (string) and args (object)", code=ErrorCode.BAD_FRAME)
            result = await services.query(identity, name, args)
        except Exception as exc:  # noqa: BLE001 - every failure is a structured error, never a traceback
            return error_response(client_error(exc, "running a query"))
        return Response(orjson.dumps({"result": result}), media_type="application/json")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(request: Request) -> Response:
        services: Services = request.app.state.services
        started = time.perf_counter()
        try:
            await services.redis.ping()
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return JSONResponse({"ready": False, "redis": f"unreachable: {type(exc).__name__}"}, status_code=503)
        if not services.broker.healthy:
            return JSONResponse({"ready": False, "broker": "pub/sub listener reconnecting"}, status_code=503)
        return JSONResponse({"ready": True, "redisPingMs": round((time.perf_counter() - started) * 1000, 3)})

    async def metrics(request: Request) -> Response:
        services: Services = request.app.state.services
        return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def schema(request: Request) -> Response:
        return JSONResponse(f.json_schema())

    return Starlette(
        routes=[
            WebSocketRoute("/v1/ws", websocket_endpoint),
            Route("/v1/mutate", http_mutate, methods=["POST"]),
            Route("/v1/query", http_query, methods=["POST"]),
            Route("/v1/schema", schema),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            # The browser client and a live CIM viewer built on it (docs/browser.md).
            Mount("/static", StaticFiles(packages=[("cimhub.server", "static")]), name="static"),
        ],
        lifespan=lifespan,
    )
