// The live CIM board served at / (clients/js/board/).
// Built from clients/js by `bash scripts/gen-types` (node clients/js/tools/build.mjs): do not edit.

// src/generated.ts
var JSON_SUBPROTOCOL = "cimhub.json.v1";
var STAGES = [
  "welcome",
  "buyer_persona",
  "hero_concept",
  "outline",
  "building_sections"
];
var CloseCode = {
  "NORMAL": 1e3,
  "TOO_BIG": 1009,
  "INTERNAL": 1011,
  "RESTART": 1012,
  "HEARTBEAT_TIMEOUT": 4e3,
  "QUEUE_OVERFLOW": 4008,
  "AUTH_TIMEOUT": 4401,
  "AUTH_FAILED": 4403,
  "FORBIDDEN_ORIGIN": 4406,
  "TOO_MANY_UNAUTHENTICATED": 4429
};
var CLOSE_STOP_RANGE = [4400, 4499];
var RETRYABLE = {
  "bad_frame": false,
  "invalid_args": false,
  "unknown_mutation": false,
  "unknown_query": false,
  "unknown_topic": false,
  "not_found": false,
  "conflict": false,
  "mutation_id_reused": false,
  "invalid_transition": false,
  "payload_too_large": false,
  "too_many_subscriptions": false,
  "rate_limited": true,
  "unauthenticated": false,
  "token_expired": true,
  "access_denied": false,
  "overloaded": true,
  "unavailable": true,
  "internal": true
};

// src/backoff.ts
var WS_PATH = "/v1/ws";
function backoffDelay(attempt, { base = 0.5, cap = 10, random = Math.random } = {}) {
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 32));
  return ceiling / 2 + random() * (ceiling / 2);
}
function newMutationId() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = bytes[6] & 15 | 64;
  bytes[8] = bytes[8] & 63 | 128;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
function hubUrl(url) {
  if (url === void 0) {
    if (typeof location === "undefined") throw new TypeError("pass the hub URL: there is no page location to derive it from");
    url = location.origin;
  }
  const parsed = new URL(url);
  if (parsed.protocol === "http:") parsed.protocol = "ws:";
  else if (parsed.protocol === "https:") parsed.protocol = "wss:";
  else if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") throw new TypeError(`expected an http(s) or ws(s) URL, got ${url}`);
  if (parsed.pathname === "/" || parsed.pathname === "") parsed.pathname = WS_PATH;
  return parsed.toString();
}

// src/codec.ts
var jsonCodec = {
  subprotocol: JSON_SUBPROTOCOL,
  encode: (frame) => JSON.stringify(frame),
  decode: (data) => JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data))
};

// src/errors.ts
var CimhubError = class _CimhubError extends Error {
  code;
  retryable;
  path;
  constructor(code, message, options = {}) {
    super(message);
    this.name = "CimhubError";
    this.code = code;
    this.retryable = options.retryable ?? (code === "closed" ? false : RETRYABLE[code] ?? false);
    this.path = options.path ?? null;
  }
  /** From the `error` member of an `error` or `unsubscribed` frame, or an HTTP error body. */
  static fromWire(wire) {
    return new _CimhubError(wire?.code ?? "internal", wire?.message ?? "", {
      retryable: Boolean(wire?.retryable),
      path: wire?.path ?? null
    });
  }
};
var PatchError = class extends Error {
  constructor(message) {
    super(message);
    this.name = "PatchError";
  }
};
var ReplicaGap = class extends Error {
  constructor(message) {
    super(message);
    this.name = "ReplicaGap";
  }
};

