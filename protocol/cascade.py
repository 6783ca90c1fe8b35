"""Cascade invalidation: which artifacts go stale when an upstream one changes.

The CIM workflow builds artifacts in a chain, each from the one before:

    buyer persona -> hero context -> outline -> slides

When an artifact changes (or the user navigates back to the stage that makes
it), everything downstream is *marked*, never deleted: slides become
``needs_review`` with a ``staleReason``; the hero context and the outline get a
``heroStale`` / ``outlineStale`` mark that saving them again clears. This module
is the one declarative place those rules live; mutations only call `invalidate`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from .schema import STAGES, Cim, Slide, Stage, StaleMark

Artifact = Literal["buyerPersona", "heroContext", "outline", "slides"]

# The seed's calculateCascade, as data: what each artifact invalidates when it changes.
DOWNSTREAM: dict[Artifact, tuple[Artifact, ...]] = {
    "buyerPersona": ("heroContext", "outline", "slides"),
    "heroContext": ("outline", "slides"),
    "outline": ("slides",),
    "slides": (),
}

# The artifact each stage produces. Going back to `welcome` reopens the persona
# question, so it invalidates what the persona feeds, like going to `buyer_persona`.
STAGE_ARTIFACT: dict[Stage, Artifact] = {
    "welcome": "buyerPersona",
    "buyer_persona": "buyerPersona",
    "hero_concept": "heroContext",
    "outline": "outline",
    "building_sections": "slides",
}

# What must exist before the workflow may stand at a stage.
STAGE_REQUIRES: dict[Stage, Artifact | None] = {
    "welcome": None,
    "buyer_persona": None,
    "hero_concept": "buyerPersona",
    "outline": "heroContext",
    "building_sections": "outline",
}


def stage_index(stage: Stage) -> int:
    return STAGES.index(stage)


def next_stage(stage: Stage) -> Stage:
    """The stage after `stage` (the last stage is its own successor)."""
    return STAGES[min(stage_index(stage) + 1, len(STAGES) - 1)]


def invalidated_by_navigation(current: Stage, target: Stage) -> tuple[Artifact, ...]:
    """Artifacts marked when moving from `current` to `target`: none going forward."""
    if stage_index(target) >= stage_index(current):
        return ()
    return DOWNSTREAM[STAGE_ARTIFACT[target]]


def invalidate(cim: Cim, artifacts: tuple[Artifact, ...], reason: str, now: int) -> list[Artifact]:
    """Mark `artifacts` of `cim` stale in place, recording the edits; returns those that actually changed."""
    marked: list[Artifact] = []
    for artifact in artifacts:
        if artifact == "heroContext" and cim.heroContext is not None:
            if cim.heroStale is None or cim.heroStale.reason != reason:
                cim.heroStale = StaleMark(reason=reason, at=now)
                marked.append(artifact)
        elif artifact == "outline" and cim.outline is not None:
            if cim.outlineStale is None or cim.outlineStale.reason != reason:
                cim.outlineStale = StaleMark(reason=reason, at=now)
                marked.append(artifact)
        elif artifact == "slides":
            changed = mark_slides(cim.slides, reason, lambda _slide: True)
            for index in changed:
                cim.touch("slides", index)
            if changed:
                marked.append(artifact)
    return marked


def mark_slides(slides: list[Slide], reason: str, which: Callable[[Slide], bool]) -> list[int]:
    """Mark the slides `which(slide)` selects as needs_review; the indexes of those that changed.

    The caller records them on its CIM (`Cim.touch`): they are part of the patch.
    """
    changed: list[int] = []
    for index, slide in enumerate(slides):
        if which(slide) and (slide.status != "needs_review" or slide.staleReason != reason):
            slide.status = "needs_review"
            slide.staleReason = reason
            changed.append(index)
    return changed
