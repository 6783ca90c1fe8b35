// CimhubClient: live replicas of topics over one WebSocket, exactly-once and optimistic mutations.
//
// What it guarantees, and what the caller must do:
// * A subscription's `confirmed` document follows the hub's revisions in order,
//   without gaps, across reconnects: after a reconnect it resumes from the
//   revision it holds and the hub sends only what was missed (or a snapshot
//   marked `reset`). `document` is that, with pending optimistic updates on top.
// * Subscriptions are reference-counted: every `subscribe(topic)` returns its own
//   handle; the hub is told to unsubscribe only when the last handle of a topic
//   unsubscribes, so one component leaving never silences another.
// * `mutate` resolves once the hub acknowledged the mutation. Until then it is
//   re-sent after every reconnect with the same mutationId, so it applies
//   exactly once (a repeat is answered with `duplicate: true`). Retryable errors
//   are retried a few times; other errors reject with a CimhubError and roll
//   back the mutation's optimistic update.
// * The token is refreshed ahead of its expiry (`ready.expiresAt`) and sent
//   in-band in an `auth` frame: no reconnect, no subscription dropped. If the
//   hub still says `token_expired`, the client refreshes then and deliveries
//   resume where they stopped. Without a way to refresh it stops.
// * Close codes 4400-4499 stop the client (reconnecting unchanged would be
//   refused again); any other close reconnects with jittered backoff.
// * `setPresence` shows this connection on a CIM; the hub ends presence with the
//   socket, so the client sets it again after every reconnect until you leave.
import { backoffDelay, hubUrl, newMutationId } from "./backoff.js";
import { CimhubError, ReplicaGap } from "./errors.js";
import { CLOSE_STOP_RANGE, CloseCode, JSON_SUBPROTOCOL, } from "./generated.js";
import { applyPending, cimUpdates } from "./optimistic.js";
import { presenceTopic } from "./presence.js";
import { Replica } from "./replica.js";
const OPEN = 1; // WebSocket.OPEN, without needing a WebSocket class at import time
const WATCHDOG_HEARTBEATS = 2.5; // no frame (not even the hub's ping) for this long: presume the socket dead
const RETRY_LIMIT = 5;
const MAX_TIMER_MS = 2 ** 31 - 1;
export const jsonCodec = {
    subprotocol: JSON_SUBPROTOCOL,
    encode: (frame) => JSON.stringify(frame),
    decode: (data) => JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data)),
};
/** An outbox in Web Storage (`localStorage`: shared by the origin's tabs; a mutation sent twice still applies once). */
export function webStorageOutbox(storage, key = "cimhub.outbox") {
    return {
        load: () => {
            try {
                const stored = JSON.parse(storage.getItem(key) ?? "[]");
                return Array.isArray(stored) ? stored : [];
            }
            catch {
                return []; // unreadable: start empty rather than fail to start
            }
        },
        save: (mutations) => {
            if (mutations.length === 0)
                storage.removeItem(key);
            else
                storage.setItem(key, JSON.stringify(mutations));
        },
    };
}
/** One caller's handle on a topic; made by `CimhubClient.subscribe`. */
export class Subscription {
    state;
    release;
    topic;
    /** Resolves once the topic's document is here (at once if another handle already loaded it). */
    ready;
    ended = false;
    error = null;
    listeners = new Set();
    endListeners = new Set();
    resolveReady;
    rejectReady;
    /** @internal */
    constructor(state, release) {
        this.state = state;
        this.release = release;
        this.topic = state.topic;
        this.ready = new Promise((resolve, reject) => {
            this.resolveReady = resolve;
            this.rejectReady = reject;
        });
        this.ready.catch(() => { }); // rejected only when the subscription ends; end listeners hear it too
        if (state.replica.loaded)
            this.resolveReady(this);
    }
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
        if (this.ended)
            return;
        this.release(this);
        this.end(null);
    }
    /** @internal */
    emit(change) {
        this.resolveReady(this);
        for (const listener of this.listeners)
            listener(change);
    }
    /** @internal */
    end(error) {
        if (this.ended)
            return;
        this.ended = true;
        this.error = error;
        if (error)
            this.rejectReady(error);
        else
            this.resolveReady(this);
        for (const listener of this.endListeners)
            listener(error);
    }
}
/** @internal The client's state of one topic, shared by all its handles. */
class TopicState {
    topic;
    replica;
    handles = new Set();
    requestId = null; // the subscribe frame waiting for its snapshot/subscribed
    draining = null; // an unsubscribe sent before resubscribing: frames until its answer are stale
    held = false; // refused while the token was expired: subscribe again after the next `ready`
    failures = 0;
    error = null;
    pending = [];
    view = null;
    snapshot;
    releasing = false;
    constructor(topic) {
        this.topic = topic;
        this.replica = new Replica(topic);
        this.snapshot = { document: null, revision: 0, isLoading: true, error: null, pending: [], lastChange: null };
    }
    /** Recompute the shown document from the confirmed one and the pending updates. */
    refresh() {
        this.view = applyPending(this.replica.document, this.pending);
    }
}
export class CimhubClient {
    url;
    /** Seconds between the hub's pings, from `ready`. */
    heartbeat = 15;
    /** When the current token expires (epoch seconds), from `ready`. */
    expiresAt = null;
    /** Tokens refreshed ahead of expiry so far (for tests and monitoring). */
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
    ready = false; // the current socket's first `ready` arrived
    topics = new Map();
    requests = new Map();
    optimistic = new Map(); // mutation id -> update
    ids = 0;
    timers = new Set();
    watchdog;
    refreshTimer;
    refreshing = null;
    statusListeners = new Set();
    outbox;
    restored = []; // optimistic updates of restored mutations, until their topic is subscribed
    presence = new Map(); // cim id -> what to show there, kept across reconnects
    constructor(options) {
        if (options?.token === undefined)
            throw new TypeError("pass a token (or a function that returns one)");
        this.url = hubUrl(options.url);
        this.tokenSource = options.token;
        this.token = typeof options.token === "function" ? null : options.token;
        this.refreshTokenFn = options.refreshToken ?? (typeof options.token === "function" ? options.token : null);
        this.refreshAheadS = options.refreshAheadS ?? 60;
        this.SocketClass = (options.WebSocket ?? globalThis.WebSocket);
        this.backoff = options.backoff ?? {};
        this.codec = options.codec ?? jsonCodec;
        this.now = options.now ?? Date.now;
        this.outbox = options.outbox ?? null;
        if (this.outbox !== null)
            this.restore(this.outbox.load());
    }
    /** Queue the mutations an earlier run left unanswered, with their ids; they go out on connect. */
    restore(stored) {
        for (const mutation of stored) {
            const frame = {
                type: "mutate", id: this.nextId("m"), name: mutation.name, args: mutation.args, mutationId: mutation.mutationId,
            };
            if (mutation.expectedRevision !== undefined)
                frame.expectedRevision = mutation.expectedRevision;
            const update = cimUpdates[mutation.name];
            const cimId = mutation.args?.cimId;
            if (mutation.optimistic && update && cimId) {
                this.restored.push({ mutationId: mutation.mutationId, topic: `cim:${cimId}`, args: mutation.args, update, answeredRevision: null });
            }
            const settle = (revision) => {
                this.restored = this.restored.filter((e) => e.mutationId !== mutation.mutationId);
                if (revision === null)
                    this.dropOptimistic(mutation.mutationId);
                else
                    this.answerOptimistic(mutation.mutationId, revision);
            };
            this.requests.set(frame.id, {
                frame, stored: mutation, failures: 0, held: false,
                resolve: (answer) => settle(answer.revision ?? 0),
                reject: () => settle(null),
            });
        }
    }
    persist() {
        if (this.outbox === null)
            return;
        const stored = [];
        for (const request of this.requests.values())
            if (request.stored)
                stored.push(request.stored);
        try {
            this.outbox.save(stored);
        }
        catch {
            // Storage full or refused: the mutations are still kept in memory and sent.
        }
    }
    /** `{state, error}`: the same object until the state changes. */
    get status() {
        return this.statusValue;
    }
    get state() {
        return this.statusValue.state;
    }
    get error() {
        return this.statusValue.error;
    }
    /** Call `listener({state, error})` whenever the connection state changes; returns a function that stops it. */
    onStatus(listener) {
        this.statusListeners.add(listener);
        return () => this.statusListeners.delete(listener);
    }
    /** Open the connection. Subscribing or mutating first is fine: they wait. */
    connect() {
        if (this.state === "idle")
            void this.open();
        return this;
    }
    /** Close for good: pending requests reject (and leave the outbox), subscriptions end. */
    close() {
        this.stop("closed", null);
    }
    /** Subscribe to a topic (`cim:<id>`, `deal:<id>`, `messages:<id>`); every call returns its own handle. */
    subscribe(topic, onChange) {
        if (this.stopped()) {
            throw this.error ?? new CimhubError("closed", "the client is closed");
        }
        let state = this.topics.get(topic);
        if (state === undefined) {
            state = new TopicState(topic);
            this.topics.set(topic, state);
            for (const entry of this.restored.filter((e) => e.topic === topic)) {
                state.pending.push(entry);
                this.optimistic.set(entry.mutationId, entry);
            }
            this.restored = this.restored.filter((e) => e.topic !== topic);
            if (this.live())
                this.sendSubscribe(state);
        }
        state.releasing = false;
        const handle = new Subscription(state, (h) => this.release(state, h));
        state.handles.add(handle);
        if (onChange)
            handle.onChange(onChange);
        this.connect();
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
        const frame = { type: "mutate", id: this.nextId("m"), name, args, mutationId };
        if (options.expectedRevision !== undefined)
            frame.expectedRevision = options.expectedRevision;
        this.addOptimistic(name, args, mutationId, options);
        const stored = {
            name, args, mutationId, optimistic: options.optimistic === true,
            ...(options.expectedRevision !== undefined ? { expectedRevision: options.expectedRevision } : {}),
        };
        return this.request(frame, stored).then((answer) => {
            this.answerOptimistic(mutationId, answer.revision ?? 0);
            return answer;
        }, (error) => {
            this.dropOptimistic(mutationId);
            throw error;
        });
    }
    /** Run a query (`get`, `listByDeal`, ...); resolves the query's result. */
    query(name, args) {
        return this.request({ type: "query", id: this.nextId("q"), name, args }).then((answer) => answer.result);
    }
    // -- presence ------------------------------------------------------------------------------
    /**
     * Show this connection on CIM `cimId` with `state` (`{activity, slideId?, sectionId?, name?}`);
     * null leaves. Resolves the presence id others see in `presence:<cimId>` (null after leaving).
     * The hub ends presence when the socket closes, so the client sets the last state again after
     * every reconnect (with a new presence id) until you leave. A state the hub refuses for good
     * (`invalid_args`, `not_found`) is forgotten and the promise rejects.
     */
    setPresence(cimId, state) {
        if (state === null)
            this.presence.delete(cimId);
        else
            this.presence.set(cimId, { state, id: this.presence.get(cimId)?.id ?? null });
        return this.sendPresence(cimId, state);
    }
    /** This connection's presence id on `cimId` (null: not present, or not yet answered since the last reconnect). */
    presenceId(cimId) {
        return this.presence.get(cimId)?.id ?? null;
    }
    sendPresence(cimId, state) {
        const frame = { type: "presence", id: this.nextId("p"), cimId, state };
        return this.request(frame, undefined, cimId).then((answer) => {
            const given = answer.result?.presenceId;
            const id = typeof given === "string" ? given : null;
            const entry = this.presence.get(cimId);
            if (entry !== undefined && entry.state === state)
                entry.id = id;
            this.publishPresence(cimId);
            return state === null ? null : id;
        }, (error) => {
            const entry = this.presence.get(cimId);
            if (entry !== undefined && entry.state === state && !(error instanceof CimhubError && error.retryable)) {
                this.presence.delete(cimId); // sending it again after each reconnect would only be refused again
            }
            throw error;
        });
    }
    /** A new socket: the hub forgot this connection's presence. Set each again, unless a frame for it is on its way. */
    restorePresence() {
        const waiting = new Set();
        for (const request of this.requests.values())
            if (request.presenceOf !== undefined)
                waiting.add(request.presenceOf);
        for (const [cimId, entry] of this.presence) {
            if (!waiting.has(cimId))
                this.sendPresence(cimId, entry.state).catch(() => { }); // a refusal forgets it
        }
    }
    /** The presence id changed: listeners of `presence:<cimId>` hear a local change, so they can tell which member is theirs. */
    publishPresence(cimId) {
        const state = this.topics.get(presenceTopic(cimId));
        if (state !== undefined)
            this.publishLocal(state);
    }
    // -- optimistic updates ------------------------------------------------------------------
    addOptimistic(name, args, mutationId, options) {
        const chosen = options.optimistic;
        if (!chosen)
            return;
        const update = typeof chosen === "function" ? chosen : cimUpdates[name];
        if (update === undefined)
            throw new TypeError(`no built-in optimistic update for ${name}: pass a function`);
        const cimId = args?.cimId;
        const topic = options.topic ?? (cimId ? `cim:${cimId}` : null);
        if (topic === null)
            throw new TypeError("pass options.topic: the arguments name no cimId");
        const state = this.topics.get(topic);
        if (state === undefined)
            return; // nobody shows this topic: nothing to predict
        const entry = { mutationId, topic, args, update, answeredRevision: null };
        this.optimistic.set(mutationId, entry);
        state.pending.push(entry);
        this.publishLocal(state);
    }
    answerOptimistic(mutationId, revision) {
        const entry = this.optimistic.get(mutationId);
        if (entry === undefined)
            return;
        entry.answeredRevision = revision;
        const state = this.topics.get(entry.topic);
        if (state !== undefined && state.replica.revision >= revision)
            this.dropOptimistic(mutationId);
    }
    dropOptimistic(mutationId) {
        const entry = this.optimistic.get(mutationId);
        if (entry === undefined)
            return;
        this.optimistic.delete(mutationId);
        const state = this.topics.get(entry.topic);
        if (state === undefined)
            return;
        state.pending = state.pending.filter((e) => e !== entry);
        this.publishLocal(state);
    }
    /** Drop the updates a confirmed change now includes; true if any went. */
    settle(state, mutationId) {
        const before = state.pending.length;
        state.pending = state.pending.filter((entry) => {
            const done = entry.mutationId === mutationId
                || (entry.answeredRevision !== null && state.replica.revision >= entry.answeredRevision);
            if (done)
                this.optimistic.delete(entry.mutationId);
            return !done;
        });
        return state.pending.length !== before;
    }
    publishLocal(state) {
        if (!state.replica.loaded)
            return;
        state.refresh();
        this.publish(state, {
            topic: state.topic, revision: state.replica.revision, epoch: state.replica.epoch, ops: [],
            mutation: null, mutationId: null, actor: null, ts: null,
            deleted: false, snapshot: false, reset: false, local: true,
        });
    }
    publish(state, base) {
        const change = {
            ...base, document: state.view, confirmed: state.replica.document, pending: state.pending.map((e) => e.mutationId),
        };
        state.snapshot = {
            document: state.view, revision: state.replica.revision, isLoading: false, error: null,
            pending: change.pending, lastChange: change,
        };
        for (const handle of [...state.handles])
            handle.emit(change);
    }
    // -- connection ----------------------------------------------------------------------------
    async open() {
        this.setState(this.attempts === 0 ? "connecting" : "reconnecting");
        let token;
        try {
            token = typeof this.tokenSource === "function" ? await this.tokenSource() : this.token;
            this.token = token;
        }
        catch {
            this.scheduleReconnect();
            return;
        }
        if (this.stopped())
            return;
        if (typeof this.SocketClass !== "function") {
            this.stop("stopped", new TypeError("no WebSocket class: pass options.WebSocket"));
            return;
        }
        const ws = new this.SocketClass(this.url, [this.codec.subprotocol]);
        ws.binaryType = "arraybuffer";
        this.ws = ws;
        this.ready = false;
        ws.onopen = () => {
            if (ws === this.ws)
                this.send({ type: "auth", token });
            this.kickWatchdog();
        };
        ws.onmessage = (event) => {
            if (ws !== this.ws)
                return;
            this.kickWatchdog();
            let frame;
            try {
                frame = this.codec.decode(event.data);
            }
            catch {
                return; // not a frame of ours
            }
            this.onFrame(frame);
        };
        ws.onclose = (event) => {
            if (ws === this.ws)
                this.onClose(event.code, event.reason);
        };
        ws.onerror = () => { }; // a close event always follows
    }
    onClose(code, reason) {
        this.ws = null;
        this.ready = false;
        for (const entry of this.presence.values())
            entry.id = null; // it ended with the socket
        clearTimeout(this.watchdog);
        clearTimeout(this.refreshTimer);
        if (this.stopped())
            return;
        const hubError = this.error;
        if (code === CloseCode.AUTH_FAILED && hubError?.code === "token_expired" && this.refreshTokenFn) {
            // The token we connected with had expired: get a fresh one, then reconnect.
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
        if (this.stopped())
            return;
        const delay = backoffDelay(this.attempts++, this.backoff);
        this.setState("reconnecting");
        this.later(delay, () => void this.open());
    }
    kickWatchdog() {
        clearTimeout(this.watchdog);
        this.watchdog = setTimeout(() => {
            // Nothing from the hub, not even its ping: the connection is dead even if the socket has not noticed.
            const ws = this.ws;
            if (ws) {
                this.onClose(CloseCode.HEARTBEAT_TIMEOUT, "no frames from the hub");
                ws.close(CloseCode.HEARTBEAT_TIMEOUT, "no frames from the hub");
            }
        }, this.heartbeat * WATCHDOG_HEARTBEATS * 1000);
    }
    stop(state, error) {
        if (this.stopped())
            return;
        this.statusValue = { state, error };
        for (const timer of this.timers)
            clearTimeout(timer);
        this.timers.clear();
        clearTimeout(this.watchdog);
        clearTimeout(this.refreshTimer);
        const ws = this.ws;
        this.ws = null;
        if (ws && ws.readyState <= OPEN)
            ws.close(CloseCode.NORMAL, "client closed");
        const reason = error ?? new CimhubError("closed", "the client was closed");
        for (const request of this.requests.values())
            request.reject(reason);
        this.requests.clear();
        // close() gives up what waits, so the outbox forgets it too; a stop (the hub refused
        // the credentials) keeps it for the next client, after signing in again.
        if (state === "closed")
            this.persist();
        this.optimistic.clear();
        this.presence.clear();
        for (const topic of this.topics.values())
            this.endTopic(topic, error);
        this.topics.clear();
        this.notify();
    }
    stopped() {
        return this.state === "stopped" || this.state === "closed";
    }
    live() {
        return this.ready && this.ws !== null && this.ws.readyState === OPEN;
    }
    setState(state, error = this.error) {
        if (this.state !== state || this.error !== error) {
            this.statusValue = { state, error };
            this.notify();
        }
    }
    notify() {
        for (const listener of this.statusListeners)
            listener(this.statusValue);
    }
    send(frame) {
        if (this.ws !== null && this.ws.readyState === OPEN)
            this.ws.send(this.codec.encode(frame));
    }
    later(seconds, fn) {
        const timer = setTimeout(() => {
            this.timers.delete(timer);
            fn();
        }, seconds * 1000);
        this.timers.add(timer);
    }
    nextId(prefix) {
        this.ids += 1;
        return `${prefix}${this.ids}`;
    }
    refresh() {
        // One refresh at a time, however many frames or timers ask for it.
        if (this.refreshing === null) {
            this.refreshing = (async () => {
                if (!this.refreshTokenFn) {
                    throw new CimhubError("token_expired", "the token expired and no refreshToken callback was given");
                }
                const token = await this.refreshTokenFn();
                if (typeof token !== "string" || token === "")
                    throw new CimhubError("token_expired", "refreshToken gave no token");
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
        if (this.expiresAt === null || this.refreshTokenFn === null)
            return;
        const remaining = this.expiresAt * 1000 - this.now();
        const ahead = Math.min(this.refreshAheadS * 1000, remaining / 2);
        const wait = remaining - ahead;
        if (wait > MAX_TIMER_MS) {
            // setTimeout fires at once beyond 2^31-1 ms: look again later instead.
            this.refreshTimer = setTimeout(() => this.scheduleRefresh(), MAX_TIMER_MS);
            return;
        }
        const ws = this.ws;
        this.refreshTimer = setTimeout(() => {
            this.refresh().then((token) => {
                if (ws !== this.ws || !this.live())
                    return; // a new socket authenticates with it anyway
                this.refreshes += 1;
                this.send({ type: "auth", token });
            }, () => { });
        }, Math.max(0, wait));
    }
    // -- frames from the hub ----------------------------------------------------------------
    onFrame(frame) {
        switch (frame.type) {
            case "ready":
                return this.onReady(frame);
            case "ping":
                return this.send({ type: "pong", ts: frame.ts ?? null });
            case "pong":
                return undefined;
            case "snapshot":
                return this.onSnapshot(frame);
            case "patch":
                return this.onPatch(frame);
            case "subscribed":
                return this.onSubscribed(frame);
            case "unsubscribed":
                return this.onUnsubscribed(frame);
            case "result":
                return this.onResult(frame);
            case "error":
                return this.onError(frame.id ?? null, CimhubError.fromWire(frame.error));
            default:
                return undefined; // a newer hub's frame: ignore rather than fail
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
        if (first) {
            // A new socket: the hub knows nothing of us. Resume every subscription, re-send every request.
            for (const state of this.topics.values()) {
                state.draining = null; // an unsubscribe of the old socket's will never be answered
                this.sendSubscribe(state);
            }
            for (const request of this.requests.values())
                this.sendRequest(request);
            this.restorePresence();
        }
        else {
            // A refreshed token: send what the hub refused while the old one was expired.
            for (const state of this.topics.values())
                if (state.held)
                    this.sendSubscribe(state);
            for (const request of this.requests.values())
                if (request.held)
                    this.sendRequest(request);
        }
    }
    onSnapshot(frame) {
        const state = this.topics.get(frame.topic);
        if (state === undefined || state.draining !== null)
            return;
        if (frame.id !== undefined && frame.id !== null && frame.id !== state.requestId)
            return;
        state.replica.load(frame);
        if (frame.id === state.requestId)
            state.requestId = null;
        state.failures = 0;
        this.settle(state, null);
        state.refresh();
        this.publish(state, {
            topic: frame.topic, revision: frame.revision, epoch: frame.epoch, ops: [], mutation: null, mutationId: null,
            actor: null, ts: null, deleted: false, snapshot: true, reset: Boolean(frame.reset), local: false,
        });
    }
    onPatch(frame) {
        const state = this.topics.get(frame.topic);
        if (state === undefined || state.draining !== null)
            return;
        let applied;
        try {
            applied = state.replica.apply(frame);
        }
        catch (error) {
            if (!(error instanceof ReplicaGap))
                throw error;
            this.resync(state);
            return;
        }
        if (!applied)
            return;
        this.settle(state, frame.mutationId ?? null);
        if (frame.deleted)
            state.pending = [];
        state.refresh();
        this.publish(state, {
            topic: frame.topic, revision: frame.revision, epoch: frame.epoch, ops: frame.ops,
            mutation: frame.mutation ?? null, mutationId: frame.mutationId ?? null, actor: frame.actor ?? null,
            ts: frame.ts ?? null, deleted: Boolean(frame.deleted), snapshot: false, reset: false, local: false,
        });
        if (frame.deleted) {
            // The hub ends a subscription after the change that deleted its CIM.
            this.topics.delete(state.topic);
            this.endTopic(state, null);
        }
    }
    onSubscribed(frame) {
        const state = this.topics.get(frame.topic);
        if (state === undefined || frame.id !== state.requestId)
            return;
        state.requestId = null;
        const replica = state.replica;
        if (!replica.isAt(frame.revision, frame.epoch, frame.commit)) {
            // The resume ended somewhere other than where this replica is: start again from a snapshot.
            replica.forget();
            this.resync(state);
            return;
        }
        state.failures = 0;
        if (this.settle(state, null))
            this.publishLocal(state);
    }
    onUnsubscribed(frame) {
        const state = this.topics.get(frame.topic);
        if (state === undefined)
            return;
        if (frame.id !== undefined && frame.id !== null) {
            if (frame.id === state.draining)
                state.draining = null; // what follows belongs to the new subscribe
            return;
        }
        // The hub ended the subscription on its own.
        this.retrySubscription(state, frame.error ? CimhubError.fromWire(frame.error) : null);
    }
    onResult(frame) {
        const request = this.requests.get(frame.id);
        if (request === undefined)
            return;
        this.requests.delete(frame.id);
        if (request.stored)
            this.persist();
        const { type: _type, id: _id, ...answer } = frame;
        request.resolve({ cimId: null, revision: null, duplicate: false, ...answer, result: answer.result ?? null });
    }
    onError(id, error) {
        if (id === null) {
            this.setState(this.state, error);
            if (error.code === "token_expired")
                this.onTokenExpired();
            return;
        }
        const request = this.requests.get(id);
        if (request !== undefined) {
            this.retryRequest(request, error);
            return;
        }
        for (const state of this.topics.values()) {
            if (state.requestId === id) {
                state.requestId = null;
                this.retrySubscription(state, error);
                return;
            }
        }
    }
    onTokenExpired() {
        if (!this.ready)
            return; // refused at connect: the close that follows refreshes and reconnects
        const ws = this.ws;
        this.refresh().then((token) => {
            if (ws === this.ws)
                this.send({ type: "auth", token });
        }, (error) => this.stop("stopped", error));
    }
    // -- subscriptions and requests ---------------------------------------------------------
    sendSubscribe(state) {
        state.held = false;
        state.requestId = this.nextId("s");
        const frame = { type: "subscribe", id: state.requestId, topic: state.topic };
        const resume = state.replica.resumePoint();
        if (resume !== null)
            frame.resume = resume;
        this.send(frame);
    }
    /** Subscribe again on this socket; the unsubscribe first makes the hub drop whatever it still holds. */
    resync(state) {
        if (!this.live())
            return; // the next `ready` resubscribes
        state.draining = this.nextId("u");
        this.send({ type: "unsubscribe", id: state.draining, topic: state.topic });
        this.sendSubscribe(state);
    }
    retrySubscription(state, error) {
        if (error === null || !error.retryable || state.failures >= RETRY_LIMIT) {
            this.topics.delete(state.topic);
            this.endTopic(state, error);
            return;
        }
        if (error.code === "token_expired") {
            state.held = true; // sent again once the fresh token is accepted
            return;
        }
        state.failures += 1;
        this.later(backoffDelay(state.failures, this.backoff), () => {
            if (this.topics.get(state.topic) === state)
                this.resync(state);
        });
    }
    endTopic(state, error) {
        for (const entry of state.pending)
            this.optimistic.delete(entry.mutationId);
        state.pending = [];
        state.error = error;
        state.snapshot = { ...state.snapshot, isLoading: false, error, pending: [] };
        for (const handle of [...state.handles])
            handle.end(error);
        state.handles.clear();
    }
    /**
     * A handle left. When it was the topic's last, tell the hub, after the current
     * task: a React StrictMode remount (unsubscribe, then subscribe again at once)
     * keeps the topic instead of dropping and reloading it.
     */
    release(state, handle) {
        state.handles.delete(handle);
        if (state.handles.size > 0 || state.releasing)
            return;
        state.releasing = true;
        queueMicrotask(() => {
            if (!state.releasing || state.handles.size > 0 || this.topics.get(state.topic) !== state)
                return;
            this.topics.delete(state.topic);
            for (const entry of state.pending)
                this.optimistic.delete(entry.mutationId);
            this.send({ type: "unsubscribe", id: this.nextId("u"), topic: state.topic });
        });
    }
    request(frame, stored, presenceOf) {
        if (this.stopped())
            return Promise.reject(this.error ?? new CimhubError("closed", "the client is closed"));
        return new Promise((resolve, reject) => {
            const request = {
                frame, resolve, reject, failures: 0, held: false, ...(stored ? { stored } : {}), ...(presenceOf ? { presenceOf } : {}),
            };
            this.requests.set(frame.id, request);
            if (stored)
                this.persist();
            if (this.live())
                this.sendRequest(request);
            this.connect();
        });
    }
    sendRequest(request) {
        request.held = false;
        this.send(request.frame);
    }
    retryRequest(request, error) {
        if (!error.retryable || request.failures >= RETRY_LIMIT) {
            this.requests.delete(request.frame.id);
            if (request.stored)
                this.persist();
            request.reject(error);
            return;
        }
        if (error.code === "token_expired") {
            request.held = true;
            return;
        }
        request.failures += 1;
        // The same frame, so a mutation keeps its mutationId and applies at most once.
        this.later(backoffDelay(request.failures, this.backoff), () => {
            if (this.requests.get(request.frame.id) === request && this.live())
                this.sendRequest(request);
        });
    }
}
