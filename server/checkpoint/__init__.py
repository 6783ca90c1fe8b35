"""LangGraph checkpoints in plain Redis (no modules), one cluster slot per thread.

`AsyncCimhubRedisSaver` (async graphs) and `CimhubRedisSaver` (sync graphs)
store checkpoints, pending writes and channel values under
``<prefix>:cp:{<thread>}:``. Installable alone (``pip install
'cimhub-realtime[checkpoint]'``): this package imports only langgraph-checkpoint,
redis and orjson. Layout: layout.py; guide: docs/checkpointer.md.

Modules: layout (key names), codec (bytes <-> values), scripts (Lua), connect
(the clients a saver builds), steps, base, listing, history and maintenance
(the logic, without I/O), aio and sync (drivers).
"""

from cimhub.server.checkpoint.aio import AsyncCimhubRedisSaver
from cimhub.server.checkpoint.connect import PoolOptions
from cimhub.server.checkpoint.sync import CimhubRedisSaver

__all__ = ["AsyncCimhubRedisSaver", "CimhubRedisSaver", "PoolOptions"]
