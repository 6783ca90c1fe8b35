"""The CIM agent: a LangGraph graph for the CIM workflow that drives the hub.

welcome -> buyer persona -> hero concept -> outline -> building sections, each
step a graph node whose result is pushed to the hub as a mutation. The graph's
checkpoints live in Redis beside the CIM (thread id = CIM id) through
cimhub's saver, so a session can stop for days, or crash, and resume where it
was. The agent pauses with `interrupt()` wherever the seed's workflow asks the
banker: who the buyer is, and whether the outline is right.

It runs offline: the "model" is a set of deterministic templates, so it needs
no network and no API keys, and tests can assert exactly what it writes.

Every mutation id is derived from (CIM, step, input): a step that LangGraph
retries after a crash sends the same ids, and the hub applies each once.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypedDict

import click
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

AGENT_NAMESPACE = uuid.UUID("2f0c5a8e-7d7e-4a51-9c1b-4f1e3c9d8a77")

ACCEPT = "accept"
"""The answer to an interrupt that takes the agent's suggestion."""

Mutate = Callable[[str, dict[str, Any], str], Awaitable[dict[str, Any]]]
"""Sends one mutation (name, args, mutation id) to the hub and returns its result."""


class CimState(TypedDict, total=False):
    cimId: str
    dealName: str
    persona: dict[str, Any]
    hero: dict[str, Any]
    outline: list[dict[str, Any]]
    built: list[str]
    log: list[str]


def mutation_id(cim_id: str, step: str, detail: str = "") -> str:
    """The same id for the same step of the same CIM: retried steps apply once."""
    return str(uuid.uuid5(AGENT_NAMESPACE, f"{cim_id}/{step}/{detail}"))


# -- the offline "model": deterministic templates ------------------------------


def suggest_persona(deal_name: str) -> dict[str, Any]:
    return {
        "type": "private equity sponsor",
        "motivations": [f"platform acquisition in {deal_name}'s sector", "margin expansion", "buy-and-build"],
        "concerns": ["customer concentration", "key-person risk"],
    }


def draft_hero(deal_name: str, persona: dict[str, Any]) -> dict[str, Any]:
    return {
        "selectedHero": f"{deal_name}: a profitable leader ready for a {persona['type']}",
        "investmentThesis": {
            "asset": f"{deal_name} owns a defensible niche with recurring revenue",
            "timing": "the founders are ready to hand over a scaled business",
            "opportunity": f"{persona['motivations'][0]} with clear add-on targets",
        },
    }


def draft_outline(persona: dict[str, Any]) -> list[dict[str, Any]]:
    sections = [
        ("overview", "Company overview", "Who the company is and what it sells"),
        ("market", "Market opportunity", "Size, growth and the company's position"),
        ("financials", "Financial performance", "Revenue, margins and cash conversion"),
        ("thesis", "Investment thesis", f"Why a {persona['type']} wins here"),
    ]
    return [{"id": sid, "title": title, "description": description} for sid, title, description in sections]


def draft_slide(section: dict[str, Any], hero: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"{section['id']}-1",
        "sectionId": section["id"],
        "title": section["title"],
        "layoutType": "title-bullets",
        "components": [
            {"type": "heading", "text": section["title"]},
            {"type": "bullets", "items": [section["description"], hero["selectedHero"]]},
        ],
    }


# -- the graph -----------------------------------------------------------------


def build_graph(mutate: Mutate, checkpointer: BaseCheckpointSaver[Any]) -> Any:
    """The CIM workflow as a compiled StateGraph; run it with thread_id = the CIM id."""

    async def welcome(state: CimState) -> CimState:
        cim = state["cimId"]
        await mutate("updateState", {"cimId": cim, "stage": "buyer_persona"}, mutation_id(cim, "welcome"))
        return {"log": [*state.get("log", []), "welcome: moved to buyer persona"]}

    async def buyer_persona(state: CimState) -> CimState:
        cim = state["cimId"]
        suggestion = suggest_persona(state.get("dealName", "the company"))
        answer = interrupt({"question": "Who is the most likely buyer?", "suggestion": suggestion})
        persona = answer if isinstance(answer, dict) and answer else suggestion
        await mutate(
            "saveBuyerPersona",
            {"cimId": cim, "persona": persona},
            mutation_id(cim, "persona", repr(sorted(persona.items()))),
        )
        return {"persona": persona, "log": [*state.get("log", []), f"buyer persona: {persona['type']}"]}

    async def hero_concept(state: CimState) -> CimState:
        cim = state["cimId"]
        hero = draft_hero(state.get("dealName", "the company"), state["persona"])
        await mutate(
            "saveHeroContext", {"cimId": cim, "heroContext": hero}, mutation_id(cim, "hero", hero["selectedHero"])
        )
        return {"hero": hero, "log": [*state.get("log", []), "hero concept saved"]}

    async def outline(state: CimState) -> CimState:
        cim = state["cimId"]
        draft = draft_outline(state["persona"])
        answer = interrupt({"question": "Approve this outline (or send your own)?", "outline": draft})
        sections = answer if isinstance(answer, list) and answer else draft
        await mutate("createOutline", {"cimId": cim, "outline": sections}, mutation_id(cim, "outline", repr(sections)))
        return {"outline": sections, "built": [], "log": [*state.get("log", []), f"outline: {len(sections)} sections"]}

    async def build_section(state: CimState) -> CimState:
        cim = state["cimId"]
        built = list(state.get("built", []))
        section = next(s for s in state["outline"] if s["id"] not in built)
        slide = draft_slide(section, state["hero"])
        await mutate("updateSlide", {"cimId": cim, "slide": slide}, mutation_id(cim, "slide", slide["id"]))
        built.append(section["id"])
        return {"built": built, "log": [*state.get("log", []), f"slide for {section['title']}"]}

    def more_sections(state: CimState) -> str:
        return "build_section" if len(state.get("built", [])) < len(state["outline"]) else END

    graph = StateGraph(CimState)
    graph.add_node("welcome", welcome)
    graph.add_node("buyer_persona", buyer_persona)
    graph.add_node("hero_concept", hero_concept)
    graph.add_node("outline", outline)
    graph.add_node("build_section", build_section)
    graph.add_edge(START, "welcome")
    graph.add_edge("welcome", "buyer_persona")
    graph.add_edge("buyer_persona", "hero_concept")
    graph.add_edge("hero_concept", "outline")
    graph.add_edge("outline", "build_section")
    graph.add_conditional_edges("build_section", more_sections, ["build_section", END])
    return graph.compile(checkpointer=checkpointer)


