"""Lua scripts, loaded from server/lua/ and called by SHA (redis-py registers them once)."""

from __future__ import annotations

from importlib import resources

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript


def load_script(client: aioredis.Redis, name: str) -> AsyncScript:
    """Register server/lua/<name>.lua with `client`; calls go by EVALSHA, falling back to EVAL once."""
    source = resources.files("cimhub.server").joinpath("lua", f"{name}.lua").read_text()
    return client.register_script(source)
