"""Browser safety: connections that have not authenticated are limited in number and in time."""

from __future__ import annotations

import asyncio
import json

import websockets
from hubproc import start_hub

from cimhub.protocol.close import CloseCode


async def close_code(ws: websockets.ClientConnection) -> int | None:
    try:
        await asyncio.wait_for(ws.recv(), 10)
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    return None


async def test_connections_waiting_to_authenticate_are_capped(redis_url: str, key_prefix: str) -> None:
    with start_hub(redis_url, key_prefix, max_unauthenticated=2, auth_timeout_s=30) as hub:
        waiting = [await websockets.connect(hub.ws_url) for _ in range(2)]
        try:
            await asyncio.sleep(0.3)  # both are now waiting for their auth frame
            async with websockets.connect(hub.ws_url) as third:
                assert await close_code(third) == CloseCode.TOO_MANY_UNAUTHENTICATED
            # Once one authenticates, a newcomer is let in again.
            await waiting[0].send(json.dumps({"type": "auth", "token": hub.token("u1")}))
            assert json.loads(await asyncio.wait_for(waiting[0].recv(), 10))["type"] == "ready"
            async with websockets.connect(hub.ws_url) as fourth:
                await fourth.send(json.dumps({"type": "auth", "token": hub.token("u2")}))
                assert json.loads(await asyncio.wait_for(fourth.recv(), 10))["type"] == "ready"
        finally:
            for ws in waiting:
                await ws.close()


async def test_an_auth_frame_replaces_a_still_valid_token_early(redis_url: str, key_prefix: str) -> None:
    with start_hub(redis_url, key_prefix) as hub:
        async with websockets.connect(hub.ws_url) as ws:
            await ws.send(json.dumps({"type": "auth", "token": hub.token("u1", ttl_s=60)}))
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await ws.send(json.dumps({"type": "auth", "token": hub.token("u1", ttl_s=3600)}))
            second = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert first["type"] == second["type"] == "ready"
            assert second["expiresAt"] - first["expiresAt"] >= 3000, "the later expiry now applies"
            # Another user's token is refused on the same socket, which stays usable.
            await ws.send(json.dumps({"type": "auth", "token": hub.token("u2")}))
            refused = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert refused["type"] == "error" and refused["error"]["code"] == "unauthenticated"
            await ws.send(json.dumps({"type": "ping", "ts": 7}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong", "ts": 7}
