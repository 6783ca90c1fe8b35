"""Every frame of the cimhub WebSocket protocol, as pydantic models.

One discriminated union per direction, parsed by one module-level
`TypeAdapter` each. docs/protocol.md describes the same frames for people;
`json_schema()` exports them for other languages; tests/golden/ holds example
frames that both the Python and the JavaScript tests replay.

Topics are strings: ``cim:<cimId>`` (one CIM document), ``deal:<dealId>`` (a
deal's CIM list) and ``messages:<cimId>`` (a CIM's conversation). A connection
holds at most one subscription per topic, so server frames name the topic, not
a per-client id, and one encoded frame serves every subscriber of a topic.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

PROTOCOL_VERSION = 2
"""2 added commit ids: `commit` on snapshot, patch and subscribed frames and in `resume` (additive)."""
JSON_SUBPROTOCOL = "cimhub.json.v1"
MSGPACK_SUBPROTOCOL = "cimhub.msgpack.v1"

RequestId = Annotated[str, Field(min_length=1, max_length=64)]
Topic = Annotated[str, Field(min_length=3, max_length=200, pattern=r"^(cim|deal|messages):[A-Za-z0-9_.:@\-]+$")]


class Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- client to hub ---------------------------------------------------------


class AuthFrame(Frame):
    """First frame on a new socket, and again whenever the client has a fresh token."""

    type: Literal["auth"]
    token: Annotated[str, Field(min_length=1, max_length=16_384)]
    actAs: str | None = None
    """With a service credential: the user id to act on behalf of."""


CommitId = Annotated[str, Field(min_length=1, max_length=64)]


class Resume(Frame):
    """The last change a client applied: where the hub continues from, if it still can."""

    revision: int = Field(ge=0)
    epoch: str
    commit: CommitId | None = None
    """The commit id of `revision` (from its snapshot or patch). Without it a `cim:` topic always gets a reset snapshot."""


class SubscribeFrame(Frame):
    type: Literal["subscribe"]
    id: RequestId
    topic: Topic
    resume: Resume | None = None
    """The last revision (with its epoch and commit id) this client applied: the hub sends only what it missed."""


class UnsubscribeFrame(Frame):
    type: Literal["unsubscribe"]
    id: RequestId
    topic: Topic


class MutateFrame(Frame):
    type: Literal["mutate"]
    id: RequestId
    name: Annotated[str, Field(min_length=1, max_length=64)]
    args: dict[str, Any]
    mutationId: Annotated[str, Field(min_length=1, max_length=128)]
    expectedRevision: int | None = Field(default=None, ge=0)


class QueryFrame(Frame):
    type: Literal["query"]
    id: RequestId
    name: Annotated[str, Field(min_length=1, max_length=64)]
    args: dict[str, Any] = Field(default_factory=dict)


class PingFrame(Frame):
    type: Literal["ping"]
    ts: int | None = None


class PongFrame(Frame):
    type: Literal["pong"]
    ts: int | None = None


ClientFrame = Annotated[
    AuthFrame | SubscribeFrame | UnsubscribeFrame | MutateFrame | QueryFrame | PingFrame | PongFrame,
    Field(discriminator="type"),
]
CLIENT_FRAME: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


# -- hub to client -----------------------------------------------------------


class WireError(Frame):
    code: str
    message: str
    retryable: bool
    path: str | None = None


class ReadyFrame(Frame):
    """The token was accepted (first time or on refresh); deliveries (re)start."""

    type: Literal["ready"]
    userId: str | None
    expiresAt: int | None
    """When the token expires (epoch seconds): refresh before then to avoid a pause."""
    protocol: int = PROTOCOL_VERSION
    heartbeat: float


class SnapshotFrame(Frame):
    type: Literal["snapshot"]
    topic: str
    id: RequestId | None = None
    """The subscribe request this answers; absent when the hub resyncs on its own."""
    revision: int
    epoch: str
    data: Any
    reset: bool = False
    """True when the client asked to resume but history was lost or trimmed: replace, don't patch."""
    commit: str | None = None
    """The commit id of `revision`: what to name in a later `resume` (absent for topics without commit ids)."""


class PatchFrame(Frame):
    type: Literal["patch"]
    topic: str
    revision: int
    epoch: str
    ops: list[dict[str, Any]]
    mutation: str | None = None
    mutationId: str | None = None
    actor: str | None = None
    ts: int | None = None
    deleted: bool = False
    commit: str | None = None
    """The commit id of `revision`: what to name in a later `resume` (absent for topics without commit ids)."""


class SubscribedFrame(Frame):
    """A resume was served from the patch log: the patches before this frame were all that was missed."""

    type: Literal["subscribed"]
    topic: str
    id: RequestId
    revision: int
    epoch: str
    commit: str | None = None


class UnsubscribedFrame(Frame):
    """The subscription ended: asked for, or ended by the hub (with the reason in `error`)."""

    type: Literal["unsubscribed"]
    topic: str
    id: RequestId | None = None
    error: WireError | None = None


class ResultFrame(Frame):
    type: Literal["result"]
    id: RequestId
    result: Any
    cimId: str | None = None
    revision: int | None = None
    duplicate: bool = False


class ErrorFrame(Frame):
    type: Literal["error"]
    id: RequestId | None = None
    error: WireError


ServerFrame = Annotated[
    ReadyFrame
    | SnapshotFrame
    | PatchFrame
    | SubscribedFrame
    | UnsubscribedFrame
    | ResultFrame
    | ErrorFrame
    | PingFrame
    | PongFrame,
    Field(discriminator="type"),
]
SERVER_FRAME: TypeAdapter[ServerFrame] = TypeAdapter(ServerFrame)


def json_schema() -> dict[str, Any]:
    """JSON Schema of both directions, for clients in other languages."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"cimhub protocol v{PROTOCOL_VERSION}",
        "client": CLIENT_FRAME.json_schema(),
        "server": SERVER_FRAME.json_schema(),
    }


# -- close codes (RFC 6455 §7.4; 4000-4999 are the application's) -------------

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_RESTART = 1012
"""The hub is shutting down: reconnect (to any hub) and resume."""
# 4000-4099: reconnect and resume.
CLOSE_HEARTBEAT_TIMEOUT = 4000
CLOSE_QUEUE_OVERFLOW = 4008
"""This client fell too far behind: reconnect and resume (or take snapshots)."""
# 4400-4499: do not reconnect without changing something.
CLOSE_AUTH_TIMEOUT = 4401
CLOSE_AUTH_FAILED = 4403
CLOSE_FORBIDDEN_ORIGIN = 4406
CLOSE_TOO_MANY_UNAUTHENTICATED = 4429


def topic_parts(topic: str) -> tuple[str, str]:
    """Split ``kind:id``; the TypeAdapter has checked the shape."""
    kind, _, ident = topic.partition(":")
    return kind, ident
