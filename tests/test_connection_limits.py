"""Browser safety: connections that have not authenticated are limited in number and in time."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from hubproc import start_hub
from support.wire import connect

from cimhub.protocol.close import CloseCode


async def test_connections_waiting_to_authenticate_are_capped(redis_url: str, key_prefix: str) -> None:
    with start_hub(redis_url, key_prefix, max_unauthenticated=2, auth_timeout_s=30) as hub:
        async with contextlib.AsyncExitStack() as stack:
            waiting = [await stack.enter_async_context(connect(hub.ws_url, None)) for _ in range(2)]
            await asyncio.sleep(0.3)  # both are now waiting for their auth frame
            async with connect(hub.ws_url, None) as third:
                assert (await third.closed())[0] == CloseCode.TOO_MANY_UNAUTHENTICATED
            # Once one authenticates, a newcomer is let in again.
            await waiting[0].send({"type": "auth", "token": hub.token("u1")})
            assert (await waiting[0].recv())["type"] == "ready"
            async with connect(hub.ws_url, hub.token("u2")) as fourth:
                assert fourth.ready is not None and fourth.ready["userId"] == "u2"


async def test_an_auth_frame_replaces_a_still_valid_token_early(redis_url: str, key_prefix: str) -> None:
    with start_hub(redis_url, key_prefix) as hub:
        async with connect(hub.ws_url, None) as client:
            await client.send({"type": "auth", "token": hub.token("u1", ttl_s=60)})
            first = await client.recv()
            await client.send({"type": "auth", "token": hub.token("u1", ttl_s=3600)})
            second = await client.recv()
            assert first["type"] == second["type"] == "ready"
            assert second["expiresAt"] - first["expiresAt"] >= 3000, "the later expiry now applies"
            # Another user's token is refused on the same socket, which stays usable.
            await client.send({"type": "auth", "token": hub.token("u2")})
            refused = await client.recv()
            assert refused["type"] == "error" and refused["error"]["code"] == "unauthenticated"
            await client.send({"type": "ping", "ts": 7})
            assert await client.recv() == {"type": "pong", "ts": 7}


async def test_dev_token_endpoint_refuses_a_large_body_and_bad_input_with_structured_errors(
    redis_url: str, key_prefix: str
) -> None:
    with start_hub(redis_url, key_prefix) as hub:
        async with httpx.AsyncClient(base_url=hub.url) as http:
            huge = await http.post("/v1/dev/token", content=b'{"userId": "' + b"a" * 1_000_000 + b'"}')
            assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"
            bad = await http.post("/v1/dev/token", content=b"not json")
            assert bad.status_code == 400 and bad.json()["error"]["path"] == "userId"
            good = await http.post("/v1/dev/token", json={"userId": "banker-1", "ttlS": 60})
            assert good.status_code == 200 and good.json()["expiresIn"] == 60
