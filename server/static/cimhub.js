// cimhub browser client (the @cimhub/client package as one ES module).
// Built from clients/js by `bash scripts/gen-types` (node clients/js/tools/build.mjs): do not edit.

// src/generated.ts
var PROTOCOL_VERSION = 2;
var JSON_SUBPROTOCOL = "cimhub.json.v1";
var MSGPACK_SUBPROTOCOL = "cimhub.msgpack.v1";
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
var ErrorCode = {
  "BAD_FRAME": "bad_frame",
  "INVALID_ARGS": "invalid_args",
  "UNKNOWN_MUTATION": "unknown_mutation",
  "UNKNOWN_QUERY": "unknown_query",
  "UNKNOWN_TOPIC": "unknown_topic",
  "NOT_FOUND": "not_found",
  "CONFLICT": "conflict",
  "MUTATION_ID_REUSED": "mutation_id_reused",
  "INVALID_TRANSITION": "invalid_transition",
  "PAYLOAD_TOO_LARGE": "payload_too_large",
  "TOO_MANY_SUBSCRIPTIONS": "too_many_subscriptions",
  "RATE_LIMITED": "rate_limited",
  "UNAUTHENTICATED": "unauthenticated",
  "TOKEN_EXPIRED": "token_expired",
  "ACCESS_DENIED": "access_denied",
  "OVERLOADED": "overloaded",
  "UNAVAILABLE": "unavailable",
  "INTERNAL": "internal"
};
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
var SUBPROTOCOL = JSON_SUBPROTOCOL;
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
function httpBase(url) {
  const parsed = new URL(hubUrl(url));
  parsed.protocol = parsed.protocol === "wss:" ? "https:" : "http:";
  return parsed.origin;
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
  const words = name.split(/[\s._@-]+/u).filter((word) => word !== "");
  const letters = words.length > 1 ? [words[0], words.at(-1)] : words.length === 1 ? [words[0]] : [];
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
function applyPatch(document, ops) {
  const fresh = /* @__PURE__ */ new WeakSet();
  let root = document;
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
    let document = null;
    if (!frame.deleted) {
      try {
        document = applyPatch(this.document, frame.ops);
      } catch (error) {
        this.forget();
        throw new ReplicaGap(`${this.topic}: revision ${frame.revision} does not apply: ${error.message}`);
      }
    }
    this.document = document;
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
export {
  CLOSE_STOP_RANGE,
  CimhubClient,
  CimhubError,
  CloseCode,
  ErrorCode,
  JSON_SUBPROTOCOL,
  MSGPACK_SUBPROTOCOL,
  PROTOCOL_VERSION,
  PatchError,
  RETRYABLE,
  Replica,
  ReplicaGap,
  STAGES,
  SUBPROTOCOL,
  Subscription,
  WS_PATH,
  applyPatch,
  applyPending,
  backoffDelay,
  cimAt,
  cimDiff,
  cimHistory,
  cimUpdates,
  draftersBySection,
  editorsBySlide,
  httpBase,
  hubUrl,
  initials,
  jsonCodec,
  newMutationId,
  parsePointer,
  presenceActivity,
  presenceKind,
  presenceList,
  presenceName,
  presenceTopic,
  restoreRevision,
  webStorageOutbox
};
