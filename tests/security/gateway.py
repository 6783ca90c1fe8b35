"""A stand-in for Supabase's API gateway that the security tests control: the JWKS, and /rest/v1 to PostgREST.

Run as its own process (``python gateway.py <port> <postgrest-url>``) so a
flood through it does not share the test's event loop. The test steers it
with ``POST /control`` (JSON, any subset):

* ``keys``: the public JWKs published at ``/auth/v1/.well-known/jwks.json``;
* ``jwks``: ``"ok"``, ``"drip"`` (one byte every ``drip_s`` seconds), or an
  HTTP status to answer with (``500``);
* ``rest``: ``"ok"``, or an HTTP status every ``/rest/v1`` call gets (an outage).

``GET /control`` returns how many JWKS requests arrived.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


def build(postgrest_url: str) -> Starlette:
    state: dict[str, Any] = {"keys": [], "jwks": "ok", "rest": "ok", "drip_s": 1.0, "jwks_requests": 0}
    client = httpx.AsyncClient(base_url=postgrest_url, timeout=30, limits=httpx.Limits(max_connections=64))

    async def control(request: Request) -> Response:
        if request.method == "POST":
            state.update(orjson.loads(await request.body()))
        return Response(orjson.dumps({"jwks_requests": state["jwks_requests"]}), media_type="application/json")

    async def jwks(request: Request) -> Response:
        state["jwks_requests"] += 1
        mode = state["jwks"]
        body = orjson.dumps({"keys": state["keys"]})
        if isinstance(mode, int):
            return Response(b"upstream trouble", status_code=mode)
        if mode == "drip":
            interval = float(state["drip_s"])

            async def drip() -> AsyncIterator[bytes]:
                for byte in body:
                    await asyncio.sleep(interval)
                    yield bytes([byte])

            return StreamingResponse(drip(), media_type="application/json")
        return Response(body, media_type="application/json")

    async def rest(request: Request) -> Response:
        if isinstance(state["rest"], int):
            return Response(b'{"message":"outage"}', status_code=state["rest"])
        path = request.url.path[len("/rest/v1") :]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        upstream = await client.request(
            request.method, path, params=request.query_params, headers=headers, content=await request.body()
        )
        return Response(
            upstream.content, status_code=upstream.status_code, media_type=upstream.headers.get("content-type")
        )

    return Starlette(
        routes=[
            Route("/control", control, methods=["GET", "POST"]),
            Route("/auth/v1/.well-known/jwks.json", jwks),
            Route("/rest/v1/{path:path}", rest, methods=["GET", "POST", "PATCH", "DELETE"]),
        ]
    )


if __name__ == "__main__":
    uvicorn.run(build(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
