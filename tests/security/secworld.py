"""The security suite's world: a real hub in production auth mode, attacked from outside.

Test modules load it as a plugin (``pytest_plugins = ["pg", "secworld"]``) and
import its helpers; it is not a conftest, so its name cannot clash with
tests/conftest.py. PYTEST_DONT_REWRITE: a plugin imported by test modules.

* PostgreSQL with the access migration, and PostgREST in front of it (tests/pg.py);
* a gateway process standing in for Supabase (tests/security/gateway.py): it
  publishes the JWKS (which the tests make slow, wrong or rotated) and passes
  /rest/v1 to PostgREST (which the tests can take down);
* the hub as its own process (tests/hubproc.py) with dev mode off, user tokens
  signed ES256 by a key only the JWKS publishes, access checked either straight
  in Postgres (``postgres``) or through PostgREST (``supabase``).

Every hub's log is scanned, when the hub stops, for every credential the suite
minted (tokens, service keys): one found fails the test that ran the hub.
Figures (attacks tried and refused, other users' login latency under each
flood) are written as JSON to ``$CIMHUB_SECURITY_FIGURES`` when it is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from hubproc import HubProcess, start_hub
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from cimhub.server.embedded import free_port
from pg import POSTGREST_JWT_SECRET, PostgrestServer

HERE = Path(__file__).resolve().parent
SERVICE_KEY = "cimhub_sk_" + "s" * 40
TIMEOUT = 10.0
VICTIM_ADDRESS = "127.0.0.2"  # other users connect from another loopback address than the attacker
Backend = str  # "postgres" or "supabase"


# -- what the suite minted, and what it measured ------------------------------------


@dataclass
class Ledger:
    """Credentials to look for in logs, and the figures docs/security.md quotes."""

    secrets: set[str] = field(default_factory=lambda: {SERVICE_KEY})
    attacks: dict[str, dict[str, Any]] = field(default_factory=dict)
    log_lines: int = 0

    def record(self, attack: str, *, tried: int, refused: int, victim_latency_s: list[float] | None = None) -> None:
        entry: dict[str, Any] = {"tried": tried, "refused": refused}
        if victim_latency_s:
            ordered = sorted(victim_latency_s)
            entry["victim_login_and_mutate_s"] = {
                "n": len(ordered),
                "median": round(ordered[len(ordered) // 2], 3),
                "max": round(ordered[-1], 3),
            }
        self.attacks[attack] = entry


@pytest.fixture(scope="session")
def ledger() -> Iterator[Ledger]:
    book = Ledger()
    yield book
    out = os.environ.get("CIMHUB_SECURITY_FIGURES")
    if out:
        Path(out).write_text(json.dumps({"attacks": book.attacks, "hub_log_lines_scanned": book.log_lines}, indent=2))


# -- the Supabase stand-in ------------------------------------------------------------


class Gateway:
    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process = process
        self.url = url
        self.issuer = url + "/auth/v1"

    def control(self, **state: Any) -> dict[str, Any]:
        return httpx.post(self.url + "/control", content=orjson.dumps(state), timeout=5).json()  # type: ignore[no-any-return]

    def jwks_requests(self) -> int:
        return int(httpx.get(self.url + "/control", timeout=5).json()["jwks_requests"])


@pytest.fixture(scope="session")
def gateway(postgrest: PostgrestServer) -> Iterator[Gateway]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(HERE / "gateway.py"), str(port), postgrest.url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    gw = Gateway(process, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(httpx.HTTPError):
            gw.control()
            break
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the gateway did not start")
        time.sleep(0.05)
    yield gw
    process.terminate()
    process.wait(10)


# -- keys and tokens --------------------------------------------------------------------


class Signer:
    """ES256 keys the gateway publishes, and tokens signed by them (each remembered in the ledger)."""

    def __init__(self, gateway: Gateway, ledger: Ledger) -> None:
        self.gateway = gateway
        self.ledger = ledger
        self.key = self.new_key()
        self.publish(self.key)

    @staticmethod
    def new_key() -> ECKey:
        return ECKey.generate_key("P-256", parameters={"kid": f"k-{uuid.uuid4()}", "alg": "ES256"})

    def publish(self, *keys: ECKey) -> None:
        self.gateway.control(keys=[k.as_dict(private=False) for k in keys], jwks="ok")

    def token(self, user: str, *, key: ECKey | None = None, ttl_s: int = 3600, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": self.gateway.issuer,
            "aud": "authenticated",
            "role": "authenticated",
            "sub": user,
            "iat": now,
            "exp": now + ttl_s,
            **claims,
        }
        signing = key or self.key
        token = jwt.encode({"alg": "ES256", "kid": signing.kid}, body, signing, algorithms=["ES256"])
        self.ledger.secrets.add(token)
        return token


@pytest.fixture
def signer(gateway: Gateway, ledger: Ledger) -> Signer:
    return Signer(gateway, ledger)


def legacy_service_key(ledger: Ledger) -> str:
    """The service_role key the hub uses toward PostgREST (CIMHUB_SUPABASE_SERVICE_KEY)."""
    now = int(time.time())
    claims = {"iss": "supabase", "ref": "test", "role": "service_role", "iat": now, "exp": now + 3600}
    key = jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(POSTGREST_JWT_SECRET), algorithms=["HS256"])
    ledger.secrets.add(key)
    return key


# -- the hub ----------------------------------------------------------------------------


def scan_log(hub: HubProcess, ledger: Ledger) -> None:
    """Fail if any credential the suite minted appears in any line the hub wrote."""
    lines = hub.log_path.read_text(errors="replace").splitlines()
    ledger.log_lines += len(lines)
    leaked = [(n, s[:12]) for n, line in enumerate(lines) for s in ledger.secrets if s in line]
    assert not leaked, f"credentials in the hub's log (line, credential prefix): {leaked[:5]}"


@contextlib.contextmanager
def production_hub(
    backend: Backend,
    *,
    redis_url: str,
    key_prefix: str,
    gateway: Gateway,
    database_url: str,
    ledger: Ledger,
    **settings: Any,
) -> Iterator[HubProcess]:
    """A hub with dev mode off, ES256 tokens from the gateway's JWKS, and real access checks."""
    values: dict[str, Any] = {
        "dev_mode": False,
        "supabase_url": gateway.url,
        "service_keys": [SERVICE_KEY],
        "access_cache_ttl_s": 0.5,
        "access_denied_cache_ttl_s": 0.5,
        "access_recheck_s": 0.5,
        "auth_timeout_s": 3,
        "jwks_min_refetch_s": 0.2,
        **settings,
    }
    if backend == "postgres":
        values["database_url"] = database_url
    else:
        values["supabase_service_key"] = legacy_service_key(ledger)
    with start_hub(redis_url, key_prefix, **values) as hub:
        try:
            yield hub
        finally:
            hub.terminate()
            scan_log(hub, ledger)


