"""Read-only queries, over the socket and over HTTP, each checked by the Authorizer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cimhub.protocol.errors import AccessDenied, ErrorCode, InvalidInput, from_validation_error
from cimhub.protocol.schema import CimStatus, Id
from cimhub.server.auth.authorizer import Authorizer, Caller
from cimhub.server.store.cims import MAX_PAGE, CimStore


class QueryArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GetArgs(QueryArgs):
    cimId: Id


class PageArgs(QueryArgs):
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)


class ListByDealArgs(PageArgs):
    dealId: Id


class ListByUserArgs(PageArgs):
    userId: Id


class ListByStatusArgs(PageArgs):
    status: CimStatus


class PatchesArgs(QueryArgs):
    cimId: Id
    fromRevision: int = Field(default=0, ge=0)
    """Patches after this revision."""
    toRevision: int | None = Field(default=None, ge=0)
    limit: int = Field(default=1_000, ge=1, le=10_000)


QueryName = Literal["get", "listByDeal", "listByUser", "listByStatus", "patches"]
ARGS: dict[str, type[QueryArgs]] = {
    "get": GetArgs,
    "listByDeal": ListByDealArgs,
    "listByUser": ListByUserArgs,
    "listByStatus": ListByStatusArgs,
    "patches": PatchesArgs,
}


class Queries:
    def __init__(self, store: CimStore, authorizer: Authorizer) -> None:
        self.store = store
        self.authorizer = authorizer

    async def run(self, caller: Caller, name: str, raw: Any) -> dict[str, Any]:
        """Answer query `name`; raises InvalidInput, NotFound or AccessDenied."""
        model = ARGS.get(name)
        if model is None:
            raise InvalidInput(
                f"unknown query {name!r}; known: {', '.join(sorted(ARGS))}", code=ErrorCode.UNKNOWN_QUERY, path="name"
            )
        try:
            args = model.model_validate(raw)
        except ValidationError as exc:
            raise from_validation_error(exc, prefix="args") from None
        if isinstance(args, GetArgs):
            await self.authorizer.require_cim(caller, args.cimId)
            stored = await self.store.get(args.cimId)
            return {"cim": stored.doc, "revision": stored.revision, "epoch": stored.epoch, "commit": stored.commit}
        if isinstance(args, ListByDealArgs):
            await self.authorizer.require_deal(caller, args.dealId)
            page = await self.store.list("deal", args.dealId, cursor=args.cursor, limit=args.limit)
        elif isinstance(args, ListByUserArgs):
            if not self.authorizer.trusted(caller) and caller.user_id != args.userId:
                raise AccessDenied("you may list only your own CIMs", path="args.userId")
            page = await self.store.list("user", args.userId, cursor=args.cursor, limit=args.limit)
        elif isinstance(args, ListByStatusArgs):
            # Spans every deal: filtering it per row would cost an access check each, so services only.
            if not self.authorizer.trusted(caller):
                raise AccessDenied("listByStatus spans every deal and needs a service credential", path="name")
            page = await self.store.list("status", args.status, cursor=args.cursor, limit=args.limit)
        else:
            assert isinstance(args, PatchesArgs)
            await self.authorizer.require_cim(caller, args.cimId)
            patches = await self.store.patches_since(args.cimId, args.fromRevision, args.limit)
            if patches is None:
                return {"patches": [], "truncated": True}
            if args.toRevision is not None:
                patches = [p for p in patches if p["rev"] <= args.toRevision]
            return {"patches": patches, "truncated": False}
        return {"items": [item.model_dump(mode="json") for item in page.items], "nextCursor": page.next_cursor}
