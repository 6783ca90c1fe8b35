"""The `messages:<cimId>` topic: a CIM's conversation, streamed as it grows.

Sequenced by message number (1, 2, 3, ...) under the CIM's epoch, each
message named by its commit id, so it resumes like a document: a subscriber
that comes back with its last sequence number and commit id gets exactly the
messages it missed, and only if that very message is still at that number
(after Redis came back older the number may name another message: then it
gets a reset snapshot, never another history's messages). The snapshot is the newest page
(`SNAPSHOT_MESSAGES`, oldest first) as ``{"messages": [...]}``; each patch
appends one message at ``/messages/-``. Embeddings are never streamed.
"""

from __future__ import annotations

from typing import Any

from cimhub.protocol.frames import PatchOut
from cimhub.protocol.messages import ADD_MESSAGE
from cimhub.protocol.schema import Message
from cimhub.server.hub.feeds import Entry, Snapshot, patch_frame
from cimhub.server.messages.store import MessageStore, parse_event
from cimhub.server.store.cims import CimStore

SNAPSHOT_MESSAGES = 50
MAX_CATCH_UP = 1_000


class MessageFeed:
    kind = "messages"
    sequenced = True

    def __init__(self, messages: MessageStore, store: CimStore, *, max_catch_up: int = MAX_CATCH_UP) -> None:
        self.messages = messages
        self.store = store
        # More messages than this to send: a snapshot (the newest page) is cheaper for the hub and the client.
        self.max_catch_up = max_catch_up

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
        return Snapshot(revision, stored.epoch, data, items[-1].commit if items else "")

    async def since(self, ident: str, revision: int, epoch: str, commit: str) -> list[Entry] | None:
        """The messages after `revision`, if the subscriber's `commit` is still the message at `revision`.

        Read from the subscriber's own message on, in pages of one atomic read
        each, checking that every message names the one before as its parent:
        None (a reset snapshot) for another history, a resume without a commit
        id (nothing to confirm), or more than `max_catch_up` messages.
        """
        stored = await self.store.load(ident)
        if stored is None or stored.epoch != epoch or (revision > 0 and not commit):
            return None
        if await self.messages.latest_seq(ident) - revision > self.max_catch_up:
            return None  # too far behind: a snapshot is cheaper, and reading the pages first would not be
        batch = await self.messages.read_since(ident, max(revision - 1, 0))
        if revision > 0:
            if not batch or batch[0].seq != revision or batch[0].commit != commit:
                return None  # the message the subscriber holds is gone, or is another one
            batch = batch[1:]
        entries: list[Entry] = []
        previous, last = commit, revision
        while batch:
            for item in batch:
                if item.seq != last + 1 or item.parent != previous:
                    return None  # not one unbroken history (add.lua never writes one; checked, not assumed)
                entries.append(self._entry(item.seq, epoch, item.message, item.commit, item.parent))
                previous, last = item.commit, item.seq
            if len(entries) > self.max_catch_up:
                return None  # too far behind: a snapshot is cheaper
            batch = await self.messages.read_since(ident, last)
        return entries

    def decode(self, data: bytes) -> Entry:
        event = parse_event(data)
        return self._entry(event.seq, event.epoch, event.message, event.commit, event.parent)

    @staticmethod
    def _entry(seq: int, epoch: str, message: Message, commit: str, parent: str) -> Entry:
        body: dict[str, Any] = message.model_dump(mode="json", exclude_none=True)
        return {
            "rev": seq,
            "epoch": epoch,
            "commit": commit,
            "parent": parent,
            "ops": [{"op": "add", "path": "/messages/-", "value": body}],
            "mutation": ADD_MESSAGE,
            "ts": body.get("timestamp"),
        }

    def frame(self, topic: str, entry: Entry) -> PatchOut:
        return patch_frame(topic, entry)

    def accept(self, seen: set[str], entry: Entry) -> bool:
        return True
