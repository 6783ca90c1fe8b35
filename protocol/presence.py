"""Presence on a CIM: who is on it right now and what they are doing (pure: no I/O).

Each connection may set one small state per CIM (`PresenceState`: viewing,
editing slide X, drafting section Y). The ``presence:<cimId>`` topic streams the
set of members as a map ``{presenceId: member}``: a snapshot, then one patch
per change, with one op and `mutation` naming the change:

* ``join``   ``{"op": "add", "path": "/<presenceId>", "value": member}`` (a key the map did not have)
* ``update`` the same op on a key the map has (RFC 6902 ``add`` replaces an object member)
* ``leave``  ``{"op": "remove", "path": "/<presenceId>"}``

A member is ``{id, userId, actor, state, since}``: `actor` names a service
acting for a user (``service:agent/u1``), `since` is when it joined (ms).
Members of a connection that closes leave at once; those of a hub that dies
leave within the bound in docs/presence.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ErrorCode, InvalidInput, from_validation_error
from .patch import JsonOp
from .schema import Id

Activity = Literal["viewing", "editing", "drafting", "idle"]

MAX_STATE_BYTES = 512
"""A state is a hint for avatars, not a document: its JSON must stay this small."""


class PresenceState(BaseModel):
    """What one connection is doing on a CIM."""

    model_config = ConfigDict(extra="forbid")

    activity: Activity = "viewing"
    slideId: Id | None = None
    """The slide being edited (activity ``editing``)."""
    sectionId: Id | None = None
    """The section being drafted (activity ``drafting``, usually an agent)."""
    name: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    """A display name for the avatar."""


def parse_state(raw: Any) -> dict[str, Any]:
    """Validate a client's state; the JSON data to store. Raises InvalidInput naming the bad field."""
    try:
        state = PresenceState.model_validate(raw)
    except ValidationError as exc:
        raise from_validation_error(exc, prefix="state") from None
    data = state.model_dump(mode="json", exclude_none=True)
    size = len(orjson.dumps(data))
    if size > MAX_STATE_BYTES:
        raise InvalidInput(
            f"presence state is {size} bytes, over {MAX_STATE_BYTES}", code=ErrorCode.PAYLOAD_TOO_LARGE, path="state"
        )
    return data


def display_name(claims: Mapping[str, Any]) -> str | None:
    """The name Supabase Auth keeps for a user (``user_metadata.full_name`` or ``.name``), if it fits a state's `name`.

    Presence shows it when the client sets no name of its own, so avatars read
    "Ana Ruiz" rather than a user id. The email is never used: it is not a name,
    and not everyone on a deal should learn it from an avatar.
    """
    metadata = claims.get("user_metadata")
    if not isinstance(metadata, Mapping):
        return None
    for key in ("full_name", "name"):
        value = metadata.get(key)
        if isinstance(value, str) and 1 <= len(value.strip()) <= 80:
            return value.strip()
    return None


def member(presence_id: str, user_id: str | None, actor: str, state: dict[str, Any], since: int) -> dict[str, Any]:
    """The map value that stands for one connection on a CIM."""
    return {"id": presence_id, "userId": user_id, "actor": actor, "state": state, "since": since}


def change_entry(event: dict[str, Any]) -> dict[str, Any]:
    """A presence event (as the hub publishes it: ``{type, id, member}``) as a feed entry with one op.

    The entry has the shape of a patch-log entry (revision 0: presence is not
    sequenced), so the hub sends it as a normal ``patch`` frame.
    """
    kind = event["type"]
    if kind not in ("join", "update", "leave"):
        raise ValueError(f"unknown presence event {kind!r}")
    presence_id = str(event["id"])
    ops: list[JsonOp]
    if kind == "leave":
        ops = [{"op": "remove", "path": f"/{presence_id}"}]
    else:
        ops = [{"op": "add", "path": f"/{presence_id}", "value": event["member"]}]
    who = event.get("member") or {}
    return {
        "rev": 0,
        "epoch": "",
        "presenceId": presence_id,
        "ops": ops,
        "mutation": kind,
        "actor": who.get("actor"),
    }
