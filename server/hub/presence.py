"""Presence in Redis, and the ``presence:<cimId>`` feed that streams it.

Each CIM's members live in two keys of the CIM's slot (cimhub.server.store.keys):
a hash of member JSON and a sorted set of expiry times. Every change is one Lua
script (server/hub/lua/presence_*.lua) that also publishes the change on the
CIM's presence channel, so hub processes learn of it through the broker like
any other topic.

Guarantees:

* **Expiry.** A member lives `ttl_ms` after its hub last refreshed it (Redis's
  clock, not the hubs'). Expired members are removed, and their ``leave``
  published exactly once, by the next sweep: every hub with watchers of the CIM
  sweeps every third of the TTL, and every snapshot sweeps first. Both keys
  also expire by themselves 2 x TTL after the last write or refresh.
* **Bounded.** At most `max_per_cim` live members per CIM; a join beyond that
  is refused (`overloaded`, retryable).
* **Not sequenced.** Presence has no revisions: a subscriber that lost its
  place takes a fresh snapshot, and a join or leave that raced the snapshot is
  filtered like a deal list's rows (`PresenceFeed.accept`).
"""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

from cimhub.protocol.errors import CimhubError, ErrorCode
from cimhub.protocol.frames import PatchOut
from cimhub.protocol.presence import change_entry
from cimhub.server.hub.feeds import Entry, Snapshot, patch_frame
from cimhub.server.lua import load_script
from cimhub.server.store.cims import CimStore
from cimhub.server.store.keys import Keys

PACKAGE = "cimhub.server.hub"


class PresenceStore:
    """The presence scripts of one process. Holds no state of its own."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, *, ttl_ms: int, max_per_cim: int) -> None:
        self.keys = keys
        self.ttl_ms = ttl_ms
        self.max_per_cim = max_per_cim
        self._set = load_script(redis, PACKAGE, "presence_set")
        self._leave = load_script(redis, PACKAGE, "presence_leave")
        self._refresh = load_script(redis, PACKAGE, "presence_refresh")
        self._sweep = load_script(redis, PACKAGE, "presence_sweep")

    def _keys(self, cim_id: str) -> list[str]:
        return [self.keys.presence(cim_id), self.keys.presence_expiry(cim_id)]

    async def set(self, cim_id: str, presence_id: str, member_json: bytes) -> str:
        """Join or update; returns "join", "update" or "same". Raises `overloaded` when the CIM is full."""
        outcome = await self._set(
            keys=self._keys(cim_id),
            args=[presence_id, member_json, self.ttl_ms, self.max_per_cim, self.keys.presence_channel(cim_id)],
        )
        kind = outcome.decode() if isinstance(outcome, bytes) else str(outcome)
        if kind == "full":
            raise CimhubError(
                f"CIM {cim_id!r} already has {self.max_per_cim} people and agents present; try again later",
                code=ErrorCode.OVERLOADED,
            )
        return kind

    async def leave(self, cim_id: str, presence_id: str) -> bool:
        """Remove one member and publish its leave; False if it was not there (already swept)."""
        return bool(await self._leave(keys=self._keys(cim_id), args=[presence_id, self.keys.presence_channel(cim_id)]))

    async def refresh(self, cim_id: str, presence_ids: list[str]) -> list[str]:
        """Push the expiry of these members out by the TTL; returns those already gone."""
        missing = await self._refresh(keys=self._keys(cim_id), args=[self.ttl_ms, *presence_ids])
        return [m.decode() for m in missing]

    async def sweep(self, cim_id: str) -> int:
        """Remove expired members, publishing each one's leave; how many were removed."""
        return int(await self._sweep(keys=self._keys(cim_id), args=[self.keys.presence_channel(cim_id), "0"]))

    async def members(self, cim_id: str) -> dict[str, Any]:
        """The live members after a sweep: ``{presenceId: member}``."""
        flat = await self._sweep(keys=self._keys(cim_id), args=[self.keys.presence_channel(cim_id), "1"])
        return {flat[i].decode(): orjson.loads(flat[i + 1]) for i in range(0, len(flat), 2)}


class PresenceFeed:
    """The ``presence:<cimId>`` topic: the members map, then one patch per join, update or leave."""

    kind = "presence"
    sequenced = False

    def __init__(self, presence: PresenceStore, store: CimStore, keys: Keys) -> None:
        self.presence = presence
        self.store = store
        self.keys = keys

    def channel(self, ident: str) -> str:
        return self.keys.presence_channel(ident)

    async def snapshot(self, ident: str) -> Snapshot | None:
        if not await self.store.exists(ident):
            return None
        return Snapshot(0, "", await self.presence.members(ident))

    async def since(self, ident: str, revision: int, epoch: str) -> list[Entry] | None:
        return None

    def decode(self, data: bytes) -> Entry:
        return change_entry(orjson.loads(data))

    def frame(self, topic: str, entry: Entry) -> PatchOut:
        return patch_frame(topic, entry)

    def accept(self, seen: set[str], entry: Entry) -> bool:
        """Skip the leave of a member the subscriber never had (it left before the snapshot)."""
        presence_id = entry["presenceId"]
        if entry["mutation"] == "leave":
            if presence_id not in seen:
                return False
            seen.discard(presence_id)
        else:
            seen.add(presence_id)
        return True
