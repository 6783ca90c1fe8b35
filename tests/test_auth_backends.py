"""The access backends against a real PostgreSQL (the migration applied) and a real PostgREST.

One contract suite runs against PostgresAccess and SupabaseAccess; then each
backend's failure handling, and SupabaseAccess's exact HTTP request through
httpx.MockTransport.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Self

import httpx
import psycopg
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from cimhub.protocol.errors import Unavailable
from cimhub.server.auth.access import AccessBackend, CachedAccess
from cimhub.server.auth.postgres_access import PostgresAccess
from cimhub.server.auth.supabase_access import SupabaseAccess
from cimhub.server.embedded import free_port
from pg import (
    POSTGREST_JWT_SECRET,
    SQL_DIR,
    PostgresCluster,
    PostgrestServer,
    RestPrefixTransport,
    World,
    run_sql,
)

pytest_plugins = ["pg"]


def api_key(role: str) -> str:
    """A legacy Supabase API key (anon or service_role JWT) for the test PostgREST."""
    now = int(time.time())
    claims = {"iss": "supabase", "ref": "test", "role": role, "iat": now, "exp": now + 3600}
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(POSTGREST_JWT_SECRET), algorithms=["HS256"])


@pytest.fixture(params=["postgres", "supabase"])
async def backend(request: pytest.FixtureRequest, pg_database_url: str) -> AsyncIterator[AccessBackend]:
    made: AccessBackend
    if request.param == "postgres":
        made = PostgresAccess(pg_database_url)
    else:
        server: PostgrestServer = request.getfixturevalue("postgrest")
        made = SupabaseAccess(server.url, api_key("service_role"), transport=RestPrefixTransport())
    yield made
    await made.aclose()


# -- the contract ---------------------------------------------------------------------


async def test_members_may_access_their_projects_deals(backend: AccessBackend, world: World) -> None:
    assert await backend.may_access_deal(world.ana, world.deal_a) is True
    assert await backend.may_access_deal(world.bob, world.deal_b) is True


async def test_non_members_are_denied(backend: AccessBackend, world: World) -> None:
    assert await backend.may_access_deal(world.bob, world.deal_a) is False
    assert await backend.may_access_deal(str(uuid.uuid4()), world.deal_a) is False


@pytest.mark.parametrize("bad", ["", "not-a-uuid", "' or 1=1 --", "00000000-0000-0000-0000-00000000000G"])
async def test_malformed_ids_are_denials_not_errors(backend: AccessBackend, world: World, bad: str) -> None:
    assert await backend.may_access_deal(bad, world.deal_a) is False
    assert await backend.may_access_deal(world.ana, bad) is False
    assert await backend.deal_in_project(bad, world.project_a) is False
    assert await backend.deal_in_project(world.deal_a, bad) is False


async def test_unknown_deal_is_denied(backend: AccessBackend, world: World) -> None:
    assert await backend.may_access_deal(world.ana, str(uuid.uuid4())) is False


async def test_cross_project_check_is_refused(backend: AccessBackend, world: World) -> None:
    assert await backend.deal_in_project(world.deal_a, world.project_a) is True
    assert await backend.deal_in_project(world.deal_a, world.project_b) is False
    assert await backend.deal_in_project(world.deal_b, world.project_a) is False


async def test_revoked_membership_takes_effect_within_the_ttl(backend: AccessBackend, world: World) -> None:
    now = [0.0]
    access = CachedAccess(backend, ttl_s=30, denied_ttl_s=5, clock=lambda: now[0])
    assert await access.may_access_deal(world.ana, world.deal_a)
    await world.execute("delete from project_members where user_id = %s", world.ana)
    now[0] = 29.9
    assert await access.may_access_deal(world.ana, world.deal_a)  # the cached grant, still inside the TTL
    now[0] = 30.1
    assert access.decision_expires_at(world.ana, world.deal_a) == 30.0
    assert not await access.may_access_deal(world.ana, world.deal_a)


async def test_added_membership_takes_effect_within_the_denied_ttl(backend: AccessBackend, world: World) -> None:
    now = [0.0]
    access = CachedAccess(backend, ttl_s=30, denied_ttl_s=5, clock=lambda: now[0])
    assert not await access.may_access_deal(world.bob, world.deal_a)
    await world.execute(
        "insert into project_members (project_id, user_id) values (%s, %s)",
        world.project_a,
        world.bob,
    )
    now[0] = 5.1
    assert await access.may_access_deal(world.bob, world.deal_a)


# -- the SQL functions' privileges ------------------------------------------------------------


@pytest.mark.parametrize(("role", "allowed"), [("service_role", True), ("authenticated", False), ("anon", False)])
async def test_only_service_role_may_run_the_functions(world: World, role: str, allowed: bool) -> None:
    async with await psycopg.AsyncConnection.connect(world.url, autocommit=True) as conn:
        await conn.execute(f"set role {role}")
        if allowed:
            cursor = await conn.execute("select public.cimhub_may_access_deal(%s, %s)", (world.ana, world.deal_a))
            assert await cursor.fetchone() == (True,)
        else:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute("select public.cimhub_may_access_deal(%s, %s)", (world.ana, world.deal_a))


async def test_the_tables_are_closed_to_api_roles(world: World) -> None:
    async with await psycopg.AsyncConnection.connect(world.url, autocommit=True) as conn:
        await conn.execute("set role anon")
        cursor = await conn.execute("select count(*) from project_members")
        assert await cursor.fetchone() == (0,)  # RLS on, no policy: nothing visible


async def test_the_migration_applies_twice(world: World) -> None:
    run_sql(world.url, (SQL_DIR / "001_cimhub_access.sql").read_text())
    async with await psycopg.AsyncConnection.connect(world.url, autocommit=True) as conn:
        cursor = await conn.execute("select public.cimhub_may_access_deal(%s, %s)", (world.ana, world.deal_a))
        assert await cursor.fetchone() == (True,)


async def test_legacy_cims_table(pg_cluster: PostgresCluster) -> None:
    url = pg_cluster.create_database("cimhub_legacy")
    run_sql(url, (SQL_DIR / "legacy_cims.sql").read_text())
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            "insert into cims (deal_id, project_id, user_id, title, workflow_state, slides) "
            "values (gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'CIM', %s, %s) "
            "returning workflow_state, slides, buyer_persona, created_at <= updated_at",
            (json.dumps({"stage": "outline"}), json.dumps([{"id": "s1"}])),
        )
        assert await cursor.fetchone() == ({"stage": "outline"}, [{"id": "s1"}], None, True)


# -- PostgresAccess failures -------------------------------------------------------------------


async def test_postgres_unreachable_is_retryable(pg_cluster: PostgresCluster) -> None:
    access = PostgresAccess(f"postgresql://postgres@127.0.0.1:{free_port()}/cimhub", timeout_s=5)
    with pytest.raises(Unavailable) as caught:
        await access.may_access_deal("a", "b")
    assert caught.value.retryable is True
    await access.aclose()


async def test_postgres_without_the_migration_says_so(pg_cluster: PostgresCluster) -> None:
    access = PostgresAccess(pg_cluster.create_database("cimhub_empty"))
    with pytest.raises(Unavailable) as caught:
        await access.may_access_deal("a", "b")
    assert caught.value.retryable is False and "001_cimhub_access.sql" in caught.value.message
    await access.aclose()


async def test_postgres_slow_answer_times_out(world: World) -> None:
    access = PostgresAccess(world.url, timeout_s=0.5)
    async with await psycopg.AsyncConnection.connect(world.url) as locker:
        await locker.execute("lock table project_members in access exclusive mode")
        with pytest.raises(Unavailable) as caught:
            await access.may_access_deal(world.ana, world.deal_a)
        assert caught.value.retryable is True
        await locker.rollback()
    assert await access.may_access_deal(world.ana, world.deal_a)  # a fresh connection after the timeout
    await access.aclose()


async def test_postgres_reconnects_after_the_server_drops_the_connection(world: World) -> None:
    access = PostgresAccess(world.url, max_connections=1)
    assert await access.may_access_deal(world.ana, world.deal_a)
    await world.execute(
        "select pg_terminate_backend(pid) from pg_stat_activity "
        "where datname = current_database() and pid <> pg_backend_pid() and usename = 'postgres' and state = 'idle'"
    )
    assert await access.may_access_deal(world.ana, world.deal_a)
    await access.aclose()


# -- SupabaseAccess failures, against PostgREST -------------------------------------------------


async def test_supabase_with_the_anon_key_is_refused_not_granted(postgrest: PostgrestServer, world: World) -> None:
    access = SupabaseAccess(postgrest.url, api_key("anon"), transport=RestPrefixTransport())
    with pytest.raises(Unavailable) as caught:
        await access.may_access_deal(world.ana, world.deal_a)
    assert caught.value.retryable is False and "SERVICE_KEY" in caught.value.message
    await access.aclose()


async def test_supabase_with_a_forged_key_is_refused(postgrest: PostgrestServer, world: World) -> None:
    now = int(time.time())
    forged = jwt.encode(
        {"alg": "HS256"},
        {"role": "service_role", "exp": now + 60},
        OctKey.import_key("not-the-postgrest-secret-but-long-enough"),
        algorithms=["HS256"],
    )
    access = SupabaseAccess(postgrest.url, forged, transport=RestPrefixTransport())
    with pytest.raises(Unavailable) as caught:
        await access.may_access_deal(world.ana, world.deal_a)
    assert caught.value.retryable is False
    await access.aclose()


# -- SupabaseAccess: the exact request, and every outcome, through MockTransport ------------------

SUPABASE_URL = "https://abcdefgh.supabase.co"
SERVICE_KEY = "sb_secret_" + "k" * 32


def mocked(handler: Callable[[httpx.Request], httpx.Response], timeout_s: float = 5.0) -> SupabaseAccess:
    return SupabaseAccess(SUPABASE_URL, SERVICE_KEY, timeout_s=timeout_s, transport=httpx.MockTransport(handler))


async def test_supabase_request_shape() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=True)

    access = mocked(handler)
    assert await access.may_access_deal("user-1", "deal-1") is True
    assert await access.deal_in_project("deal-1", "project-1") is True
    await access.aclose()

    first, second = seen
    assert first.method == "POST"
    assert str(first.url) == f"{SUPABASE_URL}/rest/v1/rpc/cimhub_may_access_deal"
    assert first.headers["apikey"] == SERVICE_KEY
    assert first.headers["authorization"] == f"Bearer {SERVICE_KEY}"
    assert first.headers["content-type"] == "application/json"
    assert json.loads(first.content) == {"p_user_id": "user-1", "p_deal_id": "deal-1"}
    assert str(second.url) == f"{SUPABASE_URL}/rest/v1/rpc/cimhub_deal_in_project"
    assert json.loads(second.content) == {"p_deal_id": "deal-1", "p_project_id": "project-1"}


def _status(code: int, body: Any = None) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(code, json=body if body is not None else {"message": "no"})


@pytest.mark.parametrize(
    ("handler", "retryable", "says"),
    [
        (_status(401, {"message": "Invalid API key"}), False, "SERVICE_KEY"),
        (_status(403, {"code": "42501", "message": "permission denied"}), False, "SERVICE_KEY"),
        (
            _status(404, {"code": "PGRST202", "message": "Could not find the function"}),
            False,
            "001_cimhub_access.sql",
        ),
        (_status(400), False, "HTTP 400"),
        (_status(500), True, "HTTP 500"),
        (_status(502), True, "HTTP 502"),
        (lambda request: httpx.Response(503, text="<html>upstream</html>"), True, "HTTP 503"),
        (_status(429), True, "HTTP 429"),
        (_status(200, {"allowed": True}), False, "not a boolean"),
        (lambda request: httpx.Response(200, json=None), False, "not a boolean"),
        (lambda request: httpx.Response(200, text="true-ish"), False, "not a boolean"),
    ],
)
async def test_supabase_failures_never_grant(
    handler: Callable[[httpx.Request], httpx.Response], retryable: bool, says: str
) -> None:
    access = mocked(handler)
    with pytest.raises(Unavailable) as caught:
        await access.may_access_deal("user-1", "deal-1")
    assert caught.value.retryable is retryable
    assert says in caught.value.message
    await access.aclose()


@pytest.mark.parametrize(
    "error",
    [httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow"), httpx.ConnectError("refused")],
)
async def test_supabase_timeouts_and_network_errors_are_retryable(error: httpx.HTTPError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    access = mocked(handler)
    with pytest.raises(Unavailable) as caught:
        await access.may_access_deal("user-1", "deal-1")
    assert caught.value.retryable is True
    await access.aclose()


class SlowSupabase:
    """A loopback HTTP server answering RPCs with `true`, or, while `hang` is set, reading and never answering."""

    def __init__(self) -> None:
        self.hang = True
        self.server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> Self:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                if self.hang:
                    await asyncio.sleep(3600)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4\r\n\r\ntrue")
                await writer.drain()


async def test_supabase_slow_answers_time_out_without_leaking_pool_connections() -> None:
    """httpx's own timeouts end a hung check; the pool slots come back (they leaked under asyncio.timeout)."""
    async with SlowSupabase() as supabase:
        access = SupabaseAccess(supabase.url, SERVICE_KEY, timeout_s=0.3, max_connections=2)
        try:
            started = time.monotonic()
            outcomes = await asyncio.gather(
                *(access.may_access_deal("user-1", f"deal-{n}") for n in range(6)), return_exceptions=True
            )
            assert all(isinstance(o, Unavailable) and o.retryable for o in outcomes), outcomes
            assert time.monotonic() - started < 10  # generous: each check is bounded by the timeouts
            supabase.hang = False
            assert await asyncio.wait_for(access.may_access_deal("user-1", "deal-1"), 10) is True
        finally:
            await access.aclose()
