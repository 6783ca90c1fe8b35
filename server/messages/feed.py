"""The `messages:<cimId>` topic: a CIM's conversation, streamed as it grows.

Sequenced by message number (1, 2, 3, ...) under the CIM's epoch, so it
resumes like a document: a subscriber that comes back with its last sequence
number gets exactly the messages it missed. The snapshot is the newest page
(`SNAPSHOT_MESSAGES`, oldest first) as ``{"messages": [...]}``; each patch
appends one message at ``/messages/-``. Embeddings are never streamed.
"""

from __future__ import annotations

from typing import Any

from cimhub.protocol.frames import PatchOut
from cimhub.protocol.messages import ADD_MESSAGE
from cimhub.server.hub.feeds import Entry, Snapshot, patch_frame
from cimhub.server.messages.store import MessageStore, parse_event
from cimhub.server.store.cims import CimStore

SNAPSHOT_MESSAGES = 50
MAX_CATCH_UP = 2_000


class MessageFeed:
    kind = "messages"
    sequenced = True

    def __init__(self, messages: MessageStore, store: CimStore) -> None:
        self.messages = messages
        self.store = store

    def channel(self, ident: str) -> str:
        return self.messages.channel(ident)

    async def snapshot(self, ident: str) -> Snapshot | None:
        stored = await self.store.load(ident)
        if stored is None:
            return None
        page = await self.messages.list(ident, order="newest", limit=SNAPSHOT_MESSAGES)
        items = list(reversed(page.messages))
        # The revision is the newest message in the page, so data and revision always agree.
        revision = items[-1].seq if items else 0
        data = {"messages": [m.message.model_dump(mode="json", exclude_none=True) for m in items]}
        return Snapshot(revision, stored.epoch, data)

    async def since(self, ident: str, revision: int, epoch: str) -> list[Entry] | None:
        stored = await self.store.load(ident)
        if stored is None or stored.epoch != epoch:
            return None
        entries: list[Entry] = []
        while len(entries) < MAX_CATCH_UP:
            batch = await self.messages.read_since(ident, revision)
            if not batch:
                return entries
            for item in batch:
                entries.append(self._entry(item.seq, epoch, item.message.model_dump(mode="json", exclude_none=True)))
            revision = batch[-1].seq
        return None  # too far behind: a snapshot is cheaper

    def decode(self, data: bytes) -> Entry:
        event = parse_event(data)
        return self._entry(event.seq, event.epoch, event.message.model_dump(mode="json", exclude_none=True))

    @staticmethod
    def _entry(seq: int, epoch: str, message: dict[str, Any]) -> Entry:
        return {
            "rev": seq,
            "epoch": epoch,
            "ops": [{"op": "add", "path": "/messages/-", "value": message}],
            "mutation": ADD_MESSAGE,
            "ts": message.get("timestamp"),
        }

    def frame(self, topic: str, entry: Entry) -> PatchOut:
        return patch_frame(topic, entry)

    def accept(self, seen: set[str], entry: Entry) -> bool:
        return True
