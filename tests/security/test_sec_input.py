"""Attacks with ids and types.

Case aliases of a deal, ids with newlines, coerced types, huge numbers, bad ids in errors.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jsonschema
import orjson
import pytest
import redis.asyncio as aioredis
from hubproc import HubProcess
from joserfc import jws
from secworld import Client, Gateway, Ledger, Signer, connect, error_code, production_hub

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
        max_frame_bytes=64 * 1024,
    ) as running:
        yield running


@pytest.fixture
async def ana(hub: HubProcess, world: World, signer: Signer) -> AsyncIterator[Client]:
    async with connect(hub, signer.token(world.ana)) as client:
        yield client


async def redis_keys(redis_client: aioredis.Redis, key_prefix: str) -> set[bytes]:
    return {key async for key in redis_client.scan_iter(match=f"{key_prefix}:*")}


async def test_an_upper_case_deal_id_is_the_same_deal_not_a_new_channel(
    ana: Client, world: World, ledger: Ledger
) -> None:
    upper = world.deal_a.upper()
    made = await ana.mutate("create", {"dealId": upper, "projectId": world.project_a.upper(), "title": "Upper"})
    assert made["type"] == "result", made
    deal = await ana.request({"type": "subscribe", "topic": f"deal:{upper}"})
    assert deal["type"] == "snapshot" and deal["topic"] == f"deal:{world.deal_a}", deal
    assert made["cimId"] in orjson.dumps(deal["data"]).decode()  # listed under the one spelling
    doc = await ana.request({"type": "query", "name": "get", "args": {"cimId": made["cimId"]}})
    assert doc["result"]["cim"]["dealId"] == world.deal_a
    # Other spellings Postgres reads as the same uuid are refused outright.
    tried, refused = 2, 0
    for alias in (
        world.deal_a.replace("-", ""),
        world.deal_a.replace("-", "")[:4] + "-" + world.deal_a.replace("-", "")[4:],
    ):
        answer = await ana.request({"type": "subscribe", "topic": f"deal:{alias}"})
        refused += error_code(answer) == "bad_frame"
    assert refused == tried
    ledger.record("deal id case and uuid aliases", tried=tried + 1, refused=refused + 1)


@pytest.mark.parametrize(
    "field, value",
    [
        ("mutationId", "m-1\n"),
        ("mutationId", "m-1\x00"),
        ("id", "r-1\n"),
    ],
)
async def test_ids_with_newlines_or_control_characters_are_refused_and_change_nothing(
    ana: Client, world: World, redis_client: aioredis.Redis, key_prefix: str, field: str, value: str
) -> None:
    before = await redis_keys(redis_client, key_prefix)
    frame: dict[str, Any] = {
        "type": "mutate",
        "id": "r-ctl",
        "name": "create",
        "mutationId": "m-ok",
        "args": {"dealId": world.deal_a, "projectId": world.project_a, "title": "T"},
    }
    frame[field] = value
    await ana.send(frame)
    answer = await ana.expect(type="error")
    assert answer["error"]["code"] == "bad_frame"
    assert answer.get("id") in (None, "r-ctl")
    assert await redis_keys(redis_client, key_prefix) == before


@pytest.mark.parametrize(
    "change",
    [
        {"expectedRevision": "1"},
        {"expectedRevision": True},
        {"expectedRevision": 2**64 + 1},
        {"args": {"title": 1}},
        {"args": {"gatheredContext": {"n": 2**64 + 1}}},
        {"args": {"gatheredContext": {"n": -(2**53) - 2}}},
    ],
)
async def test_wrongly_typed_or_huge_values_are_refused_not_coerced(
    ana: Client, world: World, ledger: Ledger, change: dict[str, Any]
) -> None:
    made = await ana.mutate("create", {"dealId": world.deal_a, "projectId": world.project_a, "title": "T"})
    cim_id = made["cimId"]
    frame: dict[str, Any] = {
        "type": "mutate",
        "name": "updateState",
        "mutationId": f"m-{uuid.uuid4()}",
        "args": {"cimId": cim_id, "title": "changed"},
        "expectedRevision": 1,
    }
    for key, value in change.items():
        if key == "args":
            frame["args"] = {**frame["args"], **value}
        else:
            frame[key] = value
    answer = await ana.request(frame)
    assert error_code(answer) in ("bad_frame", "invalid_args"), answer
    doc = await ana.request({"type": "query", "name": "get", "args": {"cimId": cim_id}})
    assert doc["result"]["revision"] == 1 and doc["result"]["cim"]["title"] == "T"
    ledger.attacks.setdefault("coerced or huge values", {"tried": 0, "refused": 0})
    ledger.attacks["coerced or huge values"]["tried"] += 1
    ledger.attacks["coerced or huge values"]["refused"] += 1


async def test_every_error_frame_is_valid_against_the_schema_and_names_its_request(
    hub: HubProcess, ana: Client, world: World, ledger: Ledger
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        schema = (await http.get(hub.url + "/v1/schema")).json()
    validator = jsonschema.Draft202012Validator(schema["server"])
    frames = [
        {"type": "subscribe", "id": "x" * 65, "topic": "cim:c"},  # an id too long to echo
        {"type": "subscribe", "id": "r-ok", "topic": "cim:{bad}"},
        {"type": "query", "id": "r-q", "name": "nope"},
        {
            "type": "mutate",
            "id": "r-big",
            "name": "create",
            "mutationId": "m-big",
            "args": {"dealId": world.deal_a, "projectId": world.project_a, "title": "x" * 70_000},
        },  # over 64 KiB
    ]
    for frame in frames:
        await ana.send(frame)
        answer = await ana.expect(type="error")
        validator.validate(answer)
        expected_id = frame["id"] if len(frame["id"]) <= 64 else None
        assert answer.get("id") == expected_id, answer
    ledger.record("error frames off schema or without request id", tried=len(frames), refused=len(frames))


async def test_an_absurd_exp_is_a_clean_401_over_http_and_websocket(
    hub: HubProcess, signer: Signer, world: World, ledger: Ledger
) -> None:
    tried = refused = 0
    for exp in (10**400, 1e308, "soon", -(10**30)):
        token = _sign_raw(signer, world.ana, exp)
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                hub.url + "/v1/query",
                headers={"authorization": f"Bearer {token}"},
                json={"name": "listByUser", "args": {"userId": world.ana}},
            )
        tried += 1
        body = response.json()
        refused += response.status_code == 401 and body["error"]["code"] in ("unauthenticated", "token_expired")
    assert refused == tried
    assert "Traceback" not in hub.log_path.read_text()
    ledger.record("absurd exp claims", tried=tried, refused=refused)


def _sign_raw(signer: Signer, user: str, exp: Any) -> str:
    """A validly signed ES256 token with this `exp`, serialized by hand (10**400 is valid JSON)."""
    now = int(time.time())
    claims = {
        "iss": signer.gateway.issuer,
        "aud": "authenticated",
        "role": "authenticated",
        "sub": user,
        "iat": now,
        "exp": exp,
    }
    token = jws.serialize_compact({"alg": "ES256", "kid": signer.key.kid}, json.dumps(claims).encode(), signer.key)
    signer.ledger.secrets.add(token)
    return token
