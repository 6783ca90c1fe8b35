"""The socket under the async client: a `Transport` moves decoded frames, nothing more.

The client's logic (auth, resume, outbox, watchdog) talks only to this
interface, so the tests drive it with an in-memory peer and production uses
`connect_websocket`. Keepalive is the protocol's own ping/pong frames (the
hub pings every `heartbeat` seconds), so websockets' protocol-level pings are
turned off rather than doubled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from cimhub.protocol.codec import CODECS, JSON, MSGPACK, Codec
from cimhub.protocol.errors import AccessDenied

from .config import ws_url
from .errors import HubUnreachable

BY_NAME: dict[str, Codec] = {"json": JSON, "msgpack": MSGPACK}
MAX_FRAME_BYTES = 64 * 1024 * 1024
"""Largest frame accepted from the hub: a snapshot carries a whole CIM (up to 4 MiB by default) with room to spare."""


class TransportClosed(Exception):
    """The connection ended; `code` is the close code the hub sent, None if it just dropped."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"connection closed ({code} {reason})".strip())
        self.code = code
        self.reason = reason


class Transport(Protocol):
    async def send(self, frame: dict[str, Any]) -> None:
        """Send one frame; raises TransportClosed once the connection has ended."""

    async def recv(self) -> Any:
        """The next decoded frame; raises TransportClosed when the connection ends.

        May raise a CimhubError for a frame that does not decode; the
        connection is still usable after it.
        """

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


Connector = Callable[[], Awaitable[Transport]]
"""Opens a new connection to the hub. Raises HubUnreachable when it cannot (the client retries), or a
non-retryable CimhubError when retrying cannot help (the client stops)."""


class WebSocketTransport:
    """A websockets connection speaking one codec (the subprotocol the hub accepted)."""

    def __init__(self, connection: ClientConnection, codec: Codec) -> None:
        self._connection = connection
        self.codec = codec

    async def send(self, frame: dict[str, Any]) -> None:
        try:
            await self._connection.send(self.codec.encode(frame))
        except websockets.ConnectionClosed as exc:
            raise _closed(exc) from None

    async def recv(self) -> Any:
        try:
            data = await self._connection.recv()
        except websockets.ConnectionClosed as exc:
            raise _closed(exc) from None
        return self.codec.decode(data)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._connection.close(code, reason)


def _closed(exc: websockets.ConnectionClosed) -> TransportClosed:
    if exc.rcvd is None:
        return TransportClosed(None, "connection dropped")
    return TransportClosed(exc.rcvd.code, exc.rcvd.reason)


async def connect_websocket(url: str, codec: str = "json", *, open_timeout: float = 10.0) -> WebSocketTransport:
    """Open a connection to the hub at `url`, offering `codec` ("json" or "msgpack").

    Raises HubUnreachable when the hub cannot be reached (retry later), and
    AccessDenied when it refuses the handshake with 401/403 (do not retry).
    """
    offered = BY_NAME.get(codec)
    if offered is None:
        raise ValueError(f"codec must be 'json' or 'msgpack', got {codec!r}")
    target = ws_url(url)
    try:
        connection: ClientConnection = await connect(
            target,
            subprotocols=[Subprotocol(offered.subprotocol)],
            open_timeout=open_timeout,
            ping_interval=None,
            max_size=MAX_FRAME_BYTES,
            close_timeout=2,
        )
    except websockets.InvalidStatus as exc:
        status = exc.response.status_code
        if status in (401, 403):  # e.g. an Origin not in CIMHUB_ALLOWED_ORIGINS: retrying will not help
            raise AccessDenied(f"the hub refused the WebSocket handshake at {target} with HTTP {status}") from None
        raise HubUnreachable(f"the hub at {target} answered the handshake with HTTP {status}") from None
    except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
        raise HubUnreachable(f"cannot reach the hub at {target}: {exc or type(exc).__name__}") from None
    # A hub that accepted none of the offered subprotocols speaks JSON.
    accepted = CODECS.get(connection.subprotocol or "", JSON)
    return WebSocketTransport(connection, accepted)
