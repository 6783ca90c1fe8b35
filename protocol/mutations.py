"""The CIM Builder's mutations as pure functions: (document, args, context) -> outcome.

Nothing here touches Redis or the clock: the engine (cimhub.server.store.engine) loads
the document, calls the function with `MutationContext.now`, diffs the result
into a patch and commits it atomically. Because the functions are pure the
engine can re-run them after a revision conflict, and the rules can be tested
without servers.

A function may mutate the `Cim` it is given: the engine passes a private copy.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import cascade
from .errors import CimhubError, ErrorCode, InvalidInput, NotFound, from_validation_error
from .patch import JsonOp, diff
from .schema import (
    STAGES,
    BuyerPersona,
    Cim,
    CimStatus,
    HeroContext,
    Id,
    OutlineSection,
    SectionProgress,
    ShortText,
    Slide,
    SlideStatus,
    Stage,
    SupabaseId,
    safe_json,
)

# Namespace for ids that cimhub derives (CIM ids from a create's mutation id,
# import ids from a legacy row id), so a retried create or import lands on the
# same CIM instead of making a second one.
ID_NAMESPACE = uuid.UUID("6c1d3c53-64b5-4a0c-9f7e-0a3b1c2d4e5f")


@dataclass(frozen=True)
class MutationContext:
    """Who runs the mutation, when, and under which caller-supplied id."""

    actor: str
    """Who did it, as recorded in the patch log: a user id, or ``service:<name>[/<user id>]``."""
    now: int
    mutation_id: str
    user_id: str | None = None
    """Whose CIM a create makes: the user, or the user a service acts for."""
    past: dict[str, Any] | None = None
    """For mutations with `MutationSpec.past_revision`: the CIM (JSON data) as committed at that revision.

    Read by the engine before the mutation runs.
    """


@dataclass
class Outcome:
    """What a mutation returns: the new document (None: deleted) and a result for the caller."""

    cim: Cim | None
    result: dict[str, Any]


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CimArgs(Args):
    cimId: Id


A = TypeVar("A", bound=Args)


Access = Literal["cim", "deal_in_project", "service"]
"""Who may run a mutation (cimhub.server.auth.authorizer enforces it):

