"""Frame codecs: JSON text frames and msgpack binary frames, with the same semantics.

The WebSocket subprotocol picks the codec (`cimhub.json.v1` or
`cimhub.msgpack.v1`; none means JSON). Both carry the same dicts, so frames are
validated by the same models after decoding. orjson and msgpack do the work;
this module only says which one and turns their errors into `bad_frame`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

import msgpack
import orjson

from .errors import ErrorCode, InvalidInput
from .frames import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL


class Codec(Protocol):
    name: str
    subprotocol: str
    binary: bool

    def encode(self, frame: Mapping[str, Any]) -> str | bytes: ...

    def decode(self, data: str | bytes) -> Any: ...


class JsonCodec:
    name = "json"
    subprotocol = JSON_SUBPROTOCOL
    binary = False

    def encode(self, frame: Mapping[str, Any]) -> str:
        return orjson.dumps(frame).decode()

    def decode(self, data: str | bytes) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"frame is not valid JSON: {exc}", code=ErrorCode.BAD_FRAME) from None


class MsgpackCodec:
    name = "msgpack"
    subprotocol = MSGPACK_SUBPROTOCOL
    binary = True

    def encode(self, frame: Mapping[str, Any]) -> bytes:
        return msgpack.packb(frame, use_bin_type=True)  # type: ignore[no-any-return]

    def decode(self, data: str | bytes) -> Any:
        if isinstance(data, str):
            raise InvalidInput("msgpack connections send binary frames, not text", code=ErrorCode.BAD_FRAME)
        try:
            decoded = msgpack.unpackb(data, raw=False, strict_map_key=True, ext_hook=_refuse_ext)
        except (ValueError, msgpack.UnpackException, TypeError) as exc:
            raise InvalidInput(f"frame is not valid msgpack: {exc}", code=ErrorCode.BAD_FRAME) from None
        _check_json_values(decoded)
        return decoded


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} has no JSON equivalent")


def _check_json_values(value: Any) -> None:
    """Refuse what a JSON frame could not carry (bin, NaN, infinity): both codecs mean the same."""
    if isinstance(value, dict):
        for item in value.values():
            _check_json_values(item)
    elif isinstance(value, list):
        for item in value:
            _check_json_values(item)
    elif isinstance(value, bytes):
        raise InvalidInput("frame carries binary data, which JSON frames cannot", code=ErrorCode.BAD_FRAME)
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput("frame carries NaN or infinity, which JSON frames cannot", code=ErrorCode.BAD_FRAME)


JSON = JsonCodec()
MSGPACK = MsgpackCodec()
CODECS: dict[str, Codec] = {JSON_SUBPROTOCOL: JSON, MSGPACK_SUBPROTOCOL: MSGPACK}


def codec_for(subprotocols: list[str]) -> Codec:
    """The first codec the client offers that the hub speaks; JSON when it offers none."""
    for offered in subprotocols:
        if offered in CODECS:
            return CODECS[offered]
    return JSON
