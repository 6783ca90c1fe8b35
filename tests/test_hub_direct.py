"""DirectFrames: frames written straight to the transport are valid RFC 6455 server frames, in order.

No sockets: a recording transport under a stand-in for uvicorn's protocol, and
websockets' own parser (the client side's) reading back what was written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from types import SimpleNamespace
from typing import Any

import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.streams import StreamReader

from cimhub.server.hub.direct import PROTOCOL_SCOPE_KEY, DirectFrames


class Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing


def uvicorn_protocol() -> Any:
    """The attributes of uvicorn's WebSocketsSansIOProtocol that DirectFrames reads."""
    writable = asyncio.Event()
    writable.set()
    return SimpleNamespace(
        conn=SimpleNamespace(extensions=[], state=State.OPEN),
        transport=Transport(),
        writable=writable,
        close_sent=False,
        disconnected=False,
    )


def parse(data: bytes) -> list[Frame]:
    """The frames in `data`, as a client parses them (unmasked, no extensions)."""
    reader = StreamReader()
    reader.feed_data(data)
    frames = []
    while reader.buffer:
        parser: Generator[None, None, Frame] = Frame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
    return frames


def socket_on(protocol: Any) -> Any:
    return SimpleNamespace(scope={PROTOCOL_SCOPE_KEY: protocol})


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 200_000])
async def test_frames_of_every_length_class_parse_back_to_the_payload(size: int) -> None:
    protocol = uvicorn_protocol()
    direct = DirectFrames.of(socket_on(protocol))
    assert direct is not None
    text = "é" * (size // 2) + "x" * (size % 2)  # multi-byte UTF-8: the length is of the encoded bytes
    assert direct.write(text)
    assert direct.write(b"\x00" * size)
    frames = parse(b"".join(protocol.transport.writes))
    assert [(f.opcode, f.fin, f.rsv1) for f in frames] == [(Opcode.TEXT, True, False), (Opcode.BINARY, True, False)]
    assert frames[0].data.decode() == text and frames[1].data == b"\x00" * size


async def test_corked_frames_leave_in_one_write_at_the_end_of_the_turn_in_order() -> None:
    protocol = uvicorn_protocol()
    direct = DirectFrames(protocol)
    for n in range(3):
        assert direct.write(f"r{n}", cork=True)
    assert protocol.transport.writes == []
    await asyncio.sleep(0)
    assert len(protocol.transport.writes) == 1
    assert [f.data for f in parse(protocol.transport.writes[0])] == [b"r0", b"r1", b"r2"]


async def test_an_uncorked_frame_goes_after_the_corked_ones_at_once() -> None:
    protocol = uvicorn_protocol()
    direct = DirectFrames(protocol)
    direct.write("a", cork=True)
    direct.write("b")
    assert [f.data for f in parse(b"".join(protocol.transport.writes))] == [b"a", b"b"]


@pytest.mark.parametrize(
    "why",
    ["deflate", "close_sent", "disconnected", "closing_state", "paused", "transport_closing"],
)
async def test_it_declines_when_asgi_must_decide_and_flushes_what_it_holds_first(why: str) -> None:
    protocol = uvicorn_protocol()
    direct = DirectFrames(protocol)
    direct.write("before", cork=True)
    if why == "deflate":
        protocol.conn.extensions = [object()]
    elif why == "close_sent":
        protocol.close_sent = True
    elif why == "disconnected":
        protocol.disconnected = True
    elif why == "closing_state":
        protocol.conn.state = State.CLOSING
    elif why == "paused":
        protocol.writable.clear()
    else:
        protocol.transport.closing = True
    assert direct.write("after") is False
    written = [f.data for f in parse(b"".join(protocol.transport.writes))]
    # Still open (an extension, a paused transport): what it held goes out before the caller's ASGI send.
    # Closed: nothing may follow a close, so it is dropped.
    assert written == ([b"before"] if why in ("deflate", "paused") else [])


def test_only_uvicorns_sansio_protocol_is_written_to_directly() -> None:
    assert DirectFrames.of(SimpleNamespace(scope={})) is None
    assert DirectFrames.of(object()) is None
    legacy = SimpleNamespace(transport=Transport())  # uvicorn's other WebSocket protocols have no `conn`
    assert DirectFrames.of(socket_on(legacy)) is None
