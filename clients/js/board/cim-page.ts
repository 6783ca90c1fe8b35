// One CIM, live: stage progress, persona and hero, sections with progress, every slide's content,
// inline slide edits and stage navigation with optimistic feedback, and a log of who changed what.
//
// Rendering is keyed: each section and slide keeps its element across patches and
// only nodes whose content changed are written, so a text selection, focus in an
// edit form and the scroll position survive unrelated changes.

import type { Change, CimhubClient, Subscription } from "../src/index.js";
import { STAGES, type Cim, type OutlineSection, type Slide } from "../src/index.js";
import { el, flash, setAttr, setText, syncChildren, timeOf, words } from "./dom.js";
import { humanError } from "./messages.js";

type Stage = (typeof STAGES)[number];
const STAGE_LABELS: Record<Stage, string> = {
  welcome: "Welcome",
  buyer_persona: "Buyer persona",
  hero_concept: "Hero concept",
  outline: "Outline",
  building_sections: "Sections",
};
const ACTIVITY_LIMIT = 12;

interface SlideView {
  root: HTMLLIElement;
  title: HTMLElement;
  status: HTMLElement;
  stale: HTMLElement;
  layout: HTMLElement;
  body: HTMLElement;
  bodyKey: string;
  editor: HTMLFormElement | null;
  last: Slide | null;
}

interface SectionView {
  root: HTMLElement;
  title: HTMLElement;
  description: HTMLElement;
  progress: HTMLElement;
  list: HTMLOListElement;
  empty: HTMLElement;
}

export class CimPage {
  readonly root: HTMLElement;
  private readonly sub: Subscription<Cim>;
  private readonly slides = new Map<string, SlideView>();
  private readonly sections = new Map<string, SectionView>();
  private readonly stageButtons = new Map<Stage, HTMLButtonElement>();
  private readonly nodes: Record<string, HTMLElement> = {};
  private previous: Cim | null = null;

  constructor(
    private readonly client: CimhubClient,
    private readonly cimId: string,
    private readonly notify: (message: string, kind?: "error" | "info") => void,
  ) {
    this.root = this.skeleton();
    this.sub = client.subscribe<Cim>(`cim:${cimId}`, (change) => this.onChange(change));
    this.sub.onEnd((error) => {
      if (error) this.showGone(humanError(error));
    });
  }

  destroy(): void {
    this.sub.unsubscribe();
  }

  /** The subscription, for the page's debugging handle (window.cimhubBoard). */
  get subscription(): Subscription<Cim> {
    return this.sub;
  }

  private skeleton(): HTMLElement {
    const n = this.nodes;
    n.title = el("h1", { id: "title" }, "Loading…");
    n.meta = el("p", { class: "meta", id: "meta" });
    n.stages = el("ol", { class: "stages", id: "stages", "aria-label": "Workflow stages" });
    for (const stage of STAGES) {
      const button = el("button", { type: "button", "data-stage": stage }, STAGE_LABELS[stage]);
      button.addEventListener("click", () => this.navigate(stage));
      this.stageButtons.set(stage, button);
      n.stages.append(el("li", {}, button));
    }
    n.stale = el("div", { id: "stale-notices", role: "status" });
    n.persona = el("section", { class: "card", id: "persona", "aria-label": "Buyer persona" });
    n.hero = el("section", { class: "card", id: "hero", "aria-label": "Hero concept" });
    n.sections = el("div", { id: "sections" });
    n.noOutline = el("p", { class: "empty", id: "no-outline" }, "No outline yet: the sections appear once the outline is created.");
    n.activity = el("ol", { class: "activity", id: "activity", "aria-live": "polite" });
    return el(
      "article",
      { class: "cim", id: "cim", "data-cim-id": this.cimId },
      el("p", {}, el("a", { href: "/", id: "back" }, "← All CIMs")),
      n.title,
      n.meta,
      n.stages,
      n.stale,
      el("div", { class: "context" }, n.persona, n.hero),
      el("h2", {}, "Sections"),
      n.noOutline,
      n.sections,
      el("h2", {}, "Recent changes"),
      n.activity,
    );
  }