async def run_until_pause(graph: Any, cim_id: str, payload: Any) -> dict[str, Any] | None:
    """Run (or resume, when `payload` is a Command) until the next interrupt; its value, or None when done.

    Resume with ``Command(resume=answer)``; ``ACCEPT`` takes the agent's suggestion. (Not ``None`` or
    ``{}``: LangGraph reads a dict as a map of interrupt ids, and an empty one resumes nothing.)
    """
    config = {"configurable": {"thread_id": cim_id}}
    result = await graph.ainvoke(payload, config)
    interrupts = result.get("__interrupt__") if isinstance(result, dict) else None
    if interrupts:
        return interrupts[0].value  # type: ignore[no-any-return]
    return None


# -- the command -------------------------------------------------------------


@click.command(name="agent")
@click.option("--deal", "deal_id", default="deal-1", show_default=True, help="Deal of the new CIM.")
@click.option("--project", "project_id", default="project-1", show_default=True, help="Project owning the deal.")
@click.option("--title", default="Acme Industrial CIM", show_default=True, help="Title of the new CIM.")
@click.option("--cim", "cim_id", help="Resume the agent on this CIM instead of creating one.")
@click.option(
    "--redis-url",
    envvar="REDIS_URL",
    default="redis://127.0.0.1:6399/0",
    show_default=True,
    help="Redis for the agent's checkpoints (the embedded default listens on 6399).",
)
@click.option(
    "--key-prefix",
    envvar="CIMHUB_KEY_PREFIX",
    default="cimhub",
    show_default=True,
    help="Key prefix of the hub (checkpoints live beside its CIMs).",
)
@click.option("--auto", is_flag=True, help="Answer every question with the agent's suggestion.")
@click.option("--delay", type=float, default=0.5, show_default=True, help="Seconds between steps, to watch them land.")
@click.pass_obj
def agent_command(
    hub: Any,
    deal_id: str,
    project_id: str,
    title: str,
    cim_id: str | None,
    redis_url: str,
    key_prefix: str,
    auto: bool,
    delay: float,
) -> None:
    """Run the offline CIM agent against the hub: it builds a CIM step by step.

    Watch it in another terminal with `cimhub subscribe CIM_ID`.
    """
    http = hub.http()

    async def mutate(name: str, args: dict[str, Any], mid: str) -> dict[str, Any]:
        result = await asyncio.to_thread(http.mutate, name, args, mutation_id=mid)
        click.echo(f"  {name:<18} revision {result.revision}{' (already applied)' if result.duplicate else ''}")
        await asyncio.sleep(delay)
        return {"result": result.result, "revision": result.revision}

    async def main() -> None:
        from cimhub.server.checkpoint import AsyncCimhubRedisSaver

        nonlocal cim_id
        if cim_id is None:
            created = await asyncio.to_thread(
                http.mutate,
                "create",
                {"dealId": deal_id, "projectId": project_id, "title": title},
                mutation_id=f"agent-create-{os.getpid()}-{title}"[:120].replace(" ", "_"),
            )
            cim_id = str(created.cim_id)
        click.echo(f"CIM {cim_id}  (watch: cimhub subscribe {cim_id})")
        async with AsyncCimhubRedisSaver.from_url(redis_url, key_prefix=key_prefix) as saver:
            graph = build_graph(mutate, saver)
            state = await graph.aget_state({"configurable": {"thread_id": cim_id}})
            payload: Any = None if state.next else {"cimId": cim_id, "dealName": title}
            while True:
                question = await run_until_pause(graph, cim_id, payload)
                if question is None:
                    break
                click.echo(f"? {question['question']}")
                answer: Any = ACCEPT
                if not auto:
                    click.echo("  (press Enter to accept the suggestion)")
                    text = click.prompt("  answer as JSON", default="", show_default=False)
                    answer = json.loads(text) if text.strip() else ACCEPT
                payload = Command(resume=answer)
        click.echo("done: every section has a slide")

    asyncio.run(main())
