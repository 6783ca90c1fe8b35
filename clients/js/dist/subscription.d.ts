import { type PendingUpdate } from "./optimistic.js";
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
export declare class Subscription<T = unknown> {
    private readonly state;
    private readonly release;
    readonly topic: string;
    /** Resolves once the topic's document is here (at once if another handle already loaded it). */
    readonly ready: Promise<Subscription<T>>;
    ended: boolean;
    error: Error | null;
    private readonly listeners;
    private readonly endListeners;
    private resolveReady;
    private rejectReady;
    /** @internal */
    constructor(state: TopicState<T>, release: (handle: Subscription<T>) => void);
    /** The document to show: the hub's, with pending optimistic updates on top (null until loaded, or deleted). */
    get document(): T | null;
    /** The hub's document, without optimistic updates. */
    get confirmed(): T | null;
    get revision(): number;
    /** Call `listener(change)` on every snapshot, patch and optimistic change; returns a function that stops it. */
    onChange(listener: (change: Change<T>) => void): () => void;
    /** Call `listener(error)` when the subscription ends (error null: the CIM was deleted or you unsubscribed). */
    onEnd(listener: (error: Error | null) => void): () => void;
    /** Drop this handle; the hub is told once the topic's last handle is gone. */
    unsubscribe(): void;
    /** @internal */
    emit(change: Change<T>): void;
    /** @internal */
    end(error: Error | null): void;
}
/** @internal The client's state of one topic, shared by all its handles. */
export declare class TopicState<T = unknown> {
    readonly topic: string;
    readonly replica: Replica<T>;
    readonly handles: Set<Subscription<T>>;
    requestId: string | null;
    draining: string | null;
    held: boolean;
    failures: number;
    error: Error | null;
    pending: PendingUpdate[];
    view: T | null;
    snapshot: TopicSnapshot<T>;
    releasing: boolean;
    constructor(topic: string);
    /** Recompute the shown document from the confirmed one and the pending updates. */
    refresh(): void;
    /** The pending updates changed (not the hub's document): tell the handles, once the document is loaded. */
    publishLocal(): void;
    /** Tell every handle of a change, and keep it as the topic's snapshot. */
    publish(base: Omit<Change, "document" | "confirmed" | "pending">): void;
    /** The topic ended (the caller has already forgotten its pending updates): end every handle. */
    end(error: Error | null): void;
}
