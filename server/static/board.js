// The live CIM board served at / (clients/js/board/).
// Built from clients/js by `bash scripts/gen-types` (node clients/js/tools/build.mjs): do not edit.

// board/main.ts
import { CimhubClient, CimhubError as CimhubError2, webStorageOutbox } from "./cimhub.js";

// board/auth.ts
var SESSION_KEY = "cimhub.board.session";
var DEV_USER_KEY = "cimhub.board.devUser";
async function loadConfig() {
  const response = await fetch("/v1/board/config");
  if (!response.ok) throw new Error(`the hub did not send the board's settings (HTTP ${response.status})`);
  return await response.json();
}
function subjectOf(token) {
  const payload = token.split(".")[1] ?? "";
  const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
  return String(JSON.parse(json).sub ?? "");
}
function fragmentIdentity() {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (!token) return null;
  return { userId: subjectOf(token), token: async () => token, signOut: () => location.hash = "" };
}
function devIdentity(userId = sessionStorage.getItem(DEV_USER_KEY)) {
  if (!userId) return null;
  sessionStorage.setItem(DEV_USER_KEY, userId);
  const ttl = new URLSearchParams(location.search).get("tokenTtl");
  return {
    userId,
    token: async () => {
      const response = await fetch("/v1/dev/token", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ userId, ...ttl ? { ttlS: Number(ttl) } : {} })
      });
      if (!response.ok) throw new Error(`dev sign-in failed (HTTP ${response.status})`);
      return (await response.json()).token;
    },
    signOut: () => sessionStorage.removeItem(DEV_USER_KEY)
  };
}
async function gotrue(config, grant, body) {
  const response = await fetch(`${config.supabaseUrl}/auth/v1/token?grant_type=${grant}`, {
    method: "POST",
    headers: { "content-type": "application/json", apikey: config.supabaseAnonKey ?? "" },
    body: JSON.stringify(body)
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error_description ?? data.msg ?? `sign-in failed (HTTP ${response.status})`);
  localStorage.setItem(SESSION_KEY, JSON.stringify(data));
  return data;
}
async function supabaseSignIn(config, email, password) {
  await gotrue(config, "password", { email, password });
  return supabaseIdentity(config);
}
function supabaseIdentity(config) {
  const stored = localStorage.getItem(SESSION_KEY);
  if (!stored || !config.supabaseUrl) return null;
  let session = JSON.parse(stored);
  return {
    userId: subjectOf(session.access_token),
    token: async () => {
      if (session.expires_at * 1e3 - Date.now() < 12e4) {
        session = await gotrue(config, "refresh_token", { refresh_token: session.refresh_token });
      }
      return session.access_token;
    },
    signOut: () => localStorage.removeItem(SESSION_KEY)
  };
}

// board/cim-page.ts
import { draftersBySection, editorsBySlide, parsePointer as parsePointer2, STAGES } from "./cimhub.js";

// board/describe.ts
var NAMES = {
  create: "Created",
  updateState: "Updated",
  navigateToStage: "Moved stage",
  saveBuyerPersona: "Saved the buyer persona",
  saveHeroContext: "Saved the hero concept",
  createOutline: "Changed the outline",
  updateSlide: "Edited a slide",
  navigateToSlide: "Opened a slide",
  importFromSupabase: "Imported",
  restoreRevision: "Restored a revision"
};
function describe(mutation) {
  return mutation ? NAMES[mutation] ?? mutation : "Changed";
}

// board/dom.ts
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === void 0 || value === false) continue;
    if (name === "class") node.className = String(value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== void 0 && child !== false) node.append(child);
  return node;
}
function setText(node, text) {
  if (node.textContent === text) return false;
  node.textContent = text;
  return true;
}
function setAttr(node, name, value) {
  if (value === null) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== value) {
    node.setAttribute(name, value);
  }
}
function syncChildren(parent, children) {
  const wanted = new Set(children);
  for (const child of [...parent.children]) if (!wanted.has(child)) child.remove();
  children.forEach((child, index) => {
    if (parent.children[index] !== child) parent.insertBefore(child, parent.children[index] ?? null);
  });
}
var words = (value) => String(value ?? "").replaceAll("_", " ");
function timeOf(ms) {
  if (!ms) return "";
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
function flash(node, actor, ts) {
  node.classList.remove("changed");
  void node.offsetWidth;
  node.classList.add("changed");
  setAttr(node, "data-changed-by", actor);
  setAttr(node, "title", `Changed${actor ? ` by ${actor}` : ""}${ts ? ` at ${timeOf(ts)}` : ""}`);
}

// board/history-panel.ts
import { cimAt, cimDiff, cimHistory, newMutationId, parsePointer, restoreRevision } from "./cimhub.js";

// board/messages.ts
import { CimhubError } from "./cimhub.js";
var BY_CODE = {
  invalid_transition: "That step isn't possible yet",
  invalid_args: "Some of the details aren't valid",
  not_found: "This CIM no longer exists",
  access_denied: "You don't have access to this deal",
  unauthenticated: "Please sign in again",
  token_expired: "Your session expired: please sign in again",
  rate_limited: "Too many changes at once: please wait a moment",
  overloaded: "The server is busy: your change will be retried",
  unavailable: "The server is unavailable: your change will be retried",
  conflict: "Someone else changed this at the same time: please try again",
  payload_too_large: "That is too large to save",
  closed: "The connection was closed"
};
function humanError(error, doing) {
  const prefix = doing ? `Couldn't ${doing}. ` : "";
  if (error instanceof CimhubError) {
    const plain = BY_CODE[error.code] ?? "Something went wrong";
    const detail = error.code === "invalid_transition" || error.code === "invalid_args" ? ` (${error.message})` : "";
    return `${prefix}${plain}${detail}.`;
  }
  return `${prefix}Something went wrong: ${error instanceof Error ? error.message : String(error)}.`;
}

// board/history-panel.ts
var PAGE = 50;
var VALUE_WIDTH = 60;
var BOOKKEEPING = /* @__PURE__ */ new Set(["/revision", "/updatedAt"]);
var HistoryPanel = class {
  constructor(client, cimId, host) {
    this.client = client;
    this.cimId = cimId;
    this.host = host;
    this.toggle = el("button", { type: "button", id: "history-toggle", "aria-expanded": "false", "aria-controls": "history" }, "History");
    this.toggle.addEventListener("click", () => this.root.hidden ? this.open() : this.close());
    this.root = this.skeleton();
    this.update();
  }
  client;
  cimId;
  host;
  root;
  toggle;
  nodes = {};
  buttons = {};
  items = [];
  oldest = null;
  nextBefore = null;
  shown = null;
  // the revision on screen; null: live
  asked = 0;
  // the latest step asked for: older answers are dropped
  loading = null;
  stale = false;
  // a live change arrived while the list was loading
  restoring = false;
  skeleton() {
    const n = this.nodes;
    const b = this.buttons;
    const button = (id, text, action) => {
      const node = el("button", { type: "button", id: `history-${id}` }, text);
      node.addEventListener("click", action);
      b[id] = node;
      return node;
    };
    n.status = el("p", { class: "history-status", id: "history-status", role: "status" }, "Live");
    n.changes = el("div", { class: "history-changes", id: "history-changes", "aria-live": "polite" });
    n.list = el("ol", { class: "history-list", id: "history-list" });
    const controls = el(
      "div",
      { class: "history-controls" },
      button("older", "\u25C0 Older", () => this.step(-1)),
      button("newer", "Newer \u25B6", () => this.step(1)),
      button("live", "Back to live", () => this.goLive()),
      button("restore", "Restore this revision", () => this.restore())
    );
    b.restore.classList.add("primary");
    const more = button("more", "Show older revisions", () => void this.loadPage(this.nextBefore));
    const closer = el("button", { type: "button", class: "dismiss", id: "history-close", "aria-label": "Close history" }, "\xD7");
    closer.addEventListener("click", () => this.close());
    const root = el(
      "section",
      { class: "card history", id: "history", "aria-label": "History", hidden: true },
      el("div", { class: "history-head" }, el("h2", {}, "History"), closer),
      n.status,
      controls,
      n.changes,
      n.list,
      more
    );
    return root;
  }
  open() {
    this.root.hidden = false;
    setAttr(this.toggle, "aria-expanded", "true");
    void this.reload();
  }
  /** Close the panel and return to the live CIM. */
  close() {
    this.root.hidden = true;
    setAttr(this.toggle, "aria-expanded", "false");
    this.goLive();
  }
  /** A new live revision: list it (keeping the older pages already shown), if the panel is open. */
  onLiveRevision() {
    if (this.root.hidden) return;
    if (this.loading) this.stale = true;
    else void this.loadPage(null);
    this.update();
  }
  reload() {
    this.items = [];
    return this.loadPage(null);
  }
  loadPage(before) {
    if (this.loading) return this.loading;
    this.loading = cimHistory(this.client, this.cimId, { before, limit: PAGE }).then(
      (page) => {
        const known = new Set(this.items.map((i) => i.revision));
        const listedBelow = this.items.at(-1)?.revision ?? Infinity;
        if (before !== null || listedBelow >= (page.items.at(-1)?.revision ?? Infinity)) this.nextBefore = page.nextBefore;
        this.items = [...this.items, ...page.items.filter((i) => !known.has(i.revision))].sort((a, b) => b.revision - a.revision);
        this.oldest = page.oldest;
        this.renderList();
      },
      (error) => this.host.notify(humanError(error, "load the history"), "error")
    ).finally(() => {
      this.loading = null;
      if (this.stale) {
        this.stale = false;
        void this.loadPage(null);
      }
    });
    return this.loading;
  }
  renderList() {
    const rows = this.items.map((item) => {
      const pick = el(
        "button",
        { type: "button", class: "pick" },
        el("strong", {}, `r${item.revision}`),
        " ",
        describe(item.mutation),
        ` by ${item.actor ?? "someone"}`,
        " ",
        el("time", {}, timeOf(item.ts))
      );
      pick.addEventListener("click", () => void this.show(item.revision));
      const row = el("li", { "data-revision": String(item.revision) }, pick);
      setAttr(row, "aria-current", item.revision === this.shown ? "true" : null);
      return row;
    });
    this.nodes.list.replaceChildren(...rows);
    this.update();
  }
  /** One revision older (-1) or newer (+1) than the one shown (the live one when none is). */
  step(delta) {
    const from = this.shown ?? this.host.liveRevision();
    const target = from + delta;
    if (target > this.host.liveRevision()) return this.goLive();
    if (target < (this.oldest ?? 1)) return;
    void this.show(target);
  }
  /** Show the CIM at `revision`, with the change that made it and who made it. */
  async show(revision) {
    const asked = ++this.asked;
    setText(this.nodes.status, `Loading revision ${revision}\u2026`);
    try {
      const canReadBefore = revision > 1 && revision - 1 >= (this.oldest ?? 1);
      const [at, diff, before] = await Promise.all([
        cimAt(this.client, this.cimId, revision),
        cimDiff(this.client, this.cimId, revision - 1, revision),
        canReadBefore ? cimAt(this.client, this.cimId, revision - 1).then((a) => a.cim, () => null) : Promise.resolve(null)
      ]);
      if (asked !== this.asked) return;
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
  goLive() {
    this.asked += 1;
    if (this.shown === null) return this.update();
    this.shown = null;
    this.nodes.changes.replaceChildren();
    this.host.showRevision(null);
    this.update();
  }
  restore() {
    const revision = this.shown;
    if (revision === null || this.restoring || revision === this.host.liveRevision()) return;
    this.restoring = true;
    this.update();
    restoreRevision(this.client, this.cimId, revision, { mutationId: newMutationId() }).then(
      (answer) => {
        this.restoring = false;
        this.host.notify(
          answer.result?.changed === false ? `Revision ${revision} is already the current one.` : `Restored revision ${revision} as revision ${answer.revision}.`
        );
        this.goLive();
        void this.reload();
      },
      (error) => {
        this.restoring = false;
        this.host.notify(humanError(error, `restore revision ${revision}`), "error");
        this.update();
      }
    );
  }
  renderChanges(entry, before) {
    if (entry === null) {
      this.nodes.changes.replaceChildren(el("p", { class: "empty" }, "What changed is no longer in the history."));
      return;
    }
    const ops = entry.ops.filter((op) => !BOOKKEEPING.has(op.path));
    this.nodes.changes.replaceChildren(
      el(
        "p",
        { class: "history-who", id: "history-who", "data-actor": entry.actor ?? "" },
        el("strong", {}, describe(entry.mutation)),
        ` by ${entry.actor ?? "someone"}`,
        " ",
        el("time", {}, timeOf(entry.ts))
      ),
      ops.length ? el("ul", { class: "ops", id: "history-ops" }, ...ops.map((op) => opLine(op, before))) : el("p", { class: "empty" }, "No content changed.")
    );
  }
  /** Enable what applies now and say where we are. */
  update() {
    const live = this.host.liveRevision();
    const shown = this.shown;
    const b = this.buttons;
    b.older.disabled = (shown ?? live) - 1 < (this.oldest ?? 1);
    b.newer.disabled = shown === null;
    b.live.disabled = shown === null;
    b.restore.disabled = shown === null || shown === live || this.restoring;
    setText(b.restore, this.restoring ? "Restoring\u2026" : "Restore this revision");
    b.more.hidden = this.nextBefore === null;
    setText(this.nodes.status, shown === null ? `Live: revision ${live}` : `Viewing revision ${shown} of ${live} (read-only)`);
    setAttr(this.root, "data-shown", shown === null ? "live" : String(shown));
    for (const row of this.nodes.list.children) {
      setAttr(row, "aria-current", row.getAttribute("data-revision") === String(shown) ? "true" : null);
    }
  }
};
function opLine(op, before) {
  const path = op.path || "/";
  if (op.op === "add") return el("li", { class: "op add" }, `+ ${path} `, el("code", {}, short(op.value)));
  const old = before === null ? void 0 : valueAt(before, op.path);
  if (op.op === "remove") return el("li", { class: "op remove" }, `- ${path} `, el("code", {}, short(old)));
  return el(
    "li",
    { class: "op replace" },
    `~ ${path} `,
    el("del", {}, short(old)),
    " \u2192 ",
    el("ins", {}, short(op.value))
  );
}
function valueAt(document2, path) {
  let node = document2;
  for (const token of parsePointer(path)) {
    if (node === null || typeof node !== "object") return void 0;
    node = node[token];
  }
  return node;
}
function short(value) {
  if (value === void 0) return "?";
  const text = JSON.stringify(value);
  return text.length > VALUE_WIDTH ? `${text.slice(0, VALUE_WIDTH - 1)}\u2026` : text;
}

// board/presence.ts
import {
  initials,
  presenceActivity,
  presenceKind,
  presenceList,
  presenceName,
  presenceTopic
} from "./cimhub.js";
function hue(actor) {
  let hash = 2166136261;
  for (const char of actor) hash = Math.imul(hash ^ char.codePointAt(0), 16777619) >>> 0;
  return hash % 360;
}
function memberLabel(member, self) {
  const kind = presenceKind(member) === "agent" ? `agent acting for ${member.userId ?? "?"}` : "banker";
  return `${presenceName(member)}${self ? " (you)" : ""}, ${kind}: ${presenceActivity(member.state)}`;
}
function avatar(member, self, small = false) {
  const label = memberLabel(member, self);
  const node = el("span", {
    class: small ? "avatar small" : "avatar",
    "data-kind": presenceKind(member),
    "data-actor": member.actor,
    title: label,
    "aria-label": label,
    role: "img"
  }, initials(presenceName(member)));
  node.style.setProperty("--hue", String(hue(member.actor)));
  return node;
}
var PresenceBar = class {
  /** `onMembers` hears the members after every change (the page marks slides and sections with it). */
  constructor(client, cimId, onMembers) {
    this.client = client;
    this.cimId = cimId;
    this.onMembers = onMembers;
    this.list = el("ul", { class: "presence", id: "presence-list" });
    this.root = el("div", { class: "who-here", id: "presence", "aria-label": "Who is on this CIM", role: "group" }, this.list);
    this.sub = client.subscribe(presenceTopic(cimId), () => this.render());
    this.sub.onEnd(() => {
      this.root.hidden = true;
    });
  }
  client;
  cimId;
  onMembers;
  root;
  list;
  sub;
  items = /* @__PURE__ */ new Map();
  destroy() {
    this.sub.unsubscribe();
  }
  /** The members now, for the page (after it re-renders slides). */
  get members() {
    return presenceList(this.sub.document);
  }
  render() {
    const selfId = this.client.presenceId(this.cimId);
    const members = this.members;
    const roots = members.map((member) => {
      const self = member.id === selfId;
      const key = JSON.stringify([member.state, member.actor, self]);
      let item = this.items.get(member.id);
      if (item === void 0 || item.key !== key) {
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
};

// board/cim-page.ts
var STAGE_LABELS = {
  welcome: "Welcome",
  buyer_persona: "Buyer persona",
  hero_concept: "Hero concept",
  outline: "Outline",
  building_sections: "Sections"
};
var ACTIVITY_LIMIT = 12;
var CimPage = class {
  /** `me` is the name others see beside this board's avatar. */
  constructor(client, cimId, notify2, me) {
    this.client = client;
    this.cimId = cimId;
    this.notify = notify2;
    this.me = me;
    this.sub = client.subscribe(`cim:${cimId}`, (change) => this.onChange(change));
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
      notify: notify2
    });
    this.root = this.skeleton();
    this.updatePresence();
  }
  client;
  cimId;
  notify;
  me;
  root;
  sub;
  slides = /* @__PURE__ */ new Map();
  sections = /* @__PURE__ */ new Map();
  stageButtons = /* @__PURE__ */ new Map();
  nodes = {};
  presence;
  history;
  others = [];
  // who else is here, for the slide and section markers
  editing = [];
  // slides with an open editor, the latest last
  past = null;
  // shown instead of the live CIM while not null
  live = null;
  destroy() {
    this.sub.unsubscribe();
    this.presence.destroy();
    this.client.setPresence(this.cimId, null).catch(() => {
    });
  }
  /** The subscription, for the page's debugging handle (window.cimhubBoard). */
  get subscription() {
    return this.sub;
  }
  skeleton() {
    const n = this.nodes;
    n.title = el("h1", { id: "title" }, "Loading\u2026");
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
      el("p", {}, el("a", { href: "/", id: "back" }, "\u2190 All CIMs")),
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
      n.activity
    );
  }
  onChange(change) {
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
  showRevision(past) {
    this.past = past;
    setAttr(this.root, "data-mode", past ? "history" : null);
    const notice = this.nodes.pastNotice;
    notice.hidden = past === null;
    for (const node of this.root.querySelectorAll("[data-changed-here]")) node.removeAttribute("data-changed-here");
    if (past === null) {
      const live = this.live;
      if (live?.document) this.render(live.document, { ...live, local: true });
      return;
    }
    for (const view of this.slides.values()) view.editor?.querySelector(".cancel")?.click();
    setText(notice, `You are looking at revision ${past.revision}: read-only. Restore it, or go back to live, in History.`);
    this.render(past.cim, {
      topic: `cim:${this.cimId}`,
      revision: past.revision,
      epoch: "",
      document: past.cim,
      confirmed: past.cim,
      ops: [],
      mutation: null,
      mutationId: null,
      actor: null,
      ts: null,
      deleted: false,
      snapshot: true,
      reset: false,
      local: true,
      pending: []
    });
    for (const slideId of changedSlides(past)) {
      const view = this.slides.get(slideId);
      if (view) setAttr(view.root, "data-changed-here", "true");
    }
  }
  /** What this board does on the CIM, for everyone's avatars: editing the latest slide opened, else viewing. */
  updatePresence() {
    const slideId = this.editing.at(-1);
    const state = slideId ? { activity: "editing", slideId, name: this.me } : { activity: "viewing", name: this.me };
    this.client.setPresence(this.cimId, state).catch(() => {
    });
  }
  /** Small avatars of who else edits each slide and drafts each section. */
  markPresence() {
    const editors = editorsBySlide(this.others);
    for (const [slideId, view] of this.slides) showMarkers(view.editors, editors.get(slideId) ?? [], "editing");
    const drafters = draftersBySection(this.others);
    for (const [sectionId, view] of this.sections) showMarkers(view.drafters, drafters.get(sectionId) ?? [], "drafting");
  }
  render(cim, change) {
    const n = this.nodes;
    document.title = `${cim.title} \xB7 cimhub`;
    setText(n.title, cim.title);
    setText(
      n.meta,
      `${words(cim.status)} \xB7 revision ${change.confirmed?.revision ?? cim.revision}${change.pending.length ? " \xB7 saving\u2026" : ""}`
    );
    setAttr(n.meta, "data-revision", String(change.confirmed?.revision ?? cim.revision ?? 0));
    setAttr(n.meta, "data-status", cim.status ?? "draft");
    setAttr(n.meta, "data-pending", String(change.pending.length));
    const done = new Set(cim.completedStages ?? []);
    const at = STAGES.indexOf(cim.stage ?? "welcome");
    for (const [stage, button] of this.stageButtons) {
      const passed = done.has(stage) || stage === "welcome" && at > 0;
      const state = stage === cim.stage ? "current" : passed ? "done" : "todo";
      setAttr(button, "data-state", state);
      setAttr(button, "aria-current", stage === cim.stage ? "step" : null);
      button.disabled = this.past !== null;
    }
    setAttr(n.stages, "data-current", cim.stage ?? "welcome");
    const notices = [];
    if (cim.heroStale) notices.push(el("p", { class: "notice", id: "hero-stale" }, `The hero concept needs review: ${words(cim.heroStale.reason)}.`));
    if (cim.outlineStale) notices.push(el("p", { class: "notice", id: "outline-stale" }, `The outline needs review: ${words(cim.outlineStale.reason)}.`));
    const noticeText = notices.map((x) => x.textContent).join("|");
    if (n.stale.dataset.text !== noticeText) {
      n.stale.dataset.text = noticeText;
      n.stale.replaceChildren(...notices);
    }
    this.renderPersona(cim);
    this.renderHero(cim);
    this.renderSections(cim, change);
    this.markPresence();
  }
  renderPersona(cim) {
    const persona = cim.buyerPersona;
    const key = JSON.stringify(persona ?? null);
    if (this.nodes.persona.dataset.key === key) return;
    this.nodes.persona.dataset.key = key;
    this.nodes.persona.replaceChildren(
      el("h2", {}, "Buyer persona"),
      persona ? el(
        "div",
        {},
        el("p", { class: "lead", id: "persona-type" }, persona.type),
        list("Motivations", persona.motivations),
        list("Concerns", persona.concerns)
      ) : el("p", { class: "empty" }, "Not chosen yet.")
    );
  }
  renderHero(cim) {
    const hero = cim.heroContext;
    const key = JSON.stringify(hero ?? null);
    if (this.nodes.hero.dataset.key === key) return;
    this.nodes.hero.dataset.key = key;
    this.nodes.hero.replaceChildren(
      el("h2", {}, "Hero concept"),
      hero ? el(
        "div",
        {},
        el("p", { class: "lead", id: "hero-text" }, hero.selectedHero),
        el(
          "dl",
          { class: "thesis" },
          el("dt", {}, "Asset"),
          el("dd", {}, hero.investmentThesis.asset),
          el("dt", {}, "Timing"),
          el("dd", {}, hero.investmentThesis.timing),
          el("dt", {}, "Opportunity"),
          el("dd", {}, hero.investmentThesis.opportunity)
        )
      ) : el("p", { class: "empty" }, "Not chosen yet.")
    );
  }
  renderSections(cim, change) {
    const outline = [...cim.outline ?? []];
    const slides = cim.slides ?? [];
    const known = new Set(outline.map((s) => s.id));
    if (slides.some((s) => !known.has(s.sectionId))) {
      outline.push({ id: "", title: "Not in the outline", description: "Slides whose section was removed from the outline." });
    }
    this.nodes.noOutline.hidden = outline.length > 0;
    const roots = [];
    for (const section of outline) {
      const view = this.sectionView(section.id);
      setText(view.title, section.title);
      setText(view.description, section.description);
      const own = slides.filter((s) => section.id === "" ? !known.has(s.sectionId) : s.sectionId === section.id);
      const approved = own.filter((s) => s.status === "approved").length;
      const status = cim.sectionProgress?.[section.id]?.status ?? "pending";
      setText(view.progress, `${words(status)} \xB7 ${approved} of ${own.length} slides approved`);
      setAttr(view.progress, "data-status", status);
      setAttr(view.root, "aria-current", cim.currentSectionId === section.id ? "location" : null);
      view.empty.hidden = own.length > 0;
      syncChildren(view.list, own.map((slide) => this.renderSlide(slide, cim, change)));
      roots.push(view.root);
    }
    syncChildren(this.nodes.sections, roots);
    for (const id of [...this.sections.keys()]) if (!outline.some((s) => s.id === id)) this.sections.delete(id);
    for (const id of [...this.slides.keys()]) if (!slides.some((s) => s.id === id)) this.slides.delete(id);
  }
  sectionView(id) {
    let view = this.sections.get(id);
    if (view === void 0) {
      const title = el("h3", {});
      const description = el("p", { class: "description" });
      const progress = el("p", { class: "progress" });
      const list2 = el("ol", { class: "slides" });
      const empty = el("p", { class: "empty" }, "No slides yet.");
      const drafters = el("span", { class: "drafters" });
      const root = el(
        "section",
        { class: "card section", "data-section-id": id },
        el("div", { class: "section-head" }, title, drafters),
        description,
        progress,
        list2,
        empty
      );
      view = { root, title, description, progress, list: list2, empty, drafters };
      this.sections.set(id, view);
    }
    return view;
  }
  renderSlide(slide, cim, change) {
    let view = this.slides.get(slide.id);
    if (view === void 0) {
      const title = el("h4", { class: "slide-title" });
      const status = el("span", { class: "slide-status" });
      const stale = el("span", { class: "stale-reason" });
      const layout = el("span", { class: "layout" });
      const body = el("div", { class: "slide-body" });
      const edit = el("button", { type: "button", class: "edit" }, "Edit");
      const editors = el("span", { class: "editors" });
      const root = el(
        "li",
        { class: "slide", "data-slide-id": slide.id },
        el("div", { class: "slide-head" }, title, editors, status, edit),
        el("p", { class: "slide-meta" }, layout, stale),
        body
      );
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
  openEditor(view, slideId) {
    if (this.past !== null) return;
    if (view.editor) {
      view.editor.querySelector("input")?.focus();
      return;
    }
    const slide = this.sub.document?.slides?.find((s) => s.id === slideId);
    if (!slide) return;
    const title = el("input", { name: "title", "aria-label": "Slide heading", value: slide.title, required: true, maxlength: "1000" });
    const status = el(
      "select",
      { name: "status", "aria-label": "Slide status" },
      ...["draft", "needs_review", "approved"].map((s) => el("option", { value: s, selected: (slide.status ?? "draft") === s }, words(s)))
    );
    const form = el(
      "form",
      { class: "editor" },
      title,
      status,
      el("button", { type: "submit" }, "Save"),
      el("button", { type: "button", class: "cancel" }, "Cancel")
    );
    const close = () => {
      form.remove();
      view.editor = null;
      const at = this.editing.indexOf(slideId);
      if (at >= 0) this.editing.splice(at, 1);
      this.updatePresence();
    };
    form.querySelector(".cancel").addEventListener("click", close);
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") close();
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const edit = { id: slideId, title: title.value, status: status.value };
      close();
      this.client.mutate("updateSlide", { cimId: this.cimId, slide: edit }, { optimistic: true }).catch((error) => this.notify(humanError(error, "save the slide"), "error"));
    });
    view.editor = form;
    this.editing.push(slideId);
    this.updatePresence();
    view.root.append(form);
    title.focus();
    title.select();
  }
  navigate(stage) {
    if (this.past !== null || this.sub.document?.stage === stage) return;
    this.client.mutate("navigateToStage", { cimId: this.cimId, targetStage: stage, reason: "" }, { optimistic: true }).catch((error) => this.notify(humanError(error, `go to ${STAGE_LABELS[stage]}`), "error"));
  }
  logActivity(change) {
    const item = el(
      "li",
      { "data-revision": String(change.revision) },
      el("time", {}, timeOf(change.ts)),
      " ",
      el("strong", {}, describe(change.mutation)),
      ` by ${change.actor ?? "someone"}`
    );
    this.nodes.activity.prepend(item);
    while (this.nodes.activity.children.length > ACTIVITY_LIMIT) this.nodes.activity.lastElementChild.remove();
  }
  showGone(message) {
    this.root.replaceChildren(el("p", {}, el("a", { href: "/" }, "\u2190 All CIMs")), el("p", { class: "notice error", id: "gone" }, message));
  }
};
function list(label, items) {
  return el("div", {}, el("h4", {}, label), items.length ? el("ul", {}, ...items.map((i) => el("li", {}, i))) : el("p", { class: "empty" }, "None."));
}
function component(value) {
  if (typeof value === "string") return el("p", {}, value);
  if (Array.isArray(value)) return el("ul", { class: "bullets" }, ...value.map((item) => el("li", {}, String(item))));
  if (value && typeof value === "object") {
    const c = value;
    const heading = typeof c.heading === "string" ? el("h5", {}, c.heading) : typeof c.title === "string" ? el("h5", {}, c.title) : null;
    const items = Array.isArray(c.bullets) ? c.bullets : Array.isArray(c.items) ? c.items : null;
    const text = typeof c.text === "string" ? c.text : typeof c.content === "string" ? c.content : null;
    if (heading || items || text) {
      return el(
        "div",
        { class: `component ${typeof c.type === "string" ? c.type : ""}` },
        heading,
        text ? el("p", {}, text) : null,
        items ? el("ul", { class: "bullets" }, ...items.map((item) => el("li", {}, String(item)))) : null
      );
    }
  }
  return el("pre", { class: "component raw" }, JSON.stringify(value, null, 1));
}
function showMarkers(node, members, doing) {
  const key = members.map((m) => `${m.id}:${m.actor}`).join(",");
  if (node.dataset.key === key) return;
  node.dataset.key = key;
  setAttr(node, "data-actors", members.length ? members.map((m) => m.actor).join(" ") : null);
  node.replaceChildren(...members.map((m) => avatar(m, false, true)), members.length ? ` ${doing}` : "");
}
function changedSlides(past) {
  const now = past.cim.slides ?? [];
  if (past.before !== null) {
    const before = new Map((past.before.slides ?? []).map((s) => [s.id, JSON.stringify(s)]));
    return now.filter((s) => before.get(s.id) !== JSON.stringify(s)).map((s) => s.id);
  }
  const ids = /* @__PURE__ */ new Set();
  for (const op of past.entry?.ops ?? []) {
    const [top, index] = parsePointer2(op.path);
    const slide = top === "slides" && index !== void 0 ? now[Number(index)] : void 0;
    if (slide) ids.add(slide.id);
  }
  return [...ids];
}

// board/list-page.ts
var ListPage = class {
  // the board moved on while the deals were being looked up
  constructor(client, userId, extraDeals, notify2) {
    this.client = client;
    this.root = el("article", { id: "list" }, el("h1", { id: "title" }, "Your CIMs"), this.empty, this.container);
    document.title = "CIMs \xB7 cimhub";
    this.discover(userId, extraDeals).catch((error) => notify2(humanError(error, "list your CIMs"), "error"));
  }
  client;
  root;
  subs = [];
  deals = /* @__PURE__ */ new Map();
  container = el("div", { id: "deals" });
  empty = el("p", { class: "empty", id: "no-cims" }, "Looking for your CIMs\u2026");
  destroyed = false;
  /** The deals to follow: those in the URL, and those of the user's own CIMs (a summary has no deal: ask each CIM). */
  async discover(userId, extraDeals) {
    const page = await this.client.query("listByUser", { userId, limit: 200 });
    const deals = new Set(extraDeals);
    const answers = await Promise.all(
      page.items.map((item) => this.client.query("get", { cimId: item.id }).catch(() => null))
    );
    for (const answer of answers) if (answer) deals.add(answer.cim.dealId);
    this.follow([...deals]);
  }
  destroy() {
    this.destroyed = true;
    for (const sub of this.subs) sub.unsubscribe();
  }
  follow(dealIds) {
    if (this.destroyed) return;
    if (dealIds.length === 0) setText(this.empty, "No CIMs yet.");
    for (const dealId of dealIds.sort()) {
      const sub = this.client.subscribe(`deal:${dealId}`, (change) => {
        this.renderDeal(dealId, change.document ?? {}, change.snapshot);
        window.cimhubBoard?.rendered(change);
      });
      this.subs.push(sub);
    }
  }
  renderDeal(dealId, cims, snapshot) {
    let deal = this.deals.get(dealId);
    if (deal === void 0) {
      const list2 = el("ul", { class: "cim-list" });
      deal = { root: el("section", { class: "card deal", "data-deal-id": dealId }, el("h2", {}, `Deal ${dealId}`), list2), list: list2, rows: /* @__PURE__ */ new Map() };
      this.deals.set(dealId, deal);
      syncChildren(this.container, [...this.deals.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, d]) => d.root));
    }
    const items = Object.values(cims).sort((a, b) => b.updatedAt - a.updatedAt);
    const rows = items.map((cim) => {
      let row = deal.rows.get(cim.id);
      const fresh = row === void 0;
      if (row === void 0) {
        row = el(
          "li",
          { "data-cim-id": cim.id },
          el("a", { href: `/?cim=${encodeURIComponent(cim.id)}`, class: "cim-title" }),
          el("span", { class: "stage" }),
          el("span", { class: "status" }),
          el("time", {})
        );
        deal.rows.set(cim.id, row);
      }
      const changed = [
        setText(row.querySelector(".cim-title"), cim.title),
        setText(row.querySelector(".stage"), words(cim.stage)),
        setText(row.querySelector(".status"), words(cim.status))
      ].some(Boolean);
      setAttr(row.querySelector(".status"), "data-status", cim.status);
      setText(row.querySelector("time"), `updated ${timeOf(cim.updatedAt)}`);
      if (changed && !fresh && !snapshot) flash(row, null, cim.updatedAt);
      return row;
    });
    for (const id of [...deal.rows.keys()]) if (!(id in cims)) deal.rows.delete(id);
    syncChildren(deal.list, rows);
    const total = [...this.deals.values()].reduce((n, d) => n + d.rows.size, 0);
    this.empty.hidden = total > 0;
    if (total === 0) setText(this.empty, "No CIMs yet.");
  }
};

// board/main.ts
var main = document.getElementById("app");
var banner = document.getElementById("connection");
var toasts = document.getElementById("toasts");
function notify(message, kind = "info") {
  const toast = el(
    "p",
    { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" },
    message,
    el("button", { type: "button", class: "dismiss", "aria-label": "Dismiss" }, "\xD7")
  );
  toast.querySelector("button").addEventListener("click", () => toast.remove());
  toasts.append(toast);
  setTimeout(() => toast.remove(), kind === "error" ? 12e3 : 5e3);
}
var BANNERS = {
  idle: "",
  live: "",
  connecting: "Connecting\u2026",
  reconnecting: "You're offline. Changes you make are kept and sent when the connection returns.",
  stopped: "Disconnected.",
  closed: "Disconnected."
};
function showStatus({ state, error }) {
  setAttr(banner, "data-state", state);
  let text = BANNERS[state] ?? "";
  if (state === "stopped" && error) text = `Disconnected: ${humanError(error)}`;
  setText(banner, text);
  banner.hidden = text === "";
}
function signInForm(config, done) {
  const message = el("p", { class: "empty" });
  if (config.devMode) {
    const user = el("input", { name: "userId", "aria-label": "User id", value: "user-1", required: true });
    const form2 = el(
      "form",
      { class: "card signin", id: "signin" },
      el("h1", {}, "Sign in (development)"),
      el("p", {}, "This hub runs in development mode: pick any user id; the hub mints its tokens."),
      el("label", {}, "User id ", user),
      el("button", { type: "submit" }, "Sign in"),
      message
    );
    form2.addEventListener("submit", (event) => {
      event.preventDefault();
      done(devIdentity(user.value.trim()));
    });
    return form2;
  }
  if (!config.supabaseUrl) {
    return el("p", { class: "notice error" }, "Sign-in is not configured: set CIMHUB_SUPABASE_URL and CIMHUB_SUPABASE_ANON_KEY on the hub.");
  }
  const email = el("input", { type: "email", name: "email", "aria-label": "Email", required: true, autocomplete: "username" });
  const password = el("input", { type: "password", name: "password", "aria-label": "Password", required: true, autocomplete: "current-password" });
  const form = el(
    "form",
    { class: "card signin", id: "signin" },
    el("h1", {}, "Sign in"),
    el("label", {}, "Email ", email),
    el("label", {}, "Password ", password),
    el("button", { type: "submit" }, "Sign in"),
    message
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    supabaseSignIn(config, email.value, password.value).then(done, (error) => setText(message, `Couldn't sign in: ${error.message}`));
  });
  return form;
}
function start(identity) {
  const client = new CimhubClient({ token: identity.token, outbox: webStorageOutbox(localStorage, `cimhub.board.outbox:${identity.userId}`) });
  client.onStatus(showStatus);
  const signOut = el("button", { type: "button", id: "sign-out" }, "Sign out");
  signOut.addEventListener("click", () => {
    identity.signOut();
    client.close();
    location.replace("/");
  });
  setText(document.getElementById("who"), identity.userId);
  document.getElementById("account").append(signOut);
  const renders = [];
  const board = {
    client,
    page: null,
    renders,
    rendered(change) {
      renders.push({ at: Date.now(), revision: change.revision, topic: change.topic, local: change.local, snapshot: change.snapshot });
      if (renders.length > 1e3) renders.shift();
    }
  };
  window.cimhubBoard = board;
  const show = () => {
    board.page?.destroy();
    const params = new URLSearchParams(location.search);
    const cimId = params.get("cim");
    board.page = cimId ? new CimPage(client, cimId, notify, identity.userId) : new ListPage(client, identity.userId, params.getAll("deal"), notify);
    main.replaceChildren(board.page.root);
  };
  main.addEventListener("click", (event) => {
    const link = event.target?.closest?.("a");
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const url = new URL(link.href, location.href);
    if (link.target || url.origin !== location.origin || url.pathname !== "/") return;
    event.preventDefault();
    history.pushState(null, "", `${url.pathname}${url.search}${location.hash}`);
    show();
  });
  window.addEventListener("popstate", show);
  show();
}
async function boot() {
  const fromFragment = fragmentIdentity();
  if (fromFragment) return start(fromFragment);
  let config;
  try {
    config = await loadConfig();
  } catch (error) {
    main.replaceChildren(el("p", { class: "notice error" }, humanError(error, "load the board")));
    return;
  }
  const identity = config.devMode ? devIdentity() : supabaseIdentity(config);
  if (identity) return start(identity);
  main.replaceChildren(signInForm(config, start));
}
boot().catch((error) => {
  main.replaceChildren(el("p", { class: "notice error" }, humanError(error instanceof CimhubError2 ? error : String(error))));
});
