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
from cimhub.server.httpserver import read_body
from cimhub.server.hub.admission import Action, user_key

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


def within_rate(request: Request, identity: Any, action: Action) -> None:
    """Raise rate_limited when the caller is over its per-user rate (shared with its WebSocket connections)."""
    admission = request.app.state.services.admission
    if not admission.allow(user_key(identity), action):
        raise CimhubError(
            f"over {admission.rate_of(action):g} {action}s/s for this user; retry shortly", code=ErrorCode.RATE_LIMITED
        )


async def read_json(request: Request) -> dict[str, Any]:
    settings = request.app.state.services.settings
    # Streamed and counted: a body over the limit is refused before it is buffered, with or without Content-Length.
    body = await read_body(request, max_bytes=settings.max_frame_bytes, timeout_s=settings.http_body_timeout_s)
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
        within_rate(request, identity, "mutation")
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
        return error_response(client_error(exc, "running a mutation", request.app.state.services.faults))
    return JSONResponse(
        {
            "result": result.result,
            "cimId": result.cim_id,
            "revision": result.revision,
            "duplicate": result.duplicate,
        }
    )


async def query(request: Request) -> Response:
    """POST /v1/query {name, args}: the query frame over HTTP."""
    try:
        identity = await identity_of(request)
        within_rate(request, identity, "query")
        body = await read_json(request)
        name, args = body.get("name"), body.get("args", {})
        if not isinstance(name, str) or not isinstance(args, dict):
            raise InvalidInput("body needs name (string) and args (object)", code=ErrorCode.BAD_FRAME)
        result = await request.app.state.services.dispatcher.query(identity, name, args)
    except Exception as exc:  # noqa: BLE001 - every failure is a structured error, never a traceback
        return error_response(client_error(exc, "running a query", request.app.state.services.faults))
    return Response(orjson.dumps({"result": result}), media_type="application/json")


async def _history(request: Request, name: str, args: dict[str, Any]) -> Response:
    try:
        identity = await identity_of(request)
        result = await request.app.state.services.dispatcher.query(identity, name, args)
    except Exception as exc:  # noqa: BLE001 - every failure is a structured error, never a traceback
        return error_response(client_error(exc, f"running {name}", request.app.state.services.faults))
    return Response(orjson.dumps(result), media_type="application/json")


def _int_params(request: Request, *names: str) -> dict[str, Any]:
    """Integer query-string parameters, passed on as they are when not integers (the query's model refuses them)."""
    found: dict[str, Any] = {}
    for name in names:
        raw = request.query_params.get(name)
        if raw is not None:
            found[name] = int(raw) if raw.lstrip("-").isdigit() else raw
    return found


async def cim_at(request: Request) -> Response:
    """GET /v1/cims/{cimId}/revisions/{revision}: the CIM as committed at that revision (the cimAt query)."""
    cim_id, revision = request.path_params["cimId"], request.path_params["revision"]
    return await _history(request, "cimAt", {"cimId": cim_id, "revision": revision})


async def cim_diff(request: Request) -> Response:
    """GET /v1/cims/{cimId}/diff?from=A&to=B&limit=N: the patches, with their actors, after A up to B (cimDiff)."""
    params = _int_params(request, "from", "to", "limit")
    params.setdefault("from", 0)
    return await _history(request, "cimDiff", {"cimId": request.path_params["cimId"], **params})


async def cim_history(request: Request) -> Response:
    """GET /v1/cims/{cimId}/history?before=R&limit=N: who changed what, newest first (cimHistory)."""
    params = _int_params(request, "before", "limit")
    return await _history(request, "cimHistory", {"cimId": request.path_params["cimId"], **params})


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
