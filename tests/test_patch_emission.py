"""Mutations emit their own patch: the property that it is the whole-document diff, and nothing else (pure).

`finalize` builds the patch from the parts of the CIM a mutation touched
(`Cim.touch`), and the engine runs the next mutation on the same model instead
of validating the stored document again. The oracle here is the path that did
neither: validate the stored document into a fresh model, run the mutation,
dump the whole result and diff it against the stored document.
"""

from __future__ import annotations

from typing import Any

import jsonpatch
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cimhub.protocol.errors import CimhubError
from cimhub.protocol.mutations import MutationContext, Stamped, finalize, get_mutation
from cimhub.protocol.patch import JsonOp, diff
from cimhub.protocol.schema import STAGES, Cim

NOW = 1_700_000_000_000
PERSONAS = [
    {"type": "strategic", "motivations": ["synergies"], "concerns": ["integration"]},
    {"type": "financial", "motivations": ["returns"], "concerns": ["leverage"]},
]
HEROES = [
    {"selectedHero": hero, "investmentThesis": {"asset": "platform", "timing": "now", "opportunity": "roll-up"}}
    for hero in ("Market leader", "Fast grower")
]
SECTIONS = [
    {"id": "s1", "title": "Overview", "description": "d"},
    {"id": "s1", "title": "Overview v2", "description": "d"},
    {"id": "s2", "title": "Market", "description": "d"},
    {"id": "s3", "title": "Numbers", "description": "d"},
    {"id": "s4", "title": "Team", "description": "d"},
]

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.sampled_from([0.0, -0.0, 1.0]),
    st.text(alphabet="ab/~", max_size=3),
)
json_values = st.recursive(
    leaves,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["x", "y", "a/b", "~0"]), c, max_size=3),
    max_leaves=6,
)
# Values Python's == equates (1 == 1.0 == True, 0.0 == -0.0) but JSON does not.
confusable = st.lists(st.sampled_from([0, 1, True, False, 0.0, 1.0, -0.0, "a"]), min_size=2, max_size=2)
slide_ids = st.sampled_from(["a", "b", "c", "d"])
section_ids = st.sampled_from(["s1", "s2", "s3", "s4"])
statuses = st.sampled_from(["draft", "needs_review", "approved"])
slide_edit = st.fixed_dictionaries(
    {"id": slide_ids},
    optional={
        "sectionId": section_ids,
        "title": st.sampled_from(["A", "B"]),
        "layoutType": st.sampled_from(["t", "c"]),
        "components": st.one_of(confusable, st.lists(json_values, max_size=3)),
        "status": statuses,
    },
)
operations = st.one_of(
    st.tuples(st.just("updateSlide"), st.fixed_dictionaries({"slide": slide_edit})),
    st.tuples(st.just("updateSlide"), st.fixed_dictionaries({"slide": slide_edit})),
    st.tuples(
        st.just("updateState"),
        st.fixed_dictionaries(
            {},
            optional={
                "title": st.sampled_from(["T1", "T2"]),
                "stage": st.sampled_from(STAGES),
                "status": st.sampled_from(["in_progress", "complete"]),
                "completedStages": st.lists(st.sampled_from(STAGES), max_size=2),
                "currentSectionId": section_ids,
                "currentSlideId": slide_ids,
                "sectionProgress": st.dictionaries(
                    section_ids,
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "status": st.sampled_from(["pending", "complete"]),
                            "slideIds": st.lists(slide_ids, max_size=2),
                        },
                    ),
                    max_size=2,
                ),
                "gatheredContext": st.dictionaries(st.sampled_from(["k1", "k2"]), json_values, max_size=2),
            },
        ),
    ),
    st.tuples(st.just("navigateToStage"), st.fixed_dictionaries({"targetStage": st.sampled_from(STAGES)})),
    st.tuples(st.just("saveBuyerPersona"), st.fixed_dictionaries({"persona": st.sampled_from(PERSONAS)})),
    st.tuples(st.just("saveHeroContext"), st.fixed_dictionaries({"heroContext": st.sampled_from(HEROES)})),
    st.tuples(
        st.just("createOutline"),
        st.fixed_dictionaries(
            {"outline": st.lists(st.sampled_from(SECTIONS), min_size=1, max_size=4, unique_by=lambda s: s["id"])}
        ),
    ),
    st.tuples(
        st.just("navigateToSlide"), st.fixed_dictionaries({}, optional={"slideId": slide_ids, "sectionId": section_ids})
    ),
)


def whole_document_finalize(base: dict[str, Any], new: Cim, now: int) -> Stamped | None:
    """The path before patch emission: dump the whole mutated model and diff it against `base`."""
    if new.status == "draft" and (new.stage != "welcome" or new.buyerPersona is not None):
        new.status = "in_progress"
    doc = new.to_json_dict()
    doc["revision"], doc["updatedAt"] = base["revision"], base["updatedAt"]
    ops = diff(base, doc)
    if not ops:
        return None
    doc["revision"] = base["revision"] + 1
    doc["updatedAt"] = now
    ops += [
        {"op": "replace", "path": "/revision", "value": doc["revision"]},
        {"op": "replace", "path": "/updatedAt", "value": now},
    ]
    return Stamped(doc, ops)