// src/connection.ts
var OPEN = 1;
var WATCHDOG_HEARTBEATS = 2.5;
var MAX_TIMER_MS = 2 ** 31 - 1;
var Connection = class {
  constructor(options, hooks) {
    this.hooks = hooks;
    this.url = hubUrl(options.url);
    this.tokenSource = options.token;
    this.token = typeof options.token === "function" ? null : options.token;
    this.refreshTokenFn = options.refreshToken ?? (typeof options.token === "function" ? options.token : null);
    this.refreshAheadS = options.refreshAheadS ?? 60;
    this.SocketClass = options.WebSocket ?? globalThis.WebSocket;
    this.backoff = options.backoff ?? {};
    this.codec = options.codec ?? jsonCodec;
    this.now = options.now ?? Date.now;
  }
  hooks;
  url;
  /** Seconds between the hub's pings, from `ready`. */
  heartbeat = 15;
  /** When the current token expires (epoch seconds), from `ready`. */
  expiresAt = null;
  /** Tokens refreshed ahead of expiry so far. */
  refreshes = 0;
  statusValue = { state: "idle", error: null };
  tokenSource;
  token;
  refreshTokenFn;
  refreshAheadS;
  SocketClass;
  backoff;
  codec;
  now;
  attempts = 0;
  ws = null;
  ready = false;
  // the current socket's first `ready` arrived
  ids = 0;
  timers = /* @__PURE__ */ new Set();
  watchdog;
  refreshTimer;
  refreshing = null;
  statusListeners = /* @__PURE__ */ new Set();
  get status() {
    return this.statusValue;
  }
  get state() {
    return this.statusValue.state;
  }
  get error() {
    return this.statusValue.error;
  }
  onStatus(listener) {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }
  /** Open the socket unless it is open (or opening) already, or the client stopped. */
  connect() {
    if (this.state === "idle") void this.open();
  }
  stopped() {
    return this.state === "stopped" || this.state === "closed";
  }
  /** The socket is open and the hub accepted our token on it: frames sent now are answered. */
  live() {
    return this.ready && this.ws !== null && this.ws.readyState === OPEN;
  }
  /** Send on the current socket; dropped when there is none (the next `ready` resends what must arrive). */
  send(frame) {
    if (this.ws !== null && this.ws.readyState === OPEN) this.ws.send(this.codec.encode(frame));
  }
  /** A frame id unique within this client, across sockets. */
  nextId(prefix) {
    this.ids += 1;
    return `${prefix}${this.ids}`;
  }
  /** Run `fn` after the backoff delay for the `failures`-th retry; cancelled if the client stops. */
  retryLater(failures, fn) {
    this.later(backoffDelay(failures, this.backoff), fn);
  }
  stop(state, error) {
    if (this.stopped()) return;
    this.statusValue = { state, error };
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    clearTimeout(this.watchdog);
    clearTimeout(this.refreshTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= OPEN) ws.close(CloseCode.NORMAL, "client closed");
    this.hooks.onStop(state, error);
    this.notify();
  }
  async open() {
    this.setState(this.attempts === 0 ? "connecting" : "reconnecting");
    let token;
    try {
      token = typeof this.tokenSource === "function" ? await this.tokenSource() : this.token;
      this.token = token;
    } catch {
      this.scheduleReconnect();
      return;
    }
    if (this.stopped()) return;
    if (typeof this.SocketClass !== "function") {
      this.stop("stopped", new TypeError("no WebSocket class: pass options.WebSocket"));
      return;
    }
    const ws = new this.SocketClass(this.url, [this.codec.subprotocol]);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.ready = false;
    ws.onopen = () => {
      if (ws === this.ws) this.send({ type: "auth", token });
      this.kickWatchdog();
    };
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      this.kickWatchdog();
      let frame;
      try {
        frame = this.codec.decode(event.data);
      } catch {
        return;
      }
      this.onFrame(frame);
    };
    ws.onclose = (event) => {
      if (ws === this.ws) this.onClose(event.code, event.reason);
    };
    ws.onerror = () => {
    };
  }
  onClose(code, reason) {
    this.ws = null;
    this.ready = false;
    this.hooks.onSocketClosed();
    clearTimeout(this.watchdog);
    clearTimeout(this.refreshTimer);
    if (this.stopped()) return;
    const hubError = this.error;
    if (code === CloseCode.AUTH_FAILED && hubError?.code === "token_expired" && this.refreshTokenFn) {
      this.refresh().then(() => this.scheduleReconnect(), (error) => this.stop("stopped", error));
      return;
    }
    if (code >= CLOSE_STOP_RANGE[0] && code <= CLOSE_STOP_RANGE[1]) {
      this.stop("stopped", hubError ?? new CimhubError("unauthenticated", `the hub closed the connection: ${code} ${reason}`));
      return;
    }
    this.scheduleReconnect();
  }
  scheduleReconnect() {
    if (this.stopped()) return;
    const delay = backoffDelay(this.attempts++, this.backoff);
    this.setState("reconnecting");
    this.later(delay, () => void this.open());
  }
  kickWatchdog() {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      const ws = this.ws;
      if (ws) {
        this.onClose(CloseCode.HEARTBEAT_TIMEOUT, "no frames from the hub");
        ws.close(CloseCode.HEARTBEAT_TIMEOUT, "no frames from the hub");
      }
    }, this.heartbeat * WATCHDOG_HEARTBEATS * 1e3);
  }
  setState(state, error = this.error) {
    if (this.state !== state || this.error !== error) {
      this.statusValue = { state, error };
      this.notify();
    }
  }
  notify() {
    for (const listener of this.statusListeners) listener(this.statusValue);
  }
  later(seconds, fn) {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, seconds * 1e3);
    this.timers.add(timer);
  }
  refresh() {
    if (this.refreshing === null) {
      this.refreshing = (async () => {
        if (!this.refreshTokenFn) {
          throw new CimhubError("token_expired", "the token expired and no refreshToken callback was given");
        }
        const token = await this.refreshTokenFn();
        if (typeof token !== "string" || token === "") throw new CimhubError("token_expired", "refreshToken gave no token");
        this.token = token;
        return token;
      })().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }
  /** Ask for a fresh token `refreshAheadS` before `expiresAt` (at most half the remaining life) and send it in-band. */
  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    if (this.expiresAt === null || this.refreshTokenFn === null) return;
    const remaining = this.expiresAt * 1e3 - this.now();
    const ahead = Math.min(this.refreshAheadS * 1e3, remaining / 2);
    const wait = remaining - ahead;
    if (wait > MAX_TIMER_MS) {
      this.refreshTimer = setTimeout(() => this.scheduleRefresh(), MAX_TIMER_MS);
      return;
    }
    const ws = this.ws;
    this.refreshTimer = setTimeout(() => {
      this.refresh().then(
        (token) => {
          if (ws !== this.ws || !this.live()) return;
          this.refreshes += 1;
          this.send({ type: "auth", token });
        },
        () => {
        }
        // keep the current token; `token_expired` from the hub retries, then stops
      );
    }, Math.max(0, wait));
  }
  // -- frames about the connection itself ----------------------------------------------------
  onFrame(frame) {
    switch (frame.type) {
      case "ready":
        return this.onReady(frame);
      case "ping":
        return this.send({ type: "pong", ts: frame.ts ?? null });
      case "pong":
        return void 0;
      case "error":
        if (frame.id === void 0 || frame.id === null) return this.onConnectionError(CimhubError.fromWire(frame.error));
        return this.hooks.onFrame(frame);
      default:
        return this.hooks.onFrame(frame);
    }
  }
  onReady(frame) {
    this.heartbeat = frame.heartbeat ?? this.heartbeat;
    this.expiresAt = frame.expiresAt ?? null;
    this.kickWatchdog();
    const first = !this.ready;
    this.ready = true;
    this.attempts = 0;
    this.setState("live", null);
    this.scheduleRefresh();
    this.hooks.onReady(first);
  }
  onConnectionError(error) {
    this.setState(this.state, error);
    if (error.code === "token_expired") this.onTokenExpired();
  }
  onTokenExpired() {
    if (!this.ready) return;
    const ws = this.ws;
    this.refresh().then(
      (token) => {
        if (ws === this.ws) this.send({ type: "auth", token });
      },
      (error) => this.stop("stopped", error)
    );
  }
};

