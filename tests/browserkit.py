"""Shared parts of the Chromium tests: Playwright on Debian's Chromium, and a CIM to look at.

Playwright for Python drives the system Chromium (`/usr/bin/chromium`, no
browser download) with the flags a machine without outside network needs.
Without Chromium or Playwright the tests skip locally and fail under CI=true.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import need
from hubproc import HubProcess

ROOT = Path(__file__).resolve().parent.parent
# Screenshots of the board go to docs/ (shown in the README) when CIMHUB_SCREENSHOTS=docs; otherwise
# to a scratch folder, so an ordinary test run leaves the work tree as it found it.
DOCS = (
    ROOT / "docs" if os.environ.get("CIMHUB_SCREENSHOTS") == "docs" else Path(tempfile.mkdtemp(prefix="cimhub-shots-"))
)
WAIT_MS = 10_000
"""How long a page may take to show a change: generous, so a busy machine cannot fail a test."""

# The background-networking flags stop Chromium from calling home (this machine's
# closed network refuses it); Playwright adds its own profile and --headless.
CHROMIUM_ARGS = [
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
]


def playwright_module() -> Any:
    try:
        from playwright import async_api
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("playwright is not installed (pip install -e '.[test]')")
        pytest.skip("playwright is not installed")
    return async_api


@contextlib.asynccontextmanager
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium (Debian's own binary) driven by Playwright."""
    binary = need("chromium")
    async_api = playwright_module()
    async with async_api.async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=binary, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def mutate(http: httpx.AsyncClient, name: str, **args: Any) -> dict[str, Any]:
    response = await http.post("/v1/mutate", json={"name": name, "args": args, "mutationId": str(uuid.uuid4())})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def falcon(http: httpx.AsyncClient, *, slides: bool = True) -> str:
    """A CIM with persona, hero, a two-section outline and three slides with content; returns its id."""
    created = await mutate(http, "create", dealId="deal-7", projectId="project-3", title="Project Falcon")
    cim_id = str(created["cimId"])
    if not slides:
        return cim_id
    await mutate(
        http,
        "saveBuyerPersona",
        cimId=cim_id,
        persona={
            "type": "Strategic acquirer",
            "motivations": ["Market share in cold-chain"],
            "concerns": ["Integration risk"],
        },
    )
    await mutate(
        http,
        "saveHeroContext",
        cimId=cim_id,
        heroContext={
            "selectedHero": "Category leader in cold-chain logistics",
            "investmentThesis": {
                "asset": "Fleet and 14 depots",
                "timing": "Consolidating market",
                "opportunity": "Roll-up",
            },
        },
    )
    await mutate(
        http,
        "createOutline",
        cimId=cim_id,
        outline=[
            {"id": "overview", "title": "Company overview", "description": "The company at a glance"},
            {"id": "market", "title": "Market", "description": "Size, growth and share"},
        ],
    )
    await mutate(
        http,
        "updateSlide",
        cimId=cim_id,
        slide={
            "id": "slide-1",
            "sectionId": "overview",
            "title": "Company at a glance",
            "layoutType": "title_bullets",
            "components": [
                {
                    "type": "bullets",
                    "heading": "Highlights",
                    "bullets": ["Founded 1998", "EUR 120m revenue", "14 depots"],
                }
            ],
            "status": "approved",
        },
    )
    await mutate(
        http,
        "updateSlide",
        cimId=cim_id,
        slide={
            "id": "slide-2",
            "sectionId": "overview",
            "title": "Leadership",
            "components": ["A founder-led team of six."],
        },
    )
    await mutate(
        http,
        "updateSlide",
        cimId=cim_id,
        slide={
            "id": "slide-3",
            "sectionId": "market",
            "title": "A growing market",
            "components": [{"type": "text", "text": "Cold-chain demand grows 7% a year."}],
        },
    )
    return cim_id


async def open_board(
    chromium: Any,
    hub: HubProcess,
    path: str,
    token: str | None = None,
    *,
    context: Any = None,
    **options: Any,
) -> Any:
    """A page on `hub`'s board, in a fresh browser context unless `context` is given (to share its localStorage)."""
    page = await (context or await chromium.new_context(**options)).new_page()
    page.console_messages = []
    page.on("console", lambda m: page.console_messages.append(m.text))
    page.on("pageerror", lambda e: page.console_messages.append(f"page error: {e}"))
    await page.goto(f"{hub.url}{path}" + (f"#token={token}" if token else ""))
    return page


def cli(hub_url: str, token: str, *argv: str) -> dict[str, Any]:
    """Run the `cimhub` CLI against the hub and return its JSON output."""
    import json

    done = subprocess.run(
        [sys.executable, "-m", "cimhub.clients", "--url", hub_url, "--token", token, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


async def wait_until(check: Callable[[], Any], what: str, timeout_s: float = WAIT_MS / 1000) -> Any:
    """Poll an async check until it returns something truthy."""
    import asyncio

    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
