"""Running the hub: uvicorn on the configured address, with the embedded Redis when no REDIS_URL is set."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import redis.asyncio as aioredis
import uvicorn
import uvicorn.config
from pythonjsonlogger.json import JsonFormatter
from redis.asyncio.cluster import RedisCluster
from starlette.applications import Starlette

from cimhub.server import redact
from cimhub.server.app import create_app
from cimhub.server.connect import RedisLimits, connect
from cimhub.server.embedded import EmbeddedRedisError, embedded_redis
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


class ServeError(Exception):
    """The hub cannot start for a reason the operator can fix; the message is the one line to show.

    `exit_code` follows the CLI's table: 2 for settings (no credentials, bad
    values), 3 when Redis cannot be reached, 1 for the rest (a busy port).
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class DrainingServer(uvicorn.Server):
    """Before uvicorn closes sockets, tell every client to reconnect elsewhere (1012) after its queue drains."""

    def __init__(self, config: uvicorn.Config, app: Starlette, banner: str) -> None:
        super().__init__(config)
        self.app = app
        self.banner = banner

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

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            if self.config.log_config is None:  # JSON logs: one record, so every line stays JSON
                log.info(" ".join(self.banner.split()))
            else:
                print(self.banner, file=sys.stderr, flush=True)

    async def shutdown(self, sockets: Any = None) -> None:
        services = getattr(self.app.state, "services", None)
        if services is not None:
            services.connections.drain()
            await asyncio.sleep(min(0.5, services.settings.shutdown_grace_s))
        await super().shutdown(sockets)


def listen(host: str, port: int) -> socket.socket:
    """Bind the hub's socket before anything starts, so a busy port fails at once and leaves nothing running.

    (uvicorn would find out only after the lifespan started, then sys.exit from
    inside the event loop, which left the hub hanging.)
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc}", exit_code=2) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise ServeError(
            f"cannot listen on {host}:{port}: {reason} (another hub running? pick another --port)"
        ) from None
    sock.setblocking(False)
    return sock


def port_taken(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def check_redis(url: str, timeout_s: float = 5.0) -> None:
    """Fail with one line now, rather than retrying forever behind a listening hub."""
    try:
        client = connect(url, RedisLimits(connect_timeout_s=timeout_s, timeout_s=timeout_s, retries=0))
    except ValueError as exc:  # a URL redis-py cannot read
        raise ServeError(f"REDIS_URL is not a Redis URL: {exc}", exit_code=2) from None
    try:
        # A cluster client reads the slot table first: that is its ping.
        await asyncio.wait_for(
            client.initialize() if isinstance(client, RedisCluster) else client.ping(), timeout_s * 2
        )
    except (OSError, TimeoutError, aioredis.RedisError) as exc:
        raise ServeError(
            f"cannot reach Redis at {without_password(url)}: {exc} (check --redis-url / REDIS_URL)", exit_code=3
        ) from None
    finally:
        await client.aclose()


def without_password(url: str) -> str:
    """A Redis URL fit for an error line: its password replaced."""
    return re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", url)


def banner(settings: Settings, port: int) -> str:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    lines = [
        f"cimhub is listening: open http://{host}:{port}/",
        f"  WebSocket  ws://{host}:{port}/v1/ws   HTTP  http://{host}:{port}/v1/mutate, /v1/query   metrics  /metrics",
    ]
    if settings.dev_mode:
        lines.append(f"  dev token: export CIMHUB_TOKEN=$(cimhub token --user u1)   CLI: --url http://{host}:{port}")
    return "\n".join(lines)


async def serve_async(settings: Settings) -> None:
    """Run the hub; raises ServeError (one line) for what the operator can fix, before starting anything."""
    if settings.dev_mode and settings.host not in ("127.0.0.1", "localhost", "::1"):
        raise ServeError("dev mode listens on loopback only: drop --host or turn dev mode off", exit_code=2)
    url = settings.redis_url or f"redis://127.0.0.1:{settings.embedded_redis_port}/0"
    try:
        # Builds the token verifier and the access backend: no credentials fail here, before Redis starts.
        app = create_app(settings, redis_url=url)
    except ValueError as exc:
        hint = "" if settings.dev_mode else " (on your own machine: cimhub serve --dev)"
        raise ServeError(f"{exc}{hint}", exit_code=2) from None
    sock = listen(settings.host, settings.port)
    with contextlib.closing(sock):
        async with contextlib.AsyncExitStack() as stack:
            if settings.redis_url is None:
                if port_taken(settings.embedded_redis_port):
                    raise ServeError(
                        f"the embedded Redis port {settings.embedded_redis_port} is taken (a hub already running, "
                        "or a Redis left over?): stop it, or set CIMHUB_EMBEDDED_REDIS_PORT or REDIS_URL"
                    )
                try:
                    embedded = await stack.enter_async_context(
                        embedded_redis(
                            settings.data_dir, port=settings.embedded_redis_port, fsync=settings.embedded_fsync
                        )
                    )
                except EmbeddedRedisError as exc:
                    raise ServeError(str(exc)) from None
                log.info("embedded Redis at %s (append-only file in %s)", embedded.url, embedded.data_dir)
            else:
                await check_redis(url)
            if settings.dev_mode:
                print(DEV_BANNER, file=sys.stderr, flush=True)
            config = uvicorn.Config(
                app,
                log_level="info",
                ws_max_size=max(4 * settings.max_frame_bytes, 1 << 20),
                ws_ping_interval=None,  # the hub's own ping frames do this, visibly to clients
                ws_per_message_deflate=settings.ws_per_message_deflate,
                timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),
                lifespan="on",
                # JSON logs: uvicorn's own loggers go through the root handler too.
                log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
                # Bounds per client (docs/security.md): header deadline and per-address cap, header size, open
                # connections.
                http=guarded_h11(settings),
                h11_max_incomplete_event_size=settings.max_http_header_bytes,
                limit_concurrency=settings.max_open_connections,
                server_header=False,
            )
            redact.install()  # after uvicorn configured its loggers: no query string or credential is logged
            server = DrainingServer(config, app, banner(settings, sock.getsockname()[1]))
            await server.serve(sockets=[sock])
            if not server.started:
                raise ServeError("the hub did not start: see the log above")


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


def loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (the `server` extra has it) unless CIMHUB_EVENT_LOOP=asyncio; else asyncio's loop."""
    if settings.event_loop == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def serve(settings: Settings) -> None:
    """Run the hub until interrupted (Ctrl-C or SIGTERM); ServeError when it cannot start."""
    configure_logging(settings.log_format)
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=loop_factory(settings)) as runner:
        runner.run(serve_async(settings))
