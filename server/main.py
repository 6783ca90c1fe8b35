"""Running the hub: uvicorn on the configured address, with the embedded Redis when no REDIS_URL is set."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn
import uvicorn.config
from pythonjsonlogger.json import JsonFormatter

from cimhub.server import redact
from cimhub.server.app import create_app
from cimhub.server.embedded import embedded_redis
from cimhub.server.httpserver import guarded_h11
from cimhub.server.settings import Settings

log = logging.getLogger("cimhub")

DEV_BANNER = """
################################################################################
#  cimhub is running in DEVELOPMENT MODE. IT IS NOT SECURE.                    #
#  Tokens are self-minted with a well-known secret and every user may see     #
#  every deal. It listens on loopback only. Never expose it or use it with    #
#  real data. Mint a token with:  cimhub token --user <user-id>               #
################################################################################
"""


class DrainingServer(uvicorn.Server):
    """Before uvicorn closes sockets, tell every client to reconnect elsewhere (1012) after its queue drains."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.app_ref: Any = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Like uvicorn's, minus re-raising the signal on the way out.

        uvicorn re-raises SIGTERM after serving, which would kill the process
        before the embedded Redis is shut down (and its AOF fsynced).
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: Any = None) -> None:
        services = getattr(getattr(self.app_ref, "state", None), "services", None)
        if services is not None:
            services.connections.drain()
            await asyncio.sleep(min(0.5, services.settings.shutdown_grace_s))
        await super().shutdown(sockets)


async def serve_async(settings: Settings) -> None:
    if settings.dev_mode:
        if settings.host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("dev mode listens on loopback only: drop --host or turn dev mode off")
        print(DEV_BANNER, file=sys.stderr, flush=True)
    async with contextlib.AsyncExitStack() as stack:
        url = settings.redis_url
        if url is None:
            embedded = await stack.enter_async_context(
                embedded_redis(settings.data_dir, port=settings.embedded_redis_port, fsync=settings.embedded_fsync)
            )
            url = embedded.url
            log.warning("embedded Redis at %s (append-only file in %s)", url, embedded.data_dir)
        app = create_app(settings, redis_url=url)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level="info",
            ws_max_size=max(4 * settings.max_frame_bytes, 1 << 20),
            ws_ping_interval=None,  # the hub's own ping frames do this, visibly to clients
            timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),
            lifespan="on",
            # JSON logs: uvicorn's own loggers go through the root handler too.
            log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
            # Bounds per client (docs/security.md): header deadline and per-address cap, header size, open connections.
            http=guarded_h11(settings),
            h11_max_incomplete_event_size=settings.max_http_header_bytes,
            limit_concurrency=settings.max_open_connections,
            server_header=False,
        )
        redact.install()  # after uvicorn configured its loggers: no query string or credential is logged
        server = DrainingServer(config)
        server.app_ref = app
        await server.serve()


def configure_logging(log_format: str) -> None:
    """Text for people, or one JSON object per line (python-json-logger) for log shippers."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    redact.install()


def serve(settings: Settings) -> None:
    """Run the hub until interrupted (Ctrl-C or SIGTERM)."""
    configure_logging(settings.log_format)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_async(settings))
