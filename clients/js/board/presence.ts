// Who is on the CIM: one avatar per connection (bankers round, agents square), live from
// `presence:<cimId>`, and the small avatars the CIM page puts on the slides and sections
// someone is editing or drafting. The page sets this board's own presence (cim-page.ts).

import type { CimhubClient, Subscription } from "../src/index.js";
import {
  initials,
  presenceActivity,
  presenceKind,
  presenceList,
  presenceName,
  presenceTopic,
  type PresenceMember,
  type PresenceMembers,
} from "../src/index.js";
import { el, setAttr, syncChildren } from "./dom.js";

/**
 * A colour per actor, the same in every browser, so one person keeps one colour everywhere.
 * FNV-1a, so ids that differ in one last character ("user-1", "user-2") still land far apart.
 */
function hue(actor: string): number {
  let hash = 0x811c9dc5;
  for (const char of actor) hash = Math.imul(hash ^ char.codePointAt(0)!, 0x01000193) >>> 0;
  return hash % 360;
}

/** Who a member is and what they do, in words (the avatar's tooltip and accessible name). */
export function memberLabel(member: PresenceMember, self: boolean): string {
  const kind = presenceKind(member) === "agent" ? `agent acting for ${member.userId ?? "?"}` : "banker";
  return `${presenceName(member)}${self ? " (you)" : ""}, ${kind}: ${presenceActivity(member.state)}`;
}

/** An avatar: initials in a circle (a banker) or a square (an agent). */
export function avatar(member: PresenceMember, self: boolean, small = false): HTMLElement {
  const label = memberLabel(member, self);
  const node = el("span", {
    class: small ? "avatar small" : "avatar",
    "data-kind": presenceKind(member),
    "data-actor": member.actor,
    title: label,
    "aria-label": label,
    role: "img",
  }, initials(presenceName(member)));
  node.style.setProperty("--hue", String(hue(member.actor)));
  return node;
}

export class PresenceBar {
  readonly root: HTMLElement;
  private readonly list: HTMLElement;
  private readonly sub: Subscription<PresenceMembers>;
  private readonly items = new Map<string, { root: HTMLElement; key: string }>();

  /** `onMembers` hears the members after every change (the page marks slides and sections with it). */
  constructor(
    private readonly client: CimhubClient,
    private readonly cimId: string,
    private readonly onMembers: (members: PresenceMember[], selfId: string | null) => void,
  ) {
    this.list = el("ul", { class: "presence", id: "presence-list" });
    this.root = el("div", { class: "who-here", id: "presence", "aria-label": "Who is on this CIM", role: "group" }, this.list);
    this.sub = client.subscribe<PresenceMembers>(presenceTopic(cimId), () => this.render());
    this.sub.onEnd(() => {
      this.root.hidden = true; // the CIM is gone or not ours: the page says so
    });
  }

  destroy(): void {
    this.sub.unsubscribe();
  }

  /** The members now, for the page (after it re-renders slides). */
  get members(): PresenceMember[] {
    return presenceList(this.sub.document);
  }

  private render(): void {
    const selfId = this.client.presenceId(this.cimId);
    const members = this.members;
    const roots = members.map((member) => {
      const self = member.id === selfId;
      const key = JSON.stringify([member.state, member.actor, self]);
      let item = this.items.get(member.id);
      if (item === undefined || item.key !== key) {
        const root = el("li", { class: "member", "data-presence-id": member.id }, avatar(member, self));
        item = { root, key };
        this.items.set(member.id, item);
      }
      setAttr(item.root, "data-actor", member.actor);
      setAttr(item.root, "data-kind", presenceKind(member));
      setAttr(item.root, "data-activity", member.state.activity ?? "viewing");
      setAttr(item.root, "data-editing-slide", member.state.activity === "editing" ? member.state.slideId ?? null : null);
      setAttr(item.root, "data-self", self ? "true" : null);
      return item.root;
    });
    syncChildren(this.list, roots);
    for (const id of [...this.items.keys()]) if (!members.some((m) => m.id === id)) this.items.delete(id);
    setAttr(this.root, "data-count", String(members.length));
    this.onMembers(members, selfId);
  }
}
