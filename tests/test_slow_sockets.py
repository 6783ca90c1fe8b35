"""Slow sockets against a real hub process: a client that stops reading is cut off, not kept for minutes.

The test blocks its own event loop with synchronous HTTP calls on purpose (ruff ASYNC212 is off
here): a client whose loop is busy reads nothing, which is exactly the stalled client wanted.

The hub's side of each TCP connection is read from /proc/net/tcp (Linux), so the
tests see what the kernel holds for the client (state and send queue), not what
the hub believes.
"""

# ruff: noqa: ASYNC212
from __future__ import annotations

import asyncio
import base64
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import orjson
import pytest
import websockets
from conftest import RedisServer
from hubproc import HubProcess, start_hub

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")

ESTABLISHED = "01"


def hub_side(port: int, peer_port: int) -> tuple[str, int] | None:
    """(state, bytes in the kernel send queue) of the hub's socket to `peer_port`, or None once it is gone."""
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            local, remote, state, queues = fields[1], fields[2], fields[3], fields[4]
            if int(local.split(":")[1], 16) == port and int(remote.split(":")[1], 16) == peer_port:
                return state, int(queues.split(":")[0], 16)
    return None


@pytest.fixture
def hub(redis_url: str, key_prefix: str) -> Iterator[HubProcess]:
    with start_hub(redis_url, key_prefix, send_queue_bytes=65_536) as process:
        yield process


def noise(size: int) -> str:
    """Text that permessage-deflate cannot shrink, so the bytes really queue up."""
    return base64.b64encode(os.urandom(size * 3 // 4)).decode()


def create(http: httpx.Client) -> str:
    response = http.post(
        "/v1/mutate",
        json={
            "name": "create",
            "args": {"dealId": "d1", "projectId": "p1", "title": "T"},
            "mutationId": uuid.uuid4().hex,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["cimId"])


async def test_a_client_that_stops_reading_is_aborted_and_its_kernel_buffers_freed(
    hub: HubProcess, redis_server: RedisServer
) -> None:
    tiny = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tiny.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the client's window fills fast
    tiny.connect(("127.0.0.1", hub.port))
    peer_port = tiny.getsockname()[1]
    headers = {"authorization": f"Bearer {hub.token('u1')}"}
    with httpx.Client(base_url=hub.url, headers=headers, timeout=30) as http:
        cim = create(http)
        # max_queue=1: the client library stops reading the socket once one frame waits unread.
        async with websockets.connect(hub.ws_url, sock=tiny, max_queue=1, open_timeout=10) as ws:
            await ws.send(orjson.dumps({"type": "auth", "token": hub.token("u1")}).decode())
            assert orjson.loads(await ws.recv())["type"] == "ready"
            await ws.send(orjson.dumps({"type": "subscribe", "id": "s1", "topic": f"cim:{cim}"}).decode())
            # From here on the client reads nothing; ~100 KB patches until the hub gives up on it.
            n = 0
            held = 0
            for n in range(200):
                response = http.post(
                    "/v1/mutate",
                    json={
                        "name": "updateState",
                        "args": {"cimId": cim, "gatheredContext": {"blob": noise(100_000)}},
                        "mutationId": f"big-{n}",
                    },
                )
                assert response.status_code == 200, response.text
                side = hub_side(hub.port, peer_port)
                if side is None or side[0] != ESTABLISHED:
                    break
                held = max(held, side[1])
            # Bounded wait (the grace is 1 s): the hub's socket is gone, not ESTABLISHED with megabytes queued.
            deadline = time.monotonic() + 30
            while (side := hub_side(hub.port, peer_port)) is not None and side[0] == ESTABLISHED:
                assert time.monotonic() < deadline, (
                    f"still established with {side[1]} bytes queued after {n + 1} patches; hub log:\n"
                    + "\n".join(line for line in hub.log_tail(300).splitlines() if "POST" not in line)
                )
                await asyncio.sleep(0.1)
            assert held > 65_536, "the client's buffers never filled: the test did not stall it"
            metrics = http.get("/metrics").text
            assert "cimhub_queue_overflows_total 1.0" in metrics
        # The hub is fine for everyone else.
        assert http.get("/readyz").status_code == 200
    assert "client did not complete its close in time; aborting the connection" in hub.log_tail(200)
