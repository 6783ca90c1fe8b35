"""How `cimhub subscribe` shows presence: who is on the CIM, who joins, changes what they do, and leaves.

Pure functions from presence changes (a ``presence:<cimId>`` subscription's
members map and its join/update/leave patches, cimhub.protocol.presence) to one
line each, styled with click, so the format is tested without a hub.
"""

from __future__ import annotations

from typing import Any

import click

from .render import clock
from .replica import Change


def doing(state: dict[str, Any]) -> str:
    """``editing slide slide-3``, ``drafting section financials``, ``viewing``."""
    activity = str(state.get("activity", "viewing"))
    if state.get("slideId"):
        return f"{activity} slide {state['slideId']}"
    if state.get("sectionId"):
        return f"{activity} section {state['sectionId']}"
    return activity


def name_of(member: dict[str, Any]) -> str:
    state = member.get("state") or {}
    label = str(member.get("actor") or member.get("userId") or "?")
    return f"{state['name']} ({label})" if state.get("name") else label


def members_line(members: dict[str, Any]) -> str:
    """Everyone present, from a snapshot."""
    if not members:
        return click.style("nobody is here", dim=True)
    people = ", ".join(f"{name_of(m)} {doing(m.get('state') or {})}" for m in members.values())
    return f"{click.style('present:', bold=True)} {people}"


def presence_line(change: Change, before: dict[str, Any]) -> str:
    """One join, update or leave (or a fresh snapshot after a reconnect); `before` is the members map it changed."""
    if change.snapshot:
        return f"{click.style(clock(None), dim=True)} {members_line(change.document or {})}"
    op = change.ops[0] if change.ops else {}
    member = op.get("value") or before.get(str(op.get("path", "")).lstrip("/")) or {}
    who = click.style(name_of(member) if member else str(change.actor or "?"), fg="cyan")
    when = click.style(clock(None), dim=True)
    if change.mutation == "leave":
        return f"{when} {click.style('○', fg='red')} {who} left"
    verb = "joined:" if change.mutation == "join" else "now"
    mark = click.style("●", fg="green") if change.mutation == "join" else click.style("◐", fg="yellow")
    return f"{when} {mark} {who} {verb} {doing(member.get('state') or {})}"


def presence_record(change: Change, before: dict[str, Any]) -> dict[str, Any]:
    """One presence change as a JSON object for ``--json``: ``{type: "presence", event, ...}``."""
    if change.snapshot:
        return {"type": "presence", "topic": change.topic, "event": "members", "members": change.document or {}}
    op = change.ops[0] if change.ops else {}
    presence_id = str(op.get("path", "")).lstrip("/")
    member = op.get("value") or before.get(presence_id)
    return {
        "type": "presence",
        "topic": change.topic,
        "event": change.mutation,
        "presenceId": presence_id,
        "member": member,
    }