# -- a raw protocol client ----------------------------------------------------------------


class Client:
    """One JSON socket; frames not yet asked for wait in a backlog; pings are answered."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.backlog: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))  # the standard library writes integers of any size, as attackers do

    async def _read(self) -> dict[str, Any]:
        while True:
            frame = orjson.loads(await self.ws.recv())
            if frame.get("type") == "ping":
                await self.send({"type": "pong", "ts": frame.get("ts")})
                continue
            return frame  # type: ignore[no-any-return]

    async def expect(self, timeout: float = TIMEOUT, **match: Any) -> dict[str, Any]:
        for i, frame in enumerate(self.backlog):
            if all(frame.get(k) == v for k, v in match.items()):
                return self.backlog.pop(i)
        async with asyncio.timeout(timeout):
            while True:
                frame = await self._read()
                if all(frame.get(k) == v for k, v in match.items()):
                    return frame
                self.backlog.append(frame)

    async def request(self, frame: dict[str, Any], timeout: float = TIMEOUT) -> dict[str, Any]:
        frame.setdefault("id", f"r-{uuid.uuid4().hex[:12]}")
        await self.send(frame)
        return await self.expect(timeout, id=frame["id"])

    async def mutate(self, name: str, args: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return await self.request(
            {"type": "mutate", "name": name, "args": args, "mutationId": f"m-{uuid.uuid4().hex}", **extra}
        )


@contextlib.asynccontextmanager
async def connect(
    hub: HubProcess, token: str | None, *, act_as: str | None = None, address: str = VICTIM_ADDRESS
) -> AsyncIterator[Client]:
    """A socket from `address`, authenticated with `token` (ready awaited) unless it is None."""
    async with websockets.connect(hub.ws_url, open_timeout=TIMEOUT, close_timeout=2, local_addr=(address, 0)) as ws:
        client = Client(ws)
        if token is not None:
            frame: dict[str, Any] = {"type": "auth", "token": token}
            if act_as is not None:
                frame["actAs"] = act_as
            await client.send(frame)
            async with asyncio.timeout(TIMEOUT):
                ready = await client._read()
            assert ready["type"] == "ready", ready
        yield client


def error_code(frame: dict[str, Any]) -> str:
    assert frame["type"] == "error", frame
    return str(frame["error"]["code"])


async def victim_round_trip(hub: HubProcess, token: str, deal_id: str, project_id: str) -> float:
    """Another user logs in and creates a CIM from another address; the seconds it took (raises if refused)."""
    started = time.perf_counter()
    async with connect(hub, token) as client:
        result = await client.mutate("create", {"dealId": deal_id, "projectId": project_id, "title": "Victim"})
    assert result["type"] == "result", result
    return time.perf_counter() - started
