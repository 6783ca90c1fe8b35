"""Ends live subscriptions whose access was revoked in Supabase.

Runs every `interval_s`; each check goes through the access cache, so
Supabase is asked again only once a decision is older than its TTL.
Revocation therefore takes effect within access_cache_ttl_s + access_recheck_s.

Fail closed: while a subscription's access cannot be checked (the access
backend is down or refuses to answer), it lives on for `outage_grace_s` from
the first failed check, then ends with a retryable ``unavailable`` (the
client subscribes again, which is refused as ``unavailable`` until the
backend answers). So a user revoked during an outage stops receiving within
access_cache_ttl_s + outage_grace_s + access_recheck_s.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from cimhub.protocol.errors import AccessDenied, CimhubError, Unavailable
from cimhub.protocol.frames import topic_parts
from cimhub.server.auth.authorizer import Authorizer
from cimhub.server.faults import FaultLog, client_error
from cimhub.server.hub.connections import Connections


class Subscriptions(Protocol):
    """What the re-check needs of the hub (cimhub.server.hub.hub.Hub)."""

    def end(self, connection: Any, topic_name: str, error: CimhubError) -> None: ...


class Presences(Protocol):
    """What the re-check needs of presence (cimhub.server.hub.presence_tracker.PresenceTracker)."""

    def cims_of(self, connection: Any) -> list[str]: ...

    async def leave(self, connection: Any, cim_id: str) -> None: ...


class AccessRecheck:
    """A background task over every live session's topics; start() once, aclose() at shutdown."""

    def __init__(
        self,
        connections: Connections,
        authorizer: Authorizer,
        hub: Subscriptions,
        *,
        interval_s: float,
        outage_grace_s: float = 30.0,
        presence: Presences | None = None,
        faults: FaultLog | None = None,
    ) -> None:
        self.connections = connections
        self.faults = faults or FaultLog()
        self.presence = presence
        self.authorizer = authorizer
        self.hub = hub
        self.interval_s = interval_s
        self.outage_grace_s = outage_grace_s
        self._task: asyncio.Task[None] | None = None
        self._unsure_since: dict[tuple[int, str], float] = {}  # (session, topic) -> first failed check

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cimhub-access-recheck")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            # wait(), not suppress(CancelledError): a cancel of aclose itself must still propagate.
            await asyncio.wait([self._task])

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.check_all()

    async def check_all(self) -> None:
        """One round: end every subscription whose user may no longer see its deal, or unconfirmed past the grace."""
        unsure: dict[tuple[int, str], float] = {}
        for session in list(self.connections.sessions):
            identity = session.identity
            if identity is None or self.authorizer.trusted(identity):
                continue
            for topic in list(session.topics):
                kind, ident = topic_parts(topic)
                try:
                    allowed = await self._allowed(identity, kind, ident)
                except Exception as exc:  # noqa: BLE001 - any failure to confirm counts against the grace
                    # Redis down is logged once per episode (not every interval); anything else with its traceback.
                    client_error(exc, "re-checking access", self.faults)
                    key = (id(session), topic)
                    since = unsure[key] = self._unsure_since.get(key, time.monotonic())
                    if time.monotonic() - since >= self.outage_grace_s:
                        session.topics.pop(topic, None)
                        self.hub.end(
                            session,
                            topic,
                            Unavailable(
                                f"access to {topic} could not be confirmed for {self.outage_grace_s:g} s; "
                                "subscribe again"
                            ),
                        )
                    continue
                if not allowed:
                    session.topics.pop(topic, None)
                    self.hub.end(session, topic, AccessDenied(f"access to {topic} was revoked"))
            await self._check_presence(session, identity)
        self._unsure_since = unsure

    async def _check_presence(self, session: Any, identity: Any) -> None:
        """A user who may no longer see a CIM is no longer shown on it either (others would see them there)."""
        if self.presence is None:
            return
        for cim_id in self.presence.cims_of(session):
            try:
                allowed = await self._allowed(identity, "cim", cim_id)
            except Exception:  # noqa: BLE001 - unconfirmed: the member stays until a check answers
                continue
            if not allowed:
                await self.presence.leave(session, cim_id)

    async def _allowed(self, identity: Any, kind: str, ident: str) -> bool:
        """May `identity` still see the deal of `kind:ident` (a deal, or a CIM's remembered deal)?

        The remembered deal, unconfirmed: a live subscription meeting a new epoch of its CIM is
        admitted again by the hub (Hub.readmit), so a round needs no Redis read per topic.
        """
        deal = ident if kind == "deal" else await self.authorizer.deal_of(ident, confirmed=False)
        return deal is not None and await self.authorizer.may_see_deal(identity, deal)
