"""The live CIM board in real headless Chromium (Playwright), against real hub processes and Redis.

Each test opens the board the hub serves at `/` (built from clients/js) and
changes the CIM from outside (the `cimhub` CLI, HTTP) or from the page, then
waits for the page's DOM. Waits are generous and assert what appears, never how
fast. With CIMHUB_SCREENSHOTS=docs the run saves screenshots of the board to docs/
(shown in the README): `CIMHUB_SCREENSHOTS=docs bash scripts/test tests/test_browser.py`.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from browserkit import DOCS, WAIT_MS, browser, cli, falcon, mutate, open_board
from hubproc import start_hub

from cimhub.server.embedded import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


async def slide_title(page: Any, slide_id: str) -> str:
    return await page.locator(f'li[data-slide-id="{slide_id}"] .slide-title').text_content()  # type: ignore[no-any-return]


async def test_board_shows_cli_changes_live_and_keeps_the_selection(redis_url: str, key_prefix: str) -> None:
    with start_hub(redis_url, key_prefix) as hub:
        token = hub.token("user-1")
        async with httpx.AsyncClient(
            base_url=hub.url, headers={"authorization": f"Bearer {token}"}, timeout=10
        ) as http:
            cim_id = await falcon(http)
            async with browser() as chromium:
                # The list at / shows the user's deals' CIMs, live.
                listing = await open_board(chromium, hub, "/", token)
                row = listing.locator(f'li[data-cim-id="{cim_id}"]')
                await row.locator(".cim-title").filter(has_text="Project Falcon").wait_for(timeout=WAIT_MS)
                cli(
                    hub.url,
                    token,
                    "mutate",
                    "updateState",
                    "--args",
                    f'{{"cimId": "{cim_id}", "title": "Project Falcon II"}}',
                )
                await row.locator(".cim-title").filter(has_text="Project Falcon II").wait_for(timeout=WAIT_MS)
                await listing.screenshot(path=str(DOCS / "board-list.png"))

                page = await open_board(chromium, hub, f"/?cim={cim_id}", token)
                await page.locator("#title").filter(has_text="Project Falcon II").wait_for(timeout=WAIT_MS)
                assert await page.locator("#persona-type").text_content() == "Strategic acquirer"
                assert await page.locator("#hero-text").text_content() == "Category leader in cold-chain logistics"
                assert await page.locator("#stages").get_attribute("data-current") == "building_sections"
                assert await page.locator('li[data-slide-id="slide-1"] .slide-body li').all_text_contents() == [
                    "Founded 1998",
                    "EUR 120m revenue",
                    "14 depots",
                ]
                progress = await page.locator('section[data-section-id="overview"] .progress').text_content()
                assert progress == "in progress · 1 of 2 slides approved"

                # Select slide 1's heading, then change slide 3 from the CLI: the selection survives
                # because only slide 3's nodes are rewritten.
                await page.evaluate("""() => {
                  const node = document.querySelector('li[data-slide-id="slide-1"] .slide-title').firstChild;
                  const range = document.createRange(); range.setStart(node, 0); range.setEnd(node, 7);
                  getSelection().removeAllRanges(); getSelection().addRange(range);
                  window.slideOne = document.querySelector('li[data-slide-id="slide-1"]');
                }""")
                cli(
                    hub.url,
                    token,
                    "mutate",
                    "updateSlide",
                    "--args",
                    f'{{"cimId": "{cim_id}", "slide": {{"id": "slide-3", "title": "A market growing 7% a year"}}}}',
                )
                await (
                    page.locator('li[data-slide-id="slide-3"] .slide-title')
                    .filter(has_text="A market growing 7% a year")
                    .wait_for(timeout=WAIT_MS)
                )
                assert await page.evaluate("getSelection().toString()") == "Company"
                assert await page.evaluate(
                    """() => window.slideOne === document.querySelector('li[data-slide-id="slide-1"]')"""
                )
                # What changed, when and by whom.
                assert await page.locator('li[data-slide-id="slide-3"]').get_attribute("data-changed-by") == "user-1"
                assert "Edited a slide by user-1" in (await page.locator("#activity li").first.text_content() or "")

                # Going back a stage marks the slides for review, with the reason shown.
                cli(
                    hub.url,
                    token,
                    "mutate",
                    "navigateToStage",
                    "--args",
                    f'{{"cimId": "{cim_id}", "targetStage": "hero_concept"}}',
                )
                await (
                    page.locator('li[data-slide-id="slide-1"] .stale-reason')
                    .filter(has_text="Needs review: hero concept changed")
                    .wait_for(timeout=WAIT_MS)
                )
                await page.locator("#outline-stale").wait_for(timeout=WAIT_MS)
                await page.screenshot(path=str(DOCS / "board-cim.png"), full_page=True)

                # A phone-sized screen: nothing overflows sideways.
                phone = await open_board(
                    chromium, hub, f"/?cim={cim_id}", token, viewport={"width": 375, "height": 800}
                )
                await phone.locator("#title").filter(has_text="Project Falcon II").wait_for(timeout=WAIT_MS)
                assert await phone.evaluate("document.documentElement.scrollWidth") <= 375
                await phone.screenshot(path=str(DOCS / "board-phone.png"))


async def test_optimistic_edit_shows_at_once_and_a_refusal_rolls_back(redis_url: str, key_prefix: str) -> None:
    with start_hub(redis_url, key_prefix) as hub:
        token = hub.token("user-1")
        async with httpx.AsyncClient(
            base_url=hub.url, headers={"authorization": f"Bearer {token}"}, timeout=10
        ) as http:
            cim_id = await falcon(http)
            bare_id = await falcon(http, slides=False)
            async with browser() as chromium:
                page = await open_board(chromium, hub, f"/?cim={cim_id}", token)
                await page.locator('li[data-slide-id="slide-2"]').wait_for(timeout=WAIT_MS)
                # Edit with the keyboard: focus Edit, type, Enter.
                await page.locator('li[data-slide-id="slide-2"] button.edit').focus()
                await page.keyboard.press("Enter")
                await page.locator('li[data-slide-id="slide-2"] input[name="title"]').fill("Leadership team")
                # Submitting and reading the DOM in one task: no frame from the hub can have been
                # handled in between, so what shows is the optimistic update.
                shown = await page.evaluate("""() => {
                  document.querySelector('li[data-slide-id="slide-2"] form').requestSubmit();
                  const li = document.querySelector('li[data-slide-id="slide-2"]');
                  return {title: li.querySelector('.slide-title').textContent, pending: li.dataset.pending ?? null};
                }""")
                assert shown == {"title": "Leadership team", "pending": "true"}
                await page.wait_for_function(
                    """() => !document.querySelector('li[data-slide-id="slide-2"]').dataset.pending""", timeout=WAIT_MS
                )
                stored = (await http.post("/v1/query", json={"name": "get", "args": {"cimId": cim_id}})).json()
                assert stored["result"]["cim"]["slides"][1]["title"] == "Leadership team"

                # A stage the hub refuses (no hero yet): shown at once, then rolled back with a plain message.
                bare = await open_board(chromium, hub, f"/?cim={bare_id}", token)
                await bare.locator("#stages").and_(bare.locator('[data-current="welcome"]')).wait_for(timeout=WAIT_MS)
                current = await bare.evaluate("""() => {
                  document.querySelector('#stages button[data-stage="outline"]').click();
                  return document.querySelector('#stages').dataset.current;
                }""")
                assert current == "outline"
                await (
                    bare.locator(".toast.error")
                    .filter(has_text="Couldn't go to Outline. That step isn't possible yet")
                    .wait_for(timeout=WAIT_MS)
                )
                assert await bare.locator("#stages").get_attribute("data-current") == "welcome"

                # A CIM that does not exist: a sentence, not a blank page.
                missing = await open_board(chromium, hub, "/?cim=no-such-cim", token)
                await missing.locator("#gone").filter(has_text="This CIM no longer exists.").wait_for(timeout=WAIT_MS)

                # Reload restores everything from the hub.
                await page.reload()
                await (
                    page.locator('li[data-slide-id="slide-2"] .slide-title')
                    .filter(has_text="Leadership team")
                    .wait_for(timeout=WAIT_MS)
                )
                assert await page.locator("#persona-type").text_content() == "Strategic acquirer"


async def test_hub_restart_under_the_page_keeps_a_queued_edit(redis_url: str, key_prefix: str) -> None:
    port = free_port()
    with start_hub(redis_url, key_prefix, port=port, shutdown_grace_s=0.5) as first:
        token = first.token("user-1")
        async with httpx.AsyncClient(
            base_url=first.url, headers={"authorization": f"Bearer {token}"}, timeout=10
        ) as http:
            cim_id = await falcon(http)
        async with browser() as chromium:
            page = await open_board(chromium, first, f"/?cim={cim_id}", token)
            await page.locator('li[data-slide-id="slide-3"]').wait_for(timeout=WAIT_MS)
            first.terminate()
            await page.locator("#connection").filter(has_text="You're offline").wait_for(timeout=WAIT_MS)
            # Edit while the hub is down: shown at once, queued in the outbox.
            await page.locator('li[data-slide-id="slide-3"] button.edit').click()
            await page.locator('li[data-slide-id="slide-3"] input[name="title"]').fill("Edited while offline")
            await page.locator('li[data-slide-id="slide-3"] select[name="status"]').select_option("approved")
            await page.locator('li[data-slide-id="slide-3"] button[type="submit"]').click()
            assert await slide_title(page, "slide-3") == "Edited while offline"
            assert await page.locator('li[data-slide-id="slide-3"]').get_attribute("data-pending") == "true"

            with start_hub(redis_url, key_prefix, port=port) as second:
                # A change made by someone else meanwhile, then the page catches up with both.
                async with httpx.AsyncClient(
                    base_url=second.url,
                    headers={"authorization": f"Bearer {token}"},
                    timeout=10,
                ) as http:
                    await mutate(http, "updateSlide", cimId=cim_id, slide={"id": "slide-1", "title": "At a glance"})
                    await (
                        page.locator('li[data-slide-id="slide-1"] .slide-title')
                        .filter(has_text="At a glance")
                        .wait_for(timeout=WAIT_MS * 2)
                    )
                    await page.wait_for_function(
                        """() => !document.querySelector('li[data-slide-id="slide-3"]').dataset.pending""",
                        timeout=WAIT_MS * 2,
                    )
                    assert await page.locator("#connection").is_hidden()
                    stored = (await http.post("/v1/query", json={"name": "get", "args": {"cimId": cim_id}})).json()
                    slide3 = stored["result"]["cim"]["slides"][2]
                    assert (slide3["title"], slide3["status"]) == ("Edited while offline", "approved")
                    patches = (await http.post("/v1/query", json={"name": "patches", "args": {"cimId": cim_id}})).json()
                    edits = [
                        p
                        for p in patches["result"]["patches"]
                        if any("Edited while offline" in str(op) for op in p["ops"])
                    ]
                    assert len(edits) == 1, "the queued edit applied exactly once"
                assert await slide_title(page, "slide-3") == "Edited while offline"


async def test_token_is_refreshed_before_expiry_without_a_reload(redis_url: str, key_prefix: str) -> None:
    # No leeway, so a token past its `exp` is refused at once and only a refresh keeps the page live.
    with start_hub(redis_url, key_prefix, jwt_leeway_s=0) as hub:
        token = hub.token("user-1")
        async with httpx.AsyncClient(
            base_url=hub.url, headers={"authorization": f"Bearer {token}"}, timeout=10
        ) as http:
            cim_id = await falcon(http)
            async with browser() as chromium:
                # Dev sign-in with 6-second tokens: the board asks the hub for each one.
                page = await open_board(chromium, hub, f"/?cim={cim_id}&tokenTtl=6")
                await page.locator("#signin input[name=userId]").fill("user-1")
                await page.locator("#signin button[type=submit]").click()
                await page.locator('li[data-slide-id="slide-1"]').wait_for(timeout=WAIT_MS)
                await page.evaluate("window.loadedOnce = true")
                first_expiry = await page.evaluate("window.cimhubBoard.client.expiresAt")
                # Past the first token's expiry...
                while time.time() < first_expiry + 1.5:
                    await page.wait_for_timeout(250)
                await mutate(
                    http, "updateSlide", cimId=cim_id, slide={"id": "slide-1", "title": "After the first token expired"}
                )
                await (
                    page.locator('li[data-slide-id="slide-1"] .slide-title')
                    .filter(has_text="After the first token expired")
                    .wait_for(timeout=WAIT_MS)
                )
                state = await page.evaluate("""() => ({
                  reloaded: !window.loadedOnce,
                  refreshes: window.cimhubBoard.client.refreshes,
                  expiresAt: window.cimhubBoard.client.expiresAt,
                  state: window.cimhubBoard.client.state,
                })""")
                assert state["reloaded"] is False
                assert state["refreshes"] >= 1
                assert state["expiresAt"] > first_expiry
                assert state["state"] == "live"
                assert await page.locator("#connection").is_hidden()


async def test_an_edit_queued_offline_survives_closing_the_tab(redis_url: str, key_prefix: str) -> None:
    port = free_port()
    with start_hub(redis_url, key_prefix, port=port, shutdown_grace_s=0.5) as first:
        token = first.token("user-1")
        async with httpx.AsyncClient(
            base_url=first.url, headers={"authorization": f"Bearer {token}"}, timeout=10
        ) as http:
            cim_id = await falcon(http)
        async with browser() as chromium:
            context = await chromium.new_context()
            page = await open_board(chromium, first, f"/?cim={cim_id}", token, context=context)
            await page.locator('li[data-slide-id="slide-3"]').wait_for(timeout=WAIT_MS)
            first.terminate()
            await page.locator("#connection").filter(has_text="You're offline").wait_for(timeout=WAIT_MS)
            await page.locator('li[data-slide-id="slide-3"] button.edit').click()
            await page.locator('li[data-slide-id="slide-3"] input[name="title"]').fill("Edited before the tab closed")
            await page.locator('li[data-slide-id="slide-3"] button[type="submit"]').click()
            assert await slide_title(page, "slide-3") == "Edited before the tab closed"
            await page.close()  # never answered: only the outbox in localStorage holds it now

            with start_hub(redis_url, key_prefix, port=port) as second:
                again = await open_board(chromium, second, f"/?cim={cim_id}", token, context=context)
                await (
                    again.locator('li[data-slide-id="slide-3"] .slide-title')
                    .filter(has_text="Edited before the tab closed")
                    .wait_for(timeout=WAIT_MS)
                )
                await again.wait_for_function(
                    """() => !document.querySelector('li[data-slide-id="slide-3"]').dataset.pending""", timeout=WAIT_MS
                )
                assert (
                    await again.evaluate("Object.keys(localStorage).filter((k) => k.startsWith('cimhub.board.outbox'))")
                    == []
                )
                async with httpx.AsyncClient(
                    base_url=second.url,
                    headers={"authorization": f"Bearer {token}"},
                    timeout=10,
                ) as http:
                    patches = (await http.post("/v1/query", json={"name": "patches", "args": {"cimId": cim_id}})).json()
                    edits = [
                        p
                        for p in patches["result"]["patches"]
                        if any("Edited before the tab closed" in str(op) for op in p["ops"])
                    ]
                    assert len(edits) == 1, "the edit from the closed tab applied exactly once"
