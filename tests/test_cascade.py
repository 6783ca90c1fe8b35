"""Cascade rules (pure): the seed's calculateCascade table (§3) and the marks `invalidate` makes."""

from __future__ import annotations

import itertools

import pytest

from cimhub.protocol import cascade
from cimhub.protocol.schema import (
    STAGES,
    BuyerPersona,
    Cim,
    HeroContext,
    InvestmentThesis,
    OutlineSection,
    Slide,
    Stage,
    StaleMark,
)

NOW = 1_700_000_000_000


def seed_calculate_cascade(current: Stage, target: Stage) -> set[str]:
    """The seed's calculateCascade (§3), transcribed: the reference the rules must match."""
    order = ["welcome", "buyer_persona", "hero_concept", "outline", "building_sections"]
    from_idx, to_idx = order.index(current), order.index(target)
    if to_idx >= from_idx:
        return set()
    marked = set()
    if to_idx <= 1:
        marked.add("heroContext")
    if to_idx <= 2:
        marked.add("outline")
    if to_idx <= 3:
        marked.add("slides")
    return marked


@pytest.mark.parametrize(("current", "target"), list(itertools.product(STAGES, STAGES)))
def test_navigation_invalidates_what_the_seeds_calculate_cascade_does(current: Stage, target: Stage) -> None:
    assert set(cascade.invalidated_by_navigation(current, target)) == seed_calculate_cascade(current, target)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("welcome", ("heroContext", "outline", "slides")),
        ("buyer_persona", ("heroContext", "outline", "slides")),
        ("hero_concept", ("outline", "slides")),
        ("outline", ("slides",)),
        ("building_sections", ()),
    ],
)
def test_going_back_from_the_last_stage(target: Stage, expected: tuple[str, ...]) -> None:
    assert cascade.invalidated_by_navigation("building_sections", target) == expected


def test_downstream_table_is_the_artifact_chain() -> None:
    chain = ["buyerPersona", "heroContext", "outline", "slides"]
    for i, artifact in enumerate(chain):
        assert cascade.DOWNSTREAM[artifact] == tuple(chain[i + 1 :])


def test_every_stage_has_an_artifact_and_a_requirement() -> None:
    assert set(cascade.STAGE_ARTIFACT) == set(STAGES)
    assert cascade.STAGE_REQUIRES == {
        "welcome": None,
        "buyer_persona": None,
        "hero_concept": "buyerPersona",
        "outline": "heroContext",
        "building_sections": "outline",
    }


def test_stage_order_and_successor() -> None:
    assert [cascade.stage_index(s) for s in STAGES] == [0, 1, 2, 3, 4]
    assert [cascade.next_stage(s) for s in STAGES] == [
        "buyer_persona",
        "hero_concept",
        "outline",
        "building_sections",
        "building_sections",
    ]


def full_cim() -> Cim:
    return Cim(
        id="c1",
        dealId="d1",
        userId="u1",
        projectId="p1",
        title="T",
        createdAt=1,
        updatedAt=1,
        stage="building_sections",
        buyerPersona=BuyerPersona(type="strategic", motivations=["m"], concerns=["c"]),
        heroContext=HeroContext(
            selectedHero="h", investmentThesis=InvestmentThesis(asset="a", timing="t", opportunity="o")
        ),
        outline=[OutlineSection(id="s1", title="S1", description="d")],
        slides=[
            Slide(id="a", sectionId="s1", title="A", status="approved"),
            Slide(id="b", sectionId="s1", title="B", status="draft"),
        ],
    )


def test_invalidate_marks_every_downstream_artifact_without_deleting_it() -> None:
    cim = full_cim()
    marked = cascade.invalidate(cim, cascade.DOWNSTREAM["buyerPersona"], "buyer_persona_changed", NOW)
    assert marked == ["heroContext", "outline", "slides"]
    assert cim.heroStale == StaleMark(reason="buyer_persona_changed", at=NOW)
    assert cim.outlineStale == StaleMark(reason="buyer_persona_changed", at=NOW)
    assert [(s.status, s.staleReason) for s in cim.slides] == [("needs_review", "buyer_persona_changed")] * 2
    assert cim.heroContext is not None and cim.outline is not None and len(cim.slides) == 2


def test_invalidate_again_with_the_same_reason_changes_nothing() -> None:
    cim = full_cim()
    cascade.invalidate(cim, ("heroContext", "outline", "slides"), "buyer_persona_changed", NOW)
    assert cascade.invalidate(cim, ("heroContext", "outline", "slides"), "buyer_persona_changed", NOW + 1) == []
    assert cim.heroStale is not None and cim.heroStale.at == NOW


def test_invalidate_with_a_new_reason_marks_again() -> None:
    cim = full_cim()
    cascade.invalidate(cim, ("outline", "slides"), "hero_context_changed", NOW)
    assert cascade.invalidate(cim, ("outline", "slides"), "outline_changed", NOW + 1) == ["outline", "slides"]
    assert cim.outlineStale == StaleMark(reason="outline_changed", at=NOW + 1)
    assert {s.staleReason for s in cim.slides} == {"outline_changed"}


def test_invalidate_skips_artifacts_that_do_not_exist_yet() -> None:
    cim = Cim(id="c1", dealId="d1", userId="u1", projectId="p1", title="T", createdAt=1, updatedAt=1)
    assert cascade.invalidate(cim, ("heroContext", "outline", "slides"), "buyer_persona_changed", NOW) == []
    assert cim.heroStale is None and cim.outlineStale is None


def test_mark_slides_marks_only_the_selected_slides() -> None:
    cim = full_cim()
    assert cascade.mark_slides(cim.slides, "outline_changed", lambda s: s.id == "b")
    assert [(s.id, s.status, s.staleReason) for s in cim.slides] == [
        ("a", "approved", None),
        ("b", "needs_review", "outline_changed"),
    ]
    assert not cascade.mark_slides(cim.slides, "outline_changed", lambda s: s.id == "b")
