// One CIM, live: stage progress, persona and hero, sections with progress, every slide's content,
// inline slide edits and stage navigation with optimistic feedback, and a log of who changed what.
// Who else is here shows as avatars, with a marker on the slide each edits (presence.ts); the
// history panel (history-panel.ts) can show any past revision here, read-only.
//
// Rendering is keyed: each section and slide keeps its element across patches and
// only nodes whose content changed are written, so a text selection, focus in an
// edit form and the scroll position survive unrelated changes.

import type { Change, CimhubClient, PresenceMember, PresenceState, Subscription } from "../src/index.js";
import { draftersBySection, editorsBySlide, parsePointer, STAGES, type Cim, type OutlineSection, type Slide } from "../src/index.js";
import { describe } from "./describe.js";
import { el, flash, setAttr, setText, syncChildren, timeOf, words } from "./dom.js";
import { HistoryPanel, type PastRevision } from "./history-panel.js";
import { humanError } from "./messages.js";
import { avatar, PresenceBar } from "./presence.js";

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
  editors: HTMLElement;
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
  drafters: HTMLElement;
}

export class CimPage {
  readonly root: HTMLElement;
  private readonly sub: Subscription<Cim>;
  private readonly slides = new Map<string, SlideView>();
  private readonly sections = new Map<string, SectionView>();
  private readonly stageButtons = new Map<Stage, HTMLButtonElement>();
  private readonly nodes: Record<string, HTMLElement> = {};
  private readonly presence: PresenceBar;
  private readonly history: HistoryPanel;
  private others: PresenceMember[] = []; // who else is here, for the slide and section markers
  private readonly editing: string[] = []; // slides with an open editor, the latest last
  private past: PastRevision | null = null; // shown instead of the live CIM while not null
  private live: Change<Cim> | null = null;

  /** `me` is the name others see beside this board's avatar. */
  constructor(
    private readonly client: CimhubClient,
    private readonly cimId: string,
    private readonly notify: (message: string, kind?: "error" | "info") => void,
    private readonly me: string,
  ) {
    // Frames arrive only after this constructor: the callbacks can use what is built below.
    this.sub = client.subscribe<Cim>(`cim:${cimId}`, (change) => this.onChange(change));
    this.sub.onEnd((error) => {
      if (error) this.showGone(humanError(error));
    });
    this.presence = new PresenceBar(client, cimId, (members, selfId) => {
      this.others = members.filter((m) => m.id !== selfId);
      this.markPresence();
    });
    this.history = new HistoryPanel(client, cimId, {
      showRevision: (past) => this.showRevision(past),
      liveRevision: () => this.sub.revision,
      notify,
    });
    this.root = this.skeleton();
    this.updatePresence();
  }

  destroy(): void {
    this.sub.unsubscribe();
    this.presence.destroy();
    this.client.setPresence(this.cimId, null).catch(() => {});
  }

  /** The subscription, for the page's debugging handle (window.cimhubBoard). */
  get subscription(): Subscription<Cim> {
    return this.sub;
  }

  private skeleton(): HTMLElement {
    const n = this.nodes;
    n.title = el("h1", { id: "title" }, "Loading…");
    n.meta = el("p", { class: "meta", id: "meta" });
    n.pastNotice = el("p", { class: "notice past", id: "past-notice", role: "status", hidden: true });
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
      el("div", { class: "toolbar" }, this.presence.root, this.history.toggle),
      this.history.root,
      n.pastNotice,
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
    this.live = change;
    if (this.past === null) {
      this.render(cim, change);
      window.cimhubBoard?.rendered(change);
    }
    if (!change.snapshot && !change.local) {
      this.logActivity(change);
      this.history.onLiveRevision();
    }
  }

