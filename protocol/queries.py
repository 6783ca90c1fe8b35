"""The arguments of every read-only query, over the socket (`query` frames) and HTTP (`POST /v1/query`).

Each query is a name and an argument model; the server (cimhub.server.store.queries
for CIMs, cimhub.server.messages.ops for the conversation) validates the raw
arguments with `parse_query_args` and answers. docs/protocol.md lists them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ErrorCode, InvalidInput, from_validation_error
from .messages import ListMessagesArgs, MessageArgs, SearchMessagesArgs
from .schema import CimStatus, Id, SupabaseId

MAX_PAGE = 200
"""The largest page a listing query returns."""


class QueryArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class GetArgs(QueryArgs):
    cimId: Id


class PageArgs(QueryArgs):
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)


class ListByDealArgs(PageArgs):
    dealId: SupabaseId


class ListByUserArgs(PageArgs):
    userId: SupabaseId


class ListByStatusArgs(PageArgs):
    status: CimStatus


class PatchesArgs(QueryArgs):
    cimId: Id
    fromRevision: int = Field(default=0, ge=0)
    """Patches after this revision."""
    toRevision: int | None = Field(default=None, ge=0)
    limit: int = Field(default=1_000, ge=1, le=10_000)


CIM_QUERIES: dict[str, type[QueryArgs]] = {
    "get": GetArgs,
    "listByDeal": ListByDealArgs,
    "listByUser": ListByUserArgs,
    "listByStatus": ListByStatusArgs,
    "patches": PatchesArgs,
}


class CimAtArgs(QueryArgs):
    cimId: Id
    revision: int = Field(ge=1)


class CimDiffArgs(QueryArgs):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)

    cimId: Id
    from_: int = Field(alias="from", ge=0)
    """Changes after this revision (0: from the creation on)."""
    to: int | None = Field(default=None, ge=0)
    limit: int = Field(default=1_000, ge=1, le=10_000)


class CimHistoryArgs(QueryArgs):
    cimId: Id
    before: int | None = Field(default=None, ge=1)
    limit: int = Field(default=50, ge=1, le=1_000)


HISTORY_QUERIES: dict[str, type[QueryArgs]] = {
    "cimAt": CimAtArgs,
    "cimDiff": CimDiffArgs,
    "cimHistory": CimHistoryArgs,
}
MESSAGE_QUERIES: dict[str, type[MessageArgs]] = {
    "messages": ListMessagesArgs,
    "searchMessages": SearchMessagesArgs,
}
QUERIES: dict[str, type[BaseModel]] = {**CIM_QUERIES, **HISTORY_QUERIES, **MESSAGE_QUERIES}


def parse_query_args(name: str, raw: Any) -> BaseModel:
    """Validate the arguments of query `name`; raises InvalidInput (unknown_query, or naming the bad field)."""
    model = QUERIES.get(name)
    if model is None:
        raise InvalidInput(
            f"unknown query {name!r}; known: {', '.join(sorted(QUERIES))}", code=ErrorCode.UNKNOWN_QUERY, path="name"
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise from_validation_error(exc, prefix="args") from None