  private onChange(change: Change<Cim>): void {
    if (change.deleted) {
      this.showGone("This CIM was deleted.");
      return;
    }
    const cim = change.document;
    if (cim === null) return;
    this.render(cim, change);
    if (!change.snapshot && !change.local) this.logActivity(change);
    this.previous = cim;
    window.cimhubBoard?.rendered(change);
  }

  private render(cim: Cim, change: Change<Cim>): void {
    const n = this.nodes;
    document.title = `${cim.title} · cimhub`;
    setText(n.title!, cim.title);
    setText(
      n.meta!,
      `${words(cim.status)} · revision ${change.confirmed?.revision ?? cim.revision}${change.pending.length ? " · saving…" : ""}`,
    );
    setAttr(n.meta!, "data-revision", String(change.confirmed?.revision ?? cim.revision ?? 0));
    setAttr(n.meta!, "data-status", cim.status ?? "draft");
    setAttr(n.meta!, "data-pending", String(change.pending.length));
    // Done: recorded as completed, or (welcome has no artifact) already behind the current stage.
    const done = new Set(cim.completedStages ?? []);
    const at = STAGES.indexOf(cim.stage ?? "welcome");
    for (const [stage, button] of this.stageButtons) {
      const passed = done.has(stage) || (stage === "welcome" && at > 0);
      const state = stage === cim.stage ? "current" : passed ? "done" : "todo";
      setAttr(button, "data-state", state);
      setAttr(button, "aria-current", stage === cim.stage ? "step" : null);
    }
    setAttr(n.stages!, "data-current", cim.stage ?? "welcome");

    const notices: Element[] = [];
    if (cim.heroStale) notices.push(el("p", { class: "notice", id: "hero-stale" }, `The hero concept needs review: ${words(cim.heroStale.reason)}.`));
    if (cim.outlineStale) notices.push(el("p", { class: "notice", id: "outline-stale" }, `The outline needs review: ${words(cim.outlineStale.reason)}.`));
    const noticeText = notices.map((x) => x.textContent).join("|");
    if (n.stale!.dataset.text !== noticeText) {
      n.stale!.dataset.text = noticeText;
      n.stale!.replaceChildren(...notices);
    }
    this.renderPersona(cim);
    this.renderHero(cim);
    this.renderSections(cim, change);
  }

  private renderPersona(cim: Cim): void {
    const persona = cim.buyerPersona;
    const key = JSON.stringify(persona ?? null);
    if (this.nodes.persona!.dataset.key === key) return;
    this.nodes.persona!.dataset.key = key;
    this.nodes.persona!.replaceChildren(
      el("h2", {}, "Buyer persona"),
      persona
        ? el("div", {},
            el("p", { class: "lead", id: "persona-type" }, persona.type),
            list("Motivations", persona.motivations),
            list("Concerns", persona.concerns))
        : el("p", { class: "empty" }, "Not chosen yet."),
    );
  }

  private renderHero(cim: Cim): void {
    const hero = cim.heroContext;
    const key = JSON.stringify(hero ?? null);
    if (this.nodes.hero!.dataset.key === key) return;
    this.nodes.hero!.dataset.key = key;
    this.nodes.hero!.replaceChildren(
      el("h2", {}, "Hero concept"),
      hero
        ? el("div", {},
            el("p", { class: "lead", id: "hero-text" }, hero.selectedHero),
            el("dl", { class: "thesis" },
              el("dt", {}, "Asset"), el("dd", {}, hero.investmentThesis.asset),
              el("dt", {}, "Timing"), el("dd", {}, hero.investmentThesis.timing),
              el("dt", {}, "Opportunity"), el("dd", {}, hero.investmentThesis.opportunity)))
        : el("p", { class: "empty" }, "Not chosen yet."),
    );
  }

