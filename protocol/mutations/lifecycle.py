"""A CIM's life: created, imported from the legacy tables, restored to a past revision, deleted.

Create and import derive the new CIM's id from the request (`derived_cim_id`,
`imported_cim_id`), so a retried create or import lands on the same CIM
instead of making a second one.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field, ValidationError

from ..errors import CimhubError, ErrorCode, InvalidInput, from_validation_error
from ..schema import CIM_FIELDS, BuyerPersona, Cim, HeroContext, Id, OutlineSection, ShortText, SupabaseId
from .spec import Args, CimArgs, MutationContext, Outcome, existing_cim

# Namespace for ids that cimhub derives (CIM ids from a create's mutation id,
# import ids from a legacy row id), so a retried create or import lands on the
# same CIM instead of making a second one.
ID_NAMESPACE = uuid.UUID("6c1d3c53-64b5-4a0c-9f7e-0a3b1c2d4e5f")


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


# -- delete -------------------------------------------------------------------


def delete(cim: Cim | None, args: CimArgs, ctx: MutationContext) -> Outcome:
    existing_cim(cim, args)
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
    cim = existing_cim(cim, args)
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
    for name in CIM_FIELDS:  # a whole new document: every field is part of the patch
        restored.touch(name)
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
