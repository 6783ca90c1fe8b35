"""Enforcement: every subscribe, query and mutation passes through here.

The rule (the seed's §2, made strict): a user may read or change a CIM only
while they are a member of the project that owns the CIM's deal; `create`
also needs the deal to belong to the project it names. Whether a user may see
a deal is Supabase's to say, through an access backend (cimhub.server.auth),
whose answers are cached for a short TTL so a mutation does not cost a
Supabase round trip.

A user without access to a CIM is told `not_found`, exactly as for a CIM that
does not exist, so CIM ids cannot be probed. Deal-level refusals are
`access_denied`. A service credential with no user passes every check; a
service acting on behalf of a user is checked as that user.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any, Protocol, assert_never

from cimhub.protocol.errors import AccessDenied, NotFound
from cimhub.protocol.mutations import MutationSpec
from cimhub.server.store.cims import CimStore


class Caller(Protocol):
    """A verified identity (cimhub.server.auth.tokens.Identity)."""

    @property
    def user_id(self) -> str | None: ...

    @property
    def is_service(self) -> bool: ...


class AccessCheck(Protocol):
    """The access bridge: Supabase's answer, usually through a cache."""

    async def may_access_deal(self, user_id: str, deal_id: str) -> bool: ...

    async def deal_in_project(self, deal_id: str, project_id: str) -> bool: ...