// src/presence.ts
function presenceTopic(cimId) {
  return `presence:${cimId}`;
}
function presenceKind(member) {
  return member.actor.startsWith("service:") ? "agent" : "person";
}
function presenceList(members) {
  return Object.values(members ?? {}).sort((a, b) => a.since - b.since || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
function presenceName(member) {
  if (member.state.name) return member.state.name;
  return presenceKind(member) === "agent" ? "Agent" : member.userId ?? member.actor;
}
function initials(name) {
  const words2 = name.split(/[\s._@-]+/u).filter((word) => word !== "");
  const letters = words2.length > 1 ? [words2[0], words2.at(-1)] : words2.length === 1 ? [words2[0]] : [];
  const picked = letters.length === 1 ? [...letters[0]].slice(0, 2) : letters.map((word) => [...word][0]);
  return picked.join("").toUpperCase() || "?";
}
function presenceActivity(state) {
  const activity = state.activity ?? "viewing";
  if (activity === "editing" && state.slideId) return `editing slide ${state.slideId}`;
  if (activity === "drafting" && state.sectionId) return `drafting section ${state.sectionId}`;
  return activity;
}
function editorsBySlide(members) {
  return groupBy(members, (state) => state.activity === "editing" ? state.slideId : null);
}
function draftersBySection(members) {
  return groupBy(members, (state) => state.activity === "drafting" ? state.sectionId : null);
}
function groupBy(members, target) {
  const groups = /* @__PURE__ */ new Map();
  for (const member of members) {
    const id = target(member.state);
    if (!id) continue;
    groups.set(id, [...groups.get(id) ?? [], member]);
  }
  return groups;
}

// src/own-presence.ts
var OwnPresence = class {
  // cim id -> what to show there, kept across reconnects
  constructor(requests, topics, nextId) {
    this.requests = requests;
    this.topics = topics;
    this.nextId = nextId;
  }
  requests;
  topics;
  nextId;
  entries = /* @__PURE__ */ new Map();
  /** Show `state` on CIM `cimId` (null leaves); resolves the presence id (null after leaving). */
  set(cimId, state) {
    if (state === null) this.entries.delete(cimId);
    else this.entries.set(cimId, { state, id: this.entries.get(cimId)?.id ?? null });
    return this.send(cimId, state);
  }
  id(cimId) {
    return this.entries.get(cimId)?.id ?? null;
  }
  /** The socket closed: every presence ended with it. */
  socketClosed() {
    for (const entry of this.entries.values()) entry.id = null;
  }
  clear() {
    this.entries.clear();
  }
  /** A new socket: the hub forgot this connection's presence. Set each again, unless a frame for it is on its way. */
  restore() {
    const waiting = this.requests.presenceWaiting();
    for (const [cimId, entry] of this.entries) {
      if (!waiting.has(cimId)) this.send(cimId, entry.state).catch(() => {
      });
    }
  }
  send(cimId, state) {
    const frame = { type: "presence", id: this.nextId("p"), cimId, state };
    return this.requests.send(frame, void 0, cimId).then(
      (answer) => {
        const given = answer.result?.presenceId;
        const id = typeof given === "string" ? given : null;
        const entry = this.entries.get(cimId);
        if (entry !== void 0 && entry.state === state) entry.id = id;
        this.topics.get(presenceTopic(cimId))?.publishLocal();
        return state === null ? null : id;
      },
      (error) => {
        const entry = this.entries.get(cimId);
        if (entry !== void 0 && entry.state === state && !(error instanceof CimhubError && error.retryable)) {
          this.entries.delete(cimId);
        }
        throw error;
      }
    );
  }
};

// src/optimistic.ts
function applyPending(confirmed, pending) {
  if (confirmed === null) return null;
  let view = confirmed;
  for (const entry of pending) {
    try {
      view = entry.update(view, entry.args);
    } catch {
    }
  }
  return view;
}
var STAGE_ORDER = [
  "welcome",
  "buyer_persona",
  "hero_concept",
  "outline",
  "building_sections"
];
function definedOnly(value) {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== void 0 && v !== null));
}
var cimUpdates = {
  updateSlide(cim, { slide: edit }) {
    const slides = cim.slides ?? [];
    const at = slides.findIndex((s) => s.id === edit.id);
    const fields = definedOnly({
      sectionId: edit.sectionId,
      title: edit.title,
      layoutType: edit.layoutType,
      components: edit.components
    });
    if (at < 0) {
      if (!edit.sectionId || !edit.title) throw new Error("a new slide needs sectionId and title");
      const created = { id: edit.id, sectionId: edit.sectionId, title: edit.title, components: [], status: edit.status ?? "draft" };
      return { ...cim, slides: [...slides, { ...created, ...fields }] };
    }
    const old = slides[at];
    const next = { ...old, ...fields };
    const contentEdited = ["title", "layoutType", "components"].some(
      (key) => key in fields && JSON.stringify(fields[key]) !== JSON.stringify(old[key])
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
  navigateToStage(cim, { targetStage }) {
    return { ...cim, stage: targetStage };
  },
  navigateToSlide(cim, { sectionId, slideId }) {
    const slide = slideId ? (cim.slides ?? []).find((s) => s.id === slideId) : void 0;
    return {
      ...cim,
      stage: "building_sections",
      currentSectionId: slide?.sectionId ?? sectionId ?? cim.currentSectionId ?? null,
      currentSlideId: slideId ?? null
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
    if (gatheredContext) next.gatheredContext = { ...cim.gatheredContext ?? {}, ...gatheredContext };
    return next;
  }
};
function advance(cim, done) {
  const completed = /* @__PURE__ */ new Set([...cim.completedStages ?? [], done]);
  const doneAt = STAGE_ORDER.indexOf(done);
  const stage = STAGE_ORDER.indexOf(cim.stage ?? "welcome") <= doneAt ? STAGE_ORDER[doneAt + 1] ?? done : cim.stage;
  return { ...cim, stage, completedStages: STAGE_ORDER.filter((s) => completed.has(s)) };
}

// src/pending.ts
var PendingUpdates = class {
  // optimistic updates of restored mutations, until their topic is subscribed
  /** `topicOf(topic)`: the subscribed topic's state, if any. */
  constructor(topicOf) {
    this.topicOf = topicOf;
  }
  topicOf;
  byMutation = /* @__PURE__ */ new Map();
  restored = [];
  /** Show a mutation's change at once on its topic (when subscribed); throws TypeError when there is no update to use. */
  add(name, args, mutationId, chosen, topic) {
    if (!chosen) return;
    const update = typeof chosen === "function" ? chosen : cimUpdates[name];
    if (update === void 0) throw new TypeError(`no built-in optimistic update for ${name}: pass a function`);
    const cimId = args?.cimId;
    const target = topic ?? (cimId ? `cim:${cimId}` : null);
    if (target === null) throw new TypeError("pass options.topic: the arguments name no cimId");
    const state = this.topicOf(target);
    if (state === void 0) return;
    const entry = { mutationId, topic: target, args, update, answeredRevision: null };
    this.byMutation.set(mutationId, entry);
    state.pending.push(entry);
    state.publishLocal();
  }
  /** The hub answered at `revision`: the update goes once the replica reaches it. */
  answer(mutationId, revision) {
    const entry = this.byMutation.get(mutationId);
    if (entry === void 0) return;
    entry.answeredRevision = revision;
    const state = this.topicOf(entry.topic);
    if (state !== void 0 && state.replica.revision >= revision) this.drop(mutationId);
  }
  /** Roll the update back (or drop it once confirmed). */
  drop(mutationId) {
    const entry = this.byMutation.get(mutationId);
    if (entry === void 0) return;
    this.byMutation.delete(mutationId);
    const state = this.topicOf(entry.topic);
    if (state === void 0) return;
    state.pending = state.pending.filter((e) => e !== entry);
    state.publishLocal();
  }
  /** Drop the updates a confirmed change now includes; true if any went. */
  settle(state, mutationId) {
    const before = state.pending.length;
    state.pending = state.pending.filter((entry) => {
      const done = entry.mutationId === mutationId || entry.answeredRevision !== null && state.replica.revision >= entry.answeredRevision;
      if (done) this.byMutation.delete(entry.mutationId);
      return !done;
    });
    return state.pending.length !== before;
  }
  /** The topic went: forget its updates. */
  forget(state) {
    for (const entry of state.pending) this.byMutation.delete(entry.mutationId);
  }
  clear() {
    this.byMutation.clear();
  }
  /** Keep a restored mutation's built-in update, to show once its topic is subscribed. */
  restore(mutation) {
    const update = cimUpdates[mutation.name];
    const cimId = mutation.args?.cimId;
    if (mutation.optimistic && update && cimId) {
      this.restored.push({ mutationId: mutation.mutationId, topic: `cim:${cimId}`, args: mutation.args, update, answeredRevision: null });
    }
  }
  /** A restored mutation was answered at `revision`, or refused (null). */
  settleRestored(mutationId, revision) {
    this.restored = this.restored.filter((e) => e.mutationId !== mutationId);
    if (revision === null) this.drop(mutationId);
    else this.answer(mutationId, revision);
  }
  /** A topic is subscribed: put the restored updates waiting for it on it. */
  attachRestored(state) {
    for (const entry of this.restored.filter((e) => e.topic === state.topic)) {
      state.pending.push(entry);
      this.byMutation.set(entry.mutationId, entry);
    }
    this.restored = this.restored.filter((e) => e.topic !== state.topic);
  }
};

// src/requests.ts
var RETRY_LIMIT = 5;
var Requests = class {
  constructor(connection, outbox) {
    this.connection = connection;
    this.outbox = outbox;
  }
  connection;
  outbox;
  waiting = /* @__PURE__ */ new Map();
  /** Send `frame` (now if live, else on the next `ready`); resolves the hub's answer (the result frame without type and id). */
  send(frame, stored, presenceOf) {
    const connection = this.connection;
    if (connection.stopped()) return Promise.reject(connection.error ?? new CimhubError("closed", "the client is closed"));
    return new Promise((resolve, reject) => {
      const request = {
        frame,
        resolve,
        reject,
        failures: 0,
        held: false,
        ...stored ? { stored } : {},
        ...presenceOf ? { presenceOf } : {}
      };
      this.waiting.set(frame.id, request);
      if (stored) this.persist();
      if (connection.live()) this.sendRequest(request);
      connection.connect();
    });
  }
  /** Queue a mutation an earlier run left unanswered, with its id; `settle` hears its revision, or null if refused. */
  adopt(mutation, settle) {
    const frame = {
      type: "mutate",
      id: this.connection.nextId("m"),
      name: mutation.name,
      args: mutation.args,
      mutationId: mutation.mutationId
    };
    if (mutation.expectedRevision !== void 0) frame.expectedRevision = mutation.expectedRevision;
    this.waiting.set(frame.id, {
      frame,
      stored: mutation,
      failures: 0,
      held: false,
      resolve: (answer) => settle(answer.revision ?? 0),
      reject: () => settle(null)
    });
  }
  /** A new socket (`all`), or a refreshed token: send every request again, or only those held for the token. */
  resend(all) {
    for (const request of this.waiting.values()) if (all || request.held) this.sendRequest(request);
  }
  /** The CIMs a presence frame is on its way for. */
  presenceWaiting() {
    const cims = /* @__PURE__ */ new Set();
    for (const request of this.waiting.values()) if (request.presenceOf !== void 0) cims.add(request.presenceOf);
    return cims;
  }
  onResult(frame) {
    const request = this.waiting.get(frame.id);
    if (request === void 0) return;
    this.waiting.delete(frame.id);
    if (request.stored) this.persist();
    const { type: _type, id: _id, ...answer } = frame;
    request.resolve({ cimId: null, revision: null, duplicate: false, ...answer, result: answer.result ?? null });
  }
  /** The hub refused frame `id`: retry or reject the request. False when no request has that id. */
  onError(id, error) {
    const request = this.waiting.get(id);
    if (request === void 0) return false;
    this.retry(request, error);
    return true;
  }
  /**
   * The client stopped: reject every request. `close()` gives up what waits, so the outbox
   * forgets it too; a stop (the hub refused the credentials) keeps it for the next client.
   */
  rejectAll(reason, forget) {
    for (const request of this.waiting.values()) request.reject(reason);
    this.waiting.clear();
    if (forget) this.persist();
  }
  sendRequest(request) {
    request.held = false;
    this.connection.send(request.frame);
  }
  retry(request, error) {
    if (!error.retryable || request.failures >= RETRY_LIMIT) {
      this.waiting.delete(request.frame.id);
      if (request.stored) this.persist();
      request.reject(error);
      return;
    }
    if (error.code === "token_expired") {
      request.held = true;
      return;
    }
    request.failures += 1;
    this.connection.retryLater(request.failures, () => {
      if (this.waiting.get(request.frame.id) === request && this.connection.live()) this.sendRequest(request);
    });
  }
  persist() {
    if (this.outbox === null) return;
    const stored = [];
    for (const request of this.waiting.values()) if (request.stored) stored.push(request.stored);
    try {
      this.outbox.save(stored);
    } catch {
    }
  }
};

// src/patch.ts
function parsePointer(path) {
  if (path === "") return [];
  if (typeof path !== "string" || path[0] !== "/") {
    throw new PatchError(`path ${JSON.stringify(path)} must be "" or start with "/"`);
  }
  return path.slice(1).split("/").map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}
function applyPatch(document2, ops) {
  const fresh = /* @__PURE__ */ new WeakSet();
  let root = document2;
  for (const op of ops) root = applyOp(root, op, fresh);
  return root;
}
function applyOp(root, op, fresh) {
  const tokens = parsePointer(op.path);
  if (!["add", "remove", "replace"].includes(op.op)) {
    throw new PatchError(`op ${JSON.stringify(op.op)} is not supported: the hub sends only add, remove and replace`);
  }
  if (op.op !== "remove" && !("value" in op)) throw new PatchError(`${op.op} at ${op.path} has no value`);
  if (tokens.length === 0) {
    if (op.op === "remove") throw new PatchError("cannot remove the whole document");
    return op.value;
  }
  const top = own(root, fresh, op.path);
  let parent = top;
  for (const token of tokens.slice(0, -1)) {
    const key = Array.isArray(parent) ? index(parent, token, parent.length - 1, op.path) : token;
    if (!Array.isArray(parent) && !Object.hasOwn(parent, key)) throw new PatchError(`${op.path}: no ${key}`);
    const child = own(parent[key], fresh, op.path);
    put(parent, key, child);
    parent = child;
  }
  const last = tokens[tokens.length - 1];
  if (Array.isArray(parent)) {
    if (op.op === "add") {
      const at = last === "-" ? parent.length : index(parent, last, parent.length, op.path);
      parent.splice(at, 0, op.value);
    } else {
      const at = index(parent, last, parent.length - 1, op.path);
      if (op.op === "remove") parent.splice(at, 1);
      else parent[at] = op.value;
    }
  } else if (op.op === "add") {
    put(parent, last, op.value);
  } else {
    if (!Object.hasOwn(parent, last)) throw new PatchError(`${op.op} ${op.path}: no such member`);
    if (op.op === "remove") delete parent[last];
    else put(parent, last, op.value);
  }
  return top;
}
function own(value, fresh, path) {
  if (value === null || typeof value !== "object") throw new PatchError(`${path}: a parent is not an object or array`);
  if (fresh.has(value)) return value;
  const copy = Array.isArray(value) ? value.slice() : { ...value };
  fresh.add(copy);
  return copy;
}
function put(target, key, value) {
  if (Array.isArray(target)) target[key] = value;
  else Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}
function index(array, token, max, path) {
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new PatchError(`${path}: ${JSON.stringify(token)} is not an array index`);
  const at = Number(token);
  if (at > max) throw new PatchError(`${path}: index ${at} is out of range (length ${array.length})`);
  return at;
}

// src/replica.ts
var SEQUENCED_KINDS = /* @__PURE__ */ new Set(["cim", "messages"]);
var Replica = class {
  topic;
  sequenced;
  document = null;
  revision = 0;
  epoch = "";
  /** The commit id of `revision`, for topics that have them (protocol 2). */
  commit = null;
  loaded = false;
  constructor(topic) {
    this.topic = topic;
    this.sequenced = SEQUENCED_KINDS.has(topic.split(":", 1)[0]);
  }
  /** What to put in a subscribe frame's `resume`: null means "send me a snapshot". */
  resumePoint() {
    if (!(this.loaded && this.sequenced)) return null;
    const point = { revision: this.revision, epoch: this.epoch };
    if (this.commit) point.commit = this.commit;
    return point;
  }
  /** Whether the replica holds exactly this change (a `subscribed` frame's end point). */
  isAt(revision, epoch, commit) {
    if (!this.loaded || this.revision !== revision || this.epoch !== epoch) return false;
    return !commit || !this.commit || commit === this.commit;
  }
  /** Drop the state, so the next subscribe asks for a fresh snapshot. */
  forget() {
    this.loaded = false;
  }
  /** Replace the state with a snapshot frame. */
  load(frame) {
    this.document = frame.data;
    this.revision = frame.revision;
    this.epoch = frame.epoch;
    this.commit = frame.commit ?? null;
    this.loaded = true;
  }
  /** Apply a patch frame; false for a repeat (or before any snapshot). Throws ReplicaGap. */
  apply(frame) {
    if (!this.loaded) return false;
    if (this.sequenced) {
      if (frame.epoch !== this.epoch) throw new ReplicaGap(`${this.topic}: epoch changed from ${this.epoch} to ${frame.epoch}`);
      if (frame.revision < this.revision) return false;
      if (frame.revision === this.revision) {
        if (frame.commit && this.commit && frame.commit !== this.commit) {
          throw new ReplicaGap(`${this.topic}: revision ${frame.revision} is another commit than the one held`);
        }
        return false;
      }
      if (frame.revision !== this.revision + 1) {
        throw new ReplicaGap(`${this.topic}: expected revision ${this.revision + 1}, got ${frame.revision}`);
      }
    }
    let document2 = null;
    if (!frame.deleted) {
      try {
        document2 = applyPatch(this.document, frame.ops);
      } catch (error) {
        this.forget();
        throw new ReplicaGap(`${this.topic}: revision ${frame.revision} does not apply: ${error.message}`);
      }
    }
    this.document = document2;
    this.revision = frame.revision;
    this.commit = frame.commit ?? null;
    return true;
  }
};

// src/subscription.ts
var Subscription = class {
  /** @internal */
  constructor(state, release) {
    this.state = state;
    this.release = release;
    this.topic = state.topic;
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => {
    });
    if (state.replica.loaded) this.resolveReady(this);
  }
  state;
  release;
  topic;
  /** Resolves once the topic's document is here (at once if another handle already loaded it). */
  ready;
  ended = false;
  error = null;
  listeners = /* @__PURE__ */ new Set();
  endListeners = /* @__PURE__ */ new Set();
  resolveReady;
  rejectReady;
  /** The document to show: the hub's, with pending optimistic updates on top (null until loaded, or deleted). */
  get document() {
    return this.state.view;
  }
  /** The hub's document, without optimistic updates. */
  get confirmed() {
    return this.state.replica.document;
  }
  get revision() {
    return this.state.replica.revision;
  }
  /** Call `listener(change)` on every snapshot, patch and optimistic change; returns a function that stops it. */
  onChange(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  /** Call `listener(error)` when the subscription ends (error null: the CIM was deleted or you unsubscribed). */
  onEnd(listener) {
    this.endListeners.add(listener);
    return () => this.endListeners.delete(listener);
  }
  /** Drop this handle; the hub is told once the topic's last handle is gone. */
  unsubscribe() {
    if (this.ended) return;
    this.release(this);
    this.end(null);
  }
  /** @internal */
  emit(change) {
    this.resolveReady(this);
    for (const listener of this.listeners) listener(change);
  }
  /** @internal */
  end(error) {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    if (error) this.rejectReady(error);
    else this.resolveReady(this);
    for (const listener of this.endListeners) listener(error);
  }
};
var TopicState = class {
  constructor(topic) {
    this.topic = topic;
    this.replica = new Replica(topic);
    this.snapshot = { document: null, revision: 0, isLoading: true, error: null, pending: [], lastChange: null };
  }
  topic;
  replica;
  handles = /* @__PURE__ */ new Set();
  requestId = null;
  // the subscribe frame waiting for its snapshot/subscribed
  draining = null;
  // an unsubscribe sent before resubscribing: frames until its answer are stale
  held = false;
  // refused while the token was expired: subscribe again after the next `ready`
  failures = 0;
  error = null;
  pending = [];
  view = null;
  snapshot;
  releasing = false;
  /** Recompute the shown document from the confirmed one and the pending updates. */
  refresh() {
    this.view = applyPending(this.replica.document, this.pending);
  }
  /** The pending updates changed (not the hub's document): tell the handles, once the document is loaded. */
  publishLocal() {
    if (!this.replica.loaded) return;
    this.refresh();
    this.publish({
      topic: this.topic,
      revision: this.replica.revision,
      epoch: this.replica.epoch,
      ops: [],
      mutation: null,
      mutationId: null,
      actor: null,
      ts: null,
      deleted: false,
      snapshot: false,
      reset: false,
      local: true
    });
  }
  /** Tell every handle of a change, and keep it as the topic's snapshot. */
  publish(base) {
    const change = {
      ...base,
      document: this.view,
      confirmed: this.replica.document,
      pending: this.pending.map((e) => e.mutationId)
    };
    this.snapshot = {
      document: this.view,
      revision: this.replica.revision,
      isLoading: false,
      error: null,
      pending: change.pending,
      lastChange: change
    };
    for (const handle of [...this.handles]) handle.emit(change);
  }
  /** The topic ended (the caller has already forgotten its pending updates): end every handle. */
  end(error) {
    this.pending = [];
    this.error = error;
    this.snapshot = { ...this.snapshot, isLoading: false, error, pending: [] };
    for (const handle of [...this.handles]) handle.end(error);
    this.handles.clear();
  }
};

// src/topics.ts
var RETRY_LIMIT2 = 5;
var Topics = class {
  constructor(connection, pending) {
    this.connection = connection;
    this.pending = pending;
  }
  connection;
  pending;
  states = /* @__PURE__ */ new Map();
  get(topic) {
    return this.states.get(topic);
  }
  /** A new handle on `topic`; the first one subscribes (now if live, else on the next `ready`). */
  subscribe(topic) {
    let state = this.states.get(topic);
    if (state === void 0) {
      state = new TopicState(topic);
      this.states.set(topic, state);
      this.pending.attachRestored(state);
      if (this.connection.live()) this.sendSubscribe(state);
    }
    state.releasing = false;
    const handle = new Subscription(state, (h) => this.release(state, h));
    state.handles.add(handle);
    return handle;
  }
  /** A new socket (`all`: the hub knows nothing of us, resume every topic), or a refreshed token (only those held). */
  resume(all) {
    for (const state of this.states.values()) {
      if (all) {
        state.draining = null;
        this.sendSubscribe(state);
      } else if (state.held) {
        this.sendSubscribe(state);
      }
    }
  }
  /** The client stopped: end every topic with `error`. */
  endAll(error) {
    for (const state of this.states.values()) this.end(state, error);
    this.states.clear();
  }
  onSnapshot(frame) {
    const state = this.states.get(frame.topic);
    if (state === void 0 || state.draining !== null) return;
    if (frame.id !== void 0 && frame.id !== null && frame.id !== state.requestId) return;
    state.replica.load(frame);
    if (frame.id === state.requestId) state.requestId = null;
    state.failures = 0;
    this.pending.settle(state, null);
    state.refresh();
    state.publish({
      topic: frame.topic,
      revision: frame.revision,
      epoch: frame.epoch,
      ops: [],
      mutation: null,
      mutationId: null,
      actor: null,
      ts: null,
      deleted: false,
      snapshot: true,
      reset: Boolean(frame.reset),
      local: false
    });
  }
  onPatch(frame) {
    const state = this.states.get(frame.topic);
    if (state === void 0 || state.draining !== null) return;
    let applied;
    try {
      applied = state.replica.apply(frame);
    } catch (error) {
      if (!(error instanceof ReplicaGap)) throw error;
      this.resync(state);
      return;
    }
    if (!applied) return;
    this.pending.settle(state, frame.mutationId ?? null);
    if (frame.deleted) state.pending = [];
    state.refresh();
    state.publish({
      topic: frame.topic,
      revision: frame.revision,
      epoch: frame.epoch,
      ops: frame.ops,
      mutation: frame.mutation ?? null,
      mutationId: frame.mutationId ?? null,
      actor: frame.actor ?? null,
      ts: frame.ts ?? null,
      deleted: Boolean(frame.deleted),
      snapshot: false,
      reset: false,
      local: false
    });
    if (frame.deleted) {
      this.states.delete(state.topic);
      this.end(state, null);
    }
  }
  onSubscribed(frame) {
    const state = this.states.get(frame.topic);
    if (state === void 0 || frame.id !== state.requestId) return;
    state.requestId = null;
    const replica = state.replica;
    if (!replica.isAt(frame.revision, frame.epoch, frame.commit)) {
      replica.forget();
      this.resync(state);
      return;
    }
    state.failures = 0;
    if (this.pending.settle(state, null)) state.publishLocal();
  }
  onUnsubscribed(frame) {
    const state = this.states.get(frame.topic);
    if (state === void 0) return;
    if (frame.id !== void 0 && frame.id !== null) {
      if (frame.id === state.draining) state.draining = null;
      return;
    }
    this.retry(state, frame.error ? CimhubError.fromWire(frame.error) : null);
  }
  /** The hub refused frame `id`: retry or end the topic it subscribed. False when no subscribe has that id. */
  onError(id, error) {
    for (const state of this.states.values()) {
      if (state.requestId === id) {
        state.requestId = null;
        this.retry(state, error);
        return true;
      }
    }
    return false;
  }
  sendSubscribe(state) {
    state.held = false;
    state.requestId = this.connection.nextId("s");
    const frame = { type: "subscribe", id: state.requestId, topic: state.topic };
    const resume = state.replica.resumePoint();
    if (resume !== null) frame.resume = resume;
    this.connection.send(frame);
  }
  /** Subscribe again on this socket; the unsubscribe first makes the hub drop whatever it still holds. */
  resync(state) {
    if (!this.connection.live()) return;
    state.draining = this.connection.nextId("u");
    this.connection.send({ type: "unsubscribe", id: state.draining, topic: state.topic });
    this.sendSubscribe(state);
  }
  retry(state, error) {
    if (error === null || !error.retryable || state.failures >= RETRY_LIMIT2) {
      this.states.delete(state.topic);
      this.end(state, error);
      return;
    }
    if (error.code === "token_expired") {
      state.held = true;
      return;
    }
    state.failures += 1;
    this.connection.retryLater(state.failures, () => {
      if (this.states.get(state.topic) === state) this.resync(state);
    });
  }
  end(state, error) {
    this.pending.forget(state);
    state.end(error);
  }
  /**
   * A handle left. When it was the topic's last, tell the hub, after the current
   * task: a React StrictMode remount (unsubscribe, then subscribe again at once)
   * keeps the topic instead of dropping and reloading it.
   */
  release(state, handle) {
    state.handles.delete(handle);
    if (state.handles.size > 0 || state.releasing) return;
    state.releasing = true;
    queueMicrotask(() => {
      if (!state.releasing || state.handles.size > 0 || this.states.get(state.topic) !== state) return;
      this.states.delete(state.topic);
      this.pending.forget(state);
      this.connection.send({ type: "unsubscribe", id: this.connection.nextId("u"), topic: state.topic });
    });
  }
};

// src/client.ts
var CimhubClient = class {
  connection;
  requests;
  pending;
  topics;
  presence;
  constructor(options) {
    if (options?.token === void 0) throw new TypeError("pass a token (or a function that returns one)");
    this.connection = new Connection(options, {
      onReady: (first) => this.onReady(first),
      onFrame: (frame) => this.onFrame(frame),
      onSocketClosed: () => this.presence.socketClosed(),
      onStop: (state, error) => this.onStop(state, error)
    });
    const outbox = options.outbox ?? null;
    this.requests = new Requests(this.connection, outbox);
    this.pending = new PendingUpdates((topic) => this.topics.get(topic));
    this.topics = new Topics(this.connection, this.pending);
    this.presence = new OwnPresence(this.requests, this.topics, (prefix) => this.connection.nextId(prefix));
    for (const mutation of outbox?.load() ?? []) {
      this.pending.restore(mutation);
      this.requests.adopt(mutation, (revision) => this.pending.settleRestored(mutation.mutationId, revision));
    }
  }
  get url() {
    return this.connection.url;
  }
  /** Seconds between the hub's pings, from `ready`. */
  get heartbeat() {
    return this.connection.heartbeat;
  }
  /** When the current token expires (epoch seconds), from `ready`. */
  get expiresAt() {
    return this.connection.expiresAt;
  }
  /** Tokens refreshed ahead of expiry so far (for tests and monitoring). */
  get refreshes() {
    return this.connection.refreshes;
  }
  /** `{state, error}`: the same object until the state changes. */
  get status() {
    return this.connection.status;
  }
  get state() {
    return this.connection.state;
  }
  get error() {
    return this.connection.error;
  }
  /** Call `listener({state, error})` whenever the connection state changes; returns a function that stops it. */
  onStatus(listener) {
    return this.connection.onStatus(listener);
  }
  /** Open the connection. Subscribing or mutating first is fine: they wait. */
  connect() {
    this.connection.connect();
    return this;
  }
  /** Close for good: pending requests reject (and leave the outbox), subscriptions end. */
  close() {
    this.connection.stop("closed", null);
  }
  /** Subscribe to a topic (`cim:<id>`, `deal:<id>`, `messages:<id>`); every call returns its own handle. */
  subscribe(topic, onChange) {
    if (this.connection.stopped()) {
      throw this.error ?? new CimhubError("closed", "the client is closed");
    }
    const handle = this.topics.subscribe(topic);
    if (onChange) handle.onChange(onChange);
    this.connection.connect();
    return handle;
  }
  /** The latest state of a subscribed topic as one immutable object (undefined when nobody subscribes). */
  snapshotOf(topic) {
    return this.topics.get(topic)?.snapshot;
  }
  /**
   * Run a mutation; resolves `{result, cimId, revision, duplicate}` once the hub committed it.
   * With `optimistic` the change shows in the topic's `document` at once and is rolled back if refused.
   */
  mutate(name, args, options = {}) {
    const mutationId = options.mutationId ?? newMutationId();
    const frame = { type: "mutate", id: this.connection.nextId("m"), name, args, mutationId };
    if (options.expectedRevision !== void 0) frame.expectedRevision = options.expectedRevision;
    this.pending.add(name, args, mutationId, options.optimistic, options.topic);
    const stored = {
      name,
      args,
      mutationId,
      optimistic: options.optimistic === true,
      ...options.expectedRevision !== void 0 ? { expectedRevision: options.expectedRevision } : {}
    };
    return this.requests.send(frame, stored).then(
      (answer) => {
        this.pending.answer(mutationId, answer.revision ?? 0);
        return answer;
      },
      (error) => {
        this.pending.drop(mutationId);
        throw error;
      }
    );
  }
  /** Run a query (`get`, `listByDeal`, ...); resolves the query's result. */
  query(name, args) {
    return this.requests.send({ type: "query", id: this.connection.nextId("q"), name, args }).then((answer) => answer.result);
  }
  /**
   * Show this connection on CIM `cimId` with `state` (`{activity, slideId?, sectionId?, name?}`);
   * null leaves. Resolves the presence id others see in `presence:<cimId>` (null after leaving).
   * The hub ends presence when the socket closes, so the client sets the last state again after
   * every reconnect (with a new presence id) until you leave. A state the hub refuses for good
   * (`invalid_args`, `not_found`) is forgotten and the promise rejects.
   */
  setPresence(cimId, state) {
    return this.presence.set(cimId, state);
  }
  /** This connection's presence id on `cimId` (null: not present, or not yet answered since the last reconnect). */
  presenceId(cimId) {
    return this.presence.id(cimId);
  }
  onReady(first) {
    this.topics.resume(first);
    this.requests.resend(first);
    if (first) this.presence.restore();
  }
  onFrame(frame) {
    switch (frame.type) {
      case "snapshot":
        return this.topics.onSnapshot(frame);
      case "patch":
        return this.topics.onPatch(frame);
      case "subscribed":
        return this.topics.onSubscribed(frame);
      case "unsubscribed":
        return this.topics.onUnsubscribed(frame);
      case "result":
        return this.requests.onResult(frame);
      case "error": {
        const error = CimhubError.fromWire(frame.error);
        const id = frame.id;
        if (!this.requests.onError(id, error)) this.topics.onError(id, error);
        return void 0;
      }
      default:
        return void 0;
    }
  }
  onStop(state, error) {
    this.requests.rejectAll(error ?? new CimhubError("closed", "the client was closed"), state === "closed");
    this.pending.clear();
    this.presence.clear();
    this.topics.endAll(error);
  }
};

// src/outbox.ts
function webStorageOutbox(storage, key = "cimhub.outbox") {
  return {
    load: () => {
      try {
        const stored = JSON.parse(storage.getItem(key) ?? "[]");
        return Array.isArray(stored) ? stored : [];
      } catch {
        return [];
      }
    },
    save: (mutations) => {
      if (mutations.length === 0) storage.removeItem(key);
      else storage.setItem(key, JSON.stringify(mutations));
    }
  };
}

// src/history.ts
function cimAt(client, cimId, revision) {
  return client.query("cimAt", { cimId, revision });
}
function cimDiff(client, cimId, from, to, limit) {
  return client.query("cimDiff", {
    cimId,
    from,
    ...to !== void 0 && to !== null ? { to } : {},
    ...limit !== void 0 ? { limit } : {}
  });
}
function cimHistory(client, cimId, page = {}) {
  return client.query("cimHistory", {
    cimId,
    ...page.before !== void 0 && page.before !== null ? { before: page.before } : {},
    ...page.limit !== void 0 ? { limit: page.limit } : {}
  });
}
async function restoreRevision(client, cimId, revision, options = {}) {
  const answer = await client.mutate("restoreRevision", { cimId, revision }, options);
  return answer;
}

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
  children.forEach((child, index2) => {
    if (parent.children[index2] !== child) parent.insertBefore(child, parent.children[index2] ?? null);
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

// board/messages.ts
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
      const own2 = slides.filter((s) => section.id === "" ? !known.has(s.sectionId) : s.sectionId === section.id);
      const approved = own2.filter((s) => s.status === "approved").length;
      const status = cim.sectionProgress?.[section.id]?.status ?? "pending";
      setText(view.progress, `${words(status)} \xB7 ${approved} of ${own2.length} slides approved`);
      setAttr(view.progress, "data-status", status);
      setAttr(view.root, "aria-current", cim.currentSectionId === section.id ? "location" : null);
      view.empty.hidden = own2.length > 0;
      syncChildren(view.list, own2.map((slide) => this.renderSlide(slide, cim, change)));
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
    const [top, index2] = parsePointer(op.path);
    const slide = top === "slides" && index2 !== void 0 ? now[Number(index2)] : void 0;
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
  main.replaceChildren(el("p", { class: "notice error" }, humanError(error instanceof CimhubError ? error : String(error))));
});