* ``cim``: whoever may see the CIM named by ``args.cimId`` (a member of its deal's project).
* ``deal_in_project``: a member of the project owning ``args.dealId``, and that deal
  must belong to ``args.projectId`` (a create).
* ``service``: a service credential only (an import from the legacy tables).
"""


@dataclass(frozen=True)
class MutationSpec(Generic[A]):
    """A named mutation: its argument model, its pure function and who may run it."""

    name: str
    args: type[A]
    run: Callable[[Cim | None, A, MutationContext], Outcome]
    target: Callable[[A, MutationContext], str]
    creates: bool = False
    access: Access = "cim"
    past_revision: Callable[[A], int] | None = None
    """The past revision the engine must read into `MutationContext.past` before running (restoreRevision)."""

    def parse_args(self, raw: Any) -> A:
        """Validate raw JSON arguments; raises InvalidInput naming the bad field."""
        try:
            safe_json(raw)
        except ValueError as exc:
            raise InvalidInput(str(exc), path="args") from None
        try:
            # strict: "1" is not 1 and true is not 1, in nested models too.
            return self.args.model_validate(raw, strict=True)
        except ValidationError as exc:
            raise from_validation_error(exc, prefix="args") from None


def invalid_transition(message: str, path: str | None = None) -> CimhubError:
    return InvalidInput(message, code=ErrorCode.INVALID_TRANSITION, path=path)


def _existing(cim: Cim | None, args: CimArgs) -> Cim:
    if cim is None:
        raise NotFound(f"CIM {args.cimId!r} not found", path="args.cimId")
    return cim


def _complete_stage(cim: Cim, stage: Stage) -> None:
    """Record `stage` as completed and move on, unless the workflow is already past it."""
    if stage not in cim.completedStages:
        cim.completedStages = [s for s in STAGES if s in cim.completedStages or s == stage]
    if cascade.stage_index(cim.stage) <= cascade.stage_index(stage):
        cim.stage = cascade.next_stage(stage)


# -- create -----------------------------------------------------------------


class CreateArgs(Args):
    dealId: SupabaseId
    projectId: SupabaseId
    title: ShortText


def derived_cim_id(actor: str, mutation_id: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"create/{actor}/{mutation_id}"))


def create(cim: Cim | None, args: CreateArgs, ctx: MutationContext) -> Outcome:
    cim_id = derived_cim_id(ctx.actor, ctx.mutation_id)
    if ctx.user_id is None:
        raise InvalidInput("create needs a user: a service must act on behalf of one (actAs)", path="actAs")
    if cim is not None:
        raise CimhubError(f"CIM {cim_id!r} already exists", code=ErrorCode.CONFLICT)
    new = Cim(
        id=cim_id,
        dealId=args.dealId,
        projectId=args.projectId,
        userId=ctx.user_id,
        title=args.title,
        createdAt=ctx.now,
        updatedAt=ctx.now,
    )
    return Outcome(new, {"cimId": cim_id})


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
    cim = _existing(cim, args)
    if args.stage is not None and args.stage != cim.stage:
        if cascade.stage_index(args.stage) < cascade.stage_index(cim.stage):
            raise invalid_transition(
                f"updateState cannot move back from {cim.stage!r} to {args.stage!r}: "
                "use navigateToStage, which marks downstream work for review",
                path="args.stage",
            )
        _require_for_stage(cim, args.stage)
        cim.stage = args.stage
    for field in ("title", "completedStages", "currentSectionId", "currentSlideId", "sectionProgress"):
        value = getattr(args, field)
        if value is not None:
            setattr(cim, field, value)
    if args.gatheredContext is not None:
        # Gathered context accumulates over the conversation: merge, don't replace.
        cim.gatheredContext = {**(cim.gatheredContext or {}), **args.gatheredContext}
    if args.status is not None:
        _set_status(cim, args.status, ctx.now)
    return Outcome(cim, {})


def _set_status(cim: Cim, status: CimStatus, now: int) -> None:
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


def _require_for_stage(cim: Cim, stage: Stage) -> None:
    needed = cascade.STAGE_REQUIRES[stage]
    if needed is not None and getattr(cim, needed) is None:
        raise invalid_transition(f"stage {stage!r} needs {needed} first", path="args.stage")


# -- navigateToStage --------------------------------------------------------


class NavigateToStageArgs(CimArgs):
    targetStage: Stage
    reason: ShortText = ""


def navigate_to_stage(cim: Cim | None, args: NavigateToStageArgs, ctx: MutationContext) -> Outcome:
    cim = _existing(cim, args)
    target = args.targetStage
    _require_for_stage(cim, target)
    artifacts = cascade.invalidated_by_navigation(cim.stage, target)
    marked = cascade.invalidate(cim, artifacts, f"{target}_changed", ctx.now)
    going_back = cascade.stage_index(target) < cascade.stage_index(cim.stage)
    cim.stage = target
    if going_back and cim.status == "complete":
        _set_status(cim, "in_progress", ctx.now)
    return Outcome(cim, {"invalidated": marked})


# -- saveBuyerPersona / saveHeroContext ---------------------------------------


class SaveBuyerPersonaArgs(CimArgs):
    persona: BuyerPersona


def save_buyer_persona(cim: Cim | None, args: SaveBuyerPersonaArgs, ctx: MutationContext) -> Outcome:
    cim = _existing(cim, args)
    changed = cim.buyerPersona is not None and cim.buyerPersona != args.persona
    cim.buyerPersona = args.persona
    _complete_stage(cim, "buyer_persona")
    marked: list[cascade.Artifact] = []
    if changed:
        marked = cascade.invalidate(cim, cascade.DOWNSTREAM["buyerPersona"], "buyer_persona_changed", ctx.now)
    return Outcome(cim, {"changed": changed, "invalidated": marked})


class SaveHeroContextArgs(CimArgs):
    heroContext: HeroContext


def save_hero_context(cim: Cim | None, args: SaveHeroContextArgs, ctx: MutationContext) -> Outcome:
    cim = _existing(cim, args)
    _require_for_stage(cim, "hero_concept")
    changed = cim.heroContext is not None and cim.heroContext != args.heroContext
    cim.heroContext = args.heroContext
    cim.heroStale = None
    _complete_stage(cim, "hero_concept")
    marked: list[cascade.Artifact] = []
    if changed:
        marked = cascade.invalidate(cim, cascade.DOWNSTREAM["heroContext"], "hero_context_changed", ctx.now)
    return Outcome(cim, {"changed": changed, "invalidated": marked})


# -- createOutline ------------------------------------------------------------


class CreateOutlineArgs(CimArgs):
    outline: list[OutlineSection] = Field(min_length=1, max_length=200)


def create_outline(cim: Cim | None, args: CreateOutlineArgs, ctx: MutationContext) -> Outcome:
    cim = _existing(cim, args)
    _require_for_stage(cim, "outline")
    ids = [section.id for section in args.outline]
    if len(set(ids)) != len(ids):
        raise InvalidInput("outline section ids must be unique", path="args.outline")
    previous = {section.id: section for section in cim.outline or []}
    new = {section.id: section for section in args.outline}
    # A slide goes stale when its section was removed or rewritten; others keep their status.
    affected = {sid for sid, section in previous.items() if new.get(sid) != section}
    stale = cascade.mark_slides(cim.slides, "outline_changed", lambda s: s.sectionId in affected)
    cim.outline = list(args.outline)
    cim.outlineStale = None
    cim.sectionProgress = {sid: cim.sectionProgress.get(sid) or SectionProgress() for sid in ids}
    for slide in cim.slides:
        if slide.sectionId in cim.sectionProgress:
            _track_slide(cim, slide)
    _complete_stage(cim, "outline")
    return Outcome(cim, {"sections": len(ids), "invalidated": ["slides"] if stale else []})


# -- updateSlide / navigateToSlide -------------------------------------------


class SlideEdit(Args):
    id: Id
    sectionId: Id | None = None
    title: ShortText | None = None
    layoutType: ShortText | None = None
    components: list[Any] | None = None
    status: SlideStatus | None = None


class UpdateSlideArgs(CimArgs):
    slide: SlideEdit


def update_slide(cim: Cim | None, args: UpdateSlideArgs, ctx: MutationContext) -> Outcome:
    cim = _existing(cim, args)
    edit = args.slide
    if cim.outline is None:
        raise invalid_transition("create the outline before adding slides", path="args.slide")
    section_ids = {section.id for section in cim.outline}
    existing = next((s for s in cim.slides if s.id == edit.id), None)
    if existing is None:
        if edit.sectionId is None or edit.title is None:
            raise InvalidInput("a new slide needs sectionId and title", path="args.slide")
        existing = Slide(id=edit.id, sectionId=edit.sectionId, title=edit.title)
        cim.slides.append(existing)
        created = True
    else:
        created = False
    if edit.sectionId is not None and edit.sectionId not in section_ids:
        raise InvalidInput(f"section {edit.sectionId!r} is not in the outline", path="args.slide.sectionId")
    if edit.sectionId is not None and edit.sectionId != existing.sectionId:
        _untrack_slide(cim, existing)
        existing.sectionId = edit.sectionId
    content_edited = False
    for field in ("title", "layoutType", "components"):
        value = getattr(edit, field)
        if value is not None and value != getattr(existing, field):
            setattr(existing, field, value)
            content_edited = True
    if edit.status is not None:
        existing.status = edit.status
        if edit.status != "needs_review":
            existing.staleReason = None
        elif existing.staleReason is None:
            existing.staleReason = "manual_review"
    elif content_edited and existing.status == "approved" and not created:
        existing.status = "draft"  # an approved slide that is edited must be approved again
    _track_slide(cim, existing)
    return Outcome(cim, {"slideId": existing.id, "created": created})


def _track_slide(cim: Cim, slide: Slide) -> None:
    """Keep the section's progress in step with its slides (derived, never set by hand)."""
    progress = cim.sectionProgress.setdefault(slide.sectionId, SectionProgress())
    if slide.id not in progress.slideIds:
        progress.slideIds.append(slide.id)
    _refresh_section(cim, slide.sectionId)


def _untrack_slide(cim: Cim, slide: Slide) -> None:
    progress = cim.sectionProgress.get(slide.sectionId)
    if progress is not None and slide.id in progress.slideIds:
        progress.slideIds.remove(slide.id)
        _refresh_section(cim, slide.sectionId)


def _refresh_section(cim: Cim, section_id: str) -> None:
    progress = cim.sectionProgress[section_id]
    statuses = [s.status for s in cim.slides if s.id in progress.slideIds]
    if not statuses:
        progress.status = "pending"
    elif all(status == "approved" for status in statuses):
        progress.status = "complete"
    else:
        progress.status = "in_progress"


class NavigateToSlideArgs(CimArgs):
    sectionId: Id | None = None
    slideId: Id | None = None


def navigate_to_slide(cim: Cim | None, args: NavigateToSlideArgs, ctx: MutationContext) -> Outcome:
    cim = _existing(cim, args)
    if args.sectionId is None and args.slideId is None:
        raise InvalidInput("give a sectionId, a slideId or both", path="args")
    if cim.outline is None:
        raise invalid_transition("there is no outline to navigate yet", path="args")
    section_id = args.sectionId
    if args.slideId is not None:
        slide = next((s for s in cim.slides if s.id == args.slideId), None)
        if slide is None:
            raise NotFound(f"slide {args.slideId!r} not found", path="args.slideId")
        if section_id is not None and section_id != slide.sectionId:
            raise InvalidInput(
                f"slide {slide.id!r} is in section {slide.sectionId!r}, not {section_id!r}",
                path="args.sectionId",
            )
        section_id = slide.sectionId
    if section_id not in {section.id for section in cim.outline}:
        raise NotFound(f"section {section_id!r} not found", path="args.sectionId")
    cim.currentSectionId = section_id
    cim.currentSlideId = args.slideId
    # Jumping to a slide is forward navigation: it invalidates nothing.
    cim.stage = "building_sections"
    return Outcome(cim, {"sectionId": section_id, "slideId": args.slideId})


# -- delete -------------------------------------------------------------------


def delete(cim: Cim | None, args: CimArgs, ctx: MutationContext) -> Outcome:
    _existing(cim, args)
    return Outcome(None, {"deleted": True})


# -- restoreRevision ------------------------------------------------------------


class RestoreRevisionArgs(CimArgs):
    revision: int = Field(ge=1)


# What a restore never takes from the past: who and what the CIM is.
_IDENTITY = ("id", "dealId", "projectId", "userId", "createdAt")


def restore_revision(cim: Cim | None, args: RestoreRevisionArgs, ctx: MutationContext) -> Outcome:
    """Make the CIM as it was at `args.revision` the current document (a new revision).

    The whole document comes back together: each artifact with the artifacts it
    was built from, and with the stale marks it had then, so the cascade rules
    hold in the restored document as they held when it was committed, and no
    new marks are needed. What the restore does not bring back: the CIM's
    identity (`_IDENTITY`), and a status of ``draft`` once the CIM has left it
    (a CIM cannot go back to draft, as in updateState).
    """
    cim = _existing(cim, args)
    past = ctx.past
    if past is None or past.get("revision") != args.revision:
        raise CimhubError("restoreRevision ran without the document at that revision", code=ErrorCode.INTERNAL)
    data = {**past, **{key: getattr(cim, key) for key in _IDENTITY}}
    try:
        restored = Cim.model_validate(data)
    except ValidationError as exc:
        raise CimhubError(f"revision {args.revision} does not match the schema: {exc.errors()[0]['msg']}") from None
    if restored.status == "draft" and cim.status != "draft":
        restored.status = "in_progress"
    return Outcome(restored, {"restoredFrom": args.revision, "changed": _content(restored) != _content(cim)})


def _content(cim: Cim) -> dict[str, Any]:
    """The document without the stamps every commit changes."""
    data = cim.to_json_dict()
    data.pop("revision", None)
    data.pop("updatedAt", None)
    return data


# -- importFromSupabase (seed §8) ---------------------------------------------


class ImportFromSupabaseArgs(Args):
    """One row of the legacy Supabase `cims` table, in the seed §8 shape."""

    sourceId: Id
    dealId: SupabaseId
    projectId: SupabaseId
    userId: SupabaseId
    title: ShortText
    workflowState: dict[str, Any] | None = None
    slides: list[dict[str, Any]] | None = None
    buyerPersona: BuyerPersona | None = None
    heroContext: HeroContext | None = None
    outline: list[OutlineSection] | None = None
    createdAt: int | None = None


def imported_cim_id(source_id: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"import/{source_id}"))