  private renderSections(cim: Cim, change: Change<Cim>): void {
    const outline: OutlineSection[] = [...(cim.outline ?? [])];
    const slides = cim.slides ?? [];
    const known = new Set(outline.map((s) => s.id));
    if (slides.some((s) => !known.has(s.sectionId))) {
      outline.push({ id: "", title: "Not in the outline", description: "Slides whose section was removed from the outline." });
    }
    this.nodes.noOutline!.hidden = outline.length > 0;
    const roots: Element[] = [];
    for (const section of outline) {
      const view = this.sectionView(section.id);
      setText(view.title, section.title);
      setText(view.description, section.description);
      const own = slides.filter((s) => (section.id === "" ? !known.has(s.sectionId) : s.sectionId === section.id));
      const approved = own.filter((s) => s.status === "approved").length;
      const status = cim.sectionProgress?.[section.id]?.status ?? "pending";
      setText(view.progress, `${words(status)} · ${approved} of ${own.length} slides approved`);
      setAttr(view.progress, "data-status", status);
      setAttr(view.root, "aria-current", cim.currentSectionId === section.id ? "location" : null);
      view.empty.hidden = own.length > 0;
      syncChildren(view.list, own.map((slide) => this.renderSlide(slide, cim, change)));
      roots.push(view.root);
    }
    syncChildren(this.nodes.sections!, roots);
    for (const id of [...this.sections.keys()]) if (!outline.some((s) => s.id === id)) this.sections.delete(id);
    for (const id of [...this.slides.keys()]) if (!slides.some((s) => s.id === id)) this.slides.delete(id);
  }

  private sectionView(id: string): SectionView {
    let view = this.sections.get(id);
    if (view === undefined) {
      const title = el("h3", {});
      const description = el("p", { class: "description" });
      const progress = el("p", { class: "progress" });
      const list = el("ol", { class: "slides" });
      const empty = el("p", { class: "empty" }, "No slides yet.");
      const root = el("section", { class: "card section", "data-section-id": id }, title, description, progress, list, empty);
      view = { root, title, description, progress, list, empty };
      this.sections.set(id, view);
    }
    return view;
  }

  private renderSlide(slide: Slide, cim: Cim, change: Change<Cim>): HTMLLIElement {
    let view = this.slides.get(slide.id);
    if (view === undefined) {
      const title = el("h4", { class: "slide-title" });
      const status = el("span", { class: "slide-status" });
      const stale = el("span", { class: "stale-reason" });
      const layout = el("span", { class: "layout" });
      const body = el("div", { class: "slide-body" });
      const edit = el("button", { type: "button", class: "edit" }, "Edit");
      const root = el("li", { class: "slide", "data-slide-id": slide.id },
        el("div", { class: "slide-head" }, title, status, edit), el("p", { class: "slide-meta" }, layout, stale), body);
      view = { root, title, status, stale, layout, body, bodyKey: "", editor: null, last: null };
      const v = view;
      edit.addEventListener("click", () => this.openEditor(v, slide.id));
      this.slides.set(slide.id, view);
    }
    setText(view.title, slide.title);
    setText(view.status, words(slide.status ?? "draft"));
    setAttr(view.status, "data-status", slide.status ?? "draft");
    setText(view.stale, slide.staleReason ? `Needs review: ${words(slide.staleReason)}` : "");
    setText(view.layout, slide.layoutType ? words(slide.layoutType) : "");
    view.layout.hidden = !slide.layoutType;
    view.stale.hidden = !slide.staleReason;
    setAttr(view.root, "aria-current", cim.currentSlideId === slide.id ? "true" : null);
    const bodyKey = JSON.stringify(slide.components ?? []);
    if (view.bodyKey !== bodyKey) {
      view.bodyKey = bodyKey;
      view.body.replaceChildren(...(slide.components ?? []).map(component));
    }
    const confirmed = change.confirmed?.slides?.find((s) => s.id === slide.id);
    setAttr(view.root, "data-pending", confirmed && JSON.stringify(confirmed) !== JSON.stringify(slide) ? "true" : null);
    if (view.last !== null && JSON.stringify(view.last) !== JSON.stringify(slide) && !change.local && !change.snapshot) {
      flash(view.root, change.actor, change.ts);
    }
    view.last = slide;
    return view.root;
  }

