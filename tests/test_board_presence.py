"""Presence on the board: two headless Chromium sessions and an agent on one CIM see each other live.

Two browser contexts (separate storage, separate sockets: two browsers as far
as the hub can tell) open the board the hub serves, signed in as two bankers; an
agent (the Python client with a service credential acting for banker one, as
agents run) subscribes to ``presence:<cimId>`` and drafts a section. Each page
shows the other page and the agent, with a marker on the slide the other edits;
the agent sees both pages; a page that closes disappears from the other page and
from the agent. Waits are bounded (`WAIT_MS`), never timed. With
CIMHUB_SCREENSHOTS=docs the run saves docs/board-presence.png.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from browserkit import DOCS, WAIT_MS, browser, falcon, open_board
from hubproc import start_hub

from cimhub.clients.client import Client
from cimhub.clients.subscription import Subscription

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

AGENT = "service:service_role/user-1"


def actors(members: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {m["actor"]: m["state"] for m in (members or {}).values()}


async def agent_sees(sub: Subscription, check: Any, what: str) -> dict[str, dict[str, Any]]:
    """Wait until the agent's members map satisfies `check`; returns it as actor -> state."""
    while not check(actors(sub.document)):
        try:
            await asyncio.wait_for(sub.__anext__(), WAIT_MS / 1000)
        except TimeoutError:
            pytest.fail(f"the agent never saw {what}: {actors(sub.document)}")
    return actors(sub.document)


def member(page: Any, actor: str) -> Any:
    return page.locator(f'#presence li.member[data-actor="{actor}"]')


async def test_two_browsers_and_an_agent_see_each_others_presence_live(redis_url: str, key_prefix: str) -> None:
    with start_hub(redis_url, key_prefix) as hub:
        token_one, token_two = hub.token("user-1"), hub.token("user-2")
        async with httpx.AsyncClient(
            base_url=hub.url, headers={"authorization": f"Bearer {token_one}"}, timeout=10
        ) as http:
            cim_id = await falcon(http)
        agent_token = hub.token("agent", role="service_role")
        async with Client(hub.url, token=agent_token, act_as="user-1") as agent, browser() as chromium:
            people = await agent.subscribe(f"presence:{cim_id}")
            await agent.set_presence(cim_id, {"activity": "drafting", "sectionId": "market"})

            one = await open_board(chromium, hub, f"/?cim={cim_id}", token_one)
            two = await open_board(chromium, hub, f"/?cim={cim_id}", token_two)
            # Each page shows the other page and the agent, and itself marked as such.
            for page, other in ((one, "user-2"), (two, "user-1")):
                await member(page, other).and_(page.locator('[data-activity="viewing"]')).wait_for(timeout=WAIT_MS)
                await member(page, AGENT).and_(page.locator('[data-kind="agent"]')).wait_for(timeout=WAIT_MS)
                assert await member(page, other).get_attribute("data-kind") == "person"
                assert await member(page, other).get_attribute("data-self") is None
                me = "user-1" if other == "user-2" else "user-2"
                await member(page, me).and_(page.locator("[data-self]")).wait_for(timeout=WAIT_MS)
                # The agent drafts the market section: its avatar is on that section.
                drafting = page.locator('section[data-section-id="market"] .drafters')
                await drafting.and_(page.locator(f'[data-actors="{AGENT}"]')).wait_for(timeout=WAIT_MS)
            avatar = member(one, "user-2").locator(".avatar")
            assert await avatar.text_content() == "U2"
            assert await avatar.get_attribute("title") == "user-2, banker: viewing"
            agent_title = await member(one, AGENT).locator(".avatar").get_attribute("title")
            assert agent_title == "Agent, agent acting for user-1: drafting section market"
            assert await member(one, AGENT).locator(".avatar").text_content() == "AG"

            # The agent's presence subscription shows both pages, named and viewing.
            seen = await agent_sees(people, lambda a: "user-1" in a and "user-2" in a, "both browsers")
            assert seen["user-1"] == {"activity": "viewing", "name": "user-1"}
            assert seen["user-2"] == {"activity": "viewing", "name": "user-2"}
            assert seen[AGENT] == {"activity": "drafting", "sectionId": "market"}

            # Page two opens slide 2's editor: page one marks that slide, the agent sees it.
            await two.locator('li[data-slide-id="slide-2"] button.edit').click()
            editors = one.locator('li[data-slide-id="slide-2"] .editors')
            await editors.and_(one.locator('[data-actors="user-2"]')).wait_for(timeout=WAIT_MS)
            assert await editors.text_content() == "U2 editing"
            assert await member(one, "user-2").get_attribute("data-editing-slide") == "slide-2"
            seen = await agent_sees(
                people, lambda a: a.get("user-2", {}).get("slideId") == "slide-2", "page two editing slide 2"
            )
            assert seen["user-2"] == {"activity": "editing", "slideId": "slide-2", "name": "user-2"}
            await one.screenshot(path=str(DOCS / "board-presence.png"), full_page=True)
            # Its own page shows no marker for itself: the open editor says enough.
            assert await two.locator('li[data-slide-id="slide-2"] .editors').get_attribute("data-actors") is None

            # Cancelling the edit: back to viewing, the marker goes.
            await two.locator('li[data-slide-id="slide-2"] form.editor button.cancel').click()
            await member(one, "user-2").and_(one.locator('[data-activity="viewing"]')).wait_for(timeout=WAIT_MS)
            assert await editors.get_attribute("data-actors") is None

            # Page two closes: it leaves page one's avatars and the agent's map.
            await two.context.close()
            await member(one, "user-2").wait_for(state="detached", timeout=WAIT_MS)
            await agent_sees(people, lambda a: "user-2" not in a and "user-1" in a, "page two leave")
            assert await one.locator("#presence li.member").count() == 2  # page one itself and the agent

            # The agent leaves: page one shows only itself.
            await agent.set_presence(cim_id, None)
            await member(one, AGENT).wait_for(state="detached", timeout=WAIT_MS)
            await one.locator('section[data-section-id="market"] .drafters:not([data-actors])').wait_for(
                state="attached", timeout=WAIT_MS
            )
            errors = [m for m in one.console_messages if "page error" in m]
            assert errors == [], errors