_LEGACY_KEYS = {
    "current_stage": "stage",
    "currentStage": "stage",
    "completed_stages": "completedStages",
    "current_section_id": "currentSectionId",
    "current_slide_id": "currentSlideId",
    "section_progress": "sectionProgress",
    "gathered_context": "gatheredContext",
    "section_id": "sectionId",
    "layout_type": "layoutType",
    "stale_reason": "staleReason",
    "slide_ids": "slideIds",
}


def _camel(data: Any) -> Any:
    """Legacy JSONB mixes snake_case and camelCase keys; bring known ones to the schema's names."""
    if isinstance(data, dict):
        return {_LEGACY_KEYS.get(k, k): _camel(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_camel(v) for v in data]
    return data


def import_from_supabase(cim: Cim | None, args: ImportFromSupabaseArgs, ctx: MutationContext) -> Outcome:
    cim_id = imported_cim_id(args.sourceId)
    if cim is not None:
        # Imported before (the idempotency window may have passed): change nothing.
        return Outcome(cim, {"cimId": cim_id, "imported": False})
    state = _camel(args.workflowState or {})
    known = {"stage", "completedStages", "currentSectionId", "currentSlideId", "sectionProgress", "gatheredContext"}
    raw = {
        "id": cim_id,
        "dealId": args.dealId,
        "projectId": args.projectId,
        "userId": args.userId,
        "title": args.title,
        "status": "in_progress",
        "slides": _camel(args.slides or []),
        "buyerPersona": args.buyerPersona,
        "heroContext": args.heroContext,
        "outline": args.outline,
        "createdAt": args.createdAt or ctx.now,
        "updatedAt": ctx.now,
        **{k: v for k, v in state.items() if k in known and v is not None},
    }
    try:
        new = Cim.model_validate(raw)
    except ValidationError as exc:
        raise from_validation_error(exc, prefix="args") from None
    return Outcome(new, {"cimId": cim_id, "imported": True})


def _cim_target(args: CimArgs, ctx: MutationContext) -> str:
    return args.cimId


MUTATIONS: dict[str, MutationSpec[Any]] = {
    spec.name: spec
    for spec in (
        MutationSpec(
            "create",
            CreateArgs,
            create,
            lambda a, c: derived_cim_id(c.actor, c.mutation_id),
            creates=True,
            access="deal_in_project",
        ),
        MutationSpec("updateState", UpdateStateArgs, update_state, _cim_target),
        MutationSpec("navigateToStage", NavigateToStageArgs, navigate_to_stage, _cim_target),
        MutationSpec("saveBuyerPersona", SaveBuyerPersonaArgs, save_buyer_persona, _cim_target),
        MutationSpec("saveHeroContext", SaveHeroContextArgs, save_hero_context, _cim_target),
        MutationSpec("createOutline", CreateOutlineArgs, create_outline, _cim_target),
        MutationSpec("updateSlide", UpdateSlideArgs, update_slide, _cim_target),
        MutationSpec("navigateToSlide", NavigateToSlideArgs, navigate_to_slide, _cim_target),
        MutationSpec("delete", CimArgs, delete, _cim_target),
        MutationSpec(
            "restoreRevision", RestoreRevisionArgs, restore_revision, _cim_target, past_revision=lambda a: a.revision
        ),
        MutationSpec(
            "importFromSupabase",
            ImportFromSupabaseArgs,
            import_from_supabase,
            lambda a, c: imported_cim_id(a.sourceId),
            creates=True,
            access="service",
        ),
    )
}


def get_mutation(name: str) -> MutationSpec[Any]:
    """The mutation called `name`; raises InvalidInput(unknown_mutation) listing the known ones."""
    try:
        return MUTATIONS[name]
    except KeyError:
        known = ", ".join(sorted(MUTATIONS))
        raise InvalidInput(
            f"unknown mutation {name!r}; known: {known}", code=ErrorCode.UNKNOWN_MUTATION, path="name"
        ) from None


@dataclass(frozen=True)
class Stamped:
    """A mutation's result as it is committed: JSON data at its new revision, and the patch to it."""

    doc: dict[str, Any]
    ops: list[JsonOp]

    @property
    def revision(self) -> int:
        return int(self.doc["revision"])


def finalize(base: dict[str, Any] | None, new: Cim, now: int) -> Stamped | None:
    """Turn the mutated `new` into its committed form; None when it equals `base` (a no-op).

    `base` is the stored document (JSON data) the mutation ran on, None for a
    create. Moves a draft to in_progress once real work starts, stamps the next
    revision and `updatedAt`, and derives the RFC 6902 patch from `base`. Pure:
    the engine calls it after the mutation function, on every attempt.
    """
    if new.status == "draft" and (new.stage != "welcome" or new.buyerPersona is not None):
        new.status = "in_progress"
    doc = new.to_json_dict()
    if base is None:
        doc["revision"] = 1
        doc["updatedAt"] = now
        return Stamped(doc, [{"op": "replace", "path": "", "value": doc}])
    # Compare without the stamps, so that an edit which changes nothing is a no-op.
    doc["revision"], doc["updatedAt"] = base["revision"], base["updatedAt"]
    ops = diff(base, doc)
    if not ops:
        return None
    doc["revision"] = base["revision"] + 1
    doc["updatedAt"] = now
    ops.append({"op": "replace", "path": "/revision", "value": doc["revision"]})
    ops.append({"op": "replace", "path": "/updatedAt", "value": now})
    return Stamped(doc, ops)
