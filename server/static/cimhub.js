// cimhub browser client: live CIM replicas over one WebSocket, exactly-once mutations.
//
// A dependency-free ES module, served by the hub at /static/cimhub.js and
// importable in Node too (nothing touches the DOM or `window` at import time;
// pass `WebSocket` in the options where there is no global one). It speaks the
// protocol of protocol/frames.py with the same frame and field names; the
// golden frames in tests/golden/ are replayed through it by tests/js/.
//
//   import { CimhubClient } from "/static/cimhub.js";
//   const hub = new CimhubClient({ token, refreshToken: () => fetchFreshToken() });
//   const sub = hub.subscribe(`cim:${cimId}`);
//   sub.onChange((change) => render(change.document));
//   await hub.mutate("navigateToStage", { cimId, targetStage: "outline" });
//
// What it guarantees, and what the caller must do:
// * A subscription's `document` follows the hub's revisions in order, without
//   gaps, across reconnects: after a reconnect it resumes from the revision it
//   holds and the hub sends only what was missed (or a snapshot marked `reset`).
// * `mutate` resolves once the hub acknowledged the mutation. Until then it is
//   re-sent after every reconnect with the same mutationId, so it applies
//   exactly once (a repeat is answered with `duplicate: true`). Retryable errors
//   are retried a few times; other errors reject with a CimhubError.
// * When the token expires the hub pauses deliveries; the client calls
//   `refreshToken()` and sends the new token, and deliveries resume where they
//   stopped. Without `refreshToken` (or when it fails) the client stops.
// * Close codes 4400-4499 stop the client (reconnecting unchanged would be
//   refused again); any other close reconnects with jittered backoff.

export const SUBPROTOCOL = "cimhub.json.v1";
export const WS_PATH = "/v1/ws";
const OPEN = 1; // WebSocket.OPEN, without needing a WebSocket class at import time
const WATCHDOG_HEARTBEATS = 2.5; // no frame (not even the hub's ping) for this long: presume the socket dead
const RETRY_LIMIT = 5;
const SEQUENCED_KINDS = new Set(["cim", "messages"]);

// -- errors -------------------------------------------------------------------

/** An error the hub sent (see protocol/errors.py for the table of codes). */
export class CimhubError extends Error {
  constructor(code, message, { retryable = false, path = null } = {}) {
    super(message);
    this.name = "CimhubError";
    this.code = code;
    this.retryable = retryable;
    this.path = path;
  }

  static fromWire(wire) {
    return new CimhubError(wire.code ?? "internal", wire.message ?? "", {
      retryable: Boolean(wire.retryable),
      path: wire.path ?? null,
    });
  }
}

/** A patch whose ops do not fit the document (RFC 6902 §5: the whole patch fails). */
export class PatchError extends Error {
  constructor(message) {
    super(message);
    this.name = "PatchError";
  }
}

/** A patch that does not follow the replica: resubscribe, resuming unless `replica.loaded` went false. */
export class ReplicaGap extends Error {
  constructor(message) {
    super(message);
    this.name = "ReplicaGap";
  }
}

// -- RFC 6902 JSON Patch --------------------------------------------------------
//
// Hand-written rather than imported because the viewer page has no bundler to
// pull in an npm package, and the hub only ever emits add, remove and replace
// (protocol/patch.py leaves out move/copy/test so that every client stays this
// small). Anything else is refused. The input document is never changed: each
// container on a changed path is copied once per patch, so an earlier document
// handed to a listener keeps describing its own revision.

/** RFC 6901 §3-4: split a JSON Pointer into unescaped tokens ("~1" -> "/" first, then "~0" -> "~"). */
export function parsePointer(path) {
  if (path === "") return [];
  if (typeof path !== "string" || path[0] !== "/") {
    throw new PatchError(`path ${JSON.stringify(path)} must be "" or start with "/"`);
  }
  return path.slice(1).split("/").map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** `document` with `ops` applied; throws PatchError (and changes nothing) when an op does not fit. */
export function applyPatch(document, ops) {
  const fresh = new WeakSet(); // containers copied by this patch, safe to change in place
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
  root = own(root, fresh, op.path);
  let parent = root;
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
    put(parent, last, op.value); // §4.1: adding an existing member replaces it
  } else {
    if (!Object.hasOwn(parent, last)) throw new PatchError(`${op.op} ${op.path}: no such member`);
    if (op.op === "remove") delete parent[last];
    else put(parent, last, op.value);
  }
  return root;
}