async def test_leaving_a_cim_page_for_the_list_ends_its_subscriptions_and_presence(
    redis_url: str, key_prefix: str
) -> None:
    """The board moves between pages without a reload: the CIM page left must give up what it holds on the hub."""
    with start_hub(redis_url, key_prefix) as hub:
        token = hub.token("user-1")
        async with httpx.AsyncClient(
            base_url=hub.url, headers={"authorization": f"Bearer {token}"}, timeout=10
        ) as http:
            cim_id = await falcon(http)
        agent_token = hub.token("agent", role="service_role")
        async with Client(hub.url, token=agent_token, act_as="user-1") as agent, browser() as chromium:
            people = await agent.subscribe(f"presence:{cim_id}")
            page = await open_board(chromium, hub, f"/?cim={cim_id}", token)
            hub_said: list[dict[str, Any]] = []

            def heard(data: str | bytes) -> None:
                if isinstance(data, str):  # the board speaks JSON
                    hub_said.append(json.loads(data))

            page.on("websocket", lambda ws: ws.on("framereceived", heard))
            await member(page, "user-1").wait_for(timeout=WAIT_MS)
            await agent_sees(people, lambda a: "user-1" in a, "the board arrive")

            await page.locator("#back").click()
            await page.locator("#list").wait_for(timeout=WAIT_MS)
            assert page.url == f"{hub.url}/#token={token}"  # no reload: the same client, the same socket
            # The hub confirms both subscriptions ended, and the board's member left the CIM.
            await agent_sees(people, lambda a: "user-1" not in a, "the board leave")
            for topic in (f"cim:{cim_id}", f"presence:{cim_id}"):
                await page.wait_for_function(
                    "topic => window.cimhubBoard.client.snapshotOf(topic) === undefined", arg=topic, timeout=WAIT_MS
                )
            ended = {f["topic"] for f in hub_said if f.get("type") == "unsubscribed" and f.get("id")}
            assert {f"cim:{cim_id}", f"presence:{cim_id}"} <= ended, hub_said

            # Back to the CIM (the browser's back button): subscribed and present again.
            await page.locator(f'a.cim-title[href="/?cim={cim_id}"]').wait_for(timeout=WAIT_MS)
            await page.go_back()
            await member(page, "user-1").wait_for(timeout=WAIT_MS)
            await agent_sees(people, lambda a: "user-1" in a, "the board come back")
            errors = [m for m in page.console_messages if "page error" in m]
            assert errors == [], errors