  private openEditor(view: SlideView, slideId: string): void {
    if (view.editor) {
      view.editor.querySelector("input")?.focus();
      return;
    }
    const slide = this.sub.document?.slides?.find((s) => s.id === slideId);
    if (!slide) return;
    const title = el("input", { name: "title", "aria-label": "Slide heading", value: slide.title, required: true, maxlength: "1000" });
    const status = el("select", { name: "status", "aria-label": "Slide status" },
      ...(["draft", "needs_review", "approved"] as const).map((s) =>
        el("option", { value: s, selected: (slide.status ?? "draft") === s }, words(s))));
    const form = el("form", { class: "editor" }, title, status,
      el("button", { type: "submit" }, "Save"), el("button", { type: "button", class: "cancel" }, "Cancel"));
    const close = () => {
      form.remove();
      view.editor = null;
    };
    form.querySelector(".cancel")!.addEventListener("click", close);
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") close();
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const edit = { id: slideId, title: title.value, status: status.value as Slide["status"] };
      close();
      this.client
        .mutate("updateSlide", { cimId: this.cimId, slide: edit }, { optimistic: true })
        .catch((error: unknown) => this.notify(humanError(error, "save the slide"), "error"));
    });
    view.editor = form;
    view.root.append(form);
    title.focus();
    title.select();
  }

  private navigate(stage: Stage): void {
    if (this.sub.document?.stage === stage) return;
    this.client
      .mutate("navigateToStage", { cimId: this.cimId, targetStage: stage, reason: "" }, { optimistic: true })
      .catch((error: unknown) => this.notify(humanError(error, `go to ${STAGE_LABELS[stage]}`), "error"));
  }

  private logActivity(change: Change<Cim>): void {
    const item = el("li", { "data-revision": String(change.revision) },
      el("time", {}, timeOf(change.ts)), " ",
      el("strong", {}, describe(change.mutation)), ` by ${change.actor ?? "someone"}`);
    this.nodes.activity!.prepend(item);
    while (this.nodes.activity!.children.length > ACTIVITY_LIMIT) this.nodes.activity!.lastElementChild!.remove();
  }

  private showGone(message: string): void {
    this.root.replaceChildren(el("p", {}, el("a", { href: "/" }, "← All CIMs")), el("p", { class: "notice error", id: "gone" }, message));
  }
}

function list(label: string, items: readonly string[]): HTMLElement {
  return el("div", {}, el("h4", {}, label), items.length ? el("ul", {}, ...items.map((i) => el("li", {}, i))) : el("p", { class: "empty" }, "None."));
}

/** A slide component: bullets, a paragraph, a titled block, or (unknown shapes) its data as text. */
function component(value: unknown): Node {
  if (typeof value === "string") return el("p", {}, value);
  if (Array.isArray(value)) return el("ul", { class: "bullets" }, ...value.map((item) => el("li", {}, String(item))));
  if (value && typeof value === "object") {
    const c = value as Record<string, unknown>;
    const heading = typeof c.heading === "string" ? el("h5", {}, c.heading) : typeof c.title === "string" ? el("h5", {}, c.title) : null;
    const items = Array.isArray(c.bullets) ? c.bullets : Array.isArray(c.items) ? c.items : null;
    const text = typeof c.text === "string" ? c.text : typeof c.content === "string" ? c.content : null;
    if (heading || items || text) {
      return el("div", { class: `component ${typeof c.type === "string" ? c.type : ""}` }, heading,
        text ? el("p", {}, text) : null,
        items ? el("ul", { class: "bullets" }, ...items.map((item) => el("li", {}, String(item)))) : null);
    }
  }
  return el("pre", { class: "component raw" }, JSON.stringify(value, null, 1));
}

function describe(mutation: string | null): string {
  const names: Record<string, string> = {
    create: "Created", updateState: "Updated", navigateToStage: "Moved stage", saveBuyerPersona: "Saved the buyer persona",
    saveHeroContext: "Saved the hero concept", createOutline: "Changed the outline", updateSlide: "Edited a slide",
    navigateToSlide: "Opened a slide", importFromSupabase: "Imported",
  };
  return mutation ? names[mutation] ?? mutation : "Changed";
}

declare global {
  interface Window {
    cimhubBoard?: { rendered(change: Change<unknown>): void; [key: string]: unknown };
  }
}