function own(value, fresh, path) {
  if (value === null || typeof value !== "object") throw new PatchError(`${path}: a parent is not an object or array`);
  if (fresh.has(value)) return value;
  const copy = Array.isArray(value) ? value.slice() : { ...value };
  fresh.add(copy);
  return copy;
}

// Define rather than assign, so a member named "__proto__" (gatheredContext is
// free-form) is stored as data instead of replacing the object's prototype.
function put(target, key, value) {
  if (Array.isArray(target)) target[key] = value;
  else Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

function index(array, token, max, path) {
  // RFC 6901 §4: array indexes are "0" or digits without a leading zero.
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new PatchError(`${path}: ${JSON.stringify(token)} is not an array index`);
  const at = Number(token);
  if (at > max) throw new PatchError(`${path}: index ${at} is out of range (length ${array.length})`);
  return at;
}

// -- replica --------------------------------------------------------------------

/**
 * The state of one topic: `document` at `revision` of `epoch` (clients/replica.py, in JavaScript).
 *
 * For sequenced topics (`cim:`, `messages:`) patches must come as r+1, r+2, ...;
 * repeats are ignored (a resume may replay what is already here) and anything
 * else raises ReplicaGap. A `cim:` revision is also named by its commit id, and
 * resuming names it, so after Redis came back older the hub answers with a
 * reset snapshot rather than patches of another history. A `deal:` topic is not sequenced: its patches apply as
 * they come and a lost place is repaired with a fresh snapshot.
 */
export class Replica {
  constructor(topic) {
    this.topic = topic;
    this.sequenced = SEQUENCED_KINDS.has(topic.split(":", 1)[0]);
    this.document = null;
    this.revision = 0;
    this.epoch = "";
    this.commit = null; // the commit id of `revision`, for topics that have them
    this.loaded = false;
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

  /** Replace the state with a snapshot frame; returns the change. */
  load(frame) {
    this.document = frame.data;
    this.revision = frame.revision;
    this.epoch = frame.epoch;
    this.commit = frame.commit ?? null;
    this.loaded = true;
    return change(frame, this.document, { snapshot: true, reset: Boolean(frame.reset) });
  }

  /** Apply a patch frame; null for a repeat (or before any snapshot). Throws ReplicaGap. */
  apply(frame) {
    if (!this.loaded) return null;
    if (this.sequenced) {
      if (frame.epoch !== this.epoch) throw new ReplicaGap(`${this.topic}: epoch changed from ${this.epoch} to ${frame.epoch}`);
      if (frame.revision < this.revision) return null;
      if (frame.revision === this.revision) {
        if (frame.commit && this.commit && frame.commit !== this.commit) {
          throw new ReplicaGap(`${this.topic}: revision ${frame.revision} is another commit than the one held`);
        }
        return null;
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
        // Resuming from a document that disagrees with the hub would only fail again.
        this.forget();
        throw new ReplicaGap(`${this.topic}: revision ${frame.revision} does not apply: ${error.message}`);
      }
    }
    this.document = document;
    this.revision = frame.revision;
    this.commit = frame.commit ?? null;
    return change(frame, document, { ops: frame.ops, deleted: Boolean(frame.deleted) });
  }
}

function change(frame, document, extra) {
  return {
    topic: frame.topic,
    revision: frame.revision,
    epoch: frame.epoch,
    commit: frame.commit ?? null,
    document,
    ops: [],
    mutation: frame.mutation ?? null,
    mutationId: frame.mutationId ?? null,
    actor: frame.actor ?? null,
    ts: frame.ts ?? null,
    deleted: false,
    snapshot: false,
    reset: false,
    ...extra,
  };
}

// -- backoff ----------------------------------------------------------------------

/**
 * Seconds to wait before retry number `attempt` (0 first): "equal jitter", half of
 * the capped exponential step fixed and half random, like clients/backoff.py. The
 * jitter spreads out the clients a hub restart dropped all at once; the fixed half
 * keeps a refused client from hammering the hub.
 */
export function backoffDelay(attempt, { base = 0.5, cap = 10, random = Math.random } = {}) {
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 32));
  return ceiling / 2 + random() * (ceiling / 2);
}

