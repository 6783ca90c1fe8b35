"""Read-only queries, over the socket and over HTTP, each checked by the Authorizer."""

from __future__ import annotations

import dataclasses
from typing import Any

from cimhub.protocol.errors import AccessDenied, ErrorCode, InvalidInput
from cimhub.protocol.queries import (
    GetArgs,
    ListByDealArgs,
    ListByStatusArgs,
    ListByUserArgs,
    PatchesArgs,
    parse_query_args,
)
from cimhub.server.auth.authorizer import Authorizer, Caller
from cimhub.server.store.cims import CimStore


class Queries:
    def __init__(self, store: CimStore, authorizer: Authorizer) -> None:
        self.store = store
        self.authorizer = authorizer

    async def run(self, caller: Caller, name: str, raw: Any) -> dict[str, Any]:
        """Answer query `name` (arguments: cimhub.protocol.queries); raises InvalidInput, NotFound or AccessDenied."""
        args = parse_query_args(name, raw)
        if isinstance(args, GetArgs):
            await self.authorizer.require_cim(caller, args.cimId)
            stored = await self.store.get(args.cimId)
            return {"cim": stored.doc, "revision": stored.revision, "epoch": stored.epoch}
        if isinstance(args, ListByDealArgs):
            await self.authorizer.require_deal(caller, args.dealId)
            page = await self.store.list("deal", args.dealId, cursor=args.cursor, limit=args.limit)
        elif isinstance(args, ListByUserArgs):
            if not self.authorizer.trusted(caller) and caller.user_id != args.userId:
                raise AccessDenied("you may list only your own CIMs", path="args.userId")
            page = await self.store.list("user", args.userId, cursor=args.cursor, limit=args.limit)
            # Own CIMs in deals the caller has since lost are left out: access, not ownership, decides.
            visible = await self.authorizer.visible(caller, [item.id for item in page.items])
            page = dataclasses.replace(page, items=[item for item in page.items if item.id in visible])
        elif isinstance(args, ListByStatusArgs):
            # Spans every deal: filtering it per row would cost an access check each, so services only.
            if not self.authorizer.trusted(caller):
                raise AccessDenied("listByStatus spans every deal and needs a service credential", path="name")
            page = await self.store.list("status", args.status, cursor=args.cursor, limit=args.limit)
        elif isinstance(args, PatchesArgs):
            await self.authorizer.require_cim(caller, args.cimId)
            patches = await self.store.patches_since(args.cimId, args.fromRevision, args.limit)
            if patches is None:
                return {"patches": [], "truncated": True}
            if args.toRevision is not None:
                patches = [p for p in patches if p["rev"] <= args.toRevision]
            return {"patches": patches, "truncated": False}
        else:
            raise InvalidInput(f"{name!r} is not a query about CIMs", code=ErrorCode.UNKNOWN_QUERY, path="name")
        return {"items": [item.model_dump(mode="json") for item in page.items], "nextCursor": page.next_cursor}
