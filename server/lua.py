"""The hub's one Lua loader: `<package>/lua/<name>.lua`, registered once and called by SHA.

Each script sits beside the code that calls it (server/store/lua/,
server/messages/lua/). The checkpoint saver reads its own scripts
(cimhub.server.checkpoint.scripts) because it is installable without the hub.
"""

from __future__ import annotations

from importlib import resources

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript


def read_lua(package: str, name: str) -> str:
    """The source of `<package>/lua/<name>.lua`, from the installed package."""
    return resources.files(package).joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


def load_script(client: aioredis.Redis, package: str, name: str) -> AsyncScript:
    """Register `<package>/lua/<name>.lua` with `client`; calls go by EVALSHA, falling back to EVAL once."""
    return client.register_script(read_lua(package, name))
