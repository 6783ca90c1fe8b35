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

import type {
  Cim,
  MutationArgsByName,
  NavigateToSlideArgs,
  NavigateToStageArgs,
  SaveBuyerPersonaArgs,
  SaveHeroContextArgs,
  Slide,
  UpdateSlideArgs,
  UpdateStateArgs,
} from "./generated.js";

/** A local change to a topic's document: must not change `document` in place. */
export type OptimisticUpdate<T = unknown, A = unknown> = (document: T, args: A) => T;

export interface PendingUpdate {
  mutationId: string;
  topic: string;
  args: unknown;
  update: OptimisticUpdate<any, any>;
  /** The revision the hub answered with; the update goes once the replica reaches it. */
  answeredRevision: number | null;
}

/** `confirmed` with each pending update applied in order; an update that throws is skipped. */
export function applyPending<T>(confirmed: T | null, pending: readonly PendingUpdate[]): T | null {
  if (confirmed === null) return null;
  let view: T = confirmed;
  for (const entry of pending) {
    try {
      view = entry.update(view, entry.args) as T;
    } catch {
      // The update no longer fits (the slide was removed meanwhile, ...): show without it.
    }
  }
  return view;
}

const STAGE_ORDER: ReadonlyArray<NonNullable<Cim["stage"]>> = [
  "welcome",
  "buyer_persona",
  "hero_concept",
  "outline",
  "building_sections",
];

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined && v !== null)) as Partial<T>;
}

/**
 * Built-in optimistic updates for the CIM mutations a person makes by hand.
 *
 * They predict the visible part of protocol/mutations/ (the edited fields,
 * the stage, a slide back to draft after an edit) and leave derived bookkeeping
 * (section progress, stale marks) to the hub's patch, which follows within
 * milliseconds. A wrong prediction is corrected by that patch.
 */
export const cimUpdates: { [N in keyof MutationArgsByName]?: OptimisticUpdate<Cim, MutationArgsByName[N]> } = {
  updateSlide(cim: Cim, { slide: edit }: UpdateSlideArgs): Cim {
    const slides = cim.slides ?? [];
    const at = slides.findIndex((s) => s.id === edit.id);
    const fields = definedOnly({
      sectionId: edit.sectionId, title: edit.title, layoutType: edit.layoutType, components: edit.components,
    }) as Partial<Slide>;
    if (at < 0) {
      if (!edit.sectionId || !edit.title) throw new Error("a new slide needs sectionId and title");
      const created: Slide = { id: edit.id, sectionId: edit.sectionId, title: edit.title, components: [], status: edit.status ?? "draft" };
      return { ...cim, slides: [...slides, { ...created, ...fields }] };
    }
    const old = slides[at]!;
    const next: Slide = { ...old, ...fields };
    const contentEdited = (["title", "layoutType", "components"] as const).some(
      (key) => key in fields && JSON.stringify(fields[key]) !== JSON.stringify(old[key]),
    );
    if (edit.status) {
      next.status = edit.status;
      if (edit.status === "needs_review") next.staleReason = old.staleReason ?? "manual_review";
      else delete next.staleReason;
    } else if (contentEdited && old.status === "approved") {
      next.status = "draft";
    }
    const copy = slides.slice();
    copy[at] = next;
    return { ...cim, slides: copy };
  },

  navigateToStage(cim: Cim, { targetStage }: NavigateToStageArgs): Cim {
    return { ...cim, stage: targetStage };
  },

  navigateToSlide(cim: Cim, { sectionId, slideId }: NavigateToSlideArgs): Cim {
    const slide = slideId ? (cim.slides ?? []).find((s) => s.id === slideId) : undefined;
    return {
      ...cim,
      stage: "building_sections",
      currentSectionId: slide?.sectionId ?? sectionId ?? cim.currentSectionId ?? null,
      currentSlideId: slideId ?? null,
    };
  },

  saveBuyerPersona(cim: Cim, { persona }: SaveBuyerPersonaArgs): Cim {
    return advance({ ...cim, buyerPersona: persona }, "buyer_persona");
  },

  saveHeroContext(cim: Cim, { heroContext }: SaveHeroContextArgs): Cim {
    const { heroStale: _cleared, ...rest } = cim;
    return advance({ ...rest, heroContext }, "hero_concept");
  },

  updateState(cim: Cim, args: UpdateStateArgs): Cim {
    const { cimId: _id, gatheredContext, ...fields } = args;
    const next: Cim = { ...cim, ...definedOnly(fields) } as Cim;
    if (gatheredContext) next.gatheredContext = { ...(cim.gatheredContext ?? {}), ...gatheredContext };
    return next;
  },
};

function advance(cim: Cim, done: NonNullable<Cim["stage"]>): Cim {
  const completed = new Set([...(cim.completedStages ?? []), done]);
  const doneAt = STAGE_ORDER.indexOf(done);
  const stage = STAGE_ORDER.indexOf(cim.stage ?? "welcome") <= doneAt ? STAGE_ORDER[doneAt + 1] ?? done : cim.stage;
  return { ...cim, stage, completedStages: STAGE_ORDER.filter((s) => completed.has(s)) };
}
