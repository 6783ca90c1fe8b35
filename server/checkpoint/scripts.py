"""The saver's Lua scripts: server/checkpoint/lua/<name>.lua, called by SHA.

Each script is common.lua (shared helpers) followed by its own file.
The SHA is computed here, so a call is one EVALSHA with no SCRIPT EXISTS round
trip; a driver that gets NOSCRIPT (a fresh or restarted Redis) loads every
script and runs the same commands again, which is safe because a script that
was refused wrote nothing and every batch the saver sends is idempotent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

Command = tuple[Any, ...]
"""One Redis command as its arguments, e.g. ("ZREVRANGEBYLEX", key, "+", "-")."""


@dataclass(frozen=True)
class Script:
    name: str
    source: str
    sha: str

    def call(self, keys: list[str], args: list[Any]) -> Command:
        """The EVALSHA command running this script."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)


def _read(name: str) -> str:
    return resources.files("cimhub.server.checkpoint").joinpath("lua", f"{name}.lua").read_text()


def _load(name: str, common: str) -> Script:
    source = f"{common}\n{_read(name)}"
    return Script(name=name, source=source, sha=hashlib.sha1(source.encode()).hexdigest())


class Scripts:
    """All checkpoint scripts, read once from the package."""

    def __init__(self) -> None:
        common = _read("common")
        self.put = _load("put", common)
        self.put_writes = _load("put_writes", common)
        self.get = _load("get", common)
        self.delete_thread = _load("delete_thread", common)
        self.delete_runs = _load("delete_runs", common)
        self.prune = _load("prune", common)
        self.export = _load("export", common)
        self.touch = _load("touch", common)
        self.delta_history = _load("delta_history", common)

    def all(self) -> list[Script]:
        return [
            self.put,
            self.put_writes,
            self.get,
            self.delete_thread,
            self.delete_runs,
            self.prune,
            self.export,
            self.touch,
            self.delta_history,
        ]


SCRIPTS = Scripts()
