// The CIMs of the signed-in user's deals, live: one `deal:` subscription per deal.
//
// The deals come from the user's own CIMs (`listByUser`, then `get`) plus any `?deal=` in
// the URL; each deal's list then follows its `deal:` topic, so a CIM created,
// renamed or moved on elsewhere shows up here without a reload.

import type { Cim, CimhubClient, CimSummary, Subscription } from "../src/index.js";
import { el, flash, setAttr, setText, syncChildren, timeOf, words } from "./dom.js";
import { humanError } from "./messages.js";

export class ListPage {
  readonly root: HTMLElement;
  private readonly subs: Subscription<Record<string, CimSummary>>[] = [];
  private readonly deals = new Map<string, { root: HTMLElement; list: HTMLElement; rows: Map<string, HTMLElement> }>();
  private readonly container = el("div", { id: "deals" });
  private readonly empty = el("p", { class: "empty", id: "no-cims" }, "Looking for your CIMs…");
  private destroyed = false; // the board moved on while the deals were being looked up

  constructor(
    private readonly client: CimhubClient,
    userId: string,
    extraDeals: string[],
    notify: (message: string, kind?: "error" | "info") => void,
  ) {
    this.root = el("article", { id: "list" }, el("h1", { id: "title" }, "Your CIMs"), this.empty, this.container);
    document.title = "CIMs · cimhub";
    this.discover(userId, extraDeals).catch((error: unknown) => notify(humanError(error, "list your CIMs"), "error"));
  }

  /** The deals to follow: those in the URL, and those of the user's own CIMs (a summary has no deal: ask each CIM). */
  private async discover(userId: string, extraDeals: string[]): Promise<void> {
    const page = (await this.client.query("listByUser", { userId, limit: 200 })) as { items: CimSummary[] };
    const deals = new Set(extraDeals);
    const answers = await Promise.all(
      page.items.map((item) => this.client.query("get", { cimId: item.id }).catch(() => null) as Promise<{ cim: Cim } | null>),
    );
    for (const answer of answers) if (answer) deals.add(answer.cim.dealId);
    this.follow([...deals]);
  }

  destroy(): void {
    this.destroyed = true;
    for (const sub of this.subs) sub.unsubscribe();
  }

  private follow(dealIds: string[]): void {
    if (this.destroyed) return;
    if (dealIds.length === 0) setText(this.empty, "No CIMs yet.");
    for (const dealId of dealIds.sort()) {
      const sub = this.client.subscribe<Record<string, CimSummary>>(`deal:${dealId}`, (change) => {
        this.renderDeal(dealId, change.document ?? {}, change.snapshot);
        window.cimhubBoard?.rendered(change);
      });
      this.subs.push(sub);
    }
  }

  private renderDeal(dealId: string, cims: Record<string, CimSummary>, snapshot: boolean): void {
    let deal = this.deals.get(dealId);
    if (deal === undefined) {
      const list = el("ul", { class: "cim-list" });
      deal = { root: el("section", { class: "card deal", "data-deal-id": dealId }, el("h2", {}, `Deal ${dealId}`), list), list, rows: new Map() };
      this.deals.set(dealId, deal);
      syncChildren(this.container, [...this.deals.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, d]) => d.root));
    }
    const items = Object.values(cims).sort((a, b) => b.updatedAt - a.updatedAt);
    const rows = items.map((cim) => {
      let row = deal!.rows.get(cim.id);
      const fresh = row === undefined;
      if (row === undefined) {
        row = el("li", { "data-cim-id": cim.id },
          el("a", { href: `/?cim=${encodeURIComponent(cim.id)}`, class: "cim-title" }),
          el("span", { class: "stage" }), el("span", { class: "status" }), el("time", {}));
        deal!.rows.set(cim.id, row);
      }
      const changed = [
        setText(row.querySelector(".cim-title")!, cim.title),
        setText(row.querySelector(".stage")!, words(cim.stage)),
        setText(row.querySelector(".status")!, words(cim.status)),
      ].some(Boolean);
      setAttr(row.querySelector(".status")!, "data-status", cim.status);
      setText(row.querySelector("time")!, `updated ${timeOf(cim.updatedAt)}`);
      if (changed && !fresh && !snapshot) flash(row, null, cim.updatedAt);
      return row;
    });
    for (const id of [...deal.rows.keys()]) if (!(id in cims)) deal.rows.delete(id);
    syncChildren(deal.list, rows);
    const total = [...this.deals.values()].reduce((n, d) => n + d.rows.size, 0);
    this.empty.hidden = total > 0;
    if (total === 0) setText(this.empty, "No CIMs yet.");
  }
}
