// The history panel: the CIM's revisions (cimHistory), a step back or forward through them
// showing the CIM at that revision read-only (cimAt) with what changed and who (cimDiff),
// and Restore, which makes the shown revision current (restoreRevision, one mutation id
// per click, so a reconnect never applies it twice) and returns to the live CIM.

import type { CimhubClient, HistoryEntry, HistoryItem, JsonOp } from "../src/index.js";
import { cimAt, cimDiff, cimHistory, newMutationId, parsePointer, restoreRevision, type Cim } from "../src/index.js";
import { el, setAttr, setText, timeOf } from "./dom.js";
import { describe } from "./describe.js";
import { humanError } from "./messages.js";

const PAGE = 50;
const VALUE_WIDTH = 60;
/** Replaced by every change; left out so the edit itself shows (clients/render.py BOOKKEEPING_PATHS). */
const BOOKKEEPING = new Set(["/revision", "/updatedAt"]);

/** A past revision as the page shows it: the CIM then, the change that made it, and the CIM before it. */
export interface PastRevision {
  revision: number;
  cim: Cim;
  entry: HistoryEntry | null;
  before: Cim | null;
}

/** What the panel needs from the CIM page. */
export interface HistoryHost {
  /** Show `past` read-only; null: back to the live CIM. */
  showRevision(past: PastRevision | null): void;
  /** The live CIM's confirmed revision. */
  liveRevision(): number;
  notify(message: string, kind?: "error" | "info"): void;
}

export class HistoryPanel {
  readonly root: HTMLElement;
  readonly toggle: HTMLButtonElement;
  private readonly nodes: Record<string, HTMLElement> = {};
  private readonly buttons: Record<string, HTMLButtonElement> = {};
  private items: HistoryItem[] = [];
  private oldest: number | null = null;
  private nextBefore: number | null = null;
  private shown: number | null = null; // the revision on screen; null: live
  private asked = 0; // the latest step asked for: older answers are dropped
  private loading: Promise<void> | null = null;
  private stale = false; // a live change arrived while the list was loading
  private restoring = false;

  constructor(
    private readonly client: CimhubClient,
    private readonly cimId: string,
    private readonly host: HistoryHost,
  ) {
    this.toggle = el("button", { type: "button", id: "history-toggle", "aria-expanded": "false", "aria-controls": "history" }, "History");
    this.toggle.addEventListener("click", () => (this.root.hidden ? this.open() : this.close()));
    this.root = this.skeleton();
    this.update();
  }

  private skeleton(): HTMLElement {
    const n = this.nodes;
    const b = this.buttons;
    const button = (id: string, text: string, action: () => void) => {
      const node = el("button", { type: "button", id: `history-${id}` }, text);
      node.addEventListener("click", action);
      b[id] = node;
      return node;
    };
    n.status = el("p", { class: "history-status", id: "history-status", role: "status" }, "Live");
    n.changes = el("div", { class: "history-changes", id: "history-changes", "aria-live": "polite" });
    n.list = el("ol", { class: "history-list", id: "history-list" });
    const controls = el("div", { class: "history-controls" },
      button("older", "◀ Older", () => this.step(-1)),
      button("newer", "Newer ▶", () => this.step(+1)),
      button("live", "Back to live", () => this.goLive()),
      button("restore", "Restore this revision", () => this.restore()));
    b.restore!.classList.add("primary");
    const more = button("more", "Show older revisions", () => void this.loadPage(this.nextBefore));
    const closer = el("button", { type: "button", class: "dismiss", id: "history-close", "aria-label": "Close history" }, "×");
    closer.addEventListener("click", () => this.close());
    const root = el("section", { class: "card history", id: "history", "aria-label": "History", hidden: true },
      el("div", { class: "history-head" }, el("h2", {}, "History"), closer),
      n.status, controls, n.changes, n.list, more);
    return root;
  }

  open(): void {
    this.root.hidden = false;
    setAttr(this.toggle, "aria-expanded", "true");
    void this.reload();
  }

  /** Close the panel and return to the live CIM. */
  close(): void {
    this.root.hidden = true;
    setAttr(this.toggle, "aria-expanded", "false");
    this.goLive();
  }

  /** A new live revision: list it (keeping the older pages already shown), if the panel is open. */
  onLiveRevision(): void {
    if (this.root.hidden) return;
    if (this.loading) this.stale = true;
    else void this.loadPage(null);
    this.update();
  }

  private reload(): Promise<void> {
    this.items = [];
    return this.loadPage(null);
  }

  private loadPage(before: number | null): Promise<void> {
    if (this.loading) return this.loading;
    this.loading = cimHistory(this.client, this.cimId, { before, limit: PAGE })
      .then(
        (page) => {
          const known = new Set(this.items.map((i) => i.revision));
          const listedBelow = this.items.at(-1)?.revision ?? Infinity;
          // The newest page again (a live change): older pages already listed keep their place to page on from.
          if (before !== null || listedBelow >= (page.items.at(-1)?.revision ?? Infinity)) this.nextBefore = page.nextBefore;
          this.items = [...this.items, ...page.items.filter((i) => !known.has(i.revision))].sort((a, b) => b.revision - a.revision);
          this.oldest = page.oldest;
          this.renderList();
        },
        (error: unknown) => this.host.notify(humanError(error, "load the history"), "error"),
      )
      .finally(() => {
        this.loading = null;
        if (this.stale) {
          this.stale = false;
          void this.loadPage(null);
        }
      });
    return this.loading;
  }

