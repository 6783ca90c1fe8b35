"""The workflow's stages: moving between them, and the two artifacts saved at their stages.

updateState and navigateToStage move the CIM through the stages (cascade.STAGES);
saveBuyerPersona and saveHeroContext save the buyer persona and the hero
concept and complete their stages. Going back, or replacing an artifact, marks
what was built on it for review (cascade rules).
"""

from __future__ import annotations

from typing import Any

from .. import cascade
from ..schema import STAGES, BuyerPersona, Cim, CimStatus, HeroContext, Id, SectionProgress, ShortText, Stage
from .spec import CimArgs, MutationContext, Outcome, existing_cim, invalid_transition


def complete_stage(cim: Cim, stage: Stage) -> None:
    """Record `stage` as completed and move on, unless the workflow is already past it."""
    if stage not in cim.completedStages:
        cim.completedStages = [s for s in STAGES if s in cim.completedStages or s == stage]
    if cascade.stage_index(cim.stage) <= cascade.stage_index(stage):
        cim.stage = cascade.next_stage(stage)


# -- updateState ------------------------------------------------------------


class UpdateStateArgs(CimArgs):
    title: ShortText | None = None
    stage: Stage | None = None
    status: CimStatus | None = None
    completedStages: list[Stage] | None = None
    currentSectionId: Id | None = None
    currentSlideId: Id | None = None
    sectionProgress: dict[Id, SectionProgress] | None = None
    gatheredContext: dict[str, Any] | None = None


def update_state(cim: Cim | None, args: UpdateStateArgs, ctx: MutationContext) -> Outcome:
    cim = existing_cim(cim, args)
    if args.stage is not None and args.stage != cim.stage:
        if cascade.stage_index(args.stage) < cascade.stage_index(cim.stage):
            raise invalid_transition(
                f"updateState cannot move back from {cim.stage!r} to {args.stage!r}: "
                "use navigateToStage, which marks downstream work for review",
                path="args.stage",
            )
        require_for_stage(cim, args.stage)
        cim.stage = args.stage
    for field in ("title", "completedStages", "currentSectionId", "currentSlideId", "sectionProgress"):
        value = getattr(args, field)
        if value is not None:
            setattr(cim, field, value)
    if args.gatheredContext is not None:
        # Gathered context accumulates over the conversation: merge, don't replace.
        cim.gatheredContext = {**(cim.gatheredContext or {}), **args.gatheredContext}
    if args.status is not None:
        set_status(cim, args.status, ctx.now)
    return Outcome(cim, {})


def set_status(cim: Cim, status: CimStatus, now: int) -> None:
    if status == cim.status:
        return
    if status == "draft":
        raise invalid_transition("a CIM cannot go back to draft", path="args.status")
    if status == "complete":
        if cim.stage != "building_sections":
            raise invalid_transition(
                f"a CIM can be completed only while building sections, not at {cim.stage!r}",
                path="args.status",
            )
        cim.completedAt = now
    else:
        cim.completedAt = None
    cim.status = status


def require_for_stage(cim: Cim, stage: Stage) -> None:
    needed = cascade.STAGE_REQUIRES[stage]
    if needed is not None and getattr(cim, needed) is None:
        raise invalid_transition(f"stage {stage!r} needs {needed} first", path="args.stage")


# -- navigateToStage --------------------------------------------------------


class NavigateToStageArgs(CimArgs):
    targetStage: Stage
    reason: ShortText = ""


def navigate_to_stage(cim: Cim | None, args: NavigateToStageArgs, ctx: MutationContext) -> Outcome:
    cim = existing_cim(cim, args)
    target = args.targetStage
    require_for_stage(cim, target)
    artifacts = cascade.invalidated_by_navigation(cim.stage, target)
    marked = cascade.invalidate(cim, artifacts, f"{target}_changed", ctx.now)
    going_back = cascade.stage_index(target) < cascade.stage_index(cim.stage)
    cim.stage = target
    if going_back and cim.status == "complete":
        set_status(cim, "in_progress", ctx.now)
    return Outcome(cim, {"invalidated": marked})


# -- saveBuyerPersona / saveHeroContext ---------------------------------------


class SaveBuyerPersonaArgs(CimArgs):
    persona: BuyerPersona


def save_buyer_persona(cim: Cim | None, args: SaveBuyerPersonaArgs, ctx: MutationContext) -> Outcome:
    cim = existing_cim(cim, args)
    # `changed`: the saved persona differs from the one before (so the first save is a change);
    # only replacing an earlier persona makes what was built on it stale.
    changed = cim.buyerPersona != args.persona
    replaced = changed and cim.buyerPersona is not None
    cim.buyerPersona = args.persona
    complete_stage(cim, "buyer_persona")
    marked: list[cascade.Artifact] = []
    if replaced:
        marked = cascade.invalidate(cim, cascade.DOWNSTREAM["buyerPersona"], "buyer_persona_changed", ctx.now)
    return Outcome(cim, {"changed": changed, "invalidated": marked})


class SaveHeroContextArgs(CimArgs):
    heroContext: HeroContext


def save_hero_context(cim: Cim | None, args: SaveHeroContextArgs, ctx: MutationContext) -> Outcome:
    cim = existing_cim(cim, args)
    require_for_stage(cim, "hero_concept")
    changed = cim.heroContext != args.heroContext  # as for the persona: the first save is a change
    replaced = changed and cim.heroContext is not None
    cim.heroContext = args.heroContext
    cim.heroStale = None
    complete_stage(cim, "hero_concept")
    marked: list[cascade.Artifact] = []
    if replaced:
        marked = cascade.invalidate(cim, cascade.DOWNSTREAM["heroContext"], "hero_context_changed", ctx.now)
    return Outcome(cim, {"changed": changed, "invalidated": marked})
