"""How `cimhub history` shows a CIM's past: a list of revisions, and a readable, coloured diff.

Pure functions from the hub's answers (cimHistory, cimAt, cimDiff) to lines,
styled with click (colours are dropped when the output is not a terminal), so
the formats are tested without a hub. The diff replays each patch on the
document at the start revision, so every changed field shows its old value
beside its new one, which the ops alone do not carry.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click
import jsonpointer

from cimhub.protocol.patch import apply

from .render import BOOKKEEPING_PATHS, clock, short

VALUE_WIDTH = 60


def revision_lines(answer: dict[str, Any]) -> Iterator[str]:
    """One line per revision of a cimHistory answer, newest first."""
    for row in answer.get("items", []):
        mark = click.style(" [snapshot]", dim=True) if row.get("snapshot") else ""
        yield (
            f"{click.style(clock(row.get('ts')), dim=True)} "
            f"{click.style('r' + str(row.get('revision')), fg='yellow', bold=True)} "
            f"{click.style(row.get('mutation') or '?', fg='green')} "
            f"by {click.style(row.get('actor') or '?', fg='cyan')}"
            f" ({row.get('changes', 0)} ops){mark}"
        )
    oldest = answer.get("oldest")
    kept = f"r{oldest}..r{answer.get('revision')}" if oldest is not None else "none"
    yield click.style(f"readable history: {kept}", dim=True)


def diff_lines(start: Any, patches: list[dict[str, Any]]) -> Iterator[str]:
    """For each patch after the document `start` (None before the CIM existed): a header, then one line per change."""
    doc = start
    for patch in patches:
        yield (
            f"{click.style(clock(patch.get('ts')), dim=True)} "
            f"{click.style('r' + str(patch.get('rev')), fg='yellow', bold=True)} "
            f"{click.style(patch.get('mutation') or '?', fg='green')} "
            f"by {click.style(patch.get('actor') or '?', fg='cyan')}"
        )
        if patch.get("deleted"):
            yield "  " + click.style("CIM deleted", fg="red", bold=True)
            continue
        ops = patch.get("ops", [])
        for op in ops:
            if op.get("path") in BOOKKEEPING_PATHS:
                continue
            yield "  " + op_line(doc, op)
        doc = apply(doc, ops)


def op_line(before: Any, op: dict[str, Any]) -> str:
    """One change: ``+ /path new`` (green), ``- /path old`` (red), ``~ /path old -> new`` (yellow)."""
    path = op.get("path") or "/"
    kind = op.get("op")
    if kind == "add":
        return click.style(f"+ {path} {short(op.get('value'), VALUE_WIDTH)}", fg="green")
    old = jsonpointer.resolve_pointer(before, op.get("path", ""), None) if before is not None else None
    if kind == "remove":
        return click.style(f"- {path} {short(old, VALUE_WIDTH)}", fg="red")
    if path == "/":
        return click.style(f"+ {path} (the whole CIM) {short(op.get('value'), VALUE_WIDTH)}", fg="green")
    return (
        click.style(f"~ {path} ", fg="yellow")
        + click.style(short(old, VALUE_WIDTH), fg="red")
        + " -> "
        + click.style(short(op.get("value"), VALUE_WIDTH), fg="green")
    )


def parse_range(text: str) -> tuple[int, int | None]:
    """``A..B`` (B may be left out: up to the current revision); raises ValueError on anything else."""
    left, sep, right = text.partition("..")
    if not sep or not left.isdigit() or (right and not right.isdigit()):
        raise ValueError(f"expected A..B (revisions, e.g. 3..7 or 3..), got {text!r}")
    start, end = int(left), int(right) if right else None
    if end is not None and end < start:
        raise ValueError(f"the range {text!r} ends before it starts")
    return start, end