def run(name: str, cim: Cim, args: dict[str, Any], n: int) -> Cim | None:
    spec = get_mutation(name)
    ctx = MutationContext(actor="u1", now=NOW + n, mutation_id=f"m{n}", user_id="u1")
    return spec.run(cim, spec.parse_args({"cimId": cim.id, **args}), ctx).cim


def created() -> tuple[dict[str, Any], Cim]:
    spec = get_mutation("create")
    ctx = MutationContext(actor="u1", now=NOW, mutation_id="create", user_id="u1")
    cim = spec.run(None, spec.parse_args({"dealId": "d1", "projectId": "p1", "title": "Alpha"}), ctx).cim
    assert cim is not None
    stamped = finalize(None, cim, NOW)
    assert stamped is not None
    return stamped.doc, cim


@settings(max_examples=300, deadline=None)
@given(st.lists(operations, min_size=1, max_size=25))
def test_emitted_ops_are_the_whole_document_diff_and_rebuild_the_old_paths_document(
    plan: list[tuple[str, dict[str, Any]]],
) -> None:
    base, live = created()  # `live` is reused from mutation to mutation, as the engine's cache does
    for n, (name, args) in enumerate(plan, start=1):
        base_bytes = orjson.dumps(base)
        try:
            oracle = run(name, Cim.model_validate(base), args, n)
        except CimhubError as expected:
            with pytest.raises(CimhubError) as info:
                run(name, live, args, n)
            assert info.value.code == expected.code
            live = Cim.model_validate(base)  # the engine drops a model a failed mutation may have half-edited
            continue
        edited = run(name, live, args, n)
        assert oracle is not None and edited is live
        old = whole_document_finalize(base, oracle, NOW + n)
        new = finalize(base, live, NOW + n)
        assert orjson.dumps(base) == base_bytes, "finalize must not edit the stored document"
        if old is None:
            assert new is None
            continue
        assert new is not None
        assert new.ops == old.ops
        assert new.ops[:-2] == diff(base, {**old.doc, "revision": base["revision"], "updatedAt": base["updatedAt"]})
        assert orjson.dumps(new.doc) == orjson.dumps(old.doc)  # the same bytes go to Redis
        assert jsonpatch.apply_patch(base, new.ops) == old.doc
        assert live == Cim.model_validate(old.doc)  # the model stays in step with its document
        base = new.doc


def edit(name: str, cim: Cim, args: dict[str, Any]) -> tuple[list[JsonOp], Cim]:
    base = cim.to_json_dict()
    run(name, cim, args, 1)
    stamped = finalize(base, cim, NOW + 1)
    assert stamped is not None
    return stamped.ops[:-2], cim


def building() -> Cim:
    _, cim = created()
    for name, args in [
        ("saveBuyerPersona", {"persona": PERSONAS[0]}),
        ("saveHeroContext", {"heroContext": HEROES[0]}),
        ("createOutline", {"outline": SECTIONS[2:4]}),
        ("updateSlide", {"slide": {"id": "a", "sectionId": "s2", "title": "A", "status": "approved"}}),
        ("updateSlide", {"slide": {"id": "b", "sectionId": "s3", "title": "B", "status": "approved"}}),
    ]:
        base = cim.to_json_dict()
        run(name, cim, args, 0)
        finalize(base, cim, NOW)
    return cim


def test_a_slide_edit_patches_that_slide_and_its_section_only() -> None:
    ops, _ = edit("updateSlide", building(), {"slide": {"id": "b", "title": "B2"}})
    assert ops == [
        {"op": "replace", "path": "/sectionProgress/s3/status", "value": "in_progress"},
        {"op": "replace", "path": "/slides/1/title", "value": "B2"},
        {"op": "replace", "path": "/slides/1/status", "value": "draft"},
    ]


def test_cascade_marks_are_in_the_patch() -> None:
    ops, _ = edit("saveBuyerPersona", building(), {"persona": PERSONAS[1]})
    mark = {"reason": "buyer_persona_changed", "at": NOW + 1}
    assert ops[3:] == [
        {"op": "add", "path": "/heroStale", "value": mark},
        {"op": "add", "path": "/outlineStale", "value": mark},
        {"op": "replace", "path": "/slides/0/status", "value": "needs_review"},
        {"op": "add", "path": "/slides/0/staleReason", "value": "buyer_persona_changed"},
        {"op": "replace", "path": "/slides/1/status", "value": "needs_review"},
        {"op": "add", "path": "/slides/1/staleReason", "value": "buyer_persona_changed"},
    ]


def test_a_cleared_field_is_removed() -> None:
    cim = building()
    base = cim.to_json_dict()
    run("saveBuyerPersona", cim, {"persona": PERSONAS[1]}, 1)
    finalize(base, cim, NOW)
    ops, _ = edit("saveHeroContext", cim, {"heroContext": HEROES[0]})
    assert {"op": "remove", "path": "/heroStale"} in ops
