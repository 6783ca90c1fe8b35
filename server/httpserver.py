"""HTTP-level bounds that uvicorn does not give: a header deadline, connections per address, streamed bodies.

uvicorn times out idle keep-alive connections, but a connection that sends
half a request line and then nothing is kept forever: 1,100 of them exhausted
the hub's file descriptors. :func:`guarded_h11` returns uvicorn's h11
protocol with two additions:

* a request's headers must be complete within ``http_header_timeout_s`` of the
  connection opening (or of the previous response), else the connection is
  closed;
* at most ``max_connections_per_ip`` connections from one address are in the
  HTTP phase at once (a WebSocket, once upgraded, is counted by
  :mod:`cimhub.server.hub.admission` instead); more are closed at once.

:func:`read_body` reads a request body chunk by chunk, refusing it as soon as
it passes the size limit (with or without Content-Length) or takes longer
than ``http_body_timeout_s``, so a 200 MB body is never buffered.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import ClientDisconnect, Request
from uvicorn.protocols.http.h11_impl import H11Protocol

from cimhub.protocol.errors import ErrorCode, InvalidInput
from cimhub.server.settings import Settings


def guarded_h11(settings: Settings) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a header deadline and a per-address connection cap (pass as ``http=``)."""
    per_ip: dict[str, int] = {}  # shared by the connections of this server, which is what it bounds

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _counted: str | None = None
        _armed_cycle: Any = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            ip = self.client[0] if self.client else "?"
            if per_ip.get(ip, 0) >= settings.max_connections_per_ip:
                self.transport.close()
                return
            per_ip[ip] = per_ip.get(ip, 0) + 1
            self._counted = ip
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._uncount()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()  # the next request's headers get the same deadline

        def handle_websocket_upgrade(self, event: Any) -> None:
            self._uncount()  # from here on the WebSocket protocol owns the transport
            super().handle_websocket_upgrade(event)

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._armed_cycle = self.cycle
            self._deadline = self.loop.call_later(settings.http_header_timeout_s, self._headers_overdue)

        def _headers_overdue(self) -> None:
            self._deadline = None
            if self.cycle is self._armed_cycle and self.transport.get_protocol() is self:
                self.transport.close()  # no new request arrived in full: a slow or idle client

        def _uncount(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            if self._counted is not None:
                left = per_ip.get(self._counted, 1) - 1
                if left > 0:
                    per_ip[self._counted] = left
                else:
                    per_ip.pop(self._counted, None)
                self._counted = None

    return GuardedH11Protocol


async def read_body(request: Request, *, max_bytes: int, timeout_s: float) -> bytes:
    """The request body, refused (``payload_too_large``) once past `max_bytes`, however it is sent.

    Raises InvalidInput with ``bad_frame`` when the body does not arrive in
    full within `timeout_s` or the client goes away.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise InvalidInput(f"body over {max_bytes} bytes", code=ErrorCode.PAYLOAD_TOO_LARGE)
    body = bytearray()
    try:
        # Our own receive loop, not an HTTP client: cutting it short leaks nothing.
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_bytes:
                    raise InvalidInput(f"body over {max_bytes} bytes", code=ErrorCode.PAYLOAD_TOO_LARGE)
    except TimeoutError:
        raise InvalidInput(f"the body did not arrive within {timeout_s:g} s", code=ErrorCode.BAD_FRAME) from None
    except ClientDisconnect:
        raise InvalidInput("the client went away before sending the whole body", code=ErrorCode.BAD_FRAME) from None
    return bytes(body)
