"""The raw protocol test client: one `websockets` socket speaking cimhub frames, no cimhub client code.

Every frame it reads is validated against the JSON Schema the hub itself serves
at /v1/schema, so any test that talks to a hub through it also checks that the
hub sent nothing the published protocol does not allow.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections import deque
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import jsonschema
import websockets
from websockets.exceptions import ConnectionClosed

from cimhub.protocol.codec import JSON, Codec

TIMEOUT = 10.0
"""Longest any single step may take before the test fails."""

_validators: dict[str, jsonschema.protocols.Validator] = {}
"""Server-frame validators by schema URL: every hub serves the same schema, fetched once per URL."""


def schema_url(ws_url: str) -> str:
    """ws://host:port/v1/ws -> http://host:port/v1/schema."""
    parts = urlsplit(ws_url)
    return urlunsplit(("https" if parts.scheme == "wss" else "http", parts.netloc, "/v1/schema", "", ""))


async def server_frame_validator(ws_url: str) -> jsonschema.protocols.Validator:
    url = schema_url(ws_url)
    validator = _validators.get(url)
    if validator is None:
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            response = await http.get(url)
        response.raise_for_status()
        schema = response.json()["server"]
        validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        validator_class.check_schema(schema)
        validator = _validators[url] = validator_class(schema)
    return validator


def check_server_frame(validator: jsonschema.protocols.Validator, frame: Any) -> None:
    """Fail the test, naming the frame, if the hub sent something /v1/schema does not allow."""
    errors = sorted(validator.iter_errors(frame), key=lambda e: list(e.absolute_path))
    if errors:
        details = "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '(frame)'}: {e.message}" for e in errors[:5])
        raise AssertionError(f"the hub sent a frame outside /v1/schema: {frame!r}: {details}")


class RawClient:
    """One socket, one codec; frames not yet asked for wait in a backlog; pings are answered unless told not to."""

    def __init__(self, ws: Any, codec: Codec, validator: jsonschema.protocols.Validator) -> None:
        self.ws = ws
        self.codec = codec
        self.validator = validator
        self.auto_pong = True
        self.ready: dict[str, Any] | None = None
        """The hub's answer to the auth frame `connect` sent."""
        self.backlog: deque[dict[str, Any]] = deque()
        self._ids = itertools.count(1)

    def new_id(self) -> str:
        return f"r{next(self._ids)}"

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(self.codec.encode(frame))

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next frame not yet consumed (pings answered and skipped)."""
        if self.backlog:
            return self.backlog.popleft()
        async with asyncio.timeout(timeout):
            return await self._read()

    async def _read(self) -> dict[str, Any]:
        while True:
            data = await self.ws.recv()
            # The codec decides the frame kind: msgpack is binary, JSON is text.
            assert isinstance(data, bytes) == self.codec.binary, f"{self.codec.name} got {type(data).__name__}"
            frame = self.codec.decode(data)
            check_server_frame(self.validator, frame)
            if self.auto_pong and frame.get("type") == "ping":
                await self.send({"type": "pong", "ts": frame.get("ts")})
                continue
            return frame  # type: ignore[no-any-return]

    async def expect(self, timeout: float = TIMEOUT, **match: Any) -> dict[str, Any]:
        """The first frame whose fields equal `match`; others wait in the backlog."""
        for frame in self.backlog:
            if all(frame.get(k) == v for k, v in match.items()):
                self.backlog.remove(frame)
                return frame
        async with asyncio.timeout(timeout):
            while True:
                frame = await self._read()
                if all(frame.get(k) == v for k, v in match.items()):
                    return frame
                self.backlog.append(frame)

    async def request(self, frame: dict[str, Any], timeout: float = TIMEOUT) -> dict[str, Any]:
        """Send `frame` (given an id) and return the first frame answering it; others wait in the backlog."""
        request_id = frame.setdefault("id", self.new_id())
        await self.send(frame)
        return await self.expect(timeout, id=request_id)

    async def subscribe(self, topic: str, resume: dict[str, Any] | None = None) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "subscribe", "topic": topic}
        if resume is not None:
            frame["resume"] = resume
        return await self.request(frame)

    async def mutate(self, name: str, args: dict[str, Any], mutation_id: str | None = None) -> dict[str, Any]:
        frame = {"type": "mutate", "name": name, "args": args, "mutationId": mutation_id or uuid.uuid4().hex}
        return await self.request(frame)

    async def closed(self, timeout: float = TIMEOUT) -> tuple[int | None, list[dict[str, Any]]]:
        """Read until the hub closes the socket: (close code, frames received before)."""
        frames = list(self.backlog)
        self.backlog.clear()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    frames.append(await self._read())
        except ConnectionClosed as exc:
            return (exc.rcvd.code if exc.rcvd is not None else None), frames


@contextlib.asynccontextmanager
async def connect(
    ws_url: str, token: str | None, *, codec: Codec = JSON, act_as: str | None = None, **kwargs: Any
) -> AsyncIterator[RawClient]:
    """A client that has sent `token` and got `ready` (token None: not authenticated yet)."""
    validator = await server_frame_validator(ws_url)
    if codec is not JSON:
        kwargs.setdefault("subprotocols", [codec.subprotocol])
    offered = kwargs.get("subprotocols")
    async with websockets.connect(ws_url, open_timeout=TIMEOUT, close_timeout=2, **kwargs) as ws:
        if offered:
            assert ws.subprotocol == codec.subprotocol, (offered, ws.subprotocol)
        client = RawClient(ws, codec, validator)
        if token is not None:
            frame: dict[str, Any] = {"type": "auth", "token": token}
            if act_as is not None:
                frame["actAs"] = act_as
            await client.send(frame)
            client.ready = await client.recv()
            assert client.ready["type"] == "ready", client.ready
        yield client
