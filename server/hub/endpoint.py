"""The WebSocket endpoint, /v1/ws: origin check, draining refusal, codec choice, then a Session."""

from __future__ import annotations

from starlette.websockets import WebSocket

from cimhub.protocol.close import CloseCode
from cimhub.protocol.codec import codec_for
from cimhub.server.hub.session import Session


async def websocket_endpoint(websocket: WebSocket) -> None:
    """Serve one connection with the collaborators create_app put in `app.state.services`."""
    services = websocket.app.state.services
    settings = services.settings
    origin = websocket.headers.get("origin")
    if origin is not None and settings.allowed_origins and origin not in settings.allowed_origins:
        # Closing before accepting refuses the handshake: the browser sees HTTP 403.
        await websocket.close(CloseCode.FORBIDDEN_ORIGIN, "origin not allowed")
        return
    if services.connections.draining:
        await websocket.accept()
        await websocket.close(CloseCode.RESTART, "hub restarting: connect to another")
        return
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    codec = codec_for(offered)
    await websocket.accept(subprotocol=codec.subprotocol if codec.subprotocol in offered else None)
    session = Session(
        websocket,
        codec,
        settings=settings,
        connections=services.connections,
        hub=services.hub,
        requests=services.dispatcher,
        verifier=services.verifier,
        metrics=services.metrics,
        admission=services.admission,
        presence=services.presence,
        faults=services.faults,
    )
    await session.run()
