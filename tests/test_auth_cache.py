"""CachedAccess over a scripted backend: TTLs, single flight, invalidation; and access_from_settings."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support.clock import Clock
from support.waiting import eventually

from cimhub.protocol.errors import CimhubError, ErrorCode, Unavailable
from cimhub.server.auth.access import CachedAccess, DevAccess, access_from_settings
from cimhub.server.auth.postgres_access import PostgresAccess
from cimhub.server.auth.supabase_access import SupabaseAccess
from cimhub.server.settings import Settings


class ScriptedBackend:
    """Members in a set; counts calls; can be made to block or fail."""

    def __init__(self) -> None:
        self.members: set[tuple[str, str]] = set()
        self.projects: dict[str, str] = {}
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.error: Exception | None = None
        self.closed = False

    async def may_access_deal(self, user_id: str, deal_id: str) -> bool:
        self.calls += 1
        answer = (user_id, deal_id) in self.members  # read when asked, returned when the gate opens
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return answer

    async def deal_in_project(self, deal_id: str, project_id: str) -> bool:
        self.calls += 1
        return self.projects.get(deal_id) == project_id

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture
def access(backend: ScriptedBackend, clock: Clock) -> CachedAccess:
    return CachedAccess(backend, ttl_s=30, denied_ttl_s=5, clock=clock)


async def test_grants_are_kept_for_the_ttl(access: CachedAccess, backend: ScriptedBackend, clock: Clock) -> None:
    backend.members.add(("ana", "deal-1"))
    assert await access.may_access_deal("ana", "deal-1")
    assert access.decision_expires_at("ana", "deal-1") == clock.now + 30
    backend.members.clear()  # revoked in Supabase
    clock.now += 29
    assert await access.may_access_deal("ana", "deal-1")  # still cached
    clock.now += 2
    assert not await access.may_access_deal("ana", "deal-1")
    assert backend.calls == 2


async def test_denials_are_kept_for_the_shorter_ttl(
    access: CachedAccess, backend: ScriptedBackend, clock: Clock
) -> None:
    assert not await access.may_access_deal("ana", "deal-1")
    assert access.decision_expires_at("ana", "deal-1") == clock.now + 5
    backend.members.add(("ana", "deal-1"))
    clock.now += 6
    assert await access.may_access_deal("ana", "deal-1")


async def test_deal_in_project_is_cached_apart_from_membership(access: CachedAccess, backend: ScriptedBackend) -> None:
    backend.projects["deal-1"] = "project-a"
    assert await access.deal_in_project("deal-1", "project-a")
    assert not await access.deal_in_project("deal-1", "project-b")
    assert await access.deal_in_project("deal-1", "project-a")
    assert backend.calls == 2
    assert access.decision_expires_at("deal-1", "project-a") is None  # only (user, deal) decisions


async def test_concurrent_identical_checks_share_one_call(access: CachedAccess, backend: ScriptedBackend) -> None:
    backend.members.add(("ana", "deal-1"))
    backend.gate = asyncio.Event()
    checks = [asyncio.create_task(access.may_access_deal("ana", "deal-1")) for _ in range(50)]
    other = asyncio.create_task(access.may_access_deal("bob", "deal-1"))
    await asyncio.sleep(0)
    backend.gate.set()
    assert all(await asyncio.gather(*checks))
    assert not await other
    assert backend.calls == 2


async def test_errors_reach_every_waiter_and_are_not_cached(access: CachedAccess, backend: ScriptedBackend) -> None:
    backend.gate = asyncio.Event()
    backend.error = Unavailable("Supabase is down")
    checks = [asyncio.create_task(access.may_access_deal("ana", "deal-1")) for _ in range(3)]
    await asyncio.sleep(0)
    backend.gate.set()
    results = await asyncio.gather(*checks, return_exceptions=True)
    assert all(isinstance(r, Unavailable) for r in results)
    assert access.decision_expires_at("ana", "deal-1") is None
    backend.error = None
    backend.members.add(("ana", "deal-1"))
    assert await access.may_access_deal("ana", "deal-1")
    assert backend.calls == 2


async def test_a_cancelled_caller_does_not_cancel_the_shared_call(
    access: CachedAccess, backend: ScriptedBackend
) -> None:
    backend.members.add(("ana", "deal-1"))
    backend.gate = asyncio.Event()
    first = asyncio.create_task(access.may_access_deal("ana", "deal-1"))
    second = asyncio.create_task(access.may_access_deal("ana", "deal-1"))
    await asyncio.sleep(0)
    first.cancel()
    backend.gate.set()
    assert await second
    assert first.cancelled()
    assert backend.calls == 1


async def test_invalidate_forgets_matching_answers(access: CachedAccess, backend: ScriptedBackend) -> None:
    backend.members |= {("ana", "deal-1"), ("ana", "deal-2"), ("bob", "deal-1")}
    backend.projects["deal-1"] = "project-a"
    for user, deal in backend.members:
        await access.may_access_deal(user, deal)
    await access.deal_in_project("deal-1", "project-a")
    backend.members.discard(("ana", "deal-1"))

    access.invalidate(user_id="ana", deal_id="deal-1")
    assert access.decision_expires_at("ana", "deal-1") is None
    assert access.decision_expires_at("ana", "deal-2") is not None
    assert not await access.may_access_deal("ana", "deal-1")

    access.invalidate(deal_id="deal-1")
    assert access.decision_expires_at("bob", "deal-1") is None
    assert access.decision_expires_at("ana", "deal-2") is not None
    calls = backend.calls
    await access.deal_in_project("deal-1", "project-a")
    assert backend.calls == calls + 1  # the deal's project answer went too

    access.invalidate(user_id="ana")
    assert access.decision_expires_at("ana", "deal-2") is None
    access.invalidate()
    calls = backend.calls
    await access.may_access_deal("bob", "deal-1")
    assert backend.calls == calls + 1


async def test_an_answer_in_flight_during_invalidate_is_not_cached(
    access: CachedAccess, backend: ScriptedBackend
) -> None:
    backend.members.add(("ana", "deal-1"))
    backend.gate = asyncio.Event()
    before = asyncio.create_task(access.may_access_deal("ana", "deal-1"))
    await eventually(lambda: backend.calls >= 1, what="the first check reached the backend")
    backend.members.clear()
    access.invalidate(user_id="ana")  # membership revoked while the check was running
    after = asyncio.create_task(access.may_access_deal("ana", "deal-1"))
    await eventually(lambda: backend.calls >= 2, what="the second check reached the backend")
    backend.gate.set()
    assert await before  # asked before the revocation
    assert not await after  # a fresh call, not the old one's answer
    assert backend.calls == 2
    assert not await access.may_access_deal("ana", "deal-1")
    assert backend.calls == 2


async def test_the_cache_is_bounded(backend: ScriptedBackend, clock: Clock) -> None:
    access = CachedAccess(backend, max_entries=3, clock=clock)
    for n in range(5):
        await access.may_access_deal("ana", f"deal-{n}")
    assert [access.decision_expires_at("ana", f"deal-{n}") is not None for n in range(5)] == [
        False,
        False,
        True,
        True,
        True,
    ]


async def test_aclose_closes_the_backend(access: CachedAccess, backend: ScriptedBackend) -> None:
    await access.aclose()
    assert backend.closed


async def test_dev_access_allows_everything() -> None:
    dev = DevAccess()
    assert await dev.may_access_deal("anyone", "any-deal")
    assert await dev.deal_in_project("any-deal", "any-project")


@pytest.mark.parametrize(
    ("settings", "backend_type"),
    [
        (Settings(dev_mode=True), DevAccess),
        (Settings(database_url="postgresql://hub@127.0.0.1:1/db"), PostgresAccess),
        (
            Settings(supabase_url="https://abcdefgh.supabase.co", supabase_service_key="sb_secret_x"),
            SupabaseAccess,
        ),
        (
            Settings(dev_mode=True, database_url="postgresql://hub@127.0.0.1:1/db", access_cache_ttl_s=7),
            PostgresAccess,
        ),
    ],
)
async def test_access_from_settings(settings: Settings, backend_type: type) -> None:
    access = access_from_settings(settings)
    assert isinstance(access.backend, backend_type)
    await access.aclose()


def test_access_from_settings_needs_a_backend() -> None:
    with pytest.raises(ValueError, match="no access backend"):
        access_from_settings(Settings(supabase_url="https://abcdefgh.supabase.co"))


# -- bounded load on the source of truth ------------------------------------------


async def test_one_user_flooding_distinct_checks_is_capped_and_others_still_get_answers(
    backend: ScriptedBackend, clock: Clock
) -> None:
    access = CachedAccess(backend, max_per_user=4, max_concurrency=8, clock=clock)
    backend.gate = asyncio.Event()  # the source is slow: nothing answers until the gate opens
    backend.members.add(("ana", "deal-a"))
    flood = [asyncio.create_task(access.may_access_deal("mallory", f"deal-{n}")) for n in range(100)]
    await asyncio.sleep(0)
    ana = asyncio.create_task(access.may_access_deal("ana", "deal-a"))
    await asyncio.sleep(0.01)
    refused = [t for t in flood if t.done() and isinstance(t.exception(), CimhubError)]
    assert len(refused) == 96 and all(t.exception().code is ErrorCode.RATE_LIMITED for t in refused)  # type: ignore[union-attr]
    assert backend.calls == 5  # mallory's 4 and ana's 1 reached the source
    backend.gate.set()
    assert await ana is True
    await asyncio.gather(*flood, return_exceptions=True)


async def test_checks_waiting_past_the_queue_timeout_are_unavailable_and_free_no_slot_twice(
    backend: ScriptedBackend, clock: Clock
) -> None:
    access = CachedAccess(backend, max_per_user=10, max_concurrency=1, queue_timeout_s=0.05, clock=clock)
    backend.gate = asyncio.Event()
    first = asyncio.create_task(access.may_access_deal("ana", "deal-1"))
    await asyncio.sleep(0)
    with pytest.raises(Unavailable) as caught:
        await access.may_access_deal("bob", "deal-2")
    assert caught.value.retryable
    backend.gate.set()
    assert await first is False
    backend.gate = None
    backend.members.add(("bob", "deal-2"))
    assert await access.may_access_deal("bob", "deal-2")  # the slot came back exactly once


async def test_identical_checks_from_a_flood_share_one_call(backend: ScriptedBackend, clock: Clock) -> None:
    access = CachedAccess(backend, max_per_user=1, clock=clock)
    backend.gate = asyncio.Event()
    waiters = [asyncio.create_task(access.may_access_deal("ana", "deal-1")) for _ in range(50)]
    await asyncio.sleep(0)
    backend.gate.set()
    assert await asyncio.gather(*waiters) == [False] * 50
    assert backend.calls == 1


class CountingStore:
    """A CimStore's reads of a CIM's deal, counted: `deals` holds cim id -> (deal, epoch) as Redis has it."""

    def __init__(self, deals: dict[str, tuple[str, str]]) -> None:
        self.deals = deals
        self.loads = 0
        self.epoch_reads = 0

    async def load(self, cim_id: str) -> Any:
        from cimhub.server.store.cims import StoredCim

        self.loads += 1
        await asyncio.sleep(0.01)
        if cim_id not in self.deals:
            return None
        deal, epoch = self.deals[cim_id]
        return StoredCim({"dealId": deal}, 1, epoch, "c")

    async def epoch(self, cim_id: str) -> str | None:
        self.epoch_reads += 1
        return self.deals[cim_id][1] if cim_id in self.deals else None

    async def epochs(self, cim_ids: list[str]) -> list[str | None]:
        self.epoch_reads += 1
        return [self.deals[c][1] if c in self.deals else None for c in cim_ids]


def authorizer_over(store: CountingStore) -> Any:
    from cimhub.server.auth.access import DevAccess
    from cimhub.server.auth.authorizer import Authorizer

    return Authorizer(DevAccess(), store)  # type: ignore[arg-type]


async def test_concurrent_reads_of_one_cims_deal_share_one_redis_read() -> None:
    """A reconnect storm: 500 subscribes to one CIM read its deal once, not 500 times at once."""
    store = CountingStore({"cim-1": ("d1", "e1")})
    authorizer = authorizer_over(store)
    deals = await asyncio.gather(*(authorizer.deal_of("cim-1") for _ in range(500)))
    assert set(deals) == {"d1"} and store.loads == 1
    assert await authorizer.deal_of("cim-1") == "d1" and store.loads == 1  # remembered now


async def test_a_remembered_deal_is_confirmed_by_the_epoch_not_the_document() -> None:
    store = CountingStore({"cim-1": ("d1", "e1")})
    authorizer = authorizer_over(store)
    await authorizer.deal_of("cim-1")
    assert await authorizer.deal_of("cim-1") == "d1"
    assert (store.loads, store.epoch_reads) == (1, 1)  # a few bytes read, not the document


async def test_a_cim_created_again_under_another_deal_is_read_again() -> None:
    store = CountingStore({"cim-1": ("d1", "e1")})
    authorizer = authorizer_over(store)
    assert await authorizer.deal_of("cim-1") == "d1"
    store.deals["cim-1"] = ("d2", "e2")  # deleted, or Redis lost it, and the same create made it again
    assert await authorizer.deal_of("cim-1") == "d2"
    assert store.loads == 2


async def test_a_cim_redis_no_longer_has_is_not_found_and_forgotten() -> None:
    store = CountingStore({"cim-1": ("d1", "e1")})
    authorizer = authorizer_over(store)
    await authorizer.deal_of("cim-1")
    del store.deals["cim-1"]
    assert await authorizer.deal_of("cim-1") is None
    assert await authorizer.deal_of("cim-1", confirmed=False) is None and store.loads == 2  # nothing left to guess from


async def test_an_unconfirmed_deal_is_answered_without_a_read() -> None:
    """What a mutation uses: the engine's compare-and-set confirms the deal of the document it commits."""
    store = CountingStore({"cim-1": ("d1", "e1")})
    authorizer = authorizer_over(store)
    await authorizer.deal_of("cim-1")
    store.deals["cim-1"] = ("d2", "e2")
    assert await authorizer.deal_of("cim-1", confirmed=False) == "d1"
    assert (store.loads, store.epoch_reads) == (1, 0)


async def test_a_list_is_confirmed_in_one_read_of_epochs() -> None:
    from cimhub.server.auth.tokens import Identity

    store = CountingStore({f"cim-{i}": ("d1", "e1") for i in range(20)})
    authorizer = authorizer_over(store)
    caller = Identity(user_id="ana", role="authenticated", is_service=False)
    assert len(await authorizer.visible(caller, [f"cim-{i}" for i in range(20)])) == 20
    loads, reads = store.loads, store.epoch_reads
    store.deals["cim-3"] = ("d2", "e9")
    del store.deals["cim-4"]
    assert len(await authorizer.visible(caller, [f"cim-{i}" for i in range(20)])) == 19
    assert store.loads - loads == 1  # only the CIM whose epoch changed is read again
    assert store.epoch_reads - reads == 1  # the whole list's epochs in one read
