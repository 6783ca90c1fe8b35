"""Auth at the hub level: a real hub (uvicorn on a loopback port) with real Postgres access checks.

The hub runs in-process, wired the way production wires it from settings:
Supabase-style HS256 tokens (``iss`` = ``<supabase_url>/auth/v1``) checked by
TokenVerifier, and membership answered by PostgresAccess (behind CachedAccess)
against the shipped schema (server/sql/001_cimhub_access.sql). Clients are raw
``websockets`` sockets and httpx. Short cache TTLs and re-check interval keep
the revocation and expiry tests to a few seconds each.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import OctKey
from postgrest.exceptions import APIError
from support import wire
from support.wire import RawClient
from websockets.exceptions import InvalidStatus

from cimhub.clients import migrate
from cimhub.protocol.close import CloseCode
from cimhub.protocol.mutations import imported_cim_id
from cimhub.server.app import create_app
from cimhub.server.embedded import free_port
from cimhub.server.settings import Settings
from pg import POSTGREST_JWT_SECRET, SQL_DIR, PostgrestServer, RestPrefixTransport, World

pytest_plugins = ["pg"]

SUPABASE_URL = "http://supabase.test"
JWT_SECRET = "cimhub-test-supabase-jwt-secret-at-least-32-chars"
SERVICE_KEY = "cimhub_sk_" + "k" * 40
ALLOWED_ORIGIN = "https://app.example"
TTL_S = 0.5
RECHECK_S = 0.5


def mint(user_id: str, *, ttl_s: float = 3600, **extra: Any) -> str:
    """A Supabase Auth access token for `user_id`, signed with the project's shared secret."""
    now = int(time.time())
    claims = {
        **extra,
        "iss": SUPABASE_URL + "/auth/v1",
        "aud": "authenticated",
        "role": "authenticated",
        "sub": user_id,
        "iat": now,
        "exp": int(now + ttl_s),
    }
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(JWT_SECRET), algorithms=["HS256"])


# -- the world: two projects, a deal in each; ana is in A, bob in B ------------------


# -- the hub, in-process on a free port ---------------------------------------------


@dataclass
class Hub:
    url: str
    ws_url: str
    settings: Settings


