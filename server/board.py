"""The live CIM board's HTTP side: the page at `/`, its settings, dev-mode sign-in, and CORS.

The board itself is static (server/static/index.html and board.js, built from
clients/js); these routes only tell it how to sign in. `/v1/dev/token` exists
only in dev mode, which listens on loopback only (server/main.py): it mints a
token for any user id, which is exactly what development wants and production
must never have.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import orjson
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from cimhub.protocol.errors import CimhubError, ErrorCode, InvalidInput
from cimhub.server.auth.tokens import DevTokenIssuer
from cimhub.server.httpserver import read_body
from cimhub.server.settings import Settings

DEV_TOKEN_TTL_S = (5, 86_400)
DEV_TOKEN_BODY_BYTES = 4096
"""Bounds of `ttlS` a dev sign-in may ask for (short ones let a page test refreshing)."""


def cors_middleware(settings: Settings) -> list[Middleware]:
    """CORS for the HTTP API and the static client, for the same origins the WebSocket accepts.

    No list, no CORS headers: a browser on another origin is refused, as before.
    """
    if not settings.allowed_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["authorization", "content-type", "x-cimhub-act-as"],
            max_age=600,
        )
    ]


def board_routes(settings: Settings) -> list[BaseRoute]:
    """`/` (the board), `/v1/board/config`, and in dev mode `/v1/dev/token`."""
    page = files("cimhub.server").joinpath("static/index.html").read_text(encoding="utf-8")
    issuer = DevTokenIssuer(settings.dev_secret) if settings.dev_mode else None

    async def board(request: Request) -> Response:
        return HTMLResponse(page, headers={"cache-control": "no-cache"})

    async def config(request: Request) -> Response:
        return JSONResponse(
            {
                "devMode": settings.dev_mode,
                "supabaseUrl": settings.supabase_url,
                "supabaseAnonKey": settings.supabase_anon_key,
            }
        )

    async def dev_token(request: Request) -> Response:
        if issuer is None:  # unreachable: the route exists only in dev mode
            return Response(status_code=404)
        try:
            # Bounded like every body the hub reads: dev mode is not a reason to buffer whatever is sent.
            raw = await read_body(request, max_bytes=DEV_TOKEN_BODY_BYTES, timeout_s=settings.http_body_timeout_s)
            try:
                body: Any = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = None
            user_id = body.get("userId") if isinstance(body, dict) else None
            ttl = body.get("ttlS", 900) if isinstance(body, dict) else None
            if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > 128:
                raise InvalidInput('send {"userId": "<user id>"}', path="userId")
            low, high = DEV_TOKEN_TTL_S
            if not isinstance(ttl, int) or isinstance(ttl, bool) or not low <= ttl <= high:
                raise InvalidInput(f"ttlS must be an integer from {low} to {high}", path="ttlS")
        except CimhubError as exc:
            status = 413 if exc.code is ErrorCode.PAYLOAD_TOO_LARGE else 400
            return JSONResponse({"error": exc.to_wire()}, status_code=status)
        return JSONResponse({"token": issuer.mint(user_id.strip(), ttl_s=ttl), "expiresIn": ttl})

    routes: list[BaseRoute] = [Route("/", board), Route("/v1/board/config", config)]
    if issuer is not None:
        routes.append(Route("/v1/dev/token", dev_token, methods=["POST"]))
    return routes
