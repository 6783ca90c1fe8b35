"""The mutation functions' rules (pure): no Redis, no clock; the engine's finalize step included."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from cimhub.protocol.errors import CimhubError, Conflict, ErrorCode, InvalidInput, NotFound
from cimhub.protocol.mutations import (
    MUTATIONS,
    MutationContext,
    derived_cim_id,
    finalize,
    get_mutation,
    imported_cim_id,
)
from cimhub.protocol.schema import Cim, SectionProgress, StaleMark

NOW = 1_700_000_000_000
PERSONA = {"type": "strategic", "motivations": ["synergies"], "concerns": ["integration"]}
OTHER_PERSONA = {"type": "financial", "motivations": ["returns"], "concerns": ["leverage"]}
HERO = {
    "selectedHero": "Market leader",
    "investmentThesis": {"asset": "platform", "timing": "now", "opportunity": "roll-up"},
}
OTHER_HERO = {**HERO, "selectedHero": "Fast grower"}
OUTLINE = [
    {"id": "s1", "title": "Overview", "description": "the company"},
    {"id": "s2", "title": "Market", "description": "the market"},
    {"id": "s3", "title": "Financials", "description": "the numbers"},
]


@dataclass
class Step:
    """The outcome of one mutation as the engine would commit it."""

    before: Cim | None
    cim: Cim | None
    result: dict[str, Any]
    changed: bool


def step(
    name: str,
    cim: Cim | None,
    args: dict[str, Any],
    *,
    now: int = NOW,
    mutation_id: str = "m1",
    actor: str = "u1",
    user_id: str | None = "u1",
) -> Step:
    """Parse `args`, run mutation `name` on a copy of `cim` and finalize, as the engine does."""
    spec = get_mutation(name)
    parsed = spec.parse_args(args)
    ctx = MutationContext(actor=actor, now=now, mutation_id=mutation_id, user_id=user_id)
    working = cim.model_copy(deep=True) if cim is not None else None
    outcome = spec.run(working, parsed, ctx)
    if outcome.cim is None:
        return Step(cim, None, outcome.result, True)
    stamped = finalize(cim.to_json_dict() if cim is not None else None, outcome.cim, now)
    if stamped is None:
        return Step(cim, cim, outcome.result, False)
    return Step(cim, Cim.model_validate(stamped.doc), outcome.result, True)


def apply(name: str, cim: Cim | None, args: dict[str, Any], **kw: Any) -> Cim:
    result = step(name, cim, args, **kw).cim
    assert result is not None
    return result


def new_cim() -> Cim:
    return apply("create", None, {"dealId": "d1", "projectId": "p1", "title": "Project Alpha"})


def with_outline() -> Cim:
    cim = apply("saveBuyerPersona", new_cim(), {"cimId": "x", "persona": PERSONA})
    cim = apply("saveHeroContext", cim, {"cimId": cim.id, "heroContext": HERO})
    return apply("createOutline", cim, {"cimId": cim.id, "outline": OUTLINE})


def with_slides(*statuses: str) -> Cim:
    """A CIM at building_sections with one slide per status, slide i in section s1 or s2 alternately."""
    cim = with_outline()
    for i, status in enumerate(statuses):
        slide = {"id": f"sl{i}", "sectionId": f"s{1 + i % 2}", "title": f"Slide {i}", "status": status}
        cim = apply("updateSlide", cim, {"cimId": cim.id, "slide": slide})
    return cim


def raises(code: ErrorCode, name: str, cim: Cim | None, args: dict[str, Any], **kw: Any) -> CimhubError:
    with pytest.raises(CimhubError) as info:
        step(name, cim, args, **kw)
    assert info.value.code == code, info.value
    return info.value


def test_the_mutation_set_is_the_one_these_tests_cover() -> None:
    assert set(MUTATIONS) == {
        "create",
        "updateState",
        "navigateToStage",
        "saveBuyerPersona",
        "saveHeroContext",
        "createOutline",
        "updateSlide",
        "navigateToSlide",
        "delete",
        "importFromSupabase",
        "restoreRevision",  # tests/test_history_unit.py
    }


# -- arguments ------------------------------------------------------------------


def test_unknown_mutation_names_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as info:
        get_mutation("dropTable")
    assert info.value.code == ErrorCode.UNKNOWN_MUTATION
    assert info.value.path == "name"
    assert "updateSlide" in info.value.message and info.value.retryable is False


@pytest.mark.parametrize(
    ("name", "args", "path"),
    [
        ("updateState", {"cimId": "c1", "title": 5}, "args.title"),
        ("updateState", {"cimId": "c1", "stage": "drafting"}, "args.stage"),
        ("navigateToStage", {"cimId": "c1", "targetStage": "nope"}, "args.targetStage"),
        ("updateState", {"cimId": "c1", "colour": "red"}, "args.colour"),
        ("updateState", {"cimId": "bad id{}"}, "args.cimId"),
        ("updateSlide", {"cimId": "c1", "slide": {"id": "s", "status": "published"}}, "args.slide.status"),
        ("createOutline", {"cimId": "c1", "outline": []}, "args.outline"),
        ("saveBuyerPersona", {"cimId": "c1", "persona": {"type": "x"}}, "args.persona.motivations"),
        ("create", {"dealId": "d", "projectId": "p", "title": "x" * 1_001}, "args.title"),
    ],
)
def test_bad_arguments_are_invalid_args_naming_the_field(name: str, args: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidInput) as info:
        get_mutation(name).parse_args(args)
    assert info.value.code == ErrorCode.INVALID_ARGS
    assert info.value.path == path
    assert info.value.to_wire()["retryable"] is False


# -- create and status ----------------------------------------------------------


def test_create_makes_a_draft_at_welcome_with_an_id_derived_from_the_mutation_id() -> None:
    s = step("create", None, {"dealId": "d1", "projectId": "p1", "title": "T"}, mutation_id="m-9")
    assert s.cim is not None
    assert s.cim.id == derived_cim_id("u1", "m-9") == s.result["cimId"]
    assert (s.cim.status, s.cim.stage, s.cim.revision) == ("draft", "welcome", 1)
    assert (s.cim.userId, s.cim.dealId, s.cim.createdAt, s.cim.updatedAt) == ("u1", "d1", NOW, NOW)
    assert s.cim.slides == [] and s.cim.completedStages == []


def test_create_needs_a_user() -> None:
    raises(ErrorCode.INVALID_ARGS, "create", None, {"dealId": "d", "projectId": "p", "title": "T"}, user_id=None)


def test_create_over_an_existing_cim_is_a_conflict() -> None:
    raises(ErrorCode.CONFLICT, "create", new_cim(), {"dealId": "d", "projectId": "p", "title": "T"})


def test_status_goes_draft_to_in_progress_to_complete_with_completed_at() -> None:
    cim = new_cim()
    assert cim.status == "draft"
    cim = apply("updateState", cim, {"cimId": cim.id, "status": "in_progress"})
    assert (cim.status, cim.completedAt) == ("in_progress", None)
    cim = with_slides("approved")
    cim = apply("updateState", cim, {"cimId": cim.id, "status": "complete"}, now=NOW + 5)
    assert (cim.status, cim.completedAt) == ("complete", NOW + 5)
    cim = apply("updateState", cim, {"cimId": cim.id, "status": "in_progress"}, now=NOW + 6)
    assert (cim.status, cim.completedAt) == ("in_progress", None)


def test_a_draft_starts_progress_when_work_starts() -> None:
    cim = apply("saveBuyerPersona", new_cim(), {"cimId": "x", "persona": PERSONA})
    assert cim.status == "in_progress"


def test_a_cim_cannot_go_back_to_draft() -> None:
    cim = apply("updateState", new_cim(), {"cimId": "x", "status": "in_progress"})
    err = raises(ErrorCode.INVALID_TRANSITION, "updateState", cim, {"cimId": cim.id, "status": "draft"})
    assert err.path == "args.status"


def test_a_cim_is_completed_only_while_building_sections() -> None:
    cim = apply("saveBuyerPersona", new_cim(), {"cimId": "x", "persona": PERSONA})
    raises(ErrorCode.INVALID_TRANSITION, "updateState", cim, {"cimId": cim.id, "status": "complete"})


# -- updateState ------------------------------------------------------------------


def test_update_state_refuses_backward_stage_moves() -> None:
    cim = with_outline()
    assert cim.stage == "building_sections"
    err = raises(ErrorCode.INVALID_TRANSITION, "updateState", cim, {"cimId": cim.id, "stage": "hero_concept"})
    assert err.path == "args.stage" and "navigateToStage" in err.message


def test_update_state_moves_forward_only_when_the_stage_has_its_input() -> None:
    cim = new_cim()
    raises(ErrorCode.INVALID_TRANSITION, "updateState", cim, {"cimId": cim.id, "stage": "hero_concept"})
    cim = apply("updateState", cim, {"cimId": cim.id, "stage": "buyer_persona"})
    assert cim.stage == "buyer_persona"


def test_update_state_sets_the_fields_it_is_given_and_merges_gathered_context() -> None:
    cim = new_cim()
    cim = apply("updateState", cim, {"cimId": cim.id, "gatheredContext": {"a": 1}, "title": "New"})
    cim = apply("updateState", cim, {"cimId": cim.id, "gatheredContext": {"b": 2}, "currentSectionId": "s9"})
    assert cim.gatheredContext == {"a": 1, "b": 2}
    assert (cim.title, cim.currentSectionId, cim.revision) == ("New", "s9", 3)


def test_a_mutation_that_changes_nothing_is_a_noop() -> None:
    cim = new_cim()
    s = step("updateState", cim, {"cimId": cim.id, "title": cim.title}, now=NOW + 10)
    assert finalize(cim.to_json_dict(), cim.model_copy(deep=True), NOW + 10) is None
    assert not s.changed and s.cim is cim


def test_finalize_stamps_the_next_revision_and_time() -> None:
    cim = new_cim()
    edited = cim.model_copy(deep=True)
    edited.title = "x"
    new = finalize(cim.to_json_dict(), edited, NOW + 7)
    assert new is not None and (new.doc["revision"], new.doc["updatedAt"]) == (2, NOW + 7)
    assert {"op": "replace", "path": "/title", "value": "x"} in new.ops


# -- navigateToStage --------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "hero", "outline", "slides"),
    [
        ("welcome", True, True, True),
        ("buyer_persona", True, True, True),
        ("hero_concept", False, True, True),
        ("outline", False, False, True),
    ],
)
def test_navigating_back_marks_downstream_with_the_target_stage_as_reason(
    target: str, hero: bool, outline: bool, slides: bool
) -> None:
    cim = with_slides("approved", "draft")
    s = step("navigateToStage", cim, {"cimId": cim.id, "targetStage": target, "reason": "user asked"}, now=NOW + 1)
    new = s.cim
    assert new is not None and new.stage == target
    reason = f"{target}_changed"
    assert (new.heroStale == StaleMark(reason=reason, at=NOW + 1)) is hero
    assert (new.outlineStale == StaleMark(reason=reason, at=NOW + 1)) is outline
    assert all((sl.status, sl.staleReason) == ("needs_review", reason) for sl in new.slides) is slides
    assert set(s.result["invalidated"]) == {
        name for name, on in (("heroContext", hero), ("outline", outline), ("slides", slides)) if on
    }
    # Marked, never deleted.
    assert new.heroContext == cim.heroContext and new.outline == cim.outline and len(new.slides) == 2


def test_forward_navigation_invalidates_nothing() -> None:
    cim = with_outline()
    cim = apply("navigateToStage", cim, {"cimId": cim.id, "targetStage": "hero_concept"})
    cim = apply(
        "updateSlide",
        cim,
        {"cimId": cim.id, "slide": {"id": "a", "sectionId": "s1", "title": "A", "status": "approved"}},
    )
    s = step("navigateToStage", cim, {"cimId": cim.id, "targetStage": "building_sections"})
    assert s.cim is not None and s.result["invalidated"] == []
    assert s.cim.stage == "building_sections"
    assert s.cim.slides == cim.slides and s.cim.outlineStale == cim.outlineStale


def test_navigation_to_the_current_stage_invalidates_nothing() -> None:
    cim = with_slides("approved")
    s = step("navigateToStage", cim, {"cimId": cim.id, "targetStage": "building_sections"})
    assert not s.changed and s.result["invalidated"] == []


def test_navigation_forward_needs_the_stage_input() -> None:
    raises(ErrorCode.INVALID_TRANSITION, "navigateToStage", new_cim(), {"cimId": "x", "targetStage": "outline"})


def test_navigating_back_reopens_a_complete_cim() -> None:
    cim = with_slides("approved")
    cim = apply("updateState", cim, {"cimId": cim.id, "status": "complete"})
    cim = apply("navigateToStage", cim, {"cimId": cim.id, "targetStage": "outline"})
    assert (cim.status, cim.completedAt) == ("in_progress", None)


def test_seed_section_9_backward_navigation_marks_an_approved_slide() -> None:
    cim = with_slides("approved")
    cim = apply(
        "navigateToStage", cim, {"cimId": cim.id, "targetStage": "buyer_persona", "reason": "User requested change"}
    )
    assert cim.slides[0].status == "needs_review"
    assert cim.slides[0].staleReason == "buyer_persona_changed"


# -- saveBuyerPersona / saveHeroContext -------------------------------------------


def test_first_persona_moves_on_to_the_hero_concept() -> None:
    s = step("saveBuyerPersona", new_cim(), {"cimId": "x", "persona": PERSONA})
    assert s.cim is not None and s.result == {"changed": False, "invalidated": []}
    assert s.cim.stage == "hero_concept" and s.cim.completedStages == ["buyer_persona"]


def test_unchanged_persona_invalidates_nothing() -> None:
    cim = with_slides("approved")
    s = step("saveBuyerPersona", cim, {"cimId": cim.id, "persona": PERSONA})
    assert s.result == {"changed": False, "invalidated": []}
    assert not s.changed
    assert s.cim is not None and s.cim.heroStale is None and s.cim.slides[0].status == "approved"


def test_changed_persona_marks_hero_outline_and_slides() -> None:
    cim = with_slides("approved", "draft")
    s = step("saveBuyerPersona", cim, {"cimId": cim.id, "persona": OTHER_PERSONA}, now=NOW + 3)
    new = s.cim
    assert new is not None and s.result == {"changed": True, "invalidated": ["heroContext", "outline", "slides"]}
    assert new.heroStale == StaleMark(reason="buyer_persona_changed", at=NOW + 3)
    assert new.outlineStale == StaleMark(reason="buyer_persona_changed", at=NOW + 3)
    assert [(sl.status, sl.staleReason) for sl in new.slides] == [("needs_review", "buyer_persona_changed")] * 2
    assert new.buyerPersona is not None and new.buyerPersona.type == "financial"
    assert new.stage == "building_sections"  # saving an earlier artifact does not move the workflow back


def test_saving_the_hero_again_clears_hero_stale() -> None:
    cim = with_slides("approved")
    cim = apply("saveBuyerPersona", cim, {"cimId": cim.id, "persona": OTHER_PERSONA})
    assert cim.heroStale is not None
    s = step("saveHeroContext", cim, {"cimId": cim.id, "heroContext": HERO})
    assert s.cim is not None and s.cim.heroStale is None
    assert s.result == {"changed": False, "invalidated": []}
    assert s.cim.outlineStale is not None  # the outline still needs its own review


def test_changed_hero_marks_outline_and_slides_only() -> None:
    cim = with_slides("approved")
    s = step("saveHeroContext", cim, {"cimId": cim.id, "heroContext": OTHER_HERO})
    assert s.cim is not None and s.result == {"changed": True, "invalidated": ["outline", "slides"]}
    assert s.cim.heroStale is None
    assert s.cim.outlineStale is not None and s.cim.outlineStale.reason == "hero_context_changed"
    assert s.cim.slides[0].staleReason == "hero_context_changed"


def test_hero_needs_a_persona_first() -> None:
    raises(ErrorCode.INVALID_TRANSITION, "saveHeroContext", new_cim(), {"cimId": "x", "heroContext": HERO})


# -- createOutline ----------------------------------------------------------------


def test_create_outline_initialises_section_progress() -> None:
    cim = with_outline()
    assert cim.sectionProgress == {sid: SectionProgress() for sid in ("s1", "s2", "s3")}
    assert all(p.status == "pending" and p.slideIds == [] for p in cim.sectionProgress.values())
    assert cim.stage == "building_sections"
    assert cim.completedStages == ["buyer_persona", "hero_concept", "outline"]


def test_new_outline_marks_slides_of_changed_and_removed_sections_only() -> None:
    cim = with_slides("approved", "approved", "approved")  # sl0, sl2 in s1; sl1 in s2
    cim = apply(
        "updateSlide",
        cim,
        {"cimId": cim.id, "slide": {"id": "sl3", "sectionId": "s3", "title": "x", "status": "approved"}},
    )
    outline = [
        {**OUTLINE[0], "title": "Overview, rewritten"},  # s1 changed
        OUTLINE[2],  # s3 unchanged; s2 removed
        {"id": "s4", "title": "New", "description": "added"},
    ]
    s = step("createOutline", cim, {"cimId": cim.id, "outline": outline})
    new = s.cim
    assert new is not None and s.result == {"sections": 3, "invalidated": ["slides"]}
    marks = {sl.id: (sl.status, sl.staleReason) for sl in new.slides}
    assert marks == {
        "sl0": ("needs_review", "outline_changed"),
        "sl1": ("needs_review", "outline_changed"),
        "sl2": ("needs_review", "outline_changed"),
        "sl3": ("approved", None),
    }
    assert set(new.sectionProgress) == {"s1", "s3", "s4"}
    assert new.sectionProgress["s1"].status == "in_progress"  # its slides need review now
    assert new.sectionProgress["s3"].status == "complete"
    assert new.sectionProgress["s4"] == SectionProgress()


def test_the_same_outline_again_marks_nothing_and_clears_outline_stale() -> None:
    cim = with_slides("approved")
    cim = apply("saveHeroContext", cim, {"cimId": cim.id, "heroContext": OTHER_HERO})
    assert cim.outlineStale is not None
    s = step("createOutline", cim, {"cimId": cim.id, "outline": OUTLINE})
    assert s.cim is not None and s.result["invalidated"] == [] and s.cim.outlineStale is None
    assert s.cim.slides[0].staleReason == "hero_context_changed"  # untouched by the outline


def test_outline_section_ids_must_be_unique() -> None:
    cim = with_outline()
    err = raises(ErrorCode.INVALID_ARGS, "createOutline", cim, {"cimId": cim.id, "outline": [OUTLINE[0]] * 2})
    assert err.path == "args.outline"


def test_outline_needs_a_hero_context_first() -> None:
    cim = apply("saveBuyerPersona", new_cim(), {"cimId": "x", "persona": PERSONA})
    raises(ErrorCode.INVALID_TRANSITION, "createOutline", cim, {"cimId": cim.id, "outline": OUTLINE})


# -- updateSlide --------------------------------------------------------------------


def test_section_progress_follows_its_slides() -> None:
    cim = with_outline()
    cim = apply("updateSlide", cim, {"cimId": cim.id, "slide": {"id": "a", "sectionId": "s1", "title": "A"}})
    assert cim.sectionProgress["s1"] == SectionProgress(status="in_progress", slideIds=["a"])
    cim = apply(
        "updateSlide",
        cim,
        {"cimId": cim.id, "slide": {"id": "b", "sectionId": "s1", "title": "B", "status": "approved"}},
    )
    assert cim.sectionProgress["s1"].status == "in_progress"
    cim = apply("updateSlide", cim, {"cimId": cim.id, "slide": {"id": "a", "status": "approved"}})
    assert cim.sectionProgress["s1"] == SectionProgress(status="complete", slideIds=["a", "b"])


def test_moving_a_slide_updates_both_sections() -> None:
    cim = with_slides("approved")  # sl0 in s1
    s = step("updateSlide", cim, {"cimId": cim.id, "slide": {"id": "sl0", "sectionId": "s2"}})
    assert s.cim is not None and s.result == {"slideId": "sl0", "created": False}
    assert s.cim.sectionProgress["s1"] == SectionProgress(status="pending", slideIds=[])
    assert s.cim.sectionProgress["s2"] == SectionProgress(status="complete", slideIds=["sl0"])


def test_editing_an_approved_slide_needs_approval_again() -> None:
    cim = with_slides("approved")
    cim = apply("updateSlide", cim, {"cimId": cim.id, "slide": {"id": "sl0", "title": "Edited"}})
    assert (cim.slides[0].title, cim.slides[0].status) == ("Edited", "draft")
    assert cim.sectionProgress["s1"].status == "in_progress"


def test_slide_review_status_and_reason() -> None:
    cim = with_slides("draft")
    cim = apply("updateSlide", cim, {"cimId": cim.id, "slide": {"id": "sl0", "status": "needs_review"}})
    assert (cim.slides[0].status, cim.slides[0].staleReason) == ("needs_review", "manual_review")
    cim = apply("updateSlide", cim, {"cimId": cim.id, "slide": {"id": "sl0", "status": "approved"}})
    assert (cim.slides[0].status, cim.slides[0].staleReason) == ("approved", None)


def test_update_slide_refusals() -> None:
    raises(
        ErrorCode.INVALID_TRANSITION,
        "updateSlide",
        new_cim(),
        {"cimId": "x", "slide": {"id": "a", "sectionId": "s1", "title": "A"}},
    )
    cim = with_outline()
    raises(ErrorCode.INVALID_ARGS, "updateSlide", cim, {"cimId": cim.id, "slide": {"id": "a", "sectionId": "s1"}})
    err = raises(
        ErrorCode.INVALID_ARGS,
        "updateSlide",
        cim,
        {"cimId": cim.id, "slide": {"id": "a", "sectionId": "s9", "title": "A"}},
    )
    assert err.path == "args.slide.sectionId"


# -- navigateToSlide ------------------------------------------------------------------


def test_navigate_to_slide_sets_its_section_and_the_building_stage() -> None:
    cim = with_slides("draft", "draft")  # sl1 in s2
    cim = apply("navigateToStage", cim, {"cimId": cim.id, "targetStage": "outline"})
    s = step("navigateToSlide", cim, {"cimId": cim.id, "slideId": "sl1"})
    assert s.cim is not None and s.result == {"sectionId": "s2", "slideId": "sl1"}
    assert (s.cim.currentSectionId, s.cim.currentSlideId, s.cim.stage) == ("s2", "sl1", "building_sections")
    assert s.cim.slides == cim.slides  # forward: nothing invalidated
    cim = apply("navigateToSlide", s.cim, {"cimId": cim.id, "sectionId": "s3"})
    assert (cim.currentSectionId, cim.currentSlideId) == ("s3", None)


def test_navigate_to_slide_refusals() -> None:
    cim = with_slides("draft")
    raises(ErrorCode.INVALID_ARGS, "navigateToSlide", cim, {"cimId": cim.id})
    raises(ErrorCode.NOT_FOUND, "navigateToSlide", cim, {"cimId": cim.id, "slideId": "nope"})
    raises(ErrorCode.NOT_FOUND, "navigateToSlide", cim, {"cimId": cim.id, "sectionId": "s9"})
    raises(ErrorCode.INVALID_ARGS, "navigateToSlide", cim, {"cimId": cim.id, "sectionId": "s2", "slideId": "sl0"})
    raises(ErrorCode.INVALID_TRANSITION, "navigateToSlide", new_cim(), {"cimId": "x", "sectionId": "s1"})


# -- delete and missing CIMs ------------------------------------------------------------


def test_delete_returns_no_document() -> None:
    s = step("delete", new_cim(), {"cimId": "x"})
    assert s.cim is None and s.result == {"deleted": True}


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("updateState", {"cimId": "c1"}),
        ("navigateToStage", {"cimId": "c1", "targetStage": "welcome"}),
        ("saveBuyerPersona", {"cimId": "c1", "persona": PERSONA}),
        ("saveHeroContext", {"cimId": "c1", "heroContext": HERO}),
        ("createOutline", {"cimId": "c1", "outline": OUTLINE}),
        ("updateSlide", {"cimId": "c1", "slide": {"id": "a"}}),
        ("navigateToSlide", {"cimId": "c1", "sectionId": "s1"}),
        ("delete", {"cimId": "c1"}),
    ],
)
def test_every_mutation_of_an_existing_cim_says_not_found_when_it_is_missing(name: str, args: dict[str, Any]) -> None:
    with pytest.raises(NotFound) as info:
        step(name, None, args)
    assert info.value.path == "args.cimId"


# -- importFromSupabase -----------------------------------------------------------------

LEGACY = {
    "sourceId": "legacy-42",
    "dealId": "d1",
    "projectId": "p1",
    "userId": "u7",
    "title": "Imported",
    "createdAt": 1_600_000_000_000,
    "workflowState": {
        "current_stage": "building_sections",
        "completed_stages": ["buyer_persona", "hero_concept", "outline"],
        "current_section_id": "s1",
        "section_progress": {"s1": {"status": "in_progress", "slide_ids": ["a"]}},
        "gathered_context": {"revenue": 12},
        "ignored_legacy_field": True,
    },
    "slides": [
        {
            "id": "a",
            "section_id": "s1",
            "title": "A",
            "layout_type": "title",
            "components": [],
            "status": "needs_review",
            "stale_reason": "buyer_persona_changed",
        }
    ],
    "buyerPersona": PERSONA,
    "heroContext": HERO,
    "outline": OUTLINE,
}


def test_import_maps_snake_case_legacy_json() -> None:
    s = step("importFromSupabase", None, LEGACY, user_id=None, actor="service:migrate")
    cim = s.cim
    assert cim is not None and s.result == {"cimId": imported_cim_id("legacy-42"), "imported": True}
    assert cim.id == imported_cim_id("legacy-42")
    assert (cim.userId, cim.status, cim.stage, cim.createdAt) == (
        "u7",
        "in_progress",
        "building_sections",
        1_600_000_000_000,
    )
    assert cim.completedStages == ["buyer_persona", "hero_concept", "outline"]
    assert cim.currentSectionId == "s1" and cim.gatheredContext == {"revenue": 12}
    assert cim.sectionProgress["s1"] == SectionProgress(status="in_progress", slideIds=["a"])
    slide = cim.slides[0]
    assert (slide.sectionId, slide.layoutType, slide.status, slide.staleReason) == (
        "s1",
        "title",
        "needs_review",
        "buyer_persona_changed",
    )


def test_import_is_idempotent_by_source_id() -> None:
    first = apply("importFromSupabase", None, LEGACY, user_id=None, mutation_id="a")
    again = step("importFromSupabase", first, {**LEGACY, "title": "Changed since"}, user_id=None, mutation_id="b")
    assert again.result == {"cimId": first.id, "imported": False}
    assert not again.changed and again.cim == first


def test_import_of_a_bad_legacy_row_is_invalid_args() -> None:
    bad = {**LEGACY, "workflowState": {"current_stage": "drafting"}}
    err = raises(ErrorCode.INVALID_ARGS, "importFromSupabase", None, bad, user_id=None)
    assert err.path == "args.stage"


def test_conflict_errors_are_not_retryable() -> None:
    assert Conflict("x").to_wire() == {"code": "conflict", "message": "x", "retryable": False}


def test_each_mutation_declares_who_may_run_it() -> None:
    # The authorizer reads only this field (never a mutation's name): a new mutation is CIM-scoped unless it says so.
    assert {name: spec.access for name, spec in MUTATIONS.items() if spec.access != "cim"} == {
        "create": "deal_in_project",
        "importFromSupabase": "service",
    }
