"""Conversation operations over the socket and HTTP: `addMessage`, and the `messages` / `searchMessages` queries.

`addMessage` travels as a mutate frame so clients get the same exactly-once
semantics: the `mutationId` becomes the message id, and the same id again
returns the stored message without adding a second one. The argument models
are the protocol's (cimhub.protocol.messages).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from cimhub.protocol.errors import ErrorCode, InvalidInput, NotFound, from_validation_error
from cimhub.protocol.messages import AddMessageArgs, ListMessagesArgs, SearchMessagesArgs
from cimhub.protocol.queries import MESSAGE_QUERIES, parse_query_args
from cimhub.server.auth.authorizer import Authorizer, Caller
from cimhub.server.messages.store import MessageStore
from cimhub.server.store.engine import CommitResult


class MessageOps:
    QUERIES = frozenset(MESSAGE_QUERIES)

    def __init__(self, messages: MessageStore, authorizer: Authorizer) -> None:
        self.messages = messages
        self.authorizer = authorizer

    async def add(self, caller: Caller, raw: Any, mutation_id: str) -> CommitResult:
        try:
            args = AddMessageArgs.model_validate(raw)
        except ValidationError as exc:
            raise from_validation_error(exc, prefix="args") from None
        await self.authorizer.require_cim(caller, args.cimId)
        stored = await self.messages.add(
            args.cimId,
            args.role,
            args.content,
            timestamp=args.timestamp,
            embedding=args.embedding,
            message_id=mutation_id,
        )
        return CommitResult(
            args.cimId, stored.seq, {"messageId": stored.message.id, "seq": stored.seq}, stored.duplicate
        )

    async def _require_live_cim(self, caller: Caller, cim_id: str) -> None:
        # The authorizer remembers a CIM's deal for good; a deleted CIM must still read as not found.
        await self.authorizer.require_cim(caller, cim_id)
        if not await self.authorizer.store.exists(cim_id):
            raise NotFound(f"CIM {cim_id!r} not found", path="args.cimId")

    async def query(self, caller: Caller, name: str, raw: Any) -> dict[str, Any]:
        args = parse_query_args(name, raw)
        if isinstance(args, ListMessagesArgs):
            await self._require_live_cim(caller, args.cimId)
            page = await self.messages.list(args.cimId, order=args.order, limit=args.limit, cursor=args.cursor)
            return {
                "items": [
                    {"seq": m.seq, **m.message.model_dump(mode="json", exclude_none=True)} for m in page.messages
                ],
                "nextCursor": page.next_cursor,
                "hasMore": page.has_more,
            }
        if not isinstance(args, SearchMessagesArgs):
            raise InvalidInput(f"{name!r} is not a query about messages", code=ErrorCode.UNKNOWN_QUERY, path="name")
        await self._require_live_cim(caller, args.cimId)
        hits = await self.messages.search(args.cimId, args.vector, k=args.k, role=args.role)
        return {
            "hits": [
                {"seq": h.seq, "score": h.score, **h.message.model_dump(mode="json", exclude_none=True)} for h in hits
            ]
        }
