"""Ends live subscriptions whose access was revoked in Supabase.

Runs every `interval_s`; each check goes through the access cache, so
Supabase is asked again only once a decision is older than its TTL.
Revocation therefore takes effect within access_cache_ttl_s + access_recheck_s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from cimhub.protocol.errors import AccessDenied, CimhubError
from cimhub.protocol.frames import topic_parts
from cimhub.server.auth.authorizer import Authorizer
from cimhub.server.hub.connections import Connections

log = logging.getLogger("cimhub.auth.recheck")


class Subscriptions(Protocol):
    """What the re-check needs of the hub (cimhub.server.hub.hub.Hub)."""

    def end(self, connection: Any, topic_name: str, error: CimhubError) -> None: ...


class AccessRecheck:
    """A background task over every live session's topics; start() once, aclose() at shutdown."""

    def __init__(
        self, connections: Connections, authorizer: Authorizer, hub: Subscriptions, *, interval_s: float
    ) -> None:
        self.connections = connections
        self.authorizer = authorizer
        self.hub = hub
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cimhub-access-recheck")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.check_all()

    async def check_all(self) -> None:
        """One round: end every subscription whose user may no longer see its deal."""
        for session in list(self.connections.sessions):
            identity = session.identity
            if identity is None or self.authorizer.trusted(identity):
                continue
            for topic in list(session.topics):
                kind, ident = topic_parts(topic)
                try:
                    deal = ident if kind == "deal" else await self.authorizer.deal_of(ident)
                    allowed = deal is not None and await self.authorizer.may_see_deal(identity, deal)
                except CimhubError:
                    continue  # Supabase unreachable: keep what was allowed, ask again next round
                except Exception:
                    log.exception("access re-check failed")
                    continue
                if not allowed:
                    session.topics.pop(topic, None)
                    self.hub.end(session, topic, AccessDenied(f"access to {topic} was revoked"))
