// A subscribed topic on the client: the state its handles share (replica, pending optimistic
// updates, the snapshot React reads) and the handle each `subscribe` call returns.
import { applyPending } from "./optimistic.js";
import { Replica } from "./replica.js";
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
export class TopicState {
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
    /** The pending updates changed (not the hub's document): tell the handles, once the document is loaded. */
    publishLocal() {
        if (!this.replica.loaded)
            return;
        this.refresh();
        this.publish({
            topic: this.topic, revision: this.replica.revision, epoch: this.replica.epoch, ops: [],
            mutation: null, mutationId: null, actor: null, ts: null,
            deleted: false, snapshot: false, reset: false, local: true,
        });
    }
    /** Tell every handle of a change, and keep it as the topic's snapshot. */
    publish(base) {
        const change = {
            ...base, document: this.view, confirmed: this.replica.document, pending: this.pending.map((e) => e.mutationId),
        };
        this.snapshot = {
            document: this.view, revision: this.replica.revision, isLoading: false, error: null,
            pending: change.pending, lastChange: change,
        };
        for (const handle of [...this.handles])
            handle.emit(change);
    }
    /** The topic ended (the caller has already forgotten its pending updates): end every handle. */
    end(error) {
        this.pending = [];
        this.error = error;
        this.snapshot = { ...this.snapshot, isLoading: false, error, pending: [] };
        for (const handle of [...this.handles])
            handle.end(error);
        this.handles.clear();
    }
}
