"""This process's side of presence: its connections' members, kept alive by a heartbeat.

A connection joins a CIM's presence with a ``presence`` frame; the tracker
gives it a presence id, writes it through `PresenceStore` and remembers it, so
that a heartbeat every third of the TTL refreshes it and the connection's close
removes it at once. If this process dies, nobody refreshes its members and they
expire: the sweeps of the hubs still running (the tracker sweeps every CIM
whose presence this process's connections watch) publish their leaves.

Bound (docs/presence.md): a member of a dead hub is gone, and its leave
published, within TTL + TTL/3 of the crash, provided some hub watches that CIM;
otherwise the next snapshot sweeps it and its keys expire after 2 x TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from cimhub.protocol.errors import CimhubError, ErrorCode
from cimhub.protocol.presence import member
from cimhub.server.hub.presence import PresenceStore

log = logging.getLogger("cimhub.presence")


@dataclass
class Local:
    """One of this process's members: which id it has and what was last written."""

    presence_id: str
    member_json: bytes


class PresenceTracker:
    """Presence of this process's connections. start() once after construction, aclose() at shutdown."""

    def __init__(
        self,
        store: PresenceStore,
        *,
        watched: Callable[[], Iterable[str]],
        max_per_connection: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`watched` lists the CIM ids whose presence this process's connections subscribe to."""
        self.store = store
        self.watched = watched
        self.max_per_connection = max_per_connection
        self.clock = clock
        self.interval_s = store.ttl_ms / 3000
        self._entries: dict[str, dict[Any, Local]] = {}
        self._by_connection: dict[Any, set[str]] = {}
        self._locks: dict[Any, asyncio.Lock] = {}
        self._task: asyncio.Task[None] | None = None

    async def set(
        self, connection: Any, cim_id: str, *, user_id: str | None, actor: str, state: dict[str, Any] | None
    ) -> str | None:
        """Join, update (`state`) or leave (`state` None) `cim_id` for `connection`; its presence id, or None."""
        lock = self._locks.setdefault(connection, asyncio.Lock())
        async with lock:
            local = self._entries.get(cim_id, {}).get(connection)
            if state is None:
                if local is not None:
                    self._forget(connection, cim_id)
                    await self.store.leave(cim_id, local.presence_id)
                return None
            if local is None:
                if len(self._by_connection.get(connection, ())) >= self.max_per_connection:
                    raise CimhubError(
                        f"a connection may be present on at most {self.max_per_connection} CIMs",
                        code=ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                        path="cimId",
                    )
                presence_id, since = secrets.token_hex(8), int(self.clock() * 1000)
            else:
                presence_id, since = local.presence_id, orjson.loads(local.member_json)["since"]
            member_json = orjson.dumps(member(presence_id, user_id, actor, state, since))
            await self.store.set(cim_id, presence_id, member_json)
            self._entries.setdefault(cim_id, {})[connection] = Local(presence_id, member_json)
            self._by_connection.setdefault(connection, set()).add(cim_id)
            return presence_id

    def cims_of(self, connection: Any) -> list[str]:
        """The CIMs `connection` is present on."""
        return list(self._by_connection.get(connection, ()))

    async def leave(self, connection: Any, cim_id: str) -> None:
        """`connection` leaves `cim_id` (its access was revoked); others see it go."""
        await self.set(connection, cim_id, user_id=None, actor="", state=None)

    async def drop(self, connection: Any) -> None:
        """The connection closed: its members leave now (if Redis is unreachable, they expire instead)."""
        lock = self._locks.setdefault(connection, asyncio.Lock())
        async with lock:
            for cim_id in list(self._by_connection.get(connection, ())):
                local = self._forget(connection, cim_id)
                with contextlib.suppress(Exception):
                    await self.store.leave(cim_id, local.presence_id)
        self._locks.pop(connection, None)

    def _forget(self, connection: Any, cim_id: str) -> Local:
        members = self._entries[cim_id]
        local = members.pop(connection)
        if not members:
            del self._entries[cim_id]
        cims = self._by_connection[connection]
        cims.discard(cim_id)
        if not cims:
            del self._by_connection[connection]
        return local

    def start(self) -> None:
        self._task = asyncio.create_task(self._beat(), name="cimhub-presence")

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.beat_once()
            except Exception as exc:  # noqa: BLE001 - Redis trouble: members expire; try again next beat
                log.warning("presence heartbeat failed: %s: %s", type(exc).__name__, exc)

    async def beat_once(self) -> None:
        """Refresh this process's members (re-joining any swept while it stalled), then sweep watched CIMs."""
        for cim_id, members in list(self._entries.items()):
            locals_ = list(members.values())
            missing = set(await self.store.refresh(cim_id, [m.presence_id for m in locals_]))
            for local in locals_:
                if local.presence_id in missing:
                    with contextlib.suppress(CimhubError):  # a full CIM: it stays out until the client sets it again
                        await self.store.set(cim_id, local.presence_id, local.member_json)
        for cim_id in set(self.watched()):
            await self.store.sweep(cim_id)

    async def aclose(self) -> None:
        """Stop the heartbeat; this process's members leave (a graceful shutdown, not a crash)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for connection in list(self._by_connection):
            await self.drop(connection)
