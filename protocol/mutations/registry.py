"""Every mutation of the CIM Builder by name: the one table the engine, the hub and the schema read."""

from __future__ import annotations

from typing import Any

from ..errors import ErrorCode, InvalidInput
from .lifecycle import (
    CreateArgs,
    ImportFromSupabaseArgs,
    RestoreRevisionArgs,
    create,
    delete,
    derived_cim_id,
    import_from_supabase,
    imported_cim_id,
    restore_revision,
)
from .outline import CreateOutlineArgs, create_outline
from .slides import NavigateToSlideArgs, UpdateSlideArgs, navigate_to_slide, update_slide
from .spec import CimArgs, MutationSpec, cim_target
from .workflow import (
    NavigateToStageArgs,
    SaveBuyerPersonaArgs,
    SaveHeroContextArgs,
    UpdateStateArgs,
    navigate_to_stage,
    save_buyer_persona,
    save_hero_context,
    update_state,
)

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
        MutationSpec("updateState", UpdateStateArgs, update_state, cim_target),
        MutationSpec("navigateToStage", NavigateToStageArgs, navigate_to_stage, cim_target),
        MutationSpec("saveBuyerPersona", SaveBuyerPersonaArgs, save_buyer_persona, cim_target),
        MutationSpec("saveHeroContext", SaveHeroContextArgs, save_hero_context, cim_target),
        MutationSpec("createOutline", CreateOutlineArgs, create_outline, cim_target),
        MutationSpec("updateSlide", UpdateSlideArgs, update_slide, cim_target),
        MutationSpec("navigateToSlide", NavigateToSlideArgs, navigate_to_slide, cim_target),
        MutationSpec("delete", CimArgs, delete, cim_target),
        MutationSpec(
            "restoreRevision", RestoreRevisionArgs, restore_revision, cim_target, past_revision=lambda a: a.revision
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
