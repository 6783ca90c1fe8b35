"""Load, replicas and the checker of the chaos suite: real hub processes on a real redis-server.

* `Writer`: sends mutations (each adds one key to the CIM's gatheredContext, named by its mutation
  id), retrying each with the same mutation id until acknowledged, across hubs; records every ack.
* `RawFollower`: a plain `websockets` subscriber following the protocol's rules by hand (resume with
  the commit id, reset snapshots, resubscribe on a retryable end, reconnect to another hub).
* `ClientFollower`: the project's Python client (cimhub.clients.Client) holding a subscription.
* `check`: every acknowledged mutation is in the final document exactly once (or, where the scenario
  may lose writes, visibly gone: every replica was reset onto the stored document), the patch log
  replays to the document, and every replica equals it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import websockets
from hubproc import HubProcess

from cimhub.clients.client import Client
from cimhub.clients.subscription import Subscription
from cimhub.protocol.patch import apply


@dataclass
class Ledger:
    """What the writers were told."""

    acked: dict[str, int] = field(default_factory=dict)
    """mutation id -> acknowledged revision"""
    attempts: int = 0
    refusals: int = 0
    """Retryable errors and transport failures, each followed by a retry with the same id."""
    longest_wait_s: float = 0.0
    """Longest time one mutation took from its first send to its acknowledgement (recovery time)."""


class Writer:
    def __init__(self, name: str, hubs: list[HubProcess], cim: str, ledger: Ledger) -> None:
        self.name = name
        self.hubs = hubs
        self.cim = cim
        self.ledger = ledger

    async def run(self, stop: asyncio.Event, *, give_up_s: float = 60.0) -> None:
        clients = [
            httpx.AsyncClient(base_url=h.url, timeout=10, headers={"authorization": f"Bearer {h.token('u1')}"})
            for h in self.hubs
        ]
        try:
            for n in itertools.count():
                if stop.is_set():
                    return
                mutation_id = f"{self.name}-{n}"
                body = {
                    "name": "updateState",
                    "args": {"cimId": self.cim, "gatheredContext": {mutation_id: n}},
                    "mutationId": mutation_id,
                }
                started = time.monotonic()
                for attempt in itertools.count():
                    client = clients[(n + attempt) % len(clients)]
                    self.ledger.attempts += 1
                    try:
                        response = await client.post("/v1/mutate", json=body)
                        if response.status_code == 200:
                            self.ledger.acked[mutation_id] = response.json()["revision"]
                            break
                        error = response.json()["error"]
                        if not error["retryable"]:
                            return  # e.g. not_found after Redis came back empty: nothing acknowledged
                    except httpx.HTTPError:
                        pass
                    self.ledger.refusals += 1
                    if time.monotonic() - started > give_up_s:
                        return
                    await asyncio.sleep(0.05)
                self.ledger.longest_wait_s = max(self.ledger.longest_wait_s, time.monotonic() - started)
                await asyncio.sleep(0.01)
        finally:
            for client in clients:
                await client.aclose()


class RawFollower:
    """A replica kept by hand over a plain websocket: snapshot, patches in order, resume with the commit id."""

    def __init__(self, hubs: list[HubProcess], cim: str) -> None:
        self.hubs = hubs
        self.topic = f"cim:{cim}"
        self.doc: Any = None
        self.revision, self.epoch, self.commit = 0, "", ""
        self.loaded = False
        self.resets = 0
        self.reconnects = 0
        self.ended: str | None = None
        self.changed = asyncio.Event()
        self.last = ""

    def __repr__(self) -> str:  # what a failed check prints
        return (
            f"RawFollower(r{self.revision}, loaded={self.loaded}, resets={self.resets}, "
            f"reconnects={self.reconnects}, ended={self.ended}, last={self.last})"
        )

    def resume(self) -> dict[str, Any] | None:
        if not self.loaded:
            return None
        return {"revision": self.revision, "epoch": self.epoch, "commit": self.commit}

    async def run(self, stop: asyncio.Event) -> None:
        for turn in itertools.count():
            if stop.is_set() or self.ended is not None:
                return
            hub = self.hubs[turn % len(self.hubs)]
            try:
                await self._session(hub, stop)
            except (TimeoutError, OSError, websockets.WebSocketException):
                pass
            self.reconnects += 1
            await asyncio.sleep(0.1)

    async def _session(self, hub: HubProcess, stop: asyncio.Event) -> None:
        async with websockets.connect(hub.ws_url, open_timeout=5, close_timeout=1) as ws:
            await ws.send(orjson.dumps({"type": "auth", "token": hub.token("u1")}).decode())
            await self._subscribe(ws)
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                frame = orjson.loads(raw)
                kind = frame["type"]
                if kind != "ping":
                    self.last = str(frame)[:300]
                if kind == "ping":
                    await ws.send(orjson.dumps({"type": "pong", "ts": frame.get("ts")}).decode())
                elif kind == "snapshot":
                    self.doc, self.revision, self.epoch = frame["data"], frame["revision"], frame["epoch"]
                    self.commit, self.loaded = frame.get("commit", ""), True
                    self.resets += bool(frame["reset"])
                elif kind == "patch":
                    if frame["epoch"] != self.epoch or frame["revision"] != self.revision + 1:
                        await self._resubscribe(ws)  # rule 1: never apply out of order
                        continue
                    if frame.get("deleted"):
                        self.ended = "deleted"
                        return
                    self.doc = apply(self.doc, frame["ops"])
                    self.revision, self.commit = frame["revision"], frame.get("commit", "")
                elif kind in ("unsubscribed", "error"):
                    error = frame.get("error") or {}
                    if frame.get("id", "").startswith("u"):
                        continue  # the answer to our own unsubscribe
                    if not error.get("retryable", False):
                        self.ended = error.get("code", "ended")
                        return
                    await asyncio.sleep(0.2)
                    await self._resubscribe(ws)
                self.changed.set()

    async def _subscribe(self, ws: Any) -> None:
        frame: dict[str, Any] = {"type": "subscribe", "id": f"s{uuid.uuid4().hex[:8]}", "topic": self.topic}
        resume = self.resume()
        if resume is not None:
            frame["resume"] = resume
        await ws.send(orjson.dumps(frame).decode())

    async def _resubscribe(self, ws: Any) -> None:
        await ws.send(
            orjson.dumps({"type": "unsubscribe", "id": f"u{uuid.uuid4().hex[:8]}", "topic": self.topic}).decode()
        )
        await self._subscribe(ws)


class ClientFollower:
    """The project's client holding one subscription (it reconnects and resumes by itself)."""

    def __init__(self, hub: HubProcess, cim: str) -> None:
        self.hub = hub
        self.topic = f"cim:{cim}"
        self.sub: Subscription | None = None
        self.resets = 0
        self.client: Client | None = None

    async def start(self) -> None:
        self.client = Client(self.hub.url, token=self.hub.token("u1"), retry_limit=1_000)
        await self.client.connect()
        self.sub = await self.client.subscribe(self.topic, timeout=20)
        self._counting = asyncio.ensure_future(self._count_resets(self.sub))

    async def _count_resets(self, sub: Subscription) -> None:
        with contextlib.suppress(Exception):
            async for change in sub:
                self.resets += change.reset

    @property
    def doc(self) -> Any:
        return None if self.sub is None else self.sub.document

    @property
    def commit(self) -> str | None:
        return None if self.sub is None else self.sub.commit

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()


