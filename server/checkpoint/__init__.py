"""LangGraph checkpoints in Redis hashes.

`AsyncRedisSaver` (async graphs) and `RedisSaver` (sync graphs) store
checkpoints, pending writes and channel values under ``<prefix>:cp:{<thread>}:``,
one cluster slot per thread. Layout: layout.py; guide: docs/checkpointer.md.

Modules: layout (key names), codec (bytes <-> values), scripts (Lua),
steps and base and maintenance (the logic, without I/O), aio and sync (drivers).
"""

from cimhub.server.checkpoint.aio import AsyncRedisSaver
from cimhub.server.checkpoint.sync import RedisSaver

__all__ = ["AsyncRedisSaver", "RedisSaver"]
