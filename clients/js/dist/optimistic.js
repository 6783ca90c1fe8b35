// Optimistic updates: local changes shown at once, on top of the hub's document.
//
// An update is a pure function (document, args) -> document. The client keeps
// every pending update per topic, in the order they were made, and shows
// `confirmed` with all of them applied. An update is dropped when the hub's
// patch carrying its mutation id arrives (the confirmed document now includes
// it), when the hub answered and the replica reached the answered revision (a
// no-op or a duplicate has no patch), or when the hub refused the mutation (a
// rollback). An update that throws on the current document is skipped, not
// fatal: the hub's answer decides.
/** `confirmed` with each pending update applied in order; an update that throws is skipped. */
export function applyPending(confirmed, pending) {
    if (confirmed === null)
        return null;
    let view = confirmed;
    for (const entry of pending) {
        try {
            view = entry.update(view, entry.args);
        }
        catch {
            // The update no longer fits (the slide was removed meanwhile, ...): show without it.
        }
    }
    return view;
}
const STAGE_ORDER = [
    "welcome",
    "buyer_persona",
    "hero_concept",
    "outline",
    "building_sections",
];
function definedOnly(value) {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined && v !== null));
}
/**
 * Built-in optimistic updates for the CIM mutations a person makes by hand.
 *
 * They predict the visible part of protocol/mutations/ (the edited fields,
 * the stage, a slide back to draft after an edit) and leave derived bookkeeping
 * (section progress, stale marks) to the hub's patch, which follows within
 * milliseconds. A wrong prediction is corrected by that patch.
 */
export const cimUpdates = {
    updateSlide(cim, { slide: edit }) {
        const slides = cim.slides ?? [];
        const at = slides.findIndex((s) => s.id === edit.id);
        const fields = definedOnly({
            sectionId: edit.sectionId, title: edit.title, layoutType: edit.layoutType, components: edit.components,
        });
        if (at < 0) {
            if (!edit.sectionId || !edit.title)
                throw new Error("a new slide needs sectionId and title");
            const created = { id: edit.id, sectionId: edit.sectionId, title: edit.title, components: [], status: edit.status ?? "draft" };
            return { ...cim, slides: [...slides, { ...created, ...fields }] };
        }
        const old = slides[at];
        const next = { ...old, ...fields };
        const contentEdited = ["title", "layoutType", "components"].some((key) => key in fields && JSON.stringify(fields[key]) !== JSON.stringify(old[key]));
        if (edit.status) {
            next.status = edit.status;
            if (edit.status === "needs_review")
                next.staleReason = old.staleReason ?? "manual_review";
            else
                delete next.staleReason;
        }
        else if (contentEdited && old.status === "approved") {
            next.status = "draft";
        }
        const copy = slides.slice();
        copy[at] = next;
        return { ...cim, slides: copy };
    },
    navigateToStage(cim, { targetStage }) {
        return { ...cim, stage: targetStage };
    },
    navigateToSlide(cim, { sectionId, slideId }) {
        const slide = slideId ? (cim.slides ?? []).find((s) => s.id === slideId) : undefined;
        return {
            ...cim,
            stage: "building_sections",
            currentSectionId: slide?.sectionId ?? sectionId ?? cim.currentSectionId ?? null,
            currentSlideId: slideId ?? null,
        };
    },
    saveBuyerPersona(cim, { persona }) {
        return advance({ ...cim, buyerPersona: persona }, "buyer_persona");
    },
    saveHeroContext(cim, { heroContext }) {
        const { heroStale: _cleared, ...rest } = cim;
        return advance({ ...rest, heroContext }, "hero_concept");
    },
    updateState(cim, args) {
        const { cimId: _id, gatheredContext, ...fields } = args;
        const next = { ...cim, ...definedOnly(fields) };
        if (gatheredContext)
            next.gatheredContext = { ...(cim.gatheredContext ?? {}), ...gatheredContext };
        return next;
    },
};
function advance(cim, done) {
    const completed = new Set([...(cim.completedStages ?? []), done]);
    const doneAt = STAGE_ORDER.indexOf(done);
    const stage = STAGE_ORDER.indexOf(cim.stage ?? "welcome") <= doneAt ? STAGE_ORDER[doneAt + 1] ?? done : cim.stage;
    return { ...cim, stage, completedStages: STAGE_ORDER.filter((s) => completed.has(s)) };
}
