"""How the CLI shows patches, changes, connection events and CIM lists: one line each, for people or for jq.

Pure functions from data to strings (styled with click, which drops the
colours when the output is not a terminal), so the formats are tested without
a hub.
"""

from __future__ import annotations

import time
from typing import Any

import click
import orjson

from .events import Connected, Disconnected, Event, Resumed
from .replica import Change

BOOKKEEPING_PATHS = frozenset({"/revision", "/updatedAt"})
"""Replaced by every CIM mutation; left out of summaries so the edit itself shows."""


def to_json(value: Any, *, pretty: bool = False) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 if pretty else 0).decode()


def short(value: Any, width: int = 40) -> str:
    text = to_json(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def summarize_ops(ops: list[dict[str, Any]], limit: int = 3) -> str:
    """``replace /stage "outline"; add /slides/3 {...} (+2 more)``, bookkeeping left out."""
    shown = [op for op in ops if op.get("path") not in BOOKKEEPING_PATHS] or ops
    parts = []
    for op in shown[:limit]:
        part = f"{op.get('op')} {op.get('path') or '/'}"
        if "value" in op:
            part += f" {short(op['value'])}"
        parts.append(part)
    more = f" (+{len(shown) - limit} more)" if len(shown) > limit else ""
    return "; ".join(parts) + more if parts else "(no ops)"


def clock(ts_ms: int | None) -> str:
    seconds = ts_ms / 1000 if ts_ms else time.time()
    return time.strftime("%H:%M:%S", time.localtime(seconds))


def patch_line(
    revision: int,
    ops: list[dict[str, Any]],
    *,
    mutation: str | None = None,
    actor: str | None = None,
    ts: int | None = None,
    deleted: bool = False,
) -> str:
    """One patch for people: time, revision, mutation, actor, what changed."""
    head = f"{click.style(clock(ts), dim=True)} {click.style(f'r{revision}', fg='yellow', bold=True)}"
    who = f"{click.style(mutation or '?', fg='green')} by {click.style(actor or '?', fg='cyan')}"
    what = click.style("DELETED", fg="red", bold=True) if deleted else summarize_ops(ops)
    return f"{head} {who}: {what}"


def document_summary(document: Any) -> str:
    """A CIM's title, stage, status and slide count; a deal's row count; else the document's size."""
    if isinstance(document, dict) and "stage" in document:
        slides = len(document.get("slides") or [])
        return (
            f"{document.get('title', '')!r} stage={document.get('stage')} "
            f"status={document.get('status')} slides={slides}"
        )
    if isinstance(document, dict):
        return f"{len(document)} entries"
    if document is None:
        return "(deleted)"
    return short(document)


def change_line(change: Change) -> str:
    if change.snapshot:
        why = "history lost, replaced" if change.reset else "replaced"
        label = click.style(f"snapshot r{change.revision}", fg="magenta", bold=True)
        return f"{click.style(clock(None), dim=True)} {label} ({why}): {document_summary(change.document)}"
    return patch_line(
        change.revision,
        change.ops,
        mutation=change.mutation,
        actor=change.actor,
        ts=change.ts,
        deleted=change.deleted,
    )


def change_record(change: Change) -> dict[str, Any]:
    """One change as a JSON object for ``--json`` (one per line)."""
    if change.snapshot:
        return {
            "type": "snapshot",
            "topic": change.topic,
            "revision": change.revision,
            "epoch": change.epoch,
            "reset": change.reset,
            "document": change.document,
        }
    return {
        "type": "patch",
        "topic": change.topic,
        "revision": change.revision,
        "epoch": change.epoch,
        "mutation": change.mutation,
        "mutationId": change.mutation_id,
        "actor": change.actor,
        "ts": change.ts,
        "deleted": change.deleted,
        "ops": change.ops,
    }


def event_line(event: Event) -> str:
    if isinstance(event, Disconnected):
        code = f" [{event.code}]" if event.code is not None else ""
        return click.style(f"⟳ disconnected{code}: {event.reason}; reconnecting in {event.retry_in:.1f} s", fg="yellow")
    if isinstance(event, Connected):
        again = "reconnected" if event.reconnect else "connected"
        return click.style(f"● {again} as {event.user_id or '(service)'}", fg="green")
    if isinstance(event, Resumed):
        missed = event.revision - event.from_revision
        return click.style(
            f"● resumed {event.topic} from r{event.from_revision} to r{event.revision} ({missed} missed)", fg="green"
        )
    return click.style("● token refreshed", dim=True)


def event_record(event: Event) -> dict[str, Any]:
    if isinstance(event, Disconnected):
        return {"type": "disconnected", "code": event.code, "reason": event.reason, "retryIn": event.retry_in}
    if isinstance(event, Connected):
        return {
            "type": "connected",
            "userId": event.user_id,
            "expiresAt": event.expires_at,
            "reconnect": event.reconnect,
        }
    if isinstance(event, Resumed):
        return {
            "type": "resumed",
            "topic": event.topic,
            "fromRevision": event.from_revision,
            "revision": event.revision,
        }
    return {"type": "tokenRefreshed", "expiresAt": event.expires_at}


def cim_table(items: list[dict[str, Any]]) -> str:
    """CIM summaries (id, title, status, stage, updated) as aligned columns."""
    rows = [("ID", "TITLE", "STATUS", "STAGE", "UPDATED")]
    for item in items:
        updated = item.get("updatedAt")
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(updated / 1000)) if updated else ""
        title = str(item.get("title", ""))
        rows.append(
            (
                str(item.get("id", "")),
                title if len(title) <= 40 else title[:39] + "…",
                str(item.get("status", "")),
                str(item.get("stage", "")),
                when,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )
