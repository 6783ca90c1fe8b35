"""One Redis connection that pipelines script calls: the commit's hot call, without redis-py's per-call cost.

Why not redis-py here: measured on the bench machine (bench/bench_store.py prints
both), one redis-py asyncio EVALSHA costs ~170-220 us of client CPU, about as
much as the rest of a mutation; the same call packed by `hiredis.pack_command`
and parsed by `hiredis.Reader` (the C parser redis-py itself uses) over an
asyncio Protocol costs ~30-70 us. hiredis still does all the RESP work; this
module only writes commands and hands each reply to its caller, in order.

Guarantees:

* **Ordered.** Commands go out in the order `call` is made, and each caller gets
  the reply to its own command (Redis answers in order on one connection).
* **Group commit.** Commands made in the same turn of the event loop leave in
  one write, and their replies usually arrive in one read: many writers cost
  one system call, one writer waits for nothing extra.
* **Failures are redis-py's.** If the connection drops, or a reply does not come
  within the client's ``socket_timeout``, every call in flight fails with
  `redis.exceptions.ConnectionError` / `TimeoutError` (whether it ran is then
  unknown, as with redis-py) and the next call connects again. An error reply
  raises `redis.exceptions.ResponseError`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast

import hiredis
import redis.asyncio as aioredis
import redis.exceptions


class _Protocol(asyncio.Protocol):
    """One socket: its unsent commands, and the callers waiting for replies, oldest first."""

    def __init__(self, owner: PipelinedConnection) -> None:
        self.owner = owner
        self.reader = hiredis.Reader(replyError=redis.exceptions.ResponseError)
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.outgoing: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass

    def flush(self) -> None:
        data, self.outgoing = b"".join(self.outgoing), []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            waiter = self.waiting.popleft()
            if not waiter.done():  # a cancelled caller's reply is dropped; order is kept
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._lost(self, redis.exceptions.ConnectionError(f"Redis connection lost: {exc or 'closed by server'}"))


class PipelinedConnection:
    """A lazily opened connection with the address, credentials and timeouts of `client`.

    Use `supports(client)` first: TLS and custom connection classes are left to redis-py.
    Bound to the event loop that first uses it; a call from another loop reconnects.
    """

    def __init__(self, client: aioredis.Redis) -> None:
        kwargs = client.connection_pool.connection_kwargs
        self._host: str = kwargs.get("host", "localhost")
        self._port: int = int(kwargs.get("port", 6379))
        self._path: str | None = kwargs.get("path")
        self._username: str | None = kwargs.get("username")
        self._password: str | None = kwargs.get("password")
        self._db: int = int(kwargs.get("db", 0) or 0)
        self._timeout: float | None = kwargs.get("socket_timeout")
        self._connect_timeout: float | None = kwargs.get("socket_connect_timeout") or self._timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    @staticmethod
    def supports(client: aioredis.Redis) -> bool:
        """True for plain TCP and Unix-socket connections to one node (the ones this class can open).

        A Redis Cluster client has no single pool: its commits go through redis-py, routed by slot.
        """
        pool = getattr(client, "connection_pool", None)
        if pool is None:
            return False
        cls = pool.connection_class
        return cls in (aioredis.Connection, aioredis.UnixDomainSocketConnection)

    async def evalsha(self, script: str | bytes | memoryview, sha: str, keys: list[Any], args: list[Any]) -> Any:
        """EVALSHA `sha`; loads `script` once if Redis does not know it (after a restart or flush)."""
        try:
            return await self.call("EVALSHA", sha, len(keys), *keys, *args)
        except redis.exceptions.ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        await self.call("SCRIPT", "LOAD", script)
        return await self.call("EVALSHA", sha, len(keys), *keys, *args)

    async def call(self, *command: Any) -> Any:
        """Send one command and return its reply (raising an error reply as ResponseError)."""
        protocol = await self._connected()
        reply = await self._send(protocol, command)
        if isinstance(reply, redis.exceptions.ResponseError):
            raise reply
        return reply

    async def aclose(self) -> None:
        """Close the connection; calls in flight fail with ConnectionError."""
        if self._protocol is not None:
            protocol = self._protocol
            if protocol.transport is not None:
                protocol.transport.close()
            self._lost(protocol, redis.exceptions.ConnectionError("connection closed by cimhub"))

    async def _send(self, protocol: _Protocol, command: tuple[Any, ...]) -> Any:
        assert self._loop is not None
        waiter: asyncio.Future[Any] = self._loop.create_future()
        protocol.waiting.append(waiter)
        protocol.outgoing.append(hiredis.pack_command(command))
        if len(protocol.outgoing) == 1:
            self._loop.call_soon(protocol.flush)
        if self._timeout is None:
            return await waiter
        try:
            async with asyncio.timeout(self._timeout):
                return await waiter
        except TimeoutError:
            # A late reply would answer the wrong caller: drop the connection and all in flight.
            error = redis.exceptions.TimeoutError(f"no reply from Redis within {self._timeout}s")
            if protocol.transport is not None:
                protocol.transport.abort()
            self._lost(protocol, error)
            raise error from None

    async def _connected(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._forget()
            self._loop, self._connecting = loop, asyncio.Lock()
        if self._protocol is not None:
            return self._protocol
        assert self._connecting is not None
        async with self._connecting:
            if self._protocol is None:
                await self._open(loop)
        assert self._protocol is not None
        return self._protocol

    async def _open(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            async with asyncio.timeout(self._connect_timeout):
                if self._path is not None:
                    transport, protocol = await loop.create_unix_connection(lambda: _Protocol(self), self._path)
                else:
                    transport, protocol = await loop.create_connection(lambda: _Protocol(self), self._host, self._port)
        except TimeoutError:
            raise redis.exceptions.TimeoutError("timed out connecting to Redis") from None
        except OSError as exc:
            raise redis.exceptions.ConnectionError(f"cannot connect to Redis: {exc}") from None
        self._protocol = protocol
        try:
            if self._password is not None:
                auth = (self._username, self._password) if self._username else (self._password,)
                await self._checked(protocol, ("AUTH", *auth))
            if self._db:
                await self._checked(protocol, ("SELECT", self._db))
        except BaseException:
            transport.close()
            self._lost(protocol, redis.exceptions.ConnectionError("Redis refused the connection setup"))
            raise

    async def _checked(self, protocol: _Protocol, command: tuple[Any, ...]) -> None:
        reply = await self._send(protocol, command)
        if isinstance(reply, redis.exceptions.ResponseError):
            raise redis.exceptions.AuthenticationError(str(reply))

    def _lost(self, protocol: _Protocol, error: Exception) -> None:
        if protocol is self._protocol:
            self._protocol = None
        protocol.outgoing = []
        while protocol.waiting:
            waiter = protocol.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    def _forget(self) -> None:
        """Drop a connection opened on another (usually closed) event loop."""
        if self._protocol is not None and self._protocol.transport is not None:
            try:
                self._protocol.transport.close()
            except RuntimeError:
                pass  # its loop is closed: the socket went with it
        self._protocol = None
