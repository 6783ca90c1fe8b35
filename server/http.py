"""The HTTP endpoints: mutate and query for callers that do not keep a socket, health, metrics, schema.

Module-level functions over `request.app.state.services` (built by
create_app's lifespan). Every failure is a structured error body with the
HTTP status of its code, never a traceback.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cimhub.protocol import frames as f
from cimhub.protocol.errors import CimhubError, ErrorCode, InvalidInput, Unauthenticated
from cimhub.server.faults import client_error, probe_redis

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


def error_response(exc: CimhubError) -> JSONResponse:
    return JSONResponse({"error": exc.to_wire()}, status_code=HTTP_STATUS.get(exc.code, 500))


async def identity_of(request: Request) -> Any:
    """The verified caller of `Authorization: Bearer <token>` (and `X-Cimhub-Act-As`)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("send `Authorization: Bearer <token>`")
    verifier = request.app.state.services.verifier
    return await verifier.verify(token.strip(), on_behalf_of=request.headers.get("x-cimhub-act-as"))


async def read_json(request: Request) -> dict[str, Any]:
    limit = request.app.state.services.settings.max_frame_bytes
    body = await request.body()
    if len(body) > limit:
        raise InvalidInput(f"body over {limit} bytes", code=ErrorCode.PAYLOAD_TOO_LARGE)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"body is not valid JSON: {exc}", code=ErrorCode.BAD_FRAME) from None
    if not isinstance(data, dict):
        raise InvalidInput("body must be a JSON object", code=ErrorCode.BAD_FRAME)
    return data


async def mutate(request: Request) -> Response:
    """POST /v1/mutate {name, args, mutationId, expectedRevision?}: the mutate frame over HTTP."""
    try:
        identity = await identity_of(request)
        body = await read_json(request)
        name, args, mutation_id = body.get("name"), body.get("args", {}), body.get("mutationId")
        if not isinstance(name, str) or not isinstance(mutation_id, str) or not isinstance(args, dict):
            raise InvalidInput(
                "body needs name (string), args (object) and mutationId (string)", code=ErrorCode.BAD_FRAME
            )
        expected = body.get("expectedRevision")
        if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool)):
            raise InvalidInput("expectedRevision must be an integer", path="expectedRevision")
        result = await request.app.state.services.dispatcher.mutate(identity, name, args, mutation_id, expected)
    except Exception as exc:  # noqa: BLE001 - every failure is a structured error, never a traceback
        return error_response(client_error(exc, "running a mutation"))
    return JSONResponse({
        "result": result.result, "cimId": result.cim_id, "revision": result.revision, "duplicate": result.duplicate,
    })


async def query(request: Request) -> Response:
    """POST /v1/query {name, args}: the query frame over HTTP."""
    try:
        identity = await identity_of(request)
        body = await read_json(request)
        name, args = body.get("name"), body.get("args", {})
        if not isinstance(name, str) or not isinstance(args, dict):
            raise InvalidInput("body needs name (string) and args (object)", code=ErrorCode.BAD_FRAME)
        result = await request.app.state.services.dispatcher.query(identity, name, args)
    except Exception as exc:  # noqa: BLE001 - every failure is a structured error, never a traceback
        return error_response(client_error(exc, "running a query"))
    return Response(orjson.dumps({"result": result}), media_type="application/json")


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return JSONResponse({"ok": True})


async def readyz(request: Request) -> Response:
    """Readiness: Redis takes a write within `readiness_timeout_s` and the pub/sub listener is connected.

    Not ready while Redis hangs, is out of memory, read-only or still loading:
    `redis` names the reason (see cimhub.server.faults.FAULTS).
    """
    services = request.app.state.services
    started = time.perf_counter()
    fault = await probe_redis(services.redis, services.store.keys.readiness(), services.settings.readiness_timeout_s)
    if fault is not None:
        return JSONResponse({"ready": False, "redis": fault}, status_code=503)
    if not services.broker.healthy:
        return JSONResponse({"ready": False, "broker": "pub/sub listener reconnecting"}, status_code=503)
    return JSONResponse({"ready": True, "redisPingMs": round((time.perf_counter() - started) * 1000, 3)})


async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(request.app.state.services.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def schema(request: Request) -> Response:
    """JSON Schema of every frame, for clients in other languages."""
    return JSONResponse(f.json_schema())
