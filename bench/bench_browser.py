"""Mutation-to-DOM latency of the live CIM board in headless Chromium.

Usage::

    .venv/bin/python bench/bench_browser.py            # 60 edits of each kind
    .venv/bin/python bench/bench_browser.py --edits 20

One hub (``python -m cimhub.server``, dev mode) on an embedded redis-server,
the board (server/static/index.html + board.js) open in Debian's Chromium via
Playwright. Three figures, each over the same run:

* **socket** (the baseline): a mutation committed over ``POST /v1/mutate``, to
  its patch frame arriving at a bare `websockets` client subscribed to the CIM.
  What any client could see at best.
* **board**: the same mutation, to the slide's heading changing in the board's
  DOM (a MutationObserver stamps ``Date.now()``; the script stamps
  ``time.time()`` before the POST; one machine, one clock). The difference to
  *socket* is the browser's share: frame decode, patch, render.
* **optimistic**: an edit made in the page (form submit), to the DOM showing
  it (local, before any answer), and to the hub's patch confirming it.

Figures are milliseconds: p50, p95 and max. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import async_playwright
from websockets.asyncio.client import connect

from cimhub.server.auth.tokens import DevTokenIssuer
from cimhub.server.embedded import embedded_redis, free_port
from cimhub.server.settings import Settings

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-first-run",
]

OBSERVE = """() => {
  window.benchSeen = [];
  const target = document.querySelector('li[data-slide-id="slide-1"] .slide-title');
  new MutationObserver(() => window.benchSeen.push({text: target.textContent, at: Date.now()}))
    .observe(target, {childList: true, characterData: true, subtree: true});
}"""

LOCAL_EDIT = """async (title) => {
  const li = document.querySelector('li[data-slide-id="slide-2"]');
  li.querySelector('button.edit').click();
  li.querySelector('input[name="title"]').value = title;
  const started = performance.now();
  li.querySelector('form').requestSubmit();
  const shown = li.querySelector('.slide-title').textContent === title ? performance.now() - started : null;
  while (li.dataset.pending) await new Promise((r) => setTimeout(r, 1));
  return [shown, performance.now() - started];
}"""


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered):8.1f} {p95:8.1f} {ordered[-1]:8.1f}"


async def run(edits: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cimhub-bench-browser-") as data_dir:
        async with embedded_redis(Path(data_dir), port=free_port()) as redis_server:
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("CIMHUB_")}
            env.update(
                {
                    "REDIS_URL": redis_server.url,
                    "CIMHUB_PORT": str(port),
                    "CIMHUB_DEV_MODE": "true",
                    "CIMHUB_KEY_PREFIX": f"bbr{uuid.uuid4().hex[:8]}",
                }
            )
            with open(Path(data_dir) / "hub.log", "wb") as log:  # noqa: ASYNC230 - a local file, once
                hub = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "cimhub.server", env=env, stdout=log, stderr=subprocess.STDOUT
                )
            base = f"http://127.0.0.1:{port}"
            try:
                async with httpx.AsyncClient(timeout=1) as probe:
                    for _ in range(600):
                        try:
                            if (await probe.get(base + "/readyz")).status_code == 200:
                                break
                        except httpx.HTTPError:
                            pass
                        await asyncio.sleep(0.05)
                await measure(base, DevTokenIssuer(Settings().dev_secret).mint("user-1"), edits)
            finally:
                hub.terminate()
                await hub.wait()


async def measure(base: str, token: str, edits: int) -> None:
    async with httpx.AsyncClient(base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=10) as http:

        async def mutate(name: str, **args: Any) -> dict[str, Any]:
            response = await http.post("/v1/mutate", json={"name": name, "args": args, "mutationId": str(uuid.uuid4())})
            response.raise_for_status()
            return response.json()  # type: ignore[no-any-return]

        cim_id = (await mutate("create", dealId="deal-1", projectId="p-1", title="Bench"))["cimId"]
        await mutate("saveBuyerPersona", cimId=cim_id, persona={"type": "Strategic", "motivations": [], "concerns": []})
        await mutate(
            "saveHeroContext",
            cimId=cim_id,
            heroContext={"selectedHero": "Hero", "investmentThesis": {"asset": "a", "timing": "t", "opportunity": "o"}},
        )
        await mutate("createOutline", cimId=cim_id, outline=[{"id": "s1", "title": "S1", "description": "d"}])
        for n in (1, 2):
            await mutate(
                "updateSlide", cimId=cim_id, slide={"id": f"slide-{n}", "sectionId": "s1", "title": f"Slide {n}"}
            )

        received: dict[str, float] = {}
        ws = await connect(base.replace("http", "ws") + "/v1/ws", subprotocols=["cimhub.json.v1"])  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "auth", "token": token}))
        await ws.send(json.dumps({"type": "subscribe", "id": "s1", "topic": f"cim:{cim_id}"}))

        async def listen() -> None:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "patch":
                    for op in frame["ops"]:
                        if op["path"] == "/slides/0/title":
                            received[op["value"]] = time.time() * 1000

        listener = asyncio.create_task(listen())
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = await browser.new_page()
            await page.goto(f"{base}/?cim={cim_id}#token={token}")
            await page.locator('li[data-slide-id="slide-1"]').wait_for()
            await page.evaluate(OBSERVE)
            socket_ms: list[float] = []
            board_ms: list[float] = []
            for i in range(edits):
                title = f"Remote edit {i}"
                sent = time.time() * 1000
                await mutate("updateSlide", cimId=cim_id, slide={"id": "slide-1", "title": title})
                while True:
                    seen = await page.evaluate("window.benchSeen")
                    hit = next((s for s in seen if s["text"] == title), None)
                    if hit and title in received:
                        break
                    await asyncio.sleep(0.005)
                board_ms.append(hit["at"] - sent)
                socket_ms.append(received[title] - sent)
                await asyncio.sleep(0.05)
            local_ms: list[float] = []
            confirm_ms: list[float] = []
            for i in range(edits):
                shown, confirmed = await page.evaluate(LOCAL_EDIT, f"Local edit {i}")
                local_ms.append(shown)
                confirm_ms.append(confirmed)
            await browser.close()
        listener.cancel()
        await ws.close()

    print(f"{edits} edits each; milliseconds")
    print(f"{'path':<44} {'p50':>8} {'p95':>8} {'max':>8}")
    print(f"{'socket: POST -> patch frame (baseline)':<44} {summary(socket_ms)}")
    print(f"{'board: POST -> slide heading in the DOM':<44} {summary(board_ms)}")
    print(f"{'optimistic: submit -> DOM (local)':<44} {summary(local_ms)}")
    print(f"{'optimistic: submit -> confirmed by the hub':<44} {summary(confirm_ms)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=60)
    asyncio.run(run(parser.parse_args().edits))


if __name__ == "__main__":
    main()
