"""Redis key and channel names: the one place that knows the layout.

Every key of one CIM carries the hash tag ``{<cimId>}`` so that they share a
cluster slot and one Lua script can change them together:

    <prefix>:cim:{<id>}            hash   doc (JSON), rev, epoch
    <prefix>:cim:{<id>}:log        stream patch log, entry id "<revision>-1"
    <prefix>:cim:{<id>}:mut:<mid>  string idempotency record, expires
    <prefix>:cim:{<id>}:msg:<part> conversation messages (`messages`; cimhub.server.messages.store)
    <prefix>:cim:{<id>}:presence   hash   presence id -> member JSON (cimhub.server.hub.presence)
    <prefix>:cim:{<id>}:presence:exp  sorted set  presence id -> expires at (ms)
    <prefix>:cp:{<thread>}...      LangGraph checkpoints; the CIM agent's thread id is the CIM id
                                   (cimhub.server.checkpoint.layout keeps its own names, so the
                                   checkpointer stays importable without the hub)

Pub/sub channels (not keys, but names under the same prefix):

    <prefix>:ch:cim:<id>           each committed patch of one CIM
    <prefix>:ch:deal:<id>          summary changes of a deal's CIM list
    <prefix>:ch:msg:<id>           each message appended to a CIM's conversation
    <prefix>:ch:alive              never published: keeps an idle broker connection readable

The secondary indexes are sorted sets scored by updatedAt, one per deal, user
and status. They are shared by many CIMs, so they live outside the CIM's slot:
cimhub runs on one Redis primary (with replicas), where the commit script
updates them atomically with the document. See docs/durability.md.
"""

from __future__ import annotations

from typing import NamedTuple


class MessageKeys(NamedTuple):
    """The fixed set of keys holding one CIM's messages, all in the CIM's hash slot."""

    meta: str
    body: str
    ids: str
    vec: str
    rows: str


class Keys:
    """Key names under one prefix. Tests use a unique prefix each."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def cim(self, cim_id: str) -> str:
        return f"{self.prefix}:cim:{{{cim_id}}}"

    def log(self, cim_id: str) -> str:
        return f"{self.prefix}:cim:{{{cim_id}}}:log"

    def mutation(self, cim_id: str, mutation_id: str) -> str:
        return f"{self.prefix}:cim:{{{cim_id}}}:mut:{mutation_id}"

    def by_deal(self, deal_id: str) -> str:
        return f"{self.prefix}:idx:deal:{deal_id}"

    def by_user(self, user_id: str) -> str:
        return f"{self.prefix}:idx:user:{user_id}"

    def by_status(self, status: str) -> str:
        return f"{self.prefix}:idx:status:{status}"

    def readiness(self) -> str:
        """The key /readyz writes to learn whether Redis takes writes (it expires by itself)."""
        return f"{self.prefix}:readyz"

    def presence(self, cim_id: str) -> str:
        return f"{self.prefix}:cim:{{{cim_id}}}:presence"

    def presence_expiry(self, cim_id: str) -> str:
        return f"{self.prefix}:cim:{{{cim_id}}}:presence:exp"

    def presence_channel(self, cim_id: str) -> str:
        """Pub/sub channel carrying joins, updates and leaves of one CIM's presence."""
        return f"{self.prefix}:ch:presence:{cim_id}"

    def cim_channel(self, cim_id: str) -> str:
        """Pub/sub channel carrying each committed patch of one CIM."""
        return f"{self.prefix}:ch:cim:{cim_id}"

    def deal_channel(self, deal_id: str) -> str:
        """Pub/sub channel carrying summary changes of a deal's CIM list."""
        return f"{self.prefix}:ch:deal:{deal_id}"

    def messages(self, cim_id: str) -> MessageKeys:
        base = f"{self.cim(cim_id)}:msg"
        return MessageKeys(f"{base}:meta", f"{base}:body", f"{base}:ids", f"{base}:vec", f"{base}:rows")

    def message_channel(self, cim_id: str) -> str:
        """Pub/sub channel carrying each message appended to one CIM's conversation."""
        return f"{self.prefix}:ch:msg:{cim_id}"

    @property
    def alive_channel(self) -> str:
        """The channel the broker always holds, so an idle pub/sub connection still notices a drop."""
        return f"{self.prefix}:ch:alive"