  /** Show a past revision read-only (editing closed, stages disabled), or the live CIM again (null). */
  private showRevision(past: PastRevision | null): void {
    this.past = past;
    setAttr(this.root, "data-mode", past ? "history" : null);
    const notice = this.nodes.pastNotice!;
    notice.hidden = past === null;
    for (const node of this.root.querySelectorAll("[data-changed-here]")) node.removeAttribute("data-changed-here");
    if (past === null) {
      const live = this.live;
      if (live?.document) this.render(live.document, { ...live, local: true });
      return;
    }
    for (const view of this.slides.values()) view.editor?.querySelector<HTMLButtonElement>(".cancel")?.click();
    setText(notice, `You are looking at revision ${past.revision}: read-only. Restore it, or go back to live, in History.`);
    this.render(past.cim, {
      topic: `cim:${this.cimId}`, revision: past.revision, epoch: "", document: past.cim, confirmed: past.cim, ops: [],
      mutation: null, mutationId: null, actor: null, ts: null, deleted: false, snapshot: true, reset: false, local: true,
      pending: [],
    });
    for (const slideId of changedSlides(past)) {
      const view = this.slides.get(slideId);
      if (view) setAttr(view.root, "data-changed-here", "true");
    }
  }

  /** What this board does on the CIM, for everyone's avatars: editing the latest slide opened, else viewing. */
  private updatePresence(): void {
    const slideId = this.editing.at(-1);
    const state: PresenceState = slideId ? { activity: "editing", slideId, name: this.me } : { activity: "viewing", name: this.me };
    this.client.setPresence(this.cimId, state).catch(() => {}); // a CIM that is gone says so on the page already
  }

  /** Small avatars of who else edits each slide and drafts each section. */
  private markPresence(): void {
    const editors = editorsBySlide(this.others);
    for (const [slideId, view] of this.slides) showMarkers(view.editors, editors.get(slideId) ?? [], "editing");
    const drafters = draftersBySection(this.others);
    for (const [sectionId, view] of this.sections) showMarkers(view.drafters, drafters.get(sectionId) ?? [], "drafting");
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
      button.disabled = this.past !== null;
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
    this.markPresence();
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
      const drafters = el("span", { class: "drafters" });
      const root = el("section", { class: "card section", "data-section-id": id },
        el("div", { class: "section-head" }, title, drafters), description, progress, list, empty);
      view = { root, title, description, progress, list, empty, drafters };
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
      const editors = el("span", { class: "editors" });
      const root = el("li", { class: "slide", "data-slide-id": slide.id },
        el("div", { class: "slide-head" }, title, editors, status, edit), el("p", { class: "slide-meta" }, layout, stale), body);
      view = { root, title, status, stale, layout, body, editors, bodyKey: "", editor: null, last: null };
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
    if (this.past !== null) return;
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
      const at = this.editing.indexOf(slideId);
      if (at >= 0) this.editing.splice(at, 1);
      this.updatePresence();
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
    this.editing.push(slideId);
    this.updatePresence();
    view.root.append(form);
    title.focus();
    title.select();
  }

  private navigate(stage: Stage): void {
    if (this.past !== null || this.sub.document?.stage === stage) return;
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

/** Small avatars of `members` in `node`, followed by what they do; rewritten only when they change. */
function showMarkers(node: HTMLElement, members: readonly PresenceMember[], doing: string): void {
  const key = members.map((m) => `${m.id}:${m.actor}`).join(",");
  if (node.dataset.key === key) return;
  node.dataset.key = key;
  setAttr(node, "data-actors", members.length ? members.map((m) => m.actor).join(" ") : null);
  node.replaceChildren(...members.map((m) => avatar(m, false, true)), members.length ? ` ${doing}` : "");
}

/** The slides revision `past` changed: compared with the revision before it, else read from the ops' paths. */
function changedSlides(past: PastRevision): string[] {
  const now = past.cim.slides ?? [];
  if (past.before !== null) {
    const before = new Map((past.before.slides ?? []).map((s) => [s.id, JSON.stringify(s)]));
    return now.filter((s) => before.get(s.id) !== JSON.stringify(s)).map((s) => s.id);
  }
  const ids = new Set<string>();
  for (const op of past.entry?.ops ?? []) {
    const [top, index] = parsePointer(op.path);
    const slide = top === "slides" && index !== undefined ? now[Number(index)] : undefined;
    if (slide) ids.add(slide.id);
  }
  return [...ids];
}

declare global {
  interface Window {
    cimhubBoard?: { rendered(change: Change<unknown>): void; [key: string]: unknown };
  }
}
