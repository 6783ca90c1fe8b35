"""Pure parts of history, restore and presence: no Redis, no hub."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import click
import pytest

from cimhub.clients.history_view import diff_lines, op_line, parse_range, revision_lines
from cimhub.clients.presence_view import doing, members_line, presence_line, presence_record
from cimhub.clients.replica import Change
from cimhub.protocol.errors import CimhubError, ErrorCode, InvalidInput
from cimhub.protocol.mutations import MutationContext, finalize, get_mutation
from cimhub.protocol.presence import MAX_STATE_BYTES, change_entry, display_name, member, parse_state
from cimhub.protocol.schema import Cim

NOW = 1_700_000_000_000
CTX = MutationContext(actor="u1", now=NOW, mutation_id="m1", user_id="u1")
PERSONA = {"type": "strategic", "motivations": ["scale"], "concerns": []}


def run(name: str, cim: Cim | None, args: dict[str, Any], ctx: MutationContext = CTX) -> Cim:
    spec = get_mutation(name)
    outcome = spec.run(cim.model_copy(deep=True) if cim else None, spec.parse_args(args), ctx)
    assert outcome.cim is not None
    stamped = finalize(cim.to_json_dict() if cim else None, outcome.cim, ctx.now)
    return Cim.model_validate(stamped.doc) if stamped else cim  # type: ignore[return-value]


def history() -> list[Cim]:
    """Revisions 1..3: created, persona saved, retitled."""
    first = run("create", None, {"dealId": "d1", "projectId": "p1", "title": "Atlas"})
    second = run("saveBuyerPersona", first, {"cimId": first.id, "persona": PERSONA})
    third = run("updateState", second, {"cimId": first.id, "title": "Atlas II"}, replace(CTX, now=NOW + 5))
    return [first, second, third]


def restore(current: Cim, past: Cim, revision: int | None = None) -> tuple[Cim, dict[str, Any]]:
    spec = get_mutation("restoreRevision")
    args = spec.parse_args({"cimId": current.id, "revision": revision or past.revision})
    ctx = replace(CTX, now=NOW + 10, past=past.to_json_dict())
    outcome = spec.run(current.model_copy(deep=True), args, ctx)
    assert outcome.cim is not None
    stamped = finalize(current.to_json_dict(), outcome.cim, ctx.now)
    assert stamped is not None
    return Cim.model_validate(stamped.doc), outcome.result


def test_restore_brings_back_the_past_content_as_the_next_revision() -> None:
    _first, second, third = history()
    restored, result = restore(third, second)
    assert result == {"restoredFrom": 2, "changed": True}
    assert (restored.revision, restored.updatedAt) == (4, NOW + 10)
    assert restored.title == "Atlas" and restored.buyerPersona == second.buyerPersona


def test_restore_keeps_the_identity_and_never_goes_back_to_draft() -> None:
    first, _second, third = history()
    forged = first.model_copy(update={"dealId": "other-deal", "createdAt": 1})
    restored, _ = restore(third, forged)
    assert (restored.dealId, restored.createdAt) == (third.dealId, third.createdAt)
    assert first.status == "draft" and restored.status == "in_progress" and restored.buyerPersona is None


def test_restore_refuses_to_run_without_the_past_document() -> None:
    _, second, third = history()
    spec = get_mutation("restoreRevision")
    with pytest.raises(CimhubError) as missing:
        spec.run(third, spec.parse_args({"cimId": third.id, "revision": 2}), CTX)
    assert missing.value.code == ErrorCode.INTERNAL
    with pytest.raises(CimhubError):  # the engine read another revision than asked
        restore(third, second, revision=1)
    with pytest.raises(InvalidInput):
        spec.parse_args({"cimId": third.id, "revision": 0})


# -- presence -------------------------------------------------------------------


def test_presence_state_is_validated_and_small() -> None:
    assert parse_state({"activity": "editing", "slideId": "s-3"}) == {"activity": "editing", "slideId": "s-3"}
    assert parse_state({}) == {"activity": "viewing"}
    for bad, path in (({"activity": "sleeping"}, "state.activity"), ({"x": 1}, "state.x"), ([], "state")):
        with pytest.raises(InvalidInput) as error:
            parse_state(bad)
        assert error.value.path == path
    assert MAX_STATE_BYTES >= len(
        '{"activity":"drafting","slideId":"' + "x" * 64 + '","sectionId":"' + "y" * 64 + '","name":"' + "n" * 80 + '"}'
    )


@pytest.mark.parametrize(
    ("claims", "name"),
    [
        ({"user_metadata": {"full_name": " Ana Ruiz ", "name": "ana"}}, "Ana Ruiz"),
        ({"user_metadata": {"name": "ana"}}, "ana"),
        ({"user_metadata": {"full_name": "x" * 81}}, None),
        ({"user_metadata": {"full_name": "   "}}, None),
        ({"user_metadata": "Ana"}, None),
        ({"email": "ana@example.com"}, None),  # never the email
        ({}, None),
    ],
)
def test_presence_shows_the_name_supabase_keeps_for_a_user(claims: dict[str, Any], name: str | None) -> None:
    assert display_name(claims) == name


def test_presence_events_become_one_op_patches() -> None:
    alice = member("p1", "u1", "u1", {"activity": "viewing"}, NOW)
    join = change_entry({"type": "join", "id": "p1", "member": alice})
    assert join["ops"] == [{"op": "add", "path": "/p1", "value": alice}] and join["mutation"] == "join"
    leave = change_entry({"type": "leave", "id": "p1", "member": alice})
    assert leave["ops"] == [{"op": "remove", "path": "/p1"}] and leave["actor"] == "u1"
    with pytest.raises(ValueError):
        change_entry({"type": "wave", "id": "p1"})


def test_presence_lines_name_who_and_what() -> None:
    bob = member("p2", "u2", "u2", {"activity": "editing", "slideId": "slide-3", "name": "Bob"}, NOW)
    assert doing(bob["state"]) == "editing slide slide-3"
    assert click.unstyle(members_line({"p2": bob})) == "present: Bob (u2) editing slide slide-3"
    joined = Change(
        "presence:c1", 0, "", {"p2": bob}, ops=[{"op": "add", "path": "/p2", "value": bob}], mutation="join"
    )
    assert click.unstyle(presence_line(joined, {})).endswith("● Bob (u2) joined: editing slide slide-3")
    left = Change("presence:c1", 0, "", {}, ops=[{"op": "remove", "path": "/p2"}], mutation="leave", actor="u2")
    assert click.unstyle(presence_line(left, {"p2": bob})).endswith("○ Bob (u2) left")
    assert presence_record(left, {"p2": bob}) == {
        "type": "presence",
        "topic": "presence:c1",
        "event": "leave",
        "presenceId": "p2",
        "member": bob,
    }


# -- the CLI's history views ------------------------------------------------------


def test_diff_lines_show_old_and_new_values_and_skip_bookkeeping() -> None:
    start = {"title": "Atlas", "slides": [{"id": "a"}], "revision": 1, "updatedAt": 1}
    patches = [
        {
            "rev": 2,
            "mutation": "updateState",
            "actor": "u1",
            "ts": NOW,
            "ops": [
                {"op": "replace", "path": "/title", "value": "Atlas II"},
                {"op": "add", "path": "/stage", "value": "outline"},
                {"op": "remove", "path": "/slides/0"},
                {"op": "replace", "path": "/revision", "value": 2},
            ],
        }
    ]
    lines = [click.unstyle(line) for line in diff_lines(start, patches)]
    assert lines[0].endswith("r2 updateState by u1")
    assert lines[1:] == ['  ~ /title "Atlas" -> "Atlas II"', '  + /stage "outline"', '  - /slides/0 {"id":"a"}']
    assert click.unstyle(op_line(None, {"op": "replace", "path": "", "value": {"id": "c"}})).startswith(
        "+ / (the whole CIM)"
    )


def test_revision_lines_and_ranges() -> None:
    answer = {
        "revision": 7,
        "oldest": 5,
        "items": [
            {"revision": 7, "mutation": "updateSlide", "actor": "u2", "ts": NOW, "changes": 3, "snapshot": False}
        ],
    }
    lines = [click.unstyle(line) for line in revision_lines(answer)]
    assert lines[0].endswith("r7 updateSlide by u2 (3 ops)") and lines[-1] == "readable history: r5..r7"
    assert parse_range("3..7") == (3, 7) and parse_range("3..") == (3, None)
    for bad in ("3", "a..b", "7..3", "..3"):
        with pytest.raises(ValueError):
            parse_range(bad)
