"""The outline and its sections' progress.

createOutline saves the outline and marks the slides of removed or rewritten
sections for review. Each section's progress (which slides it has, whether
they are all approved) is derived from its slides, never set by hand: the
slide mutations keep it in step through `track_slide` and `untrack_slide`.
"""

from __future__ import annotations

from pydantic import Field

from .. import cascade
from ..errors import InvalidInput
from ..schema import Cim, OutlineSection, SectionProgress, Slide
from .spec import CimArgs, MutationContext, Outcome, existing_cim
from .workflow import complete_stage, require_for_stage

# -- createOutline ------------------------------------------------------------


class CreateOutlineArgs(CimArgs):
    outline: list[OutlineSection] = Field(min_length=1, max_length=200)


def create_outline(cim: Cim | None, args: CreateOutlineArgs, ctx: MutationContext) -> Outcome:
    cim = existing_cim(cim, args)
    require_for_stage(cim, "outline")
    ids = [section.id for section in args.outline]
    if len(set(ids)) != len(ids):
        raise InvalidInput("outline section ids must be unique", path="args.outline")
    previous = {section.id: section for section in cim.outline or []}
    new = {section.id: section for section in args.outline}
    # A slide goes stale when its section was removed or rewritten; others keep their status.
    affected = {sid for sid, section in previous.items() if new.get(sid) != section}
    stale = cascade.mark_slides(cim.slides, "outline_changed", lambda s: s.sectionId in affected)
    for index in stale:
        cim.touch("slides", index)
    cim.outline = list(args.outline)
    cim.outlineStale = None
    cim.sectionProgress = {sid: cim.sectionProgress.get(sid) or SectionProgress() for sid in ids}
    for slide in cim.slides:
        if slide.sectionId in cim.sectionProgress:
            track_slide(cim, slide)
    complete_stage(cim, "outline")
    return Outcome(cim, {"sections": len(ids), "invalidated": ["slides"] if stale else []})


# -- section progress ---------------------------------------------------------


def track_slide(cim: Cim, slide: Slide) -> None:
    """Keep the section's progress in step with its slides (derived, never set by hand)."""
    cim.touch("sectionProgress")
    progress = cim.sectionProgress.get(slide.sectionId)
    if progress is None:
        progress = cim.sectionProgress[slide.sectionId] = SectionProgress()
    if slide.id not in progress.slideIds:
        progress.slideIds.append(slide.id)
    refresh_section(cim, slide.sectionId)


def untrack_slide(cim: Cim, slide: Slide) -> None:
    progress = cim.sectionProgress.get(slide.sectionId)
    if progress is not None and slide.id in progress.slideIds:
        cim.touch("sectionProgress")
        progress.slideIds.remove(slide.id)
        refresh_section(cim, slide.sectionId)


def refresh_section(cim: Cim, section_id: str) -> None:
    cim.touch("sectionProgress")
    progress = cim.sectionProgress[section_id]
    statuses = [s.status for s in cim.slides if s.id in progress.slideIds]
    if not statuses:
        progress.status = "pending"
    elif all(status == "approved" for status in statuses):
        progress.status = "complete"
    else:
        progress.status = "in_progress"
