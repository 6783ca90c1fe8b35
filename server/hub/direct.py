"""Frames written straight to the TCP transport under uvicorn's Sans-I/O WebSocket protocol, below ASGI.

Each frame sent through ASGI costs a chain of coroutines (Starlette's
WebSocket, two exception wrappers, uvicorn's `send`) and a websockets `Frame`
built and checked. In fan-out that was most of the hub's CPU per delivery
above a bare `websockets` broadcast (bench/bench_fanout.py), and a pipelining
client's results each cost a system call of their own (bench/bench_wire.py).
An uncompressed server frame is only a 2-10 byte header and the payload
(RFC 6455 section 5.2: FIN, opcode, unmasked length), so it is written here.

Guarantees: frames go out in the order written, and before anything the
caller then sends through ASGI, provided the caller calls `flush` first (the
FrameSender does). `write` declines, writing nothing new, whenever ASGI must
decide: an extension in use (permessage-deflate keeps per-connection state),
a close sent or received, or a transport that is not taking writes now
(uvicorn's `send` then waits for it).
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from websockets.protocol import State

PROTOCOL_SCOPE_KEY = "cimhub.ws_protocol"


class DirectFrames:
    """Writes WebSocket data frames of one connection to its transport; `of` finds one, or None."""

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self._corked: list[bytes] = []
        self._flush_soon: asyncio.Handle | None = None

    @classmethod
    def of(cls, socket: object) -> DirectFrames | None:
        """The direct writer under a WebSocket, when it runs on uvicorn's websockets-sansio protocol."""
        scope = getattr(socket, "scope", None)
        protocol = scope.get(PROTOCOL_SCOPE_KEY) if isinstance(scope, dict) else None
        conn = getattr(protocol, "conn", None)
        if (
            conn is None
            or not hasattr(conn, "extensions")
            or not hasattr(conn, "state")
            or not hasattr(protocol, "close_sent")
            or not hasattr(protocol, "disconnected")
            or not isinstance(getattr(protocol, "writable", None), asyncio.Event)
        ):
            return None
        return cls(protocol)

    def _open(self) -> bool:
        protocol = self.protocol
        return not (
            protocol.close_sent
            or protocol.disconnected
            or protocol.conn.state is not State.OPEN
            or protocol.transport.is_closing()
        )

    def write(self, data: str | bytes, *, cork: bool = False) -> bool:
        """Write one frame; False (nothing of it written) when the caller must send it through ASGI.

        `cork`: the frame may wait for the end of this turn of the event loop
        (or the next `flush`), to leave in one system call with the frames
        written meanwhile: a pipelining client's results come back in bursts.
        """
        protocol = self.protocol
        if protocol.conn.extensions or not protocol.writable.is_set() or not self._open():
            self.flush()
            return False
        if isinstance(data, str):
            payload, head = data.encode(), 0x81  # FIN + text
        else:
            payload, head = data, 0x82  # FIN + binary
        length = len(payload)
        if length < 126:
            frame = struct.pack("!BB", head, length) + payload
        elif length < 65536:
            frame = struct.pack("!BBH", head, 126, length) + payload
        else:
            frame = struct.pack("!BBQ", head, 127, length) + payload
        if cork:
            self._corked.append(frame)
            if self._flush_soon is None:
                self._flush_soon = asyncio.get_running_loop().call_soon(self.flush)
        elif self._corked:
            self._corked.append(frame)
            self.flush()
        else:
            protocol.transport.write(frame)
        return True

    def flush(self) -> None:
        """Write the corked frames now (dropped if the connection closed meanwhile: nothing can follow a close)."""
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        if self._corked:
            corked, self._corked = self._corked, []
            if self._open():
                self.protocol.transport.write(b"".join(corked))