@contextlib.asynccontextmanager
async def running_hub(settings: Settings, redis_url: str) -> AsyncIterator[Hub]:
    """Serve create_app(settings) with uvicorn on a loopback port for the duration of the block."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, redis_url=redis_url),
        host="127.0.0.1",
        port=port,
        ws_ping_interval=None,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(15):
            while not server.started:
                if task.done():
                    task.result()  # raises what stopped the hub
                    raise RuntimeError("the hub exited during start-up")
                await asyncio.sleep(0.02)
        yield Hub(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/v1/ws", settings)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


def hub_settings(database_url: str, key_prefix: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "key_prefix": key_prefix,
        "supabase_url": SUPABASE_URL,
        "supabase_jwt_secret": JWT_SECRET,
        "database_url": database_url,
        "access_cache_ttl_s": TTL_S,
        "access_denied_cache_ttl_s": TTL_S,
        "access_recheck_s": RECHECK_S,
        "jwt_leeway_s": 0,
        "service_keys": [SERVICE_KEY],
        "allowed_origins": [ALLOWED_ORIGIN],
        "auth_timeout_s": 0.5,
        **overrides,
    }
    return Settings.model_validate(values)


@pytest.fixture
async def hub(pg_database_url: str, redis_url: str, key_prefix: str) -> AsyncIterator[Hub]:
    async with running_hub(hub_settings(pg_database_url, key_prefix), redis_url) as running:
        yield running


# -- a raw protocol client (tests/support/wire.py; every frame read is checked against /v1/schema) ------


def connect(
    hub: Hub, token: str | None, *, act_as: str | None = None, **kwargs: Any
) -> contextlib.AbstractAsyncContextManager[RawClient]:
    return wire.connect(hub.ws_url, token, act_as=act_as, **kwargs)


def error_code(frame: dict[str, Any]) -> str:
    assert frame["type"] == "error", frame
    return str(frame["error"]["code"])


async def create_cim(client: RawClient, world: World, title: str = "Project Falcon") -> str:
    result = await client.mutate("create", {"dealId": world.deal_a, "projectId": world.project_a, "title": title})
    assert result["type"] == "result", result
    return str(result["cimId"])


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# -- members and non-members -------------------------------------------------------


async def test_members_subscribe_query_and_mutate(hub: Hub, world: World) -> None:
    async with connect(hub, mint(world.ana)) as ana:
        cim_id = await create_cim(ana, world)
        snapshot = await ana.subscribe(f"cim:{cim_id}")
        assert snapshot["type"] == "snapshot" and snapshot["data"]["dealId"] == world.deal_a
        got = await ana.request({"type": "query", "name": "get", "args": {"cimId": cim_id}})
        assert got["type"] == "result", got
        assert cim_id in orjson.dumps(got["result"]).decode()
        result = await ana.mutate("updateState", {"cimId": cim_id, "title": "Renamed"})
        assert result["type"] == "result", result
        patch = await ana.expect(type="patch", topic=f"cim:{cim_id}")
        assert (patch["revision"], patch["actor"]) == (snapshot["revision"] + 1, world.ana)
        deal = await ana.subscribe(f"deal:{world.deal_a}")
        assert deal["type"] == "snapshot", deal


async def test_non_members_see_not_found_for_cims_and_access_denied_for_deals(hub: Hub, world: World) -> None:
    async with connect(hub, mint(world.ana)) as ana, connect(hub, mint(world.bob)) as bob:
        cim_id = await create_cim(ana, world)
        hidden = await bob.subscribe(f"cim:{cim_id}")
        unknown = str(uuid.uuid4())
        missing = await bob.subscribe(f"cim:{unknown}")
        # The same answer for a CIM bob may not see as for one that does not exist.
        assert error_code(hidden) == error_code(missing) == "not_found"
        assert hidden["error"]["message"].replace(cim_id, "X") == missing["error"]["message"].replace(unknown, "X")
        assert error_code(await bob.subscribe(f"deal:{world.deal_a}")) == "access_denied"
        assert error_code(await bob.request({"type": "query", "name": "get", "args": {"cimId": cim_id}})) == "not_found"
        assert error_code(await bob.mutate("updateState", {"cimId": cim_id, "title": "Mine"})) == "not_found"


async def test_create_under_another_projects_deal_is_denied(hub: Hub, world: World) -> None:
    async with connect(hub, mint(world.ana)) as ana:
        refused = await ana.mutate(
            "create", {"dealId": world.deal_a, "projectId": world.project_b, "title": "Misfiled"}
        )
        assert error_code(refused) == "access_denied"
        assert refused["error"]["path"] == "args.projectId"


async def test_revoked_membership_ends_live_subscriptions(hub: Hub, world: World) -> None:
    async with connect(hub, mint(world.ana)) as ana:
        cim_id = await create_cim(ana, world)
        assert (await ana.subscribe(f"cim:{cim_id}"))["type"] == "snapshot"
        assert (await ana.subscribe(f"deal:{world.deal_a}"))["type"] == "snapshot"
        await world.execute("delete from project_members where user_id = %s", world.ana)
        started = time.monotonic()
        ended = {}
        for _ in range(2):
            frame = await ana.expect(timeout=TTL_S + RECHECK_S + 2, type="unsubscribed")
            ended[frame["topic"]] = frame["error"]["code"]
        took = time.monotonic() - started
        assert ended == {f"cim:{cim_id}": "access_denied", f"deal:{world.deal_a}": "access_denied"}
        assert took < TTL_S + RECHECK_S + 1.0, f"revocation took {took:.2f} s"
        assert error_code(await ana.subscribe(f"cim:{cim_id}")) == "not_found"


# -- HTTP ----------------------------------------------------------------------------


async def test_http_mutate_needs_a_token_and_membership(hub: Hub, world: World, http: httpx.AsyncClient) -> None:
    body = {
        "name": "create",
        "args": {"dealId": world.deal_a, "projectId": world.project_a, "title": "T"},
        "mutationId": uuid.uuid4().hex,
    }
    anonymous = await http.post(hub.url + "/v1/mutate", json=body)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthenticated"
    forged = await http.post(hub.url + "/v1/mutate", json=body, headers=bearer(mint(world.ana) + "x"))
    assert forged.status_code == 401
    as_bob = await http.post(hub.url + "/v1/mutate", json=body, headers=bearer(mint(world.bob)))
    assert as_bob.status_code == 403 and as_bob.json()["error"]["code"] == "access_denied"
    as_ana = await http.post(hub.url + "/v1/mutate", json=body, headers=bearer(mint(world.ana)))
    assert as_ana.status_code == 200, as_ana.text
    cim_id = as_ana.json()["cimId"]
    retitle = {"name": "updateState", "args": {"cimId": cim_id, "title": "Bob's"}, "mutationId": uuid.uuid4().hex}
    hidden = await http.post(hub.url + "/v1/mutate", json=retitle, headers=bearer(mint(world.bob)))
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"


# -- token expiry and refresh on a live socket -------------------------------------------


async def test_token_refresh_resumes_without_losing_patches(hub: Hub, world: World, http: httpx.AsyncClient) -> None:
    async with connect(hub, mint(world.ana)) as writer:
        cim_id = await create_cim(writer, world)
        async with connect(hub, mint(world.ana, ttl_s=2)) as reader:
            snapshot = await reader.subscribe(f"cim:{cim_id}")
            assert snapshot["type"] == "snapshot"
            revision = snapshot["revision"]
            first = await writer.mutate("updateState", {"cimId": cim_id, "title": "Before expiry"})
            assert (await reader.expect(type="patch"))["revision"] == first["revision"] == revision + 1
            expired = await reader.expect(timeout=4, type="error")
            assert error_code(expired) == "token_expired"
            # Committed while the reader is paused: not delivered until it refreshes.
            missed = [
                await writer.mutate("updateState", {"cimId": cim_id, "title": f"While paused {n}"}) for n in range(3)
            ]
            assert [m["revision"] for m in missed] == [revision + 2, revision + 3, revision + 4]
            with pytest.raises(TimeoutError):
                await reader.expect(timeout=0.3, type="patch")
            assert (
                error_code(await reader.request({"type": "query", "name": "get", "args": {"cimId": cim_id}}))
                == "token_expired"
            )
            await reader.send({"type": "auth", "token": mint(world.ana)})
            assert (await reader.recv())["type"] == "ready"
            patches = [await reader.expect(type="patch") for _ in missed]
            assert [p["revision"] for p in patches] == [revision + 2, revision + 3, revision + 4]
            after = await writer.mutate("updateState", {"cimId": cim_id, "title": "After refresh"})
            assert (await reader.expect(type="patch"))["revision"] == after["revision"] == revision + 5


async def test_refresh_with_another_users_token_is_refused(hub: Hub, world: World) -> None:
    async with connect(hub, mint(world.ana)) as ana:
        await ana.send({"type": "auth", "token": mint(world.bob)})
        assert error_code(await ana.recv()) == "unauthenticated"


# -- service keys --------------------------------------------------------------------


async def test_service_key_acts_without_membership_and_on_behalf_of_users(
    hub: Hub, world: World, http: httpx.AsyncClient
) -> None:
    async with (
        connect(hub, SERVICE_KEY, act_as=world.ana) as service_as_ana,
        connect(hub, mint(world.ana)) as ana,
        connect(hub, SERVICE_KEY) as service,
    ):
        # On behalf of ana: checked as ana, recorded as the service acting for her.
        cim_id = await create_cim(service_as_ana, world)
        assert (await ana.subscribe(f"cim:{cim_id}"))["type"] == "snapshot"
        await service_as_ana.mutate("updateState", {"cimId": cim_id, "title": "By the agent"})
        patch = await ana.expect(type="patch")
        assert patch["actor"] == f"service:service_role/{world.ana}"
        # With no user: every deal, no membership needed.
        assert (await service.subscribe(f"deal:{world.deal_b}"))["type"] == "snapshot"
        await service.mutate("updateState", {"cimId": cim_id, "title": "By the service"})
        assert (await ana.expect(type="patch"))["actor"] == "service:service_role"
    # On behalf of bob, who is not a member: refused as bob would be.
    headers = {**bearer(SERVICE_KEY), "x-cimhub-act-as": world.bob}
    as_bob = await http.post(
        hub.url + "/v1/mutate",
        headers=headers,
        json={"name": "updateState", "args": {"cimId": cim_id, "title": "No"}, "mutationId": uuid.uuid4().hex},
    )
    assert as_bob.status_code == 404
    # A user token may not act for someone else.
    headers = {**bearer(mint(world.bob)), "x-cimhub-act-as": world.ana}
    impostor = await http.post(
        hub.url + "/v1/mutate",
        headers=headers,
        json={"name": "updateState", "args": {"cimId": cim_id, "title": "No"}, "mutationId": uuid.uuid4().hex},
    )
    assert impostor.status_code == 403


# -- the connection itself ------------------------------------------------------------


async def test_foreign_origin_is_refused(hub: Hub, world: World) -> None:
    # The hub closes with 4406 before accepting; under ASGI a close before accept
    # becomes an HTTP 403 to the handshake, so a client sees one or the other.
    try:
        async with connect(hub, None, origin="https://evil.example") as refused:
            assert (await refused.closed())[0] == CloseCode.FORBIDDEN_ORIGIN
    except InvalidStatus as exc:
        assert exc.response.status_code == 403
    async with connect(hub, mint(world.ana), origin=ALLOWED_ORIGIN) as ana:
        await ana.send({"type": "ping", "ts": 1})
        assert (await ana.recv())["type"] == "pong"


async def test_no_auth_frame_in_time_closes_with_4401(hub: Hub) -> None:
    async with connect(hub, None) as client:
        assert await client.closed() == (CloseCode.AUTH_TIMEOUT, [])


async def test_bad_token_closes_with_4403(hub: Hub, world: World) -> None:
    async with connect(hub, None) as client:
        await client.send({"type": "auth", "token": mint(world.ana, ttl_s=-5)})
        code, frames = await client.closed()
        assert [error_code(frame) for frame in frames] == ["token_expired"]
        assert code == CloseCode.AUTH_FAILED


# -- the legacy import (clients/migrate.py) through PostgREST and the hub -------------------


def legacy_service_key() -> str:
    """The legacy service_role API key of the test PostgREST (what CIMHUB_SUPABASE_SERVICE_KEY holds)."""
    now = int(time.time())
    claims = {"iss": "supabase", "ref": "test", "role": "service_role", "iat": now, "exp": now + 3600}
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(POSTGREST_JWT_SECRET), algorithms=["HS256"])


async def test_legacy_import_is_idempotent(hub: Hub, world: World, postgrest: PostgrestServer) -> None:
    await world.execute((SQL_DIR / "legacy_cims.sql").read_text())
    await world.execute("notify pgrst, 'reload schema'")
    good = [str(uuid.uuid4()) for _ in range(3)]
    bad = str(uuid.uuid4())
    for n, row_id in enumerate(good):
        await world.execute(
            "insert into cims (id, deal_id, project_id, user_id, title, workflow_state, created_at) "
            "values (%s, %s, %s, %s, %s, %s::jsonb, now() - interval '1 day')",
            row_id,
            world.deal_a,
            world.project_a,
            world.ana,
            f"Legacy {n}",
            '{"current_stage": "buyer_persona", "completed_stages": []}',
        )
    await world.execute(
        "insert into cims (id, deal_id, project_id, user_id, title, workflow_state)"
        " values (%s, %s, %s, %s, 'Bad', %s::jsonb)",
        bad,
        world.deal_a,
        world.project_a,
        world.ana,
        '{"current_stage": "drafting"}',
    )
    try:

        async def import_once(**kwargs: Any) -> migrate.Summary:
            async with asyncio.timeout(10):
                while True:  # PostgREST reloads its schema cache asynchronously after the NOTIFY
                    try:
                        return await migrate.run(
                            postgrest.url,
                            legacy_service_key(),
                            hub.url,
                            SERVICE_KEY,
                            batch=2,
                            legacy_transport=RestPrefixTransport(),
                            show_progress=False,
                            **kwargs,
                        )
                    except APIError as exc:
                        if "schema cache" not in str(exc):
                            raise
                        await asyncio.sleep(0.1)

        dry = await import_once(dry_run=True)
        assert (dry.imported, dry.skipped, list(dry.refused)) == (3, 0, [bad])
        first = await import_once(dry_run=False)
        assert (first.imported, first.skipped, list(first.refused)) == (3, 0, [bad])
        assert first.refused[bad].startswith("invalid_args") and "args.stage" in first.refused[bad]
        second = await import_once(dry_run=False)
        assert (second.imported, second.skipped, list(second.refused)) == (0, 3, [bad])
        # The imported CIMs belong to their deal: ana (a member) sees them, bob does not.
        async with connect(hub, mint(world.ana)) as ana, connect(hub, mint(world.bob)) as bob:
            cim_id = imported_cim_id(good[0])
            snapshot = await ana.subscribe(f"cim:{cim_id}")
            assert (snapshot["data"]["title"], snapshot["data"]["stage"]) == ("Legacy 0", "buyer_persona")
            assert error_code(await bob.subscribe(f"cim:{cim_id}")) == "not_found"
    finally:
        await world.execute("delete from cims where deal_id = %s", world.deal_a)


# -- the remembered deal of a CIM is a guess --------------------------------------------


async def member_of_both(world: World) -> str:
    """A member of both projects: her create's CIM id depends only on her and the create's mutation id."""
    user = str(uuid.uuid4())
    await world.execute(
        "insert into project_members (project_id, user_id) values (%s, %s), (%s, %s)",
        world.project_a,
        user,
        world.project_b,
        user,
    )
    return user


async def test_a_cim_id_created_again_under_another_deal_is_judged_by_its_new_deal(
    hub: Hub, world: World, redis_client: Any, key_prefix: str
) -> None:
    """Redis loses a CIM the hub has authorized (restored from an old backup, flushed) and the same
    create makes it again under another deal: the hub's remembered deal must not decide who sees it."""
    cara = await member_of_both(world)
    async with connect(hub, mint(cara)) as maker, connect(hub, mint(world.ana)) as ana:
        first = await maker.mutate("create", {"dealId": world.deal_a, "projectId": world.project_a, "title": "A"}, "m1")
        cim_id = str(first["cimId"])
        got = await ana.request({"type": "query", "name": "get", "args": {"cimId": cim_id}})
        assert got["type"] == "result", got  # the hub now remembers the CIM as deal A's
        assert (await ana.subscribe(f"cim:{cim_id}"))["data"]["dealId"] == world.deal_a
        async for key in redis_client.scan_iter(match=f"{key_prefix}:*"):
            await redis_client.delete(key)
        again = await maker.mutate("create", {"dealId": world.deal_b, "projectId": world.project_b, "title": "B"}, "m1")
        assert again["type"] == "result" and again["cimId"] == cim_id, again

        # ana's live subscription sees the new epoch, is re-admitted by the new deal, and ends: no snapshot of it.
        ended = await ana.expect(type="unsubscribed", topic=f"cim:{cim_id}")
        assert not [f for f in ana.backlog if f.get("type") in ("snapshot", "patch")], ana.backlog
        assert ended["error"]["code"] == "not_found", ended

        # ana (deal A only) sees nothing of deal B's CIM, by any path ...
        assert error_code(await ana.request({"type": "query", "name": "get", "args": {"cimId": cim_id}})) == "not_found"
        assert error_code(await ana.subscribe(f"cim:{cim_id}")) == "not_found"
        assert error_code(await ana.mutate("updateState", {"cimId": cim_id, "title": "Mine"})) == "not_found"
    async with connect(hub, mint(world.bob)) as bob:
        # ... and bob (deal B) may use it, though the hub had it down as deal A's.
        assert (await bob.mutate("updateState", {"cimId": cim_id, "title": "Bob's"}))["type"] == "result"
        snapshot = await bob.subscribe(f"cim:{cim_id}")
        assert snapshot["data"]["dealId"] == world.deal_b and snapshot["data"]["title"] == "Bob's", snapshot


