"""Conversation operations over the socket and HTTP: `addMessage`, and the `messages` / `searchMessages` queries.

`addMessage` travels as a mutate frame so clients get the same exactly-once
semantics: the `mutationId` becomes the message id, and the same id again
returns the stored message without adding a second one.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cimhub.protocol.errors import NotFound, from_validation_error
from cimhub.protocol.schema import Id, LongText, MessageRole
from cimhub.server.auth.authorizer import Authorizer, Caller
from cimhub.server.messages.store import MessageStore
from cimhub.server.store.engine import CommitResult


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddMessageArgs(_Args):
    cimId: Id
    role: MessageRole
    content: LongText
    timestamp: int | None = None
    embedding: list[float] | None = None


class ListMessagesArgs(_Args):
    cimId: Id
    order: Literal["newest", "oldest"] = "newest"
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = None


class SearchMessagesArgs(_Args):
    cimId: Id
    vector: list[float]
    k: int = Field(default=10, ge=1, le=100)
    role: MessageRole | None = None


def _parse(model: type[_Args], raw: Any) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise from_validation_error(exc, prefix="args") from None


class MessageOps:
    QUERIES = frozenset({"messages", "searchMessages"})

    def __init__(self, messages: MessageStore, authorizer: Authorizer) -> None:
        self.messages = messages
        self.authorizer = authorizer

    async def add(self, caller: Caller, raw: Any, mutation_id: str) -> CommitResult:
        args: AddMessageArgs = _parse(AddMessageArgs, raw)
        await self.authorizer.require_cim(caller, args.cimId)
        stored = await self.messages.add(
            args.cimId, args.role, args.content, timestamp=args.timestamp, embedding=args.embedding,
            message_id=mutation_id,
        )
        return CommitResult(args.cimId, stored.seq, {"messageId": stored.message.id, "seq": stored.seq}, stored.duplicate)

    async def _require_live_cim(self, caller: Caller, cim_id: str) -> None:
        # The authorizer remembers a CIM's deal for good; a deleted CIM must still read as not found.
        await self.authorizer.require_cim(caller, cim_id)
        if not await self.authorizer.store.exists(cim_id):
            raise NotFound(f"CIM {cim_id!r} not found", path="args.cimId")

    async def query(self, caller: Caller, name: str, raw: Any) -> dict[str, Any]:
        if name == "messages":
            args: ListMessagesArgs = _parse(ListMessagesArgs, raw)
            await self._require_live_cim(caller, args.cimId)
            page = await self.messages.list(args.cimId, order=args.order, limit=args.limit, cursor=args.cursor)
            return {
                "items": [{"seq": m.seq, **m.message.model_dump(mode="json", exclude_none=True)} for m in page.messages],
                "nextCursor": page.next_cursor,
                "hasMore": page.has_more,
            }
        search: SearchMessagesArgs = _parse(SearchMessagesArgs, raw)
        await self._require_live_cim(caller, search.cimId)
        hits = await self.messages.search(search.cimId, search.vector, k=search.k, role=search.role)
        return {
            "hits": [
                {"seq": h.seq, "score": h.score, **h.message.model_dump(mode="json", exclude_none=True)} for h in hits
            ]
        }
