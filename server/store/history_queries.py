"""The history queries (cimAt, cimDiff, cimHistory), over the socket and over HTTP, each access-checked like `get`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cimhub.protocol.errors import ErrorCode, InvalidInput, from_validation_error
from cimhub.protocol.schema import Id
from cimhub.server.auth.authorizer import Authorizer, Caller
from cimhub.server.store.history import History


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    cimId: Id


class CimAtArgs(_Args):
    revision: int = Field(ge=1)


class CimDiffArgs(_Args):
    from_: int = Field(alias="from", ge=0)
    """Changes after this revision (0: from the creation on)."""
    to: int | None = Field(default=None, ge=0)
    limit: int = Field(default=1_000, ge=1, le=10_000)


class CimHistoryArgs(_Args):
    before: int | None = Field(default=None, ge=1)
    limit: int = Field(default=50, ge=1, le=1_000)


ARGS: dict[str, type[_Args]] = {"cimAt": CimAtArgs, "cimDiff": CimDiffArgs, "cimHistory": CimHistoryArgs}


class HistoryQueries:
    """Routes the history queries to `History` after the same access check as reading the CIM."""

    QUERIES = frozenset(ARGS)

    def __init__(self, history: History, authorizer: Authorizer) -> None:
        self.history = history
        self.authorizer = authorizer

    async def query(self, caller: Caller, name: str, raw: Any) -> dict[str, Any]:
        """Answer `name`; raises InvalidInput, NotFound or AccessDenied."""
        model = ARGS.get(name)
        if model is None:
            raise InvalidInput(f"unknown history query {name!r}", code=ErrorCode.UNKNOWN_QUERY, path="name")
        try:
            args = model.model_validate(raw)
        except ValidationError as exc:
            raise from_validation_error(exc, prefix="args") from None
        await self.authorizer.require_cim(caller, args.cimId)
        if isinstance(args, CimAtArgs):
            past = await self.history.at(args.cimId, args.revision)
            return {"cim": past.doc, "revision": past.revision, "epoch": past.epoch, "patchesApplied": past.patches}
        if isinstance(args, CimDiffArgs):
            return await self.history.diff(args.cimId, args.from_, args.to, args.limit)
        assert isinstance(args, CimHistoryArgs)
        return await self.history.revisions(args.cimId, args.before, args.limit)
