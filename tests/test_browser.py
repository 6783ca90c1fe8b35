"""The browser side end to end: headless Chromium shows a CIM live from a real hub.

A real hub process (tests/hubproc.py) on the test Redis serves the viewer page
(/static/index.html, server/static/viewer.js and cimhub.js). Chromium, driven
over the Chrome DevTools Protocol with the `websockets` library, opens it; the
test commits mutations over HTTP POST /v1/mutate and waits for each to show in
the page's DOM. It also drops the page's socket to check the client resumes
from the patch log, and saves a screenshot to /tmp/cimhub-viewer.png.

Without Chromium the test skips locally and fails under CI=true.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import need
from hubproc import HubProcess, start_hub
from websockets.asyncio.client import ClientConnection, connect

SCREENSHOT = Path("/tmp/cimhub-viewer.png")
WAIT_S = 10.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

# Flags for a headless Chromium on a machine without network access: the
# background-networking ones stop it from calling home (which this machine's
# closed network refuses); a fresh profile keeps runs independent.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--window-size=1100,1000",
    "--remote-debugging-port=0",
]


@contextlib.contextmanager
def chromium() -> Iterator[str]:
    """Start headless Chromium; yields its browser-level DevTools WebSocket URL."""
    binary = need("chromium")
    with tempfile.TemporaryDirectory(prefix="cimhub-chromium-", ignore_cleanup_errors=True) as profile:
        log_path = Path(profile) / "chromium.log"
        with open(log_path, "wb") as log:
            # Its own process group, so the helpers it forks can be stopped with it.
            process = subprocess.Popen(
                [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            # With port 0 Chromium picks a port and writes it, and the browser
            # target's path, to DevToolsActivePort in the profile.
            active = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 20
            while not (active.exists() and len(active.read_text().split()) >= 2):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"chromium did not start:\n{log_path.read_text(errors='replace')[-2000:]}")
                time.sleep(0.05)
            port, path = active.read_text().split()[:2]
            yield f"ws://127.0.0.1:{port}{path}"
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            # Helpers (zygote, utility processes) may outlive the browser for a moment and
            # keep writing to the profile; stop this browser's group before it is deleted.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            time.sleep(0.1)


class Cdp:
    """A minimal Chrome DevTools Protocol client: commands by id, one page session, console kept."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.console: list[str] = []
        self.session: str | None = None
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            future = self.waiting.pop(message.get("id", -1), None)
            if future is not None and not future.done():
                if "error" in message:
                    future.set_exception(RuntimeError(f"CDP error: {message['error']}"))
                else:
                    future.set_result(message.get("result", {}))
            elif message.get("method") == "Runtime.consoleAPICalled":
                args = message["params"]["args"]
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
            elif message.get("method") == "Runtime.exceptionThrown":
                self.console.append(f"exception: {message['params']['exceptionDetails']}")

    async def send(self, method: str, params: dict[str, Any] | None = None, *, page: bool = True) -> Any:
        request_id = next(self.ids)
        message: dict[str, Any] = {"id": request_id, "method": method, "params": params or {}}
        if page and self.session is not None:
            message["sessionId"] = self.session
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting[request_id] = future
        await self.ws.send(json.dumps(message))
        return await asyncio.wait_for(future, 15)

    async def open_page(self) -> None:
        target = await self.send("Target.createTarget", {"url": "about:blank"}, page=False)
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, page=False
        )
        self.session = attached["sessionId"]
        await self.send("Page.enable")
        await self.send("Runtime.enable")

    async def navigate(self, url: str) -> None:
        await self.send("Page.navigate", {"url": url})

    async def evaluate(self, expression: str) -> Any:
        answer = await self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in answer:
            raise RuntimeError(f"page script failed: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    async def aclose(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


@contextlib.asynccontextmanager
async def devtools(browser_url: str) -> AsyncIterator[Cdp]:
    async with connect(browser_url, max_size=64 * 1024 * 1024) as ws:
        cdp = Cdp(ws)
        try:
            await cdp.open_page()
            yield cdp
        finally:
            await cdp.aclose()


# What the test reads from the page: the viewer's DOM, plus its client's counters.
PAGE_STATE = """(() => {
  const byId = (id) => document.getElementById(id);
  const text = (id) => byId(id)?.textContent ?? null;
  const viewer = window.cimhubViewer;
  return {
    title: text("title"),
    stage: byId("stage")?.dataset.value ?? null,
    status: byId("status")?.dataset.value ?? null,
    revision: text("revision"),
    connection: byId("connection")?.dataset.state ?? null,
    persona: text("persona"),
    hero: text("hero"),
    notices: text("notices"),
    sections: [...document.querySelectorAll("section[data-section-id] h3")].map((h) => h.textContent),
    slides: [...document.querySelectorAll("li[data-slide-id]")].map((li) => ({
      id: li.dataset.slideId,
      title: li.querySelector(".slide-title").textContent,
      status: li.querySelector(".slide-status").dataset.status,
      stale: li.querySelector(".stale-reason")?.textContent ?? null,
    })),
    clientState: viewer?.client.state ?? null,
    snapshots: viewer?.snapshots ?? null,
    patches: viewer?.patches ?? null,
  };
})()"""


class Viewer:
    """The page under test, and the hub it watches."""

    def __init__(self, cdp: Cdp, hub: HubProcess, http: httpx.AsyncClient, cim_id: str) -> None:
        self.cdp = cdp
        self.hub = hub
        self.http = http
        self.cim_id = cim_id
        self.state: dict[str, Any] = {}

    async def wait_for(self, what: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Poll the page until `check(state)` holds; fail with the last state, console and hub log."""
        deadline = time.monotonic() + WAIT_S
        while True:
            self.state = await self.cdp.evaluate(PAGE_STATE)
            if check(self.state):
                return self.state
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the page did not show {what} within {WAIT_S:.0f}s\n"
                    f"page: {json.dumps(self.state, indent=1)}\n"
                    f"console: {self.cdp.console[-20:]}\nhub log:\n{self.hub.log_tail(20)}"
                )
            await asyncio.sleep(0.05)

    async def mutate(self, name: str, **args: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/v1/mutate", json={"name": name, "args": {"cimId": self.cim_id, **args}, "mutationId": str(uuid.uuid4())}
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


async def test_viewer_shows_every_change_live(redis_url: str, key_prefix: str) -> None:
    need("chromium")
    with start_hub(redis_url, key_prefix) as hub, chromium() as browser_url:
        token = hub.token("user-1")
        async with (
            httpx.AsyncClient(base_url=hub.url, headers={"authorization": f"Bearer {token}"}, timeout=10) as http,
            devtools(browser_url) as cdp,
        ):
            created = await http.post("/v1/mutate", json={
                "name": "create", "mutationId": str(uuid.uuid4()),
                "args": {"dealId": "deal-7", "projectId": "project-3", "title": "Project Falcon"},
            })
            assert created.status_code == 200, created.text
            cim_id = created.json()["cimId"]
            page = Viewer(cdp, hub, http, cim_id)
            await cdp.navigate(f"{hub.url}/static/index.html?cim={cim_id}&token={token}")

            state = await page.wait_for("the new CIM", lambda s: s["title"] == "Project Falcon" and s["revision"] == "1")
            assert (state["stage"], state["status"], state["connection"]) == ("welcome", "draft", "live")
            assert state["slides"] == []

            await page.mutate("saveBuyerPersona", persona={
                "type": "Strategic acquirer", "motivations": ["market share"], "concerns": ["integration risk"],
            })
            state = await page.wait_for("the buyer persona", lambda s: s["revision"] == "2")
            assert (state["stage"], state["status"], state["persona"]) == ("hero_concept", "in_progress", "Strategic acquirer")

            await page.mutate("saveHeroContext", heroContext={
                "selectedHero": "Category leader in cold-chain logistics",
                "investmentThesis": {"asset": "Fleet and depots", "timing": "Consolidating market", "opportunity": "Roll-up"},
            })
            state = await page.wait_for("the hero context", lambda s: s["revision"] == "3")
            assert (state["stage"], state["hero"]) == ("outline", "Category leader in cold-chain logistics")

            await page.mutate("createOutline", outline=[
                {"id": "overview", "title": "Overview", "description": "The company at a glance"},
                {"id": "market", "title": "Market", "description": "Size and growth"},
            ])
            state = await page.wait_for("the outline", lambda s: s["revision"] == "4")
            assert state["stage"] == "building_sections"
            assert state["sections"] == ["Overview", "Market"]

            await page.mutate("updateSlide", slide={
                "id": "slide-1", "sectionId": "overview", "title": "Company at a glance", "status": "approved",
            })
            await page.mutate("updateSlide", slide={"id": "slide-2", "sectionId": "market", "title": "A growing market"})
            state = await page.wait_for("two slides", lambda s: s["revision"] == "6")
            assert state["slides"] == [
                {"id": "slide-1", "title": "Company at a glance", "status": "approved", "stale": None},
                {"id": "slide-2", "title": "A growing market", "status": "draft", "stale": None},
            ]

            await page.mutate("updateState", title="Project Falcon (final)")
            await page.wait_for("the new title", lambda s: s["title"] == "Project Falcon (final)" and s["revision"] == "7")

            # Drop the page's socket: the client reconnects and resumes from revision 7,
            # so the change made meanwhile arrives as a patch, not a second snapshot.
            await cdp.evaluate("window.cimhubViewer.client._ws.close(4000, 'test drops the socket')")
            await page.wait_for("the client reconnecting", lambda s: s["clientState"] == "reconnecting")
            await page.mutate("updateSlide", slide={"id": "slide-2", "status": "approved"})
            state = await page.wait_for(
                "the change made while disconnected",
                lambda s: s["revision"] == "8" and s["connection"] == "live",
            )
            assert [slide["status"] for slide in state["slides"]] == ["approved", "approved"]
            assert state["snapshots"] == 1, "the client resumed from the patch log instead of taking a snapshot"

            await page.mutate("navigateToStage", targetStage="hero_concept")
            state = await page.wait_for("slides marked for review", lambda s: s["revision"] == "9")
            assert state["stage"] == "hero_concept"
            assert [(slide["id"], slide["status"], slide["stale"]) for slide in state["slides"]] == [
                ("slide-1", "needs_review", "hero concept changed"),
                ("slide-2", "needs_review", "hero concept changed"),
            ]
            assert "Outline needs review" in state["notices"]
            assert state["patches"] == 8

            shot = await cdp.send("Page.captureScreenshot", {"format": "png"})
            await asyncio.to_thread(SCREENSHOT.write_bytes, base64.b64decode(shot["data"]))
            assert (await asyncio.to_thread(SCREENSHOT.stat)).st_size > 10_000

            # The page explains what is wrong instead of staying blank.
            await cdp.navigate(f"{hub.url}/static/index.html?cim=no-such-cim&token={token}")
            state = await page.wait_for("a missing CIM", lambda s: "was not found" in (s["notices"] or ""))
            await cdp.navigate(f"{hub.url}/static/index.html")
            await page.wait_for("the missing parameters", lambda s: "Open this page as" in (s["notices"] or ""))