  private renderList(): void {
    const rows = this.items.map((item) => {
      const pick = el("button", { type: "button", class: "pick" },
        el("strong", {}, `r${item.revision}`), " ", describe(item.mutation), ` by ${item.actor ?? "someone"}`, " ",
        el("time", {}, timeOf(item.ts)));
      pick.addEventListener("click", () => void this.show(item.revision));
      const row = el("li", { "data-revision": String(item.revision) }, pick);
      setAttr(row, "aria-current", item.revision === this.shown ? "true" : null);
      return row;
    });
    this.nodes.list!.replaceChildren(...rows);
    this.update();
  }

  /** One revision older (-1) or newer (+1) than the one shown (the live one when none is). */
  private step(delta: -1 | 1): void {
    const from = this.shown ?? this.host.liveRevision();
    const target = from + delta;
    if (target > this.host.liveRevision()) return this.goLive();
    if (target < (this.oldest ?? 1)) return;
    void this.show(target);
  }

  /** Show the CIM at `revision`, with the change that made it and who made it. */
  async show(revision: number): Promise<void> {
    const asked = ++this.asked;
    setText(this.nodes.status!, `Loading revision ${revision}…`);
    try {
      const canReadBefore = revision > 1 && revision - 1 >= (this.oldest ?? 1);
      const [at, diff, before] = await Promise.all([
        cimAt(this.client, this.cimId, revision),
        cimDiff(this.client, this.cimId, revision - 1, revision),
        canReadBefore ? cimAt(this.client, this.cimId, revision - 1).then((a) => a.cim, () => null) : Promise.resolve(null),
      ]);
      if (asked !== this.asked) return; // another step was asked meanwhile
      const entry = diff.patches.find((p) => p.rev === revision) ?? null;
      this.shown = revision;
      this.host.showRevision({ revision, cim: at.cim, entry, before });
      this.renderChanges(entry, before);
    } catch (error) {
      if (asked !== this.asked) return;
      this.host.notify(humanError(error, `show revision ${revision}`), "error");
    }
    this.update();
  }

  private goLive(): void {
    this.asked += 1;
    if (this.shown === null) return this.update();
    this.shown = null;
    this.nodes.changes!.replaceChildren();
    this.host.showRevision(null);
    this.update();
  }

  private restore(): void {
    const revision = this.shown;
    if (revision === null || this.restoring || revision === this.host.liveRevision()) return;
    this.restoring = true;
    this.update();
    // One id for this click: the client re-sends it unchanged after a reconnect, the hub applies it once.
    restoreRevision(this.client, this.cimId, revision, { mutationId: newMutationId() }).then(
      (answer) => {
        this.restoring = false;
        this.host.notify(
          answer.result?.changed === false
            ? `Revision ${revision} is already the current one.`
            : `Restored revision ${revision} as revision ${answer.revision}.`,
        );
        this.goLive();
        void this.reload();
      },
      (error: unknown) => {
        this.restoring = false;
        this.host.notify(humanError(error, `restore revision ${revision}`), "error");
        this.update();
      },
    );
  }

  private renderChanges(entry: HistoryEntry | null, before: Cim | null): void {
    if (entry === null) {
      this.nodes.changes!.replaceChildren(el("p", { class: "empty" }, "What changed is no longer in the history."));
      return;
    }
    const ops = entry.ops.filter((op) => !BOOKKEEPING.has(op.path));
    this.nodes.changes!.replaceChildren(
      el("p", { class: "history-who", id: "history-who", "data-actor": entry.actor ?? "" },
        el("strong", {}, describe(entry.mutation)), ` by ${entry.actor ?? "someone"}`, " ", el("time", {}, timeOf(entry.ts))),
      ops.length
        ? el("ul", { class: "ops", id: "history-ops" }, ...ops.map((op) => opLine(op, before)))
        : el("p", { class: "empty" }, "No content changed."),
    );
  }

  /** Enable what applies now and say where we are. */
  private update(): void {
    const live = this.host.liveRevision();
    const shown = this.shown;
    const b = this.buttons;
    b.older!.disabled = (shown ?? live) - 1 < (this.oldest ?? 1);
    b.newer!.disabled = shown === null;
    b.live!.disabled = shown === null;
    b.restore!.disabled = shown === null || shown === live || this.restoring;
    setText(b.restore!, this.restoring ? "Restoring…" : "Restore this revision");
    b.more!.hidden = this.nextBefore === null;
    setText(this.nodes.status!, shown === null
      ? `Live: revision ${live}`
      : `Viewing revision ${shown} of ${live} (read-only)`);
    setAttr(this.root, "data-shown", shown === null ? "live" : String(shown));
    for (const row of this.nodes.list!.children) {
      setAttr(row, "aria-current", row.getAttribute("data-revision") === String(shown) ? "true" : null);
    }
  }
}

/** One change: `+ path new`, `- path old`, `~ path old → new` (old values from the CIM before it). */
function opLine(op: JsonOp, before: Cim | null): HTMLElement {
  const path = op.path || "/";
  if (op.op === "add") return el("li", { class: "op add" }, `+ ${path} `, el("code", {}, short(op.value)));
  const old = before === null ? undefined : valueAt(before, op.path);
  if (op.op === "remove") return el("li", { class: "op remove" }, `- ${path} `, el("code", {}, short(old)));
  return el("li", { class: "op replace" }, `~ ${path} `,
    el("del", {}, short(old)), " → ", el("ins", {}, short(op.value)));
}

function valueAt(document: unknown, path: string): unknown {
  let node: unknown = document;
  for (const token of parsePointer(path)) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string, unknown>)[token];
  }
  return node;
}

function short(value: unknown): string {
  if (value === undefined) return "?";
  const text = JSON.stringify(value);
  return text.length > VALUE_WIDTH ? `${text.slice(0, VALUE_WIDTH - 1)}…` : text;
}
