"""Attacks through the JWKS: a dripping endpoint, a failing one, an unknown kid before a rotation, a removed key."""

from __future__ import annotations

import asyncio
import json
import time

import websockets
from hubproc import HubProcess
from secworld import TIMEOUT, Gateway, Ledger, Signer, connect, production_hub, victim_round_trip

from pg import World

pytest_plugins = ["pg", "secworld"]


async def login_error(hub: HubProcess, token: str) -> dict[str, object]:
    """The error frame a refused login gets (the socket is then closed)."""
    async with websockets.connect(hub.ws_url, open_timeout=TIMEOUT, local_addr=("127.0.0.2", 0)) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert frame["type"] == "error", frame
    return frame["error"]  # type: ignore[no-any-return]


async def test_a_dripping_jwks_cannot_hold_logins_and_known_keys_never_wait(
    redis_url: str,
    key_prefix: str,
    gateway: Gateway,
    pg_database_url: str,
    ledger: Ledger,
    signer: Signer,
    world: World,
) -> None:
    gateway.control(jwks="drip", drip_s=2.0)  # 1 byte every 2 s: the set would take half an hour
    with production_hub(
        "postgres",
        redis_url=redis_url,
        key_prefix=key_prefix,
        gateway=gateway,
        database_url=pg_database_url,
        ledger=ledger,
        jwks_fetch_deadline_s=1.5,
        jwks_max_age_s=0.5,
    ) as hub:
        started = time.perf_counter()
        error = await login_error(hub, signer.token(world.ana))
        first_login_s = time.perf_counter() - started
        assert error["code"] == "unavailable" and error["retryable"] is True, error
        assert first_login_s < 10, first_login_s  # generous; without the deadline: minutes
        gateway.control(jwks="ok")
        await asyncio.sleep(0.5)  # past the refetch interval: the next login fetches the good set
        latencies = [await victim_round_trip(hub, signer.token(world.ana), world.deal_a, world.project_a)]
        # The set is now stale at every login and each refetch drips again: known keys do not wait for it.
        gateway.control(jwks="drip", drip_s=2.0)
        for _ in range(5):
            latencies.append(await victim_round_trip(hub, signer.token(world.ana), world.deal_a, world.project_a))
            await asyncio.sleep(0.3)
        gateway.control(jwks="ok")
    ledger.record("dripping JWKS", tried=6, refused=1, victim_latency_s=latencies)
    ledger.attacks["dripping JWKS"]["first_login_refused_after_s"] = round(first_login_s, 3)


async def test_an_unknown_kid_cannot_delay_a_rotation_and_a_removed_key_stops_working(
    redis_url: str,
    key_prefix: str,
    gateway: Gateway,
    pg_database_url: str,
    ledger: Ledger,
    signer: Signer,
    world: World,
) -> None:
    with production_hub(
        "postgres",
        redis_url=redis_url,
        key_prefix=key_prefix,
        gateway=gateway,
        database_url=pg_database_url,
        ledger=ledger,
        jwks_max_age_s=1.0,
        jwks_min_refetch_s=0.5,
    ) as hub:
        await victim_round_trip(hub, signer.token(world.ana), world.deal_a, world.project_a)
        # The attacker's made-up kid spends a fetch ...
        stranger = Signer.new_key()
        error = await login_error(hub, signer.token(world.bob, key=stranger))
        assert error["code"] in ("unauthenticated", "unavailable"), error
        # ... and Supabase rotates right after: the new key works within the refetch interval (retryable before).
        rotated = Signer.new_key()
        signer.publish(signer.key, rotated)
        token = signer.token(world.ana, key=rotated)
        deadline = time.monotonic() + 10
        while True:
            try:
                await victim_round_trip(hub, token, world.deal_a, world.project_a)
                break
            except AssertionError as refused:
                assert "'retryable': True" in str(refused), refused  # never a final "bad token"
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
        # The old key is removed from the JWKS: within max age (+ a fetch) it stops working.
        signer.publish(rotated)
        old = signer.token(world.ana)
        await asyncio.sleep(1.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                async with connect(hub, old):
                    pass
            except AssertionError as refused:
                if "unauthenticated" in str(refused):
                    break
                assert "'retryable': True" in str(refused), refused  # "not known yet": a fetch will settle it
            assert time.monotonic() < deadline, "a removed key kept working"
            await asyncio.sleep(0.2)
        # A JWKS endpoint answering 500 keeps the last good keys.
        gateway.control(jwks=500)
        await asyncio.sleep(1.2)
        await victim_round_trip(hub, signer.token(world.ana, key=rotated), world.deal_a, world.project_a)
        gateway.control(jwks="ok")
    ledger.record("unknown kid before a rotation; removed key; failing JWKS", tried=3, refused=3)
