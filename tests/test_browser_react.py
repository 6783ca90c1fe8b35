"""A React app on another origin installs the npm package from a packed tarball and works live.

`npm pack` turns clients/js into the tarball a registry would serve; a fresh
app in a temporary folder `npm install`s it with react and react-dom from the
npm registry, type-checks tests/js/react-app/App.tsx against the package's
types (including two calls the types must refuse), bundles it with esbuild,
and serves it from its own port: a different origin from the hub, which lists
it in CIMHUB_ALLOWED_ORIGINS. Chromium then shows a live CIM in two components,
edits it optimistically, unmounts one component and checks the other stays
live, shows who is on the CIM with usePresence (and leaves on unmount), and
calls the HTTP API across origins (CORS).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browserkit import ROOT, WAIT_MS, browser, falcon, mutate
from conftest import need
from hubproc import start_hub

from cimhub.clients.client import Client
from cimhub.clients.subscription import Subscription
from cimhub.server.embedded import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PACKAGE = ROOT / "clients" / "js"
APP = ROOT / "tests" / "js" / "react-app"


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, (
        f"{' '.join(argv)} exited with {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def react_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test app, installed from the packed package and built; returns the folder to serve."""
    npm = need("npm")
    need("node")
    work = tmp_path_factory.mktemp("react-app")
    tarball = _run([npm, "pack", "--silent", "--pack-destination", str(work)], PACKAGE).strip().splitlines()[-1]
    for name in ("App.tsx", "index.html", "tsconfig.json"):
        shutil.copy(APP / name, work / name)
    (work / "package.json").write_text('{"name": "cimhub-react-test-app", "private": true, "type": "module"}\n')
    _run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            f"./{tarball}",
            "react@19",
            "react-dom@19",
            "@types/react@19",
            "@types/react-dom@19",
        ],
        work,
        timeout=400,
    )
    installed = work / "node_modules" / "@cimhub" / "client"
    assert (installed / "dist" / "react.d.ts").exists(), "the tarball carries the built types"
    assert not (installed / "node_modules").exists(), "the core has no runtime dependencies"
    # The package's own dev tools (not the app's dependencies) check and bundle the app.
    _run([str(PACKAGE / "node_modules" / ".bin" / "tsc"), "-p", "tsconfig.json"], work)
    public = work / "public"
    public.mkdir()
    shutil.copy(work / "index.html", public / "index.html")
    _run(
        [
            str(PACKAGE / "node_modules" / ".bin" / "esbuild"),
            "App.tsx",
            "--bundle",
            "--format=esm",
            "--jsx=automatic",
            f"--outfile={public / 'app.js'}",
            "--log-level=warning",
        ],
        work,
    )
    return public


