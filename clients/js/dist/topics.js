// Subscriptions: the topics this client follows, each a sequenced replica kept across reconnects.
//
// A topic's confirmed document follows the hub's revisions in order, without gaps: after a
// reconnect it resumes from the revision it holds and the hub sends only what was missed (or a
// snapshot marked `reset`); a gap or a resume that ends elsewhere resubscribes from a snapshot.
// Topics are reference-counted: the hub is told to unsubscribe only when the last handle goes.
import { CimhubError, ReplicaGap } from "./errors.js";
import { Subscription, TopicState } from "./subscription.js";
const RETRY_LIMIT = 5;
/** @internal The topics of one client. */
export class Topics {
    connection;
    pending;
    states = new Map();
    constructor(connection, pending) {
        this.connection = connection;
        this.pending = pending;
    }
    get(topic) {
        return this.states.get(topic);
    }
    /** A new handle on `topic`; the first one subscribes (now if live, else on the next `ready`). */
    subscribe(topic) {
        let state = this.states.get(topic);
        if (state === undefined) {
            state = new TopicState(topic);
            this.states.set(topic, state);
            this.pending.attachRestored(state);
            if (this.connection.live())
                this.sendSubscribe(state);
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
                state.draining = null; // an unsubscribe of the old socket's will never be answered
                this.sendSubscribe(state);
            }
            else if (state.held) {
                this.sendSubscribe(state);
            }
        }
    }
    /** The client stopped: end every topic with `error`. */
    endAll(error) {
        for (const state of this.states.values())
            this.end(state, error);
        this.states.clear();
    }
    onSnapshot(frame) {
        const state = this.states.get(frame.topic);
        if (state === undefined || state.draining !== null)
            return;
        if (frame.id !== undefined && frame.id !== null && frame.id !== state.requestId)
            return;
        state.replica.load(frame);
        if (frame.id === state.requestId)
            state.requestId = null;
        state.failures = 0;
        this.pending.settle(state, null);
        state.refresh();
        state.publish({
            topic: frame.topic, revision: frame.revision, epoch: frame.epoch, ops: [], mutation: null, mutationId: null,
            actor: null, ts: null, deleted: false, snapshot: true, reset: Boolean(frame.reset), local: false,
        });
    }
    onPatch(frame) {
        const state = this.states.get(frame.topic);
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
        this.pending.settle(state, frame.mutationId ?? null);
        if (frame.deleted)
            state.pending = [];
        state.refresh();
        state.publish({
            topic: frame.topic, revision: frame.revision, epoch: frame.epoch, ops: frame.ops,
            mutation: frame.mutation ?? null, mutationId: frame.mutationId ?? null, actor: frame.actor ?? null,
            ts: frame.ts ?? null, deleted: Boolean(frame.deleted), snapshot: false, reset: false, local: false,
        });
        if (frame.deleted) {
            // The hub ends a subscription after the change that deleted its CIM.
            this.states.delete(state.topic);
            this.end(state, null);
        }
    }
    onSubscribed(frame) {
        const state = this.states.get(frame.topic);
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
        if (this.pending.settle(state, null))
            state.publishLocal();
    }
    onUnsubscribed(frame) {
        const state = this.states.get(frame.topic);
        if (state === undefined)
            return;
        if (frame.id !== undefined && frame.id !== null) {
            if (frame.id === state.draining)
                state.draining = null; // what follows belongs to the new subscribe
            return;
        }
        // The hub ended the subscription on its own.
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
        if (resume !== null)
            frame.resume = resume;
        this.connection.send(frame);
    }
    /** Subscribe again on this socket; the unsubscribe first makes the hub drop whatever it still holds. */
    resync(state) {
        if (!this.connection.live())
            return; // the next `ready` resubscribes
        state.draining = this.connection.nextId("u");
        this.connection.send({ type: "unsubscribe", id: state.draining, topic: state.topic });
        this.sendSubscribe(state);
    }
    retry(state, error) {
        if (error === null || !error.retryable || state.failures >= RETRY_LIMIT) {
            this.states.delete(state.topic);
            this.end(state, error);
            return;
        }
        if (error.code === "token_expired") {
            state.held = true; // sent again once the fresh token is accepted
            return;
        }
        state.failures += 1;
        this.connection.retryLater(state.failures, () => {
            if (this.states.get(state.topic) === state)
                this.resync(state);
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
        if (state.handles.size > 0 || state.releasing)
            return;
        state.releasing = true;
        queueMicrotask(() => {
            if (!state.releasing || state.handles.size > 0 || this.states.get(state.topic) !== state)
                return;
            this.states.delete(state.topic);
            this.pending.forget(state);
            this.connection.send({ type: "unsubscribe", id: this.connection.nextId("u"), topic: state.topic });
        });
    }
}
