"""The board's history panel in headless Chromium: step through revisions, read one, restore it.

One page opens the history panel, steps back to an older revision and picks one
from the list: what it shows (title, stage, slides) must be that revision as the
CLI (`cimhub history --at`) and the HTTP API (`/v1/cims/<id>/revisions/<R>`)
read it, with the change that made it and who made it. Restore makes it current:
a second page, live, shows the restored content, the stored document is cimAt
of that revision (but for the revision and time stamps), and the log holds
exactly one restore. Waits are bounded (`WAIT_MS`), never timed. With
CIMHUB_SCREENSHOTS=docs the run saves docs/board-history.png.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from browserkit import DOCS, WAIT_MS, browser, cli, falcon, mutate, open_board
from hubproc import start_hub

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

STAMPS = {"revision", "updatedAt"}
"""Set anew by every change, a restore included."""


def content(cim: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in cim.items() if key not in STAMPS}


async def shown(page: Any) -> dict[str, Any]:
    """What the page shows of the CIM: title, stage, and each slide's id and title in order."""
    return {
        "title": await page.locator("#title").text_content(),
        "stage": await page.locator("#stages").get_attribute("data-current"),
        "slides": await page.evaluate(
            """() => [...document.querySelectorAll('li.slide')].map(
                 (li) => [li.dataset.slideId, li.querySelector('.slide-title').textContent])"""
        ),
    }


def expected(cim: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": cim["title"],
        "stage": cim["stage"],
        "slides": [[s["id"], s["title"]] for s in cim.get("slides", [])],
    }


async def test_history_panel_steps_back_shows_a_revision_and_restores_it(redis_url: str, key_prefix: str) -> None:
    with start_hub(redis_url, key_prefix) as hub:
        token = hub.token("user-1")
        async with httpx.AsyncClient(
            base_url=hub.url, headers={"authorization": f"Bearer {token}"}, timeout=10
        ) as http:
            cim_id = await falcon(http)  # revisions 1..7
            await mutate(http, "updateState", cimId=cim_id, title="Project Falcon II")  # r8
            await mutate(
                http, "updateSlide", cimId=cim_id, slide={"id": "slide-3", "title": "A market growing 7% a year"}
            )  # r9
            async with browser() as chromium:
                page = await open_board(chromium, hub, f"/?cim={cim_id}", token)
                watcher = await open_board(chromium, hub, f"/?cim={cim_id}", hub.token("user-2"))
                for p in (page, watcher):
                    await p.locator("#meta[data-revision='9']").wait_for(timeout=WAIT_MS)

                await page.locator("#history-toggle").click()
                await page.locator('#history-list li[data-revision="9"]').wait_for(timeout=WAIT_MS)
                rows = await page.locator("#history-list li").all_text_contents()
                assert [r.split(" ", 1)[0] for r in rows] == [f"r{n}" for n in range(9, 0, -1)]
                assert rows[0].startswith("r9 Edited a slide by user-1")
                assert await page.locator("#history-status").text_content() == "Live: revision 9"
                assert await page.locator("#history-restore").is_disabled()

                # Two steps back: revision 7, the one that added slide 3.
                await page.locator("#history-older").click()
                await page.locator("#history[data-shown='8']").wait_for(timeout=WAIT_MS)
                await page.locator("#history-older").click()
                await page.locator("#history[data-shown='7']").wait_for(timeout=WAIT_MS)
                assert await page.locator("#cim").get_attribute("data-mode") == "history"
                at_7 = (await http.get(f"/v1/cims/{cim_id}/revisions/7")).json()["cim"]
                assert at_7 == cli(hub.url, token, "history", cim_id, "--at", "7")
                assert await shown(page) == expected(at_7)
                assert await page.locator("#meta").get_attribute("data-revision") == "7"
                assert await page.locator("#history-status").text_content() == "Viewing revision 7 of 9 (read-only)"
                who = page.locator("#history-who")
                assert (await who.text_content() or "").startswith("Edited a slide by user-1")
                assert await who.get_attribute("data-actor") == "user-1"
                ops = await page.locator("#history-ops li").all_text_contents()
                assert any(op.startswith("+ /slides/2 ") for op in ops), ops
                assert await page.locator('li[data-slide-id="slide-3"]').get_attribute("data-changed-here") == "true"
                # Read-only: no edit buttons, no stage changes.
                assert await page.locator("li.slide button.edit").first.is_hidden()
                assert await page.locator('#stages button[data-stage="outline"]').is_disabled()
                await page.screenshot(path=str(DOCS / "board-history.png"), full_page=True)

                # Meanwhile a live change arrives: the page stays on revision 7, the list grows.
                await mutate(http, "updateState", cimId=cim_id, title="Project Falcon III")  # r10
                await page.locator('#history-list li[data-revision="10"]').wait_for(timeout=WAIT_MS)
                await watcher.locator("#title").filter(has_text="Project Falcon III").wait_for(timeout=WAIT_MS)
                assert await shown(page) == expected(at_7)

                # Picking an older one from the list: revision 8 renamed the CIM, old value beside the new.
                await page.locator('#history-list li[data-revision="8"] button').click()
                await page.locator("#history[data-shown='8']").wait_for(timeout=WAIT_MS)
                at_8 = (await http.get(f"/v1/cims/{cim_id}/revisions/8")).json()["cim"]
                assert await shown(page) == expected(at_8)
                ops = await page.locator("#history-ops li").all_text_contents()
                assert ops == ['~ /title "Project Falcon" → "Project Falcon II"'], ops
                await page.locator("#history-older").click()
                await page.locator("#history[data-shown='7']").wait_for(timeout=WAIT_MS)

                # Restore revision 7: the page returns to live and shows it; so does the other page.
                await page.locator("#history-restore").click()
                await (
                    page.locator(".toast")
                    .filter(has_text="Restored revision 7 as revision 11.")
                    .wait_for(timeout=WAIT_MS)
                )
                await page.locator("#history[data-shown='live']").wait_for(timeout=WAIT_MS)
                assert await page.locator("#cim").get_attribute("data-mode") is None
                for p in (page, watcher):
                    await p.locator("#meta[data-revision='11']").wait_for(timeout=WAIT_MS)
                    assert await shown(p) == expected(at_7)
                stored = (await http.post("/v1/query", json={"name": "get", "args": {"cimId": cim_id}})).json()
                assert stored["result"]["cim"]["revision"] == 11
                assert content(stored["result"]["cim"]) == content(at_7)
                # Exactly once: one restore in the log, made by user-1.
                listing = (await http.get(f"/v1/cims/{cim_id}/history")).json()
                restores = [i for i in listing["items"] if i["mutation"] == "restoreRevision"]
                assert [(i["revision"], i["actor"]) for i in restores] == [(11, "user-1")]
                await page.locator('#history-list li[data-revision="11"]').wait_for(timeout=WAIT_MS)
                latest = await watcher.locator("#activity li").first.text_content()
                assert "Restored a revision by user-1" in (latest or "")
                errors = [m for m in page.console_messages + watcher.console_messages if "page error" in m]
                assert errors == [], errors
