"""Attacks on authorization: a service acting for a user, lists by ownership, revocation during an outage."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
from hubproc import HubProcess
from secworld import SERVICE_KEY, Gateway, Ledger, Signer, connect, error_code, production_hub

from pg import World

pytest_plugins = ["pg", "secworld"]


@pytest.fixture
def hub(
    redis_url: str, key_prefix: str, gateway: Gateway, pg_database_url: str, ledger: Ledger
) -> Iterator[HubProcess]:
    with production_hub(
        "postgres",
        redis_url=redis_url,
        key_prefix=key_prefix,
        gateway=gateway,
        database_url=pg_database_url,
        ledger=ledger,
    ) as running:
        yield running


def legacy_row(world: World, deal: str, project: str, user: str) -> dict[str, object]:
    return {
        "sourceId": f"legacy-{uuid.uuid4()}",
        "dealId": deal,
        "projectId": project,
        "userId": user,
        "title": "Imported",
    }


async def test_act_as_import_into_a_deal_the_user_cannot_see_is_refused(
    hub: HubProcess, world: World, ledger: Ledger
) -> None:
    tried = refused = 0
    async with connect(hub, SERVICE_KEY, act_as=world.bob) as service_as_bob:
        for row in (
            legacy_row(world, world.deal_a, world.project_a, world.bob),  # bob is not in project A
            legacy_row(world, world.deal_b, world.project_b, world.ana),  # bob's deal, but filed as ana
            legacy_row(world, world.deal_a, world.project_b, world.bob),  # deal A under project B
        ):
            answer = await service_as_bob.mutate("importFromSupabase", row)
            tried += 1
            refused += error_code(answer) == "access_denied"
        # What bob may do, he may do through the service.
        ok = await service_as_bob.mutate(
            "importFromSupabase", legacy_row(world, world.deal_b, world.project_b, world.bob)
        )
        assert ok["type"] == "result", ok
        # And every other operation is checked as bob too.
        async with connect(hub, SERVICE_KEY, act_as=world.ana) as service_as_ana:
            cim_a = (
                await service_as_ana.mutate(
                    "create", {"dealId": world.deal_a, "projectId": world.project_a, "title": "A"}
                )
            )["cimId"]
        for frame in (
            {"type": "subscribe", "topic": f"cim:{cim_a}"},
            {"type": "subscribe", "topic": f"deal:{world.deal_a}"},
            {"type": "query", "name": "get", "args": {"cimId": cim_a}},
            {"type": "mutate", "name": "updateState", "args": {"cimId": cim_a, "title": "x"}, "mutationId": "m-x"},
        ):
            tried += 1
            refused += error_code(await service_as_bob.request(dict(frame))) in ("not_found", "access_denied")
    # Over HTTP with X-Cimhub-Act-As as well.
    async with httpx.AsyncClient(base_url=hub.url, timeout=10) as http:
        response = await http.post(
            "/v1/mutate",
            headers={"authorization": f"Bearer {SERVICE_KEY}", "x-cimhub-act-as": world.bob},
            json={
                "name": "importFromSupabase",
                "mutationId": "imp-1",
                "args": legacy_row(world, world.deal_a, world.project_a, world.bob),
            },
        )
        tried += 1
        refused += response.status_code == 403
    assert refused == tried
    ledger.record("actAs beyond the user's access", tried=tried, refused=refused)


async def test_list_by_user_leaves_out_own_cims_in_deals_the_user_lost(
    hub: HubProcess, world: World, signer: Signer, ledger: Ledger
) -> None:
    async with connect(hub, signer.token(world.ana)) as ana:
        made = await ana.mutate("create", {"dealId": world.deal_a, "projectId": world.project_a, "title": "Secret"})
        listed = await ana.request({"type": "query", "name": "listByUser", "args": {"userId": world.ana}})
        assert [item["id"] for item in listed["result"]["items"]] == [made["cimId"]]
    await world.execute("delete from project_members where user_id = %s", world.ana)
    await asyncio.sleep(1.0)  # past the access cache TTL
    async with connect(hub, signer.token(world.ana)) as ana:
        listed = await ana.request({"type": "query", "name": "listByUser", "args": {"userId": world.ana}})
    assert listed["type"] == "result" and listed["result"]["items"] == [], listed
    ledger.record("listByUser after losing the deal", tried=1, refused=1)


async def test_live_subscriptions_end_when_access_cannot_be_checked(
    redis_url: str,
    key_prefix: str,
    gateway: Gateway,
    pg_database_url: str,
    ledger: Ledger,
    signer: Signer,
    world: World,
) -> None:
    """The access backend goes down: live subscriptions end after the grace; new ones are retryable unavailable."""
    with production_hub(
        "supabase",
        redis_url=redis_url,
        key_prefix=key_prefix,
        gateway=gateway,
        database_url=pg_database_url,
        ledger=ledger,
        access_outage_grace_s=1.0,
    ) as hub:
        async with connect(hub, signer.token(world.ana)) as ana:
            made = await ana.mutate("create", {"dealId": world.deal_a, "projectId": world.project_a, "title": "T"})
            topic = f"cim:{made['cimId']}"
            snapshot = await ana.request({"type": "subscribe", "topic": topic})
            assert snapshot["type"] == "snapshot", snapshot
            gateway.control(rest=503)  # PostgREST unreachable behind the gateway
            try:
                # TTL 0.5 s + grace 1 s + re-check 0.5 s, bounded generously.
                ended = await ana.expect(timeout=15, type="unsubscribed", topic=topic)
                assert ended["error"]["code"] == "unavailable" and ended["error"]["retryable"] is True
                again = await ana.request({"type": "subscribe", "topic": f"deal:{world.deal_a}"})
                assert error_code(again) == "unavailable" and again["error"]["retryable"] is True
            finally:
                gateway.control(rest="ok")
            back = await ana.request({"type": "subscribe", "topic": topic})
            assert back["type"] == "snapshot", back
    ledger.record("revoked user kept live during an access outage", tried=2, refused=2)
