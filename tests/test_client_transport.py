"""The WebSocket transport against small loopback servers: codec negotiation, handshake refusals, closes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from cimhub.clients.errors import HubUnreachable
from cimhub.clients.transport import TransportClosed, connect_websocket
from cimhub.protocol.errors import AccessDenied, InvalidInput


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        if message in ("close-4008", b"close-4008"):
            await ws.close(4008, "queue overflow")
            return
        await ws.send(message)


def refuse(status: int) -> Any:
    def process_request(connection: ServerConnection, request: Request) -> Response:
        return Response(status, "refused", Headers(), b"")

    return process_request


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async with serve(echo, "127.0.0.1", 0, subprotocols=["cimhub.json.v1", "cimhub.msgpack.v1"]) as running:  # type: ignore[list-item]
        port = next(iter(running.sockets)).getsockname()[1]
        yield f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_frames_round_trip_in_the_negotiated_codec(server: str, codec: str) -> None:
    transport = await connect_websocket(server, codec)
    assert transport.codec.name == codec
    await transport.send({"type": "ping", "ts": 1})
    assert await transport.recv() == {"type": "ping", "ts": 1}
    await transport.close()


async def test_a_close_code_reaches_the_client(server: str) -> None:
    transport = await connect_websocket(server)
    await transport._connection.send("close-4008")
    with pytest.raises(TransportClosed) as caught:
        await transport.recv()
    assert (caught.value.code, caught.value.reason) == (4008, "queue overflow")
    with pytest.raises(TransportClosed):
        await transport.send({"type": "ping"})


async def test_a_frame_that_does_not_decode_raises_and_the_connection_survives(server: str) -> None:
    transport = await connect_websocket(server, "msgpack")
    await transport._connection.send("text on a msgpack connection")
    with pytest.raises(InvalidInput):
        await transport.recv()
    await transport._connection.send(msgpack.packb({"type": "pong"}))
    assert await transport.recv() == {"type": "pong"}
    await transport.close()


@pytest.mark.parametrize(("status", "error"), [(403, AccessDenied), (404, HubUnreachable), (503, HubUnreachable)])
async def test_handshake_refusals(status: int, error: type[Exception]) -> None:
    async with serve(echo, "127.0.0.1", 0, process_request=refuse(status)) as running:
        port = next(iter(running.sockets)).getsockname()[1]
        with pytest.raises(error, match=str(status)):
            await connect_websocket(f"ws://127.0.0.1:{port}/v1/ws")


async def test_nobody_listening() -> None:
    async with serve(echo, "127.0.0.1", 0) as running:
        port = next(iter(running.sockets)).getsockname()[1]
    with pytest.raises(HubUnreachable, match="cannot reach the hub"):
        await connect_websocket(f"http://127.0.0.1:{port}", open_timeout=2)


async def test_unknown_codec() -> None:
    with pytest.raises(ValueError, match="codec"):
        await connect_websocket("http://127.0.0.1:1", "xml")
