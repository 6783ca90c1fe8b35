// A subscribed topic on the client: the state its handles share (replica, pending optimistic
// updates, the snapshot React reads) and the handle each `subscribe` call returns.

import { applyPending, type PendingUpdate } from "./optimistic.js";
import { Replica, type Change } from "./replica.js";

/** What `snapshotOf(topic)` returns: one immutable object per change, for `useSyncExternalStore`. */
export interface TopicSnapshot<T = unknown> {
  document: T | null;
  revision: number;
  isLoading: boolean;
  error: Error | null;
  pending: readonly string[];
  lastChange: Change<T> | null;
}

/** One caller's handle on a topic; made by `CimhubClient.subscribe`. */
export class Subscription<T = unknown> {
  readonly topic: string;
  /** Resolves once the topic's document is here (at once if another handle already loaded it). */
  readonly ready: Promise<Subscription<T>>;
  ended = false;
  error: Error | null = null;
  private readonly listeners = new Set<(change: Change<T>) => void>();
  private readonly endListeners = new Set<(error: Error | null) => void>();
  private resolveReady!: (value: Subscription<T>) => void;
  private rejectReady!: (error: Error) => void;

  /** @internal */
  constructor(
    private readonly state: TopicState<T>,
    private readonly release: (handle: Subscription<T>) => void,
  ) {
    this.topic = state.topic;
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => {}); // rejected only when the subscription ends; end listeners hear it too
    if (state.replica.loaded) this.resolveReady(this);
  }

  /** The document to show: the hub's, with pending optimistic updates on top (null until loaded, or deleted). */
  get document(): T | null {
    return this.state.view;
  }

  /** The hub's document, without optimistic updates. */
  get confirmed(): T | null {
    return this.state.replica.document;
  }

  get revision(): number {
    return this.state.replica.revision;
  }

  /** Call `listener(change)` on every snapshot, patch and optimistic change; returns a function that stops it. */
  onChange(listener: (change: Change<T>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Call `listener(error)` when the subscription ends (error null: the CIM was deleted or you unsubscribed). */
  onEnd(listener: (error: Error | null) => void): () => void {
    this.endListeners.add(listener);
    return () => this.endListeners.delete(listener);
  }

  /** Drop this handle; the hub is told once the topic's last handle is gone. */
  unsubscribe(): void {
    if (this.ended) return;
    this.release(this);
    this.end(null);
  }

  /** @internal */
  emit(change: Change<T>): void {
    this.resolveReady(this);
    for (const listener of this.listeners) listener(change);
  }

  /** @internal */
  end(error: Error | null): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    if (error) this.rejectReady(error);
    else this.resolveReady(this);
    for (const listener of this.endListeners) listener(error);
  }
}

/** @internal The client's state of one topic, shared by all its handles. */
export class TopicState<T = unknown> {
  readonly replica: Replica<T>;
  readonly handles = new Set<Subscription<T>>();
  requestId: string | null = null; // the subscribe frame waiting for its snapshot/subscribed
  draining: string | null = null; // an unsubscribe sent before resubscribing: frames until its answer are stale
  held = false; // refused while the token was expired: subscribe again after the next `ready`
  failures = 0;
  error: Error | null = null;
  pending: PendingUpdate[] = [];
  view: T | null = null;
  snapshot: TopicSnapshot<T>;
  releasing = false;

  constructor(readonly topic: string) {
    this.replica = new Replica<T>(topic);
    this.snapshot = { document: null, revision: 0, isLoading: true, error: null, pending: [], lastChange: null };
  }

  /** Recompute the shown document from the confirmed one and the pending updates. */
  refresh(): void {
    this.view = applyPending(this.replica.document, this.pending);
  }

  /** The pending updates changed (not the hub's document): tell the handles, once the document is loaded. */
  publishLocal(): void {
    if (!this.replica.loaded) return;
    this.refresh();
    this.publish({
      topic: this.topic, revision: this.replica.revision, epoch: this.replica.epoch, ops: [],
      mutation: null, mutationId: null, actor: null, ts: null,
      deleted: false, snapshot: false, reset: false, local: true,
    });
  }

  /** Tell every handle of a change, and keep it as the topic's snapshot. */
  publish(base: Omit<Change, "document" | "confirmed" | "pending">): void {
    const change: Change<T> = {
      ...base, document: this.view, confirmed: this.replica.document, pending: this.pending.map((e) => e.mutationId),
    };
    this.snapshot = {
      document: this.view, revision: this.replica.revision, isLoading: false, error: null,
      pending: change.pending, lastChange: change,
    };
    for (const handle of [...this.handles]) handle.emit(change);
  }

  /** The topic ended (the caller has already forgotten its pending updates): end every handle. */
  end(error: Error | null): void {
    this.pending = [];
    this.error = error;
    this.snapshot = { ...this.snapshot, isLoading: false, error, pending: [] };
    for (const handle of [...this.handles]) handle.end(error);
    this.handles.clear();
  }
}