async def test_a_mutation_on_a_remembered_deal_is_refused_once_the_cim_moved_deals(
    hub: Hub, world: World, redis_client: Any, key_prefix: str
) -> None:
    """The mutation path answers from the remembered deal without a read; the engine's commit confirms it."""
    cara = await member_of_both(world)
    async with connect(hub, mint(cara)) as maker, connect(hub, mint(world.ana)) as ana:
        first = await maker.mutate("create", {"dealId": world.deal_a, "projectId": world.project_a, "title": "A"}, "m2")
        cim_id = str(first["cimId"])
        assert (await ana.mutate("updateState", {"cimId": cim_id, "title": "ana's"}))["type"] == "result"
        async for key in redis_client.scan_iter(match=f"{key_prefix}:*"):
            await redis_client.delete(key)
        await maker.mutate("create", {"dealId": world.deal_b, "projectId": world.project_b, "title": "B"}, "m2")
        refused = await ana.mutate("updateState", {"cimId": cim_id, "title": "ana again"})
        assert error_code(refused) == "not_found"
        stored = await maker.request({"type": "query", "name": "get", "args": {"cimId": cim_id}})
        assert stored["result"]["cim"]["title"] == "B", stored


async def test_revoked_membership_removes_the_users_presence(hub: Hub, world: World) -> None:
    """Others must not go on seeing a user on a CIM the user may no longer see."""
    async with connect(hub, mint(world.ana)) as ana, connect(hub, SERVICE_KEY) as watcher:
        cim_id = await create_cim(ana, world)
        assert (await watcher.subscribe(f"presence:{cim_id}"))["type"] == "snapshot"
        joined = await ana.request({"type": "presence", "cimId": cim_id, "state": {"activity": "editing"}})
        presence_id = joined["result"]["presenceId"]
        join = await watcher.expect(type="patch", mutation="join")
        assert join["ops"][0]["path"] == f"/{presence_id}"
        await world.execute("delete from project_members where user_id = %s", world.ana)
        leave = await watcher.expect(timeout=TTL_S + RECHECK_S + 5, type="patch", mutation="leave")
        assert leave["ops"] == [{"op": "remove", "path": f"/{presence_id}"}]


