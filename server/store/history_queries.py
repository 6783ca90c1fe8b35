"""The history queries (cimAt, cimDiff, cimHistory), over the socket and over HTTP, each access-checked like `get`."""

from __future__ import annotations

from typing import Any

from cimhub.protocol.errors import ErrorCode, InvalidInput
from cimhub.protocol.queries import HISTORY_QUERIES, CimAtArgs, CimDiffArgs, CimHistoryArgs, parse_query_args
from cimhub.server.auth.authorizer import Authorizer, Caller
from cimhub.server.store.history import History


class HistoryQueries:
    """Routes the history queries to `History` after the same access check as reading the CIM."""

    QUERIES = frozenset(HISTORY_QUERIES)

    def __init__(self, history: History, authorizer: Authorizer) -> None:
        self.history = history
        self.authorizer = authorizer

    async def query(self, caller: Caller, name: str, raw: Any) -> dict[str, Any]:
        """Answer `name`; raises InvalidInput, NotFound or AccessDenied."""
        args = parse_query_args(name, raw)
        if not isinstance(args, CimAtArgs | CimDiffArgs | CimHistoryArgs):
            raise InvalidInput(f"{name!r} is not a history query", code=ErrorCode.UNKNOWN_QUERY, path="name")
        await self.authorizer.require_cim(caller, args.cimId)
        if isinstance(args, CimAtArgs):
            past = await self.history.at(args.cimId, args.revision)
            return {"cim": past.doc, "revision": past.revision, "epoch": past.epoch, "patchesApplied": past.patches}
        if isinstance(args, CimDiffArgs):
            return await self.history.diff(args.cimId, args.from_, args.to, args.limit)
        return await self.history.revisions(args.cimId, args.before, args.limit)
