"""The conversation's wire arguments: `addMessage` (a mutate frame) and the `messages` / `searchMessages` queries.

`addMessage` is not a document mutation (the conversation is its own log), but
it travels as a mutate frame so clients get the same exactly-once semantics:
the `mutationId` becomes the message id. cimhub.server.messages.ops runs them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .schema import Id, LongText, MessageRole

ADD_MESSAGE = "addMessage"
"""The mutation name that appends to a CIM's conversation."""


class MessageArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AddMessageArgs(MessageArgs):
    cimId: Id
    role: MessageRole
    content: LongText
    timestamp: int | None = None
    embedding: list[float] | None = None


class ListMessagesArgs(MessageArgs):
    cimId: Id
    order: Literal["newest", "oldest"] = "newest"
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = None


class SearchMessagesArgs(MessageArgs):
    cimId: Id
    vector: list[float]
    k: int = Field(default=10, ge=1, le=100)
    role: MessageRole | None = None