async def test_access_rechecks_during_a_redis_outage_log_it_once_not_every_interval(
    pg_database_url: str, private_redis: Any, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    settings = hub_settings(pg_database_url, f"t{uuid.uuid4().hex[:8]}", access_outage_grace_s=60, redis_timeout_s=0.5)
    async with running_hub(settings, private_redis.url) as running, connect(running, mint(world.ana)) as ana:
        cim_id = await create_cim(ana, world)
        assert (await ana.subscribe(f"cim:{cim_id}"))["type"] == "snapshot"
        private_redis.kill()
        caplog.clear()
        await asyncio.sleep(TTL_S + 6 * RECHECK_S)  # several re-check rounds meet the outage (no timing asserted)
        lines = [r for r in caplog.records if r.name.startswith("cimhub")]
        unreachable = [r for r in lines if "Redis is unreachable" in r.getMessage()]
        assert len(unreachable) <= 1, [r.getMessage() for r in lines]
        assert not [r for r in lines if r.exc_info], [r.getMessage() for r in lines]  # no traceback per round


async def test_presence_names_a_user_by_the_name_supabase_keeps_unless_the_client_names_itself(
    hub: Hub, world: World
) -> None:
    token = mint(world.ana, user_metadata={"full_name": "Ana Ruiz"}, email="ana@example.com")
    async with connect(hub, token) as ana, connect(hub, SERVICE_KEY) as watcher:
        cim_id = await create_cim(ana, world)
        assert (await watcher.subscribe(f"presence:{cim_id}"))["type"] == "snapshot"
        await ana.request({"type": "presence", "cimId": cim_id, "state": {"activity": "viewing"}})
        join = await watcher.expect(type="patch", mutation="join")
        assert join["ops"][0]["value"]["state"] == {"activity": "viewing", "name": "Ana Ruiz"}
        assert "ana@example.com" not in orjson.dumps(join).decode()
        await ana.request({"type": "presence", "cimId": cim_id, "state": {"name": "Ana (deal lead)"}})
        update = await watcher.expect(type="patch", mutation="update")
        assert update["ops"][0]["value"]["state"]["name"] == "Ana (deal lead)"
