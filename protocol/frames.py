"""Every frame of the cimhub WebSocket protocol, as pydantic models.

One discriminated union per direction, parsed by one module-level
`TypeAdapter` each. docs/protocol.md describes the same frames for people;
`json_schema()` exports them for other languages; tests/golden/ holds example
frames that both the Python and the JavaScript tests replay.

Topics are strings: ``cim:<cimId>`` (one CIM document), ``deal:<dealId>`` (a
deal's CIM list), ``messages:<cimId>`` (a CIM's conversation) and
``presence:<cimId>`` (who is on the CIM, cimhub.protocol.presence). A connection
holds at most one subscription per topic, so server frames name the topic, not
a per-client id, and one encoded frame serves every subscriber of a topic.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, TypedDict

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

from .errors import WireErrorOut
from .schema import ID_CHARS, MAX_SAFE_INTEGER, canonical_id, safe_json

PROTOCOL_VERSION = 2
"""2 added commit ids: `commit` on snapshot, patch and subscribed frames and in `resume` (additive)."""
JSON_SUBPROTOCOL = "cimhub.json.v1"
MSGPACK_SUBPROTOCOL = "cimhub.msgpack.v1"

MAX_REQUEST_ID_CHARS = 64


def _canonical_topic(topic: str) -> str:
    """A deal topic names the deal in its one spelling (uuids lower-cased): one channel per deal."""
    kind, _, ident = topic.partition(":")
    return f"{kind}:{canonical_id(ident)}" if kind == "deal" else topic


# Full matches. pydantic checks patterns with Rust's regex and JSON Schema readers
# with ECMA-262's: in both, `$` (without the multiline flag) is the end of the text,
# so a trailing newline does not pass (unlike Python's `re`). \A and \z would not
# be portable to the schema's readers.
RequestId = Annotated[str, Field(min_length=1, max_length=MAX_REQUEST_ID_CHARS, pattern=r"^[\x20-\x7e]+$")]
MutationId = Annotated[str, Field(min_length=1, max_length=128, pattern=rf"^{ID_CHARS}+$")]
Topic = Annotated[
    str,
    Field(min_length=3, max_length=200, pattern=rf"^(cim|deal|messages|presence):{ID_CHARS}+$"),
    AfterValidator(_canonical_topic),
]
SafeInt = Annotated[int, Field(ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]
Revision = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]
JsonArgs = Annotated[dict[str, Any], AfterValidator(safe_json)]


def valid_request_id(value: object) -> str | None:
    """`value` if it can be echoed in an error frame (a valid RequestId), else None."""
    if isinstance(value, str) and 0 < len(value) <= MAX_REQUEST_ID_CHARS and value.isascii() and value.isprintable():
        return value
    return None


class Frame(BaseModel):
    # strict: "1" is not 1 and true is not 1 (no coercion of client input).
    model_config = ConfigDict(extra="forbid", strict=True)


# -- client to hub ---------------------------------------------------------


class AuthFrame(Frame):
    """First frame on a new socket, and again whenever the client has a fresh token."""

    type: Literal["auth"]
    token: Annotated[str, Field(min_length=1, max_length=16_384)]
    actAs: Annotated[str, AfterValidator(canonical_id)] | None = None
    """With a service credential: the user id to act on behalf of."""


CommitId = Annotated[str, Field(min_length=1, max_length=64)]


class Resume(Frame):
    """The last change a client applied: where the hub continues from, if it still can."""

    revision: Revision
    epoch: str
    commit: CommitId | None = None
    """The commit id of `revision` (from its snapshot or patch).

    Without it a `cim:` topic always gets a reset snapshot, and so does a `messages:` topic past revision 0.
    """


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
    args: JsonArgs
    mutationId: MutationId
    expectedRevision: Revision | None = None


class QueryFrame(Frame):
    type: Literal["query"]
    id: RequestId
    name: Annotated[str, Field(min_length=1, max_length=64)]
    args: JsonArgs = Field(default_factory=dict)


class PresenceFrame(Frame):
    """Join a CIM's presence with `state`, change it, or leave it (`state` null); answered by `result`."""

    type: Literal["presence"]
    id: RequestId
    cimId: Annotated[str, Field(min_length=1, max_length=128)]
    state: dict[str, Any] | None = None
    """A `cimhub.protocol.presence.PresenceState`: ``{activity, slideId?, sectionId?, name?}``.

    Absent or null: leave.
    """


class PingFrame(Frame):
    type: Literal["ping"]
    ts: SafeInt | None = None


class PongFrame(Frame):
    type: Literal["pong"]
    ts: SafeInt | None = None


ClientFrame = Annotated[
    AuthFrame | SubscribeFrame | UnsubscribeFrame | MutateFrame | QueryFrame | PresenceFrame | PingFrame | PongFrame,
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


# -- hub to client, as the hub builds them ----------------------------------------
#
# The models above parse frames; these TypedDicts are what the server builds, so
# mypy checks every `send(...)` against the protocol without a pydantic round trip
# per frame on the fan-out path. tests/test_frames.py checks that each one has
# exactly its model's fields; the end-to-end tests validate every frame the hub
# sends against /v1/schema. A key that is always sent (perhaps as null) is
# required here even where the model gives it a default.


class ReadyOut(TypedDict):
    type: Literal["ready"]
    userId: str | None
    expiresAt: int | None
    protocol: int
    heartbeat: float


class SnapshotOut(TypedDict):
    type: Literal["snapshot"]
    topic: str
    id: NotRequired[str]
    commit: NotRequired[str]
    revision: int
    epoch: str
    data: Any
    reset: bool


class PatchOut(TypedDict):
    type: Literal["patch"]
    topic: str
    revision: int
    epoch: str
    ops: list[dict[str, Any]]
    mutation: str | None
    mutationId: str | None
    actor: str | None
    ts: int | None
    deleted: NotRequired[bool]
    commit: NotRequired[str]


class SubscribedOut(TypedDict):
    type: Literal["subscribed"]
    topic: str
    id: str
    revision: int
    epoch: str
    commit: NotRequired[str]


class UnsubscribedOut(TypedDict):
    type: Literal["unsubscribed"]
    topic: str
    id: NotRequired[str]
    error: NotRequired[WireErrorOut]


class ResultOut(TypedDict):
    type: Literal["result"]
    id: str
    result: Any
    cimId: NotRequired[str]
    revision: NotRequired[int]
    duplicate: NotRequired[bool]


class ErrorOut(TypedDict):
    type: Literal["error"]
    id: NotRequired[str]
    error: WireErrorOut


class PingOut(TypedDict):
    type: Literal["ping"]
    ts: int | None


class PongOut(TypedDict):
    type: Literal["pong"]
    ts: int | None


Outbound = (
    ReadyOut | SnapshotOut | PatchOut | SubscribedOut | UnsubscribedOut | ResultOut | ErrorOut | PingOut | PongOut
)
"""Any frame the hub sends."""


def json_schema() -> dict[str, Any]:
    """JSON Schema of both directions, for clients in other languages."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"cimhub protocol v{PROTOCOL_VERSION}",
        "client": CLIENT_FRAME.json_schema(),
        "server": SERVER_FRAME.json_schema(),
    }


def topic_parts(topic: str) -> tuple[str, str]:
    """Split ``kind:id``; the TypeAdapter has checked the shape."""
    kind, _, ident = topic.partition(":")
    return kind, ident
