"""Browser safety: connections that have not authenticated are limited in number and in time."""

from __future__ import annotations

import asyncio
import json

import websockets
from hubproc import start_hub

from cimhub.protocol import frames as f


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
                assert await close_code(third) == f.CLOSE_TOO_MANY_UNAUTHENTICATED
            # Once one authenticates, a newcomer is let in again.
            await waiting[0].send(json.dumps({"type": "auth", "token": hub.token("u1")}))
            assert json.loads(await asyncio.wait_for(waiting[0].recv(), 10))["type"] == "ready"
            async with websockets.connect(hub.ws_url) as fourth:
                await fourth.send(json.dumps({"type": "auth", "token": hub.token("u2")}))
                assert json.loads(await asyncio.wait_for(fourth.recv(), 10))["type"] == "ready"
        finally:
            for ws in waiting:
                await ws.close()