/** A random UUID v4. `crypto.randomUUID` exists only in secure contexts (https, localhost), hence the fallback. */
export function newMutationId() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The hub's WebSocket URL from a page location, an http(s) base URL or a ws(s) URL. */
export function hubUrl(url) {
  if (url === undefined) {
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

// -- client -------------------------------------------------------------------------

/** One subscription: a live replica of a topic. Made by `CimhubClient.subscribe`. */
export class Subscription {
  constructor(client, topic) {
    this.topic = topic;
    this.replica = new Replica(topic);
    this.requestId = null; // the subscribe frame waiting for its snapshot/subscribed
    this.draining = null; // an unsubscribe sent before resubscribing: frames until its answer are stale
    this.held = false; // refused while the token was expired: subscribe again after the next `ready`
    this.failures = 0;
    this.ended = false;
    this.error = null;
    this._client = client;
    this._listeners = new Set();
    this._endListeners = new Set();
    this.ready = new Promise((resolve, reject) => {
      this._resolveReady = resolve;
      this._rejectReady = reject;
    });
    this.ready.catch(() => {}); // rejected only when the subscription ends; listeners hear it too
  }

  /** The document at `revision` (null until the first snapshot, and after a delete). */
  get document() {
    return this.replica.document;
  }

  get revision() {
    return this.replica.revision;
  }

  /** Call `listener(change)` on every snapshot and patch; returns a function that stops it. */
  onChange(listener) {
    this._listeners.add(listener);
    return () => this._listeners.delete(listener);
  }

  /** Call `listener(error)` when the subscription ends (error null: the CIM was deleted or you unsubscribed). */
  onEnd(listener) {
    this._endListeners.add(listener);
    return () => this._endListeners.delete(listener);
  }

  unsubscribe() {
    this._client._unsubscribe(this);
  }

  _emit(change) {
    for (const listener of this._listeners) listener(change);
  }

  _end(error) {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    if (error) this._rejectReady(error);
    else this._resolveReady(this);
    for (const listener of this._endListeners) listener(error);
  }
}

export class CimhubClient {
  /**
   * @param {object} options
   * @param {string} [options.url] hub URL (http(s) base or ws(s)); default: the page's origin
   * @param {string|function} options.token a token, or a function returning one (or a promise of one)
   * @param {function} [options.refreshToken] returns a fresh token when the hub says `token_expired`
   * @param {function} [options.WebSocket] WebSocket class; default: globalThis.WebSocket
   * @param {object} [options.backoff] `{base, cap, random}` for reconnect delays (seconds)
   */
  constructor({ url, token, refreshToken, WebSocket, backoff = {} } = {}) {
    if (token === undefined) throw new TypeError("pass a token (or a function that returns one)");
    this.url = hubUrl(url);
    this.state = "idle"; // idle | connecting | live | reconnecting | stopped | closed
    this.error = null; // why the client stopped, or the last connection-level error
    this.heartbeat = 15;
    this._tokenSource = token; // a string, or a function asked on every connect
    this._token = typeof token === "function" ? null : token; // the latest token, refreshed or given
    this._refreshToken = refreshToken ?? (typeof token === "function" ? token : null);
    this._WebSocket = WebSocket ?? globalThis.WebSocket;
    this._backoff = backoff;
    this._attempts = 0;
    this._ws = null;
    this._ready = false; // the current socket's first `ready` arrived
    this._subs = new Map(); // topic -> Subscription
    this._requests = new Map(); // request id -> {frame, resolve, reject, failures, held}
    this._ids = 0;
    this._timers = new Set();
    this._watchdog = null;
    this._refreshing = null;
    this._statusListeners = new Set();
  }

  /** Call `listener({state, error})` whenever the connection state changes. */
  onStatus(listener) {
    this._statusListeners.add(listener);
    return () => this._statusListeners.delete(listener);
  }

  /** Open the connection (again after a reconnect). Subscribing or mutating first is fine: they wait. */
  connect() {
    if (this.state === "idle") this._open();
    return this;
  }

  /** Close for good: pending requests reject, subscriptions end. */
  close() {
    this._stop("closed", null);
  }

  /** Subscribe to a topic (`cim:<id>`, `deal:<id>`); one subscription per topic per client. */
  subscribe(topic, onChange) {
    let sub = this._subs.get(topic);
    if (sub === undefined) {
      sub = new Subscription(this, topic);
      this._subs.set(topic, sub);
      if (this._live()) this._sendSubscribe(sub);
    }
    if (onChange) sub.onChange(onChange);
    this.connect();
    return sub;
  }

  /**
   * Run a mutation; resolves `{result, cimId, revision, duplicate}` once the hub committed it.
   * Pass the same `mutationId` to retry a call whose outcome you do not know.
   */
  mutate(name, args, { mutationId = newMutationId(), expectedRevision } = {}) {
    const frame = { type: "mutate", id: this._nextId("m"), name, args, mutationId };
    if (expectedRevision !== undefined) frame.expectedRevision = expectedRevision;
    return this._request(frame);
  }

  /** Run a query (`get`, `listByDeal`, ...); resolves the query's result. */
  query(name, args = {}) {
    return this._request({ type: "query", id: this._nextId("q"), name, args }).then((answer) => answer.result);
  }

  // -- connection ----------------------------------------------------------------------------

  async _open() {
    this._setState(this._attempts === 0 ? "connecting" : "reconnecting");
    let token;
    try {
      token = typeof this._tokenSource === "function" ? await this._tokenSource() : this._token;
    } catch (error) {
      this._scheduleReconnect();
      return;
    }
    if (this._stopped()) return;
    if (typeof this._WebSocket !== "function") {
      this._stop("stopped", new TypeError("no WebSocket class: pass options.WebSocket"));
      return;
    }
    const ws = new this._WebSocket(this.url, [SUBPROTOCOL]);
    this._ws = ws;
    this._ready = false;
    ws.onopen = () => {
      if (ws === this._ws) this._send({ type: "auth", token });
      this._kickWatchdog();
    };
    ws.onmessage = (event) => {
      if (ws !== this._ws) return;
      this._kickWatchdog();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return; // not a frame of ours (the hub sends JSON text on cimhub.json.v1)
      }
      this._onFrame(frame);
    };
    ws.onclose = (event) => {
      if (ws === this._ws) this._onClose(event.code, event.reason);
    };
    ws.onerror = () => {}; // a close event always follows
  }

  _onClose(code, reason) {
    this._ws = null;
    this._ready = false;
    clearTimeout(this._watchdog);
    if (this._stopped()) return;
    const hubError = this.error;
    if (code === 4403 && hubError?.code === "token_expired" && this._refreshToken) {
      // The token we connected with had expired: get a fresh one, then reconnect.
      this._refresh().then(() => this._scheduleReconnect(), (error) => this._stop("stopped", error));
      return;
    }
    if (code >= 4400 && code <= 4499) {
      this._stop("stopped", hubError ?? new CimhubError("unauthenticated", `the hub closed the connection: ${code} ${reason}`));
      return;
    }
    this._scheduleReconnect();
  }

  _scheduleReconnect() {
    if (this._stopped()) return;
    const delay = backoffDelay(this._attempts++, this._backoff);
    this._setState("reconnecting");
    this._later(delay, () => this._open());
  }

  _kickWatchdog() {
    clearTimeout(this._watchdog);
    this._watchdog = setTimeout(() => {
      // Nothing from the hub, not even its ping: the connection is dead even if the socket has not noticed.
      const ws = this._ws;
      if (ws) {
        this._onClose(4000, "no frames from the hub");
        ws.close(4000, "no frames from the hub");
      }
    }, this.heartbeat * WATCHDOG_HEARTBEATS * 1000);
  }

  _stop(state, error) {
    if (this._stopped()) return;
    this.state = state;
    this.error = error;
    for (const timer of this._timers) clearTimeout(timer);
    this._timers.clear();
    clearTimeout(this._watchdog);
    const ws = this._ws;
    this._ws = null;
    if (ws && ws.readyState <= OPEN) ws.close(1000, "client closed");
    const reason = error ?? new CimhubError("closed", "the client was closed");
    for (const request of this._requests.values()) request.reject(reason);
    this._requests.clear();
    for (const sub of this._subs.values()) sub._end(error);
    this._subs.clear();
    this._notify();
  }

  _stopped() {
    return this.state === "stopped" || this.state === "closed";
  }

  _live() {
    return this._ready && this._ws !== null && this._ws.readyState === OPEN;
  }

  _setState(state) {
    if (this.state !== state) {
      this.state = state;
      this._notify();
    }
  }

  _notify() {
    for (const listener of this._statusListeners) listener({ state: this.state, error: this.error });
  }

  _send(frame) {
    if (this._ws !== null && this._ws.readyState === OPEN) this._ws.send(JSON.stringify(frame));
  }

  _later(seconds, fn) {
    const timer = setTimeout(() => {
      this._timers.delete(timer);
      fn();
    }, seconds * 1000);
    this._timers.add(timer);
  }

  _nextId(prefix) {
    this._ids += 1;
    return `${prefix}${this._ids}`;
  }

  async _refresh() {
    // One refresh at a time, however many frames ask for it.
    if (this._refreshing === null) {
      this._refreshing = (async () => {
        if (!this._refreshToken) {
          throw new CimhubError("token_expired", "the token expired and no refreshToken callback was given");
        }
        const token = await this._refreshToken();
        if (typeof token !== "string" || token === "") throw new CimhubError("token_expired", "refreshToken gave no token");
        this._token = token;
        return token;
      })().finally(() => {
        this._refreshing = null;
      });
    }
    return this._refreshing;
  }

  // -- frames from the hub ----------------------------------------------------------------

  _onFrame(frame) {
    switch (frame.type) {
      case "ready":
        return this._onReady(frame);
      case "ping":
        return this._send({ type: "pong", ts: frame.ts ?? null });
      case "pong":
        return undefined;
      case "snapshot":
        return this._onSnapshot(frame);
      case "patch":
        return this._onPatch(frame);
      case "subscribed":
        return this._onSubscribed(frame);
      case "unsubscribed":
        return this._onUnsubscribed(frame);
      case "result":
        return this._onResult(frame);
      case "error":
        return this._onError(frame);
      default:
        return undefined; // a newer hub's frame: ignore rather than fail
    }
  }

  _onReady(frame) {
    this.heartbeat = frame.heartbeat ?? this.heartbeat;
    this.error = null;
    this._kickWatchdog();
    const first = !this._ready;
    this._ready = true;
    this._attempts = 0;
    this._setState("live");
    if (first) {
      // A new socket: the hub knows nothing of us. Resume every subscription, re-send every request.
      for (const sub of this._subs.values()) {
        sub.draining = null; // an unsubscribe of the old socket's will never be answered
        this._sendSubscribe(sub);
      }
      for (const request of this._requests.values()) this._sendRequest(request);
    } else {
      // A refreshed token: send what the hub refused while the old one was expired.
      for (const sub of this._subs.values()) if (sub.held) this._sendSubscribe(sub);
      for (const request of this._requests.values()) if (request.held) this._sendRequest(request);
    }
  }

  _onSnapshot(frame) {
    const sub = this._subs.get(frame.topic);
    if (sub === undefined || sub.draining !== null) return;
    if (frame.id !== undefined && frame.id !== null && frame.id !== sub.requestId) return;
    const change = sub.replica.load(frame);
    if (frame.id === sub.requestId) sub.requestId = null;
    sub.failures = 0;
    sub._resolveReady(sub);
    sub._emit(change);
  }

  _onPatch(frame) {
    const sub = this._subs.get(frame.topic);
    if (sub === undefined || sub.draining !== null) return;
    let change;
    try {
      change = sub.replica.apply(frame);
    } catch (error) {
      if (!(error instanceof ReplicaGap)) throw error;
      this._resync(sub);
      return;
    }
    if (change === null) return;
    sub._emit(change);
    if (change.deleted) {
      // The hub ends a subscription after the change that deleted its CIM.
      this._subs.delete(sub.topic);
      sub._end(null);
    }
  }

  _onSubscribed(frame) {
    const sub = this._subs.get(frame.topic);
    if (sub === undefined || frame.id !== sub.requestId) return;
    sub.requestId = null;
    const replica = sub.replica;
    if (!replica.isAt(frame.revision, frame.epoch, frame.commit)) {
      // The resume ended somewhere other than where this replica is: start again from a snapshot.
      replica.forget();
      this._resync(sub);
      return;
    }
    sub.failures = 0;
    sub._resolveReady(sub);
  }

  _onUnsubscribed(frame) {
    const sub = this._subs.get(frame.topic);
    if (sub === undefined) return;
    if (frame.id !== undefined && frame.id !== null) {
      if (frame.id === sub.draining) sub.draining = null; // what follows belongs to the new subscribe
      return;
    }
    // The hub ended the subscription on its own.
    this._retrySubscription(sub, frame.error ? CimhubError.fromWire(frame.error) : null);
  }

  _onResult(frame) {
    const request = this._requests.get(frame.id);
    if (request === undefined) return;
    this._requests.delete(frame.id);
    const { type, id, ...answer } = frame;
    request.resolve({ result: null, cimId: null, revision: null, duplicate: false, ...answer });
  }

  _onError(frame) {
    const error = CimhubError.fromWire(frame.error);
    if (frame.id === undefined || frame.id === null) {
      this.error = error;
      if (error.code === "token_expired") this._onTokenExpired();
      return;
    }
    const request = this._requests.get(frame.id);
    if (request !== undefined) {
      this._retryRequest(request, error);
      return;
    }
    for (const sub of this._subs.values()) {
      if (sub.requestId === frame.id) {
        sub.requestId = null;
        this._retrySubscription(sub, error);
        return;
      }
    }
  }

  _onTokenExpired() {
    if (!this._ready) return; // refused at connect: the close that follows (4403) refreshes and reconnects
    const ws = this._ws;
    this._refresh().then(
      (token) => {
        if (ws === this._ws) this._send({ type: "auth", token });
      },
      (error) => this._stop("stopped", error),
    );
  }

  // -- subscriptions and requests ---------------------------------------------------------

  _sendSubscribe(sub) {
    sub.held = false;
    sub.requestId = this._nextId("s");
    const frame = { type: "subscribe", id: sub.requestId, topic: sub.topic };
    const resume = sub.replica.resumePoint();
    if (resume !== null) frame.resume = resume;
    this._send(frame);
  }

  /** Subscribe again on this socket; the unsubscribe first makes the hub drop whatever it still holds. */
  _resync(sub) {
    if (!this._live()) return; // the next `ready` resubscribes
    sub.draining = this._nextId("u");
    this._send({ type: "unsubscribe", id: sub.draining, topic: sub.topic });
    this._sendSubscribe(sub);
  }

  _retrySubscription(sub, error) {
    if (error === null || !error.retryable || sub.failures >= RETRY_LIMIT) {
      this._subs.delete(sub.topic);
      sub._end(error);
      return;
    }
    if (error.code === "token_expired") {
      sub.held = true; // sent again once the fresh token is accepted
      return;
    }
    sub.failures += 1;
    this._later(backoffDelay(sub.failures, this._backoff), () => {
      if (this._subs.get(sub.topic) === sub) this._resync(sub);
    });
  }

  _unsubscribe(sub) {
    if (this._subs.get(sub.topic) !== sub) return;
    this._subs.delete(sub.topic);
    this._send({ type: "unsubscribe", id: this._nextId("u"), topic: sub.topic });
    sub._end(null);
  }

  _request(frame) {
    if (this._stopped()) return Promise.reject(this.error ?? new CimhubError("closed", "the client is closed"));
    return new Promise((resolve, reject) => {
      const request = { frame, resolve, reject, failures: 0, held: false };
      this._requests.set(frame.id, request);
      if (this._live()) this._sendRequest(request);
      this.connect();
    });
  }

  _sendRequest(request) {
    request.held = false;
    this._send(request.frame);
  }

  _retryRequest(request, error) {
    if (!error.retryable || request.failures >= RETRY_LIMIT) {
      this._requests.delete(request.frame.id);
      request.reject(error);
      return;
    }
    if (error.code === "token_expired") {
      request.held = true;
      return;
    }
    request.failures += 1;
    // The same frame, so a mutation keeps its mutationId and applies at most once.
    this._later(backoffDelay(request.failures, this._backoff), () => {
      if (this._requests.get(request.frame.id) === request && this._live()) this._sendRequest(request);
    });
  }
}