@dataclass
class Verdict:
    acked: int
    lost: list[str]
    duplicated: list[str]
    divergent: list[str]
    revision: int
    resets: int


async def stored(hub: HubProcess, cim: str) -> dict[str, Any] | None:
    async with httpx.AsyncClient(
        base_url=hub.url, timeout=10, headers={"authorization": f"Bearer {hub.token('u1')}"}
    ) as http:
        got = await http.post("/v1/query", json={"name": "get", "args": {"cimId": cim}})
        if got.status_code == 404:
            return None
        assert got.status_code == 200, got.text
        log = await http.post("/v1/query", json={"name": "patches", "args": {"cimId": cim, "limit": 10_000}})
        assert log.status_code == 200, log.text
        return {**got.json()["result"], "patches": log.json()["result"]["patches"]}


async def check(hub: HubProcess, cim: str, ledger: Ledger, followers: list[Any], *, settle_s: float = 30.0) -> Verdict:
    """Compare what was acknowledged and what every replica holds with what Redis holds."""
    state = await stored(hub, cim)
    assert state is not None, "the CIM is gone"
    doc, patches = state["cim"], state["patches"]
    replayed: Any = None
    for patch in patches:
        replayed = apply(replayed, patch["ops"])
    assert replayed == doc, "the patch log does not replay to the stored document"
    assert [p["rev"] for p in patches] == list(range(1, state["revision"] + 1))
    logged = [p.get("mutationId") for p in patches]
    duplicated = sorted({m for m in logged if m is not None and logged.count(m) > 1})
    in_doc = set(doc.get("gatheredContext") or {})
    lost = sorted(m for m in ledger.acked if m not in in_doc)
    # Every replica settles on the stored document (bounded wait: replicas catch up asynchronously).
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        if all(getattr(f, "ended", None) or f.doc == doc for f in followers):
            break
        await asyncio.sleep(0.1)
    divergent = [
        f"{f!r} (stored r{state['revision']})" for f in followers if not getattr(f, "ended", None) and f.doc != doc
    ]
    resets = sum(f.resets for f in followers)
    return Verdict(len(ledger.acked), lost, duplicated, divergent, state["revision"], resets)