@contextlib.contextmanager
def static_server(folder: Path) -> Iterator[str]:
    """Serve `folder` on a loopback port of its own: the app's origin."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def members_until(people: Subscription, check: Any) -> None:
    """Wait until the presence map, as actor -> name, satisfies `check`."""

    def names() -> dict[str, Any]:
        return {m["actor"]: m["state"].get("name") for m in (people.document or {}).values()}

    while not check(names()):
        try:
            await asyncio.wait_for(people.__anext__(), WAIT_MS / 1000)
        except TimeoutError:
            pytest.fail(f"presence never matched: {names()}")


async def test_react_app_on_another_origin_shows_and_mutates_a_live_cim(
    react_app: Path,
    redis_url: str,
    key_prefix: str,
) -> None:
    with static_server(react_app) as origin, start_hub(redis_url, key_prefix, allowed_origins=[origin]) as hub:
        token = hub.token("user-1")
        async with httpx.AsyncClient(
            base_url=hub.url, headers={"authorization": f"Bearer {token}"}, timeout=10
        ) as http:
            cim_id = await falcon(http)
            async with browser() as chromium:
                page = await chromium.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                await page.goto(f"{origin}/index.html?hub={hub.url}&token={token}&cim={cim_id}&deal=deal-7")
                for name in ("first", "second"):
                    await page.locator(f"#{name} li[data-slide-id='slide-3']").wait_for(timeout=WAIT_MS)
                await page.locator("#suspended").filter(has_text="Project Falcon").wait_for(timeout=WAIT_MS)
                assert await page.locator("#connection").text_content() == "live"
                assert await page.locator("#deal li").all_text_contents() == ["Project Falcon"]

                # Optimistic: React renders a click's update in a microtask of the same task, so the DOM
                # read after only microtasks shows the page before any frame from the hub was handled.
                shown = await page.evaluate("""async () => {
                  document.querySelector('#first button.rename').click();
                  for (let i = 0; i < 20; i += 1) await Promise.resolve();
                  const second = document.querySelector('#second');
                  return [second.querySelector("li[data-slide-id='slide-1']").textContent, second.dataset.pending];
                }""")
                assert shown == ["Renamed by first", "1"]
                await page.wait_for_function(
                    "document.querySelector('#second').dataset.pending === '0'", timeout=WAIT_MS
                )
                stored = (await http.post("/v1/query", json={"name": "get", "args": {"cimId": cim_id}})).json()
                assert stored["result"]["cim"]["slides"][0]["title"] == "Renamed by first"

                # One component unmounts; the other, on the same topic, stays live.
                await page.locator("#unmount-first").click()
                await page.locator("#first").wait_for(state="detached", timeout=WAIT_MS)
                await mutate(
                    http, "updateSlide", cimId=cim_id, slide={"id": "slide-2", "title": "Changed after the unmount"}
                )
                await (
                    page.locator("#second li[data-slide-id='slide-2']")
                    .filter(has_text="Changed after the unmount")
                    .wait_for(timeout=WAIT_MS)
                )

                # usePresence (under StrictMode): the app shows itself and a Python client, and leaves on unmount.
                async with Client(hub.url, token=hub.token("user-2")) as bob:
                    people = await bob.subscribe(f"presence:{cim_id}")
                    await bob.set_presence(cim_id, {"activity": "editing", "slideId": "slide-1", "name": "Bob"})
                    await page.locator("#presence li[data-self]").filter(has_text="React app").wait_for(timeout=WAIT_MS)
                    await (
                        page.locator('#presence li[data-actor="user-2"]')
                        .filter(has_text="Bob")
                        .wait_for(timeout=WAIT_MS)
                    )
                    await members_until(people, lambda names: names == {"user-1": "React app", "user-2": "Bob"})
                    await page.locator("#leave").click()
                    await members_until(people, lambda names: names == {"user-2": "Bob"})

                # The HTTP API across origins: allowed by the hub's CORS list.
                await page.locator("#http").click()
                await page.locator("#cors").filter(has_text="Project Falcon").wait_for(timeout=WAIT_MS)
                assert errors == []


async def test_cors_answers_only_the_listed_origins(redis_url: str, key_prefix: str) -> None:
    allowed = "http://app.example.test:5173"
    with start_hub(redis_url, key_prefix, allowed_origins=[allowed]) as hub:
        async with httpx.AsyncClient(base_url=hub.url, timeout=10) as http:
            preflight = {
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization,content-type",
            }
            ok = await http.options("/v1/mutate", headers={"origin": allowed, **preflight})
            assert ok.status_code == 200
            assert ok.headers["access-control-allow-origin"] == allowed
            assert "authorization" in ok.headers["access-control-allow-headers"].lower()
            refused = await http.options("/v1/mutate", headers={"origin": "http://evil.example.test", **preflight})
            assert "access-control-allow-origin" not in refused.headers
            static = await http.get("/static/cimhub.js", headers={"origin": allowed})
            assert static.status_code == 200
            assert static.headers["access-control-allow-origin"] == allowed
            board = await http.get("/")
            assert board.status_code == 200 and "/static/board.js" in board.text
