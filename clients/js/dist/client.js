// CimhubClient: live replicas of topics over one WebSocket, exactly-once and optimistic mutations.
//
// It composes the parts, each in its own module: the connection (connection.ts: socket, auth,
// reconnect, token refresh), requests and their answers (requests.ts, with the outbox of
// outbox.ts), subscriptions (topics.ts, subscription.ts), optimistic updates (pending.ts over
// the pure updates of optimistic.ts) and this connection's presence (own-presence.ts).
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
import { newMutationId } from "./backoff.js";
import { Connection } from "./connection.js";
import { CimhubError } from "./errors.js";
import { OwnPresence } from "./own-presence.js";
import { PendingUpdates } from "./pending.js";
import { Requests } from "./requests.js";
import { Topics } from "./topics.js";
export class CimhubClient {
    connection;
    requests;
    pending;
    topics;
    presence;
    constructor(options) {
        if (options?.token === undefined)
            throw new TypeError("pass a token (or a function that returns one)");
        this.connection = new Connection(options, {
            onReady: (first) => this.onReady(first),
            onFrame: (frame) => this.onFrame(frame),
            onSocketClosed: () => this.presence.socketClosed(),
            onStop: (state, error) => this.onStop(state, error),
        });
        const outbox = options.outbox ?? null;
        this.requests = new Requests(this.connection, outbox);
        this.pending = new PendingUpdates((topic) => this.topics.get(topic));
        this.topics = new Topics(this.connection, this.pending);
        this.presence = new OwnPresence(this.requests, this.topics, (prefix) => this.connection.nextId(prefix));
        // Queue the mutations an earlier run left unanswered, with their ids; they go out on connect.
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
        if (onChange)
            handle.onChange(onChange);
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
        if (options.expectedRevision !== undefined)
            frame.expectedRevision = options.expectedRevision;
        this.pending.add(name, args, mutationId, options.optimistic, options.topic);
        const stored = {
            name, args, mutationId, optimistic: options.optimistic === true,
            ...(options.expectedRevision !== undefined ? { expectedRevision: options.expectedRevision } : {}),
        };
        return this.requests.send(frame, stored).then((answer) => {
            this.pending.answer(mutationId, answer.revision ?? 0);
            return answer;
        }, (error) => {
            this.pending.drop(mutationId);
            throw error;
        });
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
        // A new socket: the hub knows nothing of us. Resume every subscription, re-send every request.
        // A refreshed token: send what the hub refused while the old one was expired.
        this.topics.resume(first);
        this.requests.resend(first);
        if (first)
            this.presence.restore();
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
                const id = frame.id; // the connection answers error frames without an id itself
                if (!this.requests.onError(id, error))
                    this.topics.onError(id, error);
                return undefined;
            }
            default:
                return undefined; // a newer hub's frame: ignore rather than fail
        }
    }
    onStop(state, error) {
        this.requests.rejectAll(error ?? new CimhubError("closed", "the client was closed"), state === "closed");
        this.pending.clear();
        this.presence.clear();
        this.topics.endAll(error);
    }
}
