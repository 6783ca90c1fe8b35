"""Where the hub and its Redis are, for every `cimhub` command: one place, read the same way by each.

Each value comes from a flag, else the environment, else a default. The
environment names are the hub's own (docs/operations.md), so a shell set up
for `cimhub serve` reaches that hub and its Redis with no flags at all:

==============  ===========  ==========================================  ==============================
value           flag         environment                                 default
==============  ===========  ==========================================  ==============================
hub URL         --url        CIMHUB_URL, else CIMHUB_PORT on 127.0.0.1   http://127.0.0.1:8000
Redis (agent)   --redis-url  REDIS_URL, CIMHUB_REDIS_URL, else           redis://127.0.0.1:6399/0
                             CIMHUB_EMBEDDED_REDIS_PORT on 127.0.0.1     (the embedded Redis)
key prefix      --key-prefix CIMHUB_KEY_PREFIX                           cimhub
==============  ===========  ==========================================  ==============================

Standard library only: `cimhub --help` must not wait for imports. The
defaults equal the hub's Settings defaults (a test checks they agree).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORT = 8000
DEFAULT_EMBEDDED_REDIS_PORT = 6399
DEFAULT_KEY_PREFIX = "cimhub"
WS_PATH = "/v1/ws"


def hub_url(env: Mapping[str, str] = os.environ) -> str:
    """CIMHUB_URL, else the loopback address of the port the hub is configured with."""
    return env.get("CIMHUB_URL") or f"http://127.0.0.1:{env.get('CIMHUB_PORT') or DEFAULT_PORT}"


def redis_url(env: Mapping[str, str] = os.environ) -> str:
    """The hub's Redis: REDIS_URL or CIMHUB_REDIS_URL, else the embedded one `cimhub serve` starts."""
    return (
        env.get("REDIS_URL")
        or env.get("CIMHUB_REDIS_URL")
        or f"redis://127.0.0.1:{env.get('CIMHUB_EMBEDDED_REDIS_PORT') or DEFAULT_EMBEDDED_REDIS_PORT}/0"
    )


def key_prefix(env: Mapping[str, str] = os.environ) -> str:
    return env.get("CIMHUB_KEY_PREFIX") or DEFAULT_KEY_PREFIX


def ws_url(url: str) -> str:
    """The hub's WebSocket URL from a hub base URL (``http://host:8000``) or a ``ws://`` URL.

    A bare base URL gets the ``/v1/ws`` path; a ``ws://`` URL with a path is kept as is.
    Raises ValueError for anything else.
    """
    parts = urlsplit(url)
    schemes = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
    if parts.scheme not in schemes or not parts.netloc:
        raise ValueError(f"expected a hub URL like http://127.0.0.1:8000 or ws://127.0.0.1:8000/v1/ws, got {url!r}")
    if parts.scheme in ("ws", "wss") and parts.path not in ("", "/"):
        path = parts.path
    else:
        path = parts.path.rstrip("/") + WS_PATH  # a hub mounted under a prefix keeps it
    return urlunsplit((schemes[parts.scheme], parts.netloc, path, parts.query, ""))


def http_base(url: str) -> str:
    """The HTTP base URL of a hub given as http(s):// or as its ws(s):// socket URL."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    path = parts.path.removesuffix(WS_PATH).rstrip("/")
    return urlunsplit((scheme, parts.netloc, path, "", ""))
