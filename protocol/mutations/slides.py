"""The slides of the CIM's sections: adding and editing one, and moving to one.

An edited slide keeps its section's progress in step (outline.track_slide);
an approved slide whose content changes must be approved again.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput, NotFound
from ..schema import Cim, Id, ShortText, Slide, SlideStatus
from .outline import track_slide, untrack_slide
from .spec import Args, CimArgs, MutationContext, Outcome, existing_cim, invalid_transition

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
    cim = existing_cim(cim, args)
    edit = args.slide
    if cim.outline is None:
        raise invalid_transition("create the outline before adding slides", path="args.slide")
    section_ids = {section.id for section in cim.outline}
    index = next((i for i, s in enumerate(cim.slides) if s.id == edit.id), None)
    if index is None:
        if edit.sectionId is None or edit.title is None:
            raise InvalidInput("a new slide needs sectionId and title", path="args.slide")
        existing = Slide(id=edit.id, sectionId=edit.sectionId, title=edit.title)
        cim.slides.append(existing)
        index = len(cim.slides) - 1
        created = True
    else:
        existing = cim.slides[index]
        created = False
    cim.touch("slides", index)
    if edit.sectionId is not None and edit.sectionId not in section_ids:
        raise InvalidInput(f"section {edit.sectionId!r} is not in the outline", path="args.slide.sectionId")
    if edit.sectionId is not None and edit.sectionId != existing.sectionId:
        untrack_slide(cim, existing)
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
    track_slide(cim, existing)
    return Outcome(cim, {"slideId": existing.id, "created": created})


class NavigateToSlideArgs(CimArgs):
    sectionId: Id | None = None
    slideId: Id | None = None


def navigate_to_slide(cim: Cim | None, args: NavigateToSlideArgs, ctx: MutationContext) -> Outcome:
    cim = existing_cim(cim, args)
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
