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

Sharded pub/sub channels (SPUBLISH/SSUBSCRIBE; not keys, but names under the same prefix):

    <prefix>:ch:cim:{<id>}         each committed patch of one CIM
    <prefix>:ch:deal:{<id>}        summary changes of a deal's CIM list
    <prefix>:ch:msg:{<id>}         each message appended to a CIM's conversation
    <prefix>:ch:alive              never published: keeps an idle broker connection readable

The secondary indexes are sorted sets scored by updatedAt, one per deal, user
and status. They are shared by many CIMs, so they live outside the CIM's slot.
On a single Redis primary the commit script updates them atomically with the
document. On a Redis Cluster (`cluster=True`) each index key carries its own
hash tag (``idx:deal:{<dealId>}``) with a guard hash beside it
(``...:rev``: the last revision applied per CIM), and the store updates them
right after the commit, before acknowledging it. See docs/scaling.md.
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

    def __init__(self, prefix: str, *, cluster: bool = False) -> None:
        self.prefix = prefix
        self.cluster = cluster

    def cim(self, cim_id: str) -> str:
        return f"{self.prefix}:cim:{{{cim_id}}}"

    def log(self, cim_id: str) -> str:
        return f"{self.prefix}:cim:{{{cim_id}}}:log"

    def mutation(self, cim_id: str, mutation_id: str) -> str:
        return f"{self.prefix}:cim:{{{cim_id}}}:mut:{mutation_id}"

    def by_deal(self, deal_id: str) -> str:
        return self._index("deal", deal_id)

    def by_user(self, user_id: str) -> str:
        return self._index("user", user_id)

    def by_status(self, status: str) -> str:
        return self._index("status", status)

    def _index(self, kind: str, value: str) -> str:
        tagged = f"{{{value}}}" if self.cluster else value
        return f"{self.prefix}:idx:{kind}:{tagged}"

    @staticmethod
    def index_guard(index_key: str) -> str:
        """The hash beside a cluster index: CIM id -> last revision applied, so a late older write is ignored."""
        return f"{index_key}:rev"

    def readiness(self) -> str:
        """The key /readyz writes to learn whether Redis takes writes (it expires by itself)."""
        return f"{self.prefix}:readyz"

    def presence(self, cim_id: str) -> str:
        return f"{self.prefix}:cim:{{{cim_id}}}:presence"

    def presence_expiry(self, cim_id: str) -> str:
        return f"{self.prefix}:cim:{{{cim_id}}}:presence:exp"

    def presence_channel(self, cim_id: str) -> str:
        """Sharded channel of one CIM's presence joins, updates and leaves (in the CIM's slot)."""
        return f"{self.prefix}:ch:presence:{{{cim_id}}}"

    def cim_channel(self, cim_id: str) -> str:
        """Sharded channel of each committed patch of one CIM: in the CIM's slot, so commit.lua can SPUBLISH it."""
        return f"{self.prefix}:ch:cim:{{{cim_id}}}"

    def deal_channel(self, deal_id: str) -> str:
        """Sharded channel carrying summary changes of a deal's CIM list (in the deal's own slot)."""
        return f"{self.prefix}:ch:deal:{{{deal_id}}}"

    def messages(self, cim_id: str) -> MessageKeys:
        base = f"{self.cim(cim_id)}:msg"
        return MessageKeys(f"{base}:meta", f"{base}:body", f"{base}:ids", f"{base}:vec", f"{base}:rows")

    def message_channel(self, cim_id: str) -> str:
        """Sharded channel carrying each message appended to one CIM's conversation (in the CIM's slot)."""
        return f"{self.prefix}:ch:msg:{{{cim_id}}}"

    @property
    def alive_channel(self) -> str:
        """The channel the broker always holds, so an idle pub/sub connection still notices a drop.

        On a Redis Cluster each primary's listener holds its own, tagged into a slot it owns
        (cimhub.server.hub.broker.alive_channel_for).
        """
        return f"{self.prefix}:ch:alive"