class Authorizer:
    def __init__(self, access: AccessCheck, store: CimStore, *, cache_size: int = 100_000) -> None:
        self.access = access
        self.store = store
        # CIM id -> (deal, epoch). A guess, never the truth: the id can be deleted and created again
        # under another deal, or Redis can come back without the CIM. A CIM's deal is fixed for one
        # epoch (its epoch is new when it is created), so a read confirms the guess by the epoch
        # stored now (a few bytes, not the document), and a mutation by the document its commit
        # compare-and-sets (MutationEngine.run's `authorized_deal`).
        self._deal_of: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._cache_size = cache_size
        # Single flight: a reconnect storm of 1,000 subscribers to one CIM reads its deal once, not
        # 1,000 times at once (which exhausted the Redis pool and refused subscribes as "unreachable").
        self._reading: dict[str, asyncio.Future[str | None]] = {}

    def trusted(self, caller: Caller) -> bool:
        return caller.is_service and caller.user_id is None

    async def deal_of(self, cim_id: str, *, confirmed: bool = True) -> str | None:
        """The CIM's deal, None if there is no such CIM.

        `confirmed=False` answers from the cache when it can; only for a caller
        whose write Redis confirms anyway (a mutation passing `authorized_deal`).
        """
        if not confirmed:
            known = self._deal_of.get(cim_id)
            if known is not None:
                return known[0]
        reading = self._reading.get(cim_id)
        if reading is None:
            reading = asyncio.ensure_future(self._read_deal(cim_id))
            self._reading[cim_id] = reading
            reading.add_done_callback(lambda done: self._read_done(cim_id, done))
        # Shielded: one caller giving up (its connection closed) must not cancel the others' read.
        return await asyncio.shield(reading)

    async def _read_deal(self, cim_id: str) -> str | None:
        known = self._deal_of.get(cim_id)
        if known is not None:
            epoch = await self.store.epoch(cim_id)
            if epoch == known[1]:
                return known[0]
            self._deal_of.pop(cim_id, None)
            if epoch is None:
                return None
        stored = await self.store.load(cim_id)
        if stored is None:
            return None
        deal = str(stored.doc["dealId"])
        self._remember(cim_id, deal, stored.epoch)
        return deal

    async def _deals_of(self, cim_ids: list[str]) -> dict[str, str]:
        """The deal of each of `cim_ids` that exists, confirmed by one read of their epochs."""
        deals: dict[str, str] = {}
        for cim_id, epoch in zip(cim_ids, await self.store.epochs(cim_ids), strict=True):
            known = self._deal_of.get(cim_id)
            if epoch is not None and known is not None and known[1] == epoch:
                deals[cim_id] = known[0]
                continue
            self._deal_of.pop(cim_id, None)
            deal = None if epoch is None else await self.deal_of(cim_id)
            if deal is not None:
                deals[cim_id] = deal
        return deals

    def _read_done(self, cim_id: str, done: asyncio.Future[str | None]) -> None:
        if self._reading.get(cim_id) is done:
            del self._reading[cim_id]
        if not done.cancelled():
            done.exception()  # retrieved here: every waiter may have given up

    def forget(self, cim_id: str) -> None:
        """Drop a CIM's deal (deleted here, or its deal was found to have changed)."""
        self._deal_of.pop(cim_id, None)

    def _remember(self, cim_id: str, deal_id: str, epoch: str) -> None:
        self._deal_of[cim_id] = (deal_id, epoch)
        self._deal_of.move_to_end(cim_id)
        if len(self._deal_of) > self._cache_size:
            self._deal_of.popitem(last=False)

    async def may_see_deal(self, caller: Caller, deal_id: str) -> bool:
        if self.trusted(caller):
            return True
        if caller.user_id is None:
            return False
        return await self.access.may_access_deal(caller.user_id, deal_id)

    async def require_deal(self, caller: Caller, deal_id: str) -> None:
        if not await self.may_see_deal(caller, deal_id):
            raise AccessDenied(f"you are not a member of the project that owns deal {deal_id!r}", path="dealId")

    async def require_cim(self, caller: Caller, cim_id: str, *, confirmed: bool = True) -> str:
        """The CIM's deal, if the caller may see it; NotFound otherwise (existence is not revealed)."""
        deal = await self.deal_of(cim_id, confirmed=confirmed)
        if deal is not None and await self.may_see_deal(caller, deal):
            return deal
        if not confirmed:
            return await self.require_cim(caller, cim_id)  # refused on a guess: ask Redis before saying no
        raise NotFound(f"CIM {cim_id!r} not found", path="cimId")

    async def require_mutation(self, caller: Caller, spec: MutationSpec[Any], args: Any) -> str | None:
        """Check a mutation by the access rule its spec declares, before it runs (`args` passed validation).

        Returns the deal a `cim` rule was checked against (from the cache: the
        engine must confirm it, see MutationEngine.run), None when there is
        nothing to confirm.
        """
        if spec.access == "deal_in_project":
            await self._require_filing(caller, args.dealId, args.projectId)
        elif spec.access == "service":
            if not caller.is_service:
                raise AccessDenied(f"{spec.name} needs a service credential", path="name")
            # A service acting for a user is that user here too: it may file CIMs
            # only into deals the user can see, and only as that user.
            if not self.trusted(caller):
                if args.userId != caller.user_id:
                    raise AccessDenied("a service acting for a user imports only that user's CIMs", path="args.userId")
                await self._require_filing(caller, args.dealId, args.projectId)
        elif spec.access == "cim":
            deal = await self.require_cim(caller, args.cimId, confirmed=False)
            return None if self.trusted(caller) else deal
        else:
            assert_never(spec.access)
        return None

    async def _require_filing(self, caller: Caller, deal_id: str, project_id: str) -> None:
        """May `caller` file a CIM under this deal and project (the deal must belong to the project)?"""
        await self.require_deal(caller, deal_id)
        if not self.trusted(caller) and not await self.access.deal_in_project(deal_id, project_id):
            raise AccessDenied(f"deal {deal_id!r} does not belong to project {project_id!r}", path="args.projectId")

    async def visible(self, caller: Caller, cim_ids: list[str]) -> set[str]:
        """Those of `cim_ids` the caller may see now (by current access to each CIM's deal, not by ownership).

        One access check per distinct deal, one after another: a long list
        costs no more than `max_per_user` concurrent checks.
        """
        if self.trusted(caller):
            return set(cim_ids)
        allowed: dict[str, bool] = {}
        seen: set[str] = set()
        for cim_id, deal in (await self._deals_of(cim_ids)).items():
            if deal not in allowed:
                allowed[deal] = await self.may_see_deal(caller, deal)
            if allowed[deal]:
                seen.add(cim_id)
        return seen
