"""Feeds: what each kind of topic streams, and how a subscriber catches up.

A feed turns a topic's identifier into a pub/sub channel, a snapshot and, for
sequenced feeds, the entries a subscriber missed since a revision. The hub
(cimhub.server.hub.hub) does the rest the same way for every feed.

* ``cim:<id>``: the CIM document. Sequenced by revision; catch-up reads the patch log.
* ``deal:<id>``: the deal's CIM list, keyed by CIM id. Not sequenced (revision 0):
  a subscriber that lost its place takes a fresh snapshot.
* ``messages:<id>``: the CIM's conversation (added by cimhub.server.messages.store).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from cimhub.protocol.frames import PatchOut
from cimhub.server.store.cims import CimStore
from cimhub.server.store.keys import Keys

Entry = dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    revision: int
    epoch: str
    data: Any


class Feed(Protocol):
    kind: str
    sequenced: bool

    def channel(self, ident: str) -> str: ...

    async def snapshot(self, ident: str) -> Snapshot | None:
        """The current state; None if there is nothing to subscribe to (NotFound)."""

    async def since(self, ident: str, revision: int, epoch: str) -> list[Entry] | None:
        """Entries after `revision` in order; None when they cannot be had (snapshot instead)."""

    def decode(self, data: bytes) -> Entry: ...

    def frame(self, topic: str, entry: Entry) -> PatchOut:
        """The patch frame of `entry` (the same for every subscriber of the topic)."""

    def accept(self, seen: set[str], entry: Entry) -> bool:
        """Unsequenced feeds: whether a subscriber who has `seen` these rows should get `entry`."""


def patch_frame(topic: str, entry: Entry) -> PatchOut:
    frame: PatchOut = {
        "type": "patch",
        "topic": topic,
        "revision": entry["rev"],
        "epoch": entry["epoch"],
        "ops": entry["ops"],
        "mutation": entry.get("mutation"),
        "mutationId": entry.get("mutationId"),
        "actor": entry.get("actor"),
        "ts": entry.get("ts"),
    }
    if entry.get("deleted"):
        frame["deleted"] = True
    return frame


class DocumentFeed:
    kind = "cim"
    sequenced = True

    def __init__(self, store: CimStore, keys: Keys) -> None:
        self.store = store
        self.keys = keys

    def channel(self, ident: str) -> str:
        return self.keys.cim_channel(ident)

    async def snapshot(self, ident: str) -> Snapshot | None:
        stored = await self.store.load(ident)
        return None if stored is None else Snapshot(stored.revision, stored.epoch, stored.doc)

    async def since(self, ident: str, revision: int, epoch: str) -> list[Entry] | None:
        patches = await self.store.patches_since(ident, revision)
        if patches is None or any(p["epoch"] != epoch for p in patches):
            return None
        if not patches:
            # Up to date only if the stream is still the one the subscriber knows.
            stored = await self.store.load(ident)
            if stored is None or stored.epoch != epoch or stored.revision != revision:
                return None
        return patches

    def decode(self, data: bytes) -> Entry:
        return orjson.loads(data)  # type: ignore[no-any-return]

    def frame(self, topic: str, entry: Entry) -> PatchOut:
        return patch_frame(topic, entry)

    def accept(self, seen: set[str], entry: Entry) -> bool:
        return True


class DealFeed:
    """A deal's CIM list as ``{cimId: summary}``; changes are add/remove ops on that map."""

    kind = "deal"
    sequenced = False
    max_rows = 1_000

    def __init__(self, store: CimStore, keys: Keys) -> None:
        self.store = store
        self.keys = keys

    def channel(self, ident: str) -> str:
        return self.keys.deal_channel(ident)

    async def snapshot(self, ident: str) -> Snapshot:
        rows: dict[str, Any] = {}
        cursor: str | None = None
        while len(rows) < self.max_rows:
            page = await self.store.list("deal", ident, cursor=cursor, limit=200)
            rows.update({item.id: item.model_dump(mode="json") for item in page.items})
            cursor = page.next_cursor
            if cursor is None:
                break
        return Snapshot(0, "", rows)

    async def since(self, ident: str, revision: int, epoch: str) -> list[Entry] | None:
        return None

    def decode(self, data: bytes) -> Entry:
        event = orjson.loads(data)
        if event["type"] == "remove":
            cim_id = event["cimId"]
            return {"rev": 0, "epoch": "", "cimId": cim_id, "ops": [{"op": "remove", "path": f"/{cim_id}"}]}
        summary = event["summary"]
        cim_id = summary["id"]
        return {"rev": 0, "epoch": "", "cimId": cim_id, "ops": [{"op": "add", "path": f"/{cim_id}", "value": summary}]}

    def frame(self, topic: str, entry: Entry) -> PatchOut:
        return patch_frame(topic, entry)

    def accept(self, seen: set[str], entry: Entry) -> bool:
        """Skip removing a row the subscriber never had (a change that raced its snapshot)."""
        cim_id = entry["cimId"]
        if entry["ops"][0]["op"] == "remove":
            if cim_id not in seen:
                return False
            seen.discard(cim_id)
        else:
            seen.add(cim_id)
        return True
