import { type BackoffOptions } from "./backoff.js";
import { type ErrorCodeValue, type MutationArgsByName, type PresenceState, type QueryArgsByName } from "./generated.js";
import { type OptimisticUpdate, type PendingUpdate } from "./optimistic.js";
import { Replica, type Change } from "./replica.js";
export type ConnectionState = "idle" | "connecting" | "live" | "reconnecting" | "stopped" | "closed";
export interface ConnectionStatus {
    state: ConnectionState;
    error: Error | null;
}
export type TokenSource = string | (() => string | Promise<string>);
export type MutationName = keyof MutationArgsByName;
export type QueryName = keyof QueryArgsByName;
/** How frames travel; the default is JSON text (`cimhub.json.v1`). Pass a MessagePack codec to use `cimhub.msgpack.v1`. */
export interface Codec {
    subprotocol: string;
    encode(frame: unknown): string | ArrayBufferLike | ArrayBufferView;
    decode(data: string | ArrayBuffer): unknown;
}
export declare const jsonCodec: Codec;
export interface ClientOptions {
    /** Hub URL (http(s) base or ws(s)); default: the page's origin. */
    url?: string;
    /** A token, or a function returning one (called on every connect and for every refresh). */
    token: TokenSource;
    /** Returns a fresh token; default: `token` when it is a function. */
    refreshToken?: () => string | Promise<string>;
    /** Refresh this many seconds before the token expires (at most half its remaining life). Default 60. */
    refreshAheadS?: number;
    /** WebSocket class, for environments without a global one. */
    WebSocket?: unknown;
    backoff?: BackoffOptions;
    codec?: Codec;
    /**
     * Where mutations not yet answered are kept, so they survive a closed tab or a reload
     * (`webStorageOutbox(localStorage)`). They are sent again with their mutation ids on the
     * next start, so each still applies once. Default: memory only.
     */
    outbox?: OutboxStore;
    /** Milliseconds since the epoch; for tests. */
    now?: () => number;
}
/** A mutation waiting for the hub's answer, as an outbox keeps it. */
export interface StoredMutation {
    name: string;
    args: unknown;
    mutationId: string;
    expectedRevision?: number;
    /** Shown with the built-in optimistic update again when its topic is subscribed after a restart. */
    optimistic: boolean;
}
export interface OutboxStore {
    load(): StoredMutation[];
    save(mutations: StoredMutation[]): void;
}
/** An outbox in Web Storage (`localStorage`: shared by the origin's tabs; a mutation sent twice still applies once). */
export declare function webStorageOutbox(storage: Pick<Storage, "getItem" | "setItem" | "removeItem">, key?: string): OutboxStore;
export interface MutationAnswer<R = Record<string, unknown>> {
    result: R | null;
    cimId: string | null;
    revision: number | null;
    duplicate: boolean;
}
export interface MutateOptions<A> {
    /** Pass the same id to retry a call whose outcome you do not know. Default: a fresh UUID. */
    mutationId?: string;
    expectedRevision?: number;
    /**
     * Show the change at once: `true` uses the built-in update for this mutation
     * (`cimUpdates`), a function is your own `(document, args) => document`.
     */
    optimistic?: boolean | OptimisticUpdate<any, A>;
    /** The topic the optimistic update applies to; default `cim:<args.cimId>`. */
    topic?: string;
}
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
declare class TopicState<T = unknown> {
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
}
export declare class CimhubClient {
    readonly url: string;
    /** Seconds between the hub's pings, from `ready`. */
    heartbeat: number;
    /** When the current token expires (epoch seconds), from `ready`. */
    expiresAt: number | null;
    /** Tokens refreshed ahead of expiry so far (for tests and monitoring). */
    refreshes: number;
    private statusValue;
    private readonly tokenSource;
    private token;
    private readonly refreshTokenFn;
    private readonly refreshAheadS;
    private readonly SocketClass;
    private readonly backoff;
    private readonly codec;
    private readonly now;
    private attempts;
    private ws;
    private ready;
    private readonly topics;
    private readonly requests;
    private readonly optimistic;
    private ids;
    private readonly timers;
    private watchdog;
    private refreshTimer;
    private refreshing;
    private readonly statusListeners;
    private readonly outbox;
    private restored;
    private readonly presence;
    constructor(options: ClientOptions);
    /** Queue the mutations an earlier run left unanswered, with their ids; they go out on connect. */
    private restore;
    private persist;
    /** `{state, error}`: the same object until the state changes. */
    get status(): ConnectionStatus;
    get state(): ConnectionState;
    get error(): Error | null;
    /** Call `listener({state, error})` whenever the connection state changes; returns a function that stops it. */
    onStatus(listener: (status: ConnectionStatus) => void): () => void;
    /** Open the connection. Subscribing or mutating first is fine: they wait. */
    connect(): this;
    /** Close for good: pending requests reject (and leave the outbox), subscriptions end. */
    close(): void;
    /** Subscribe to a topic (`cim:<id>`, `deal:<id>`, `messages:<id>`); every call returns its own handle. */
    subscribe<T = unknown>(topic: string, onChange?: (change: Change<T>) => void): Subscription<T>;
    /** The latest state of a subscribed topic as one immutable object (undefined when nobody subscribes). */
    snapshotOf<T = unknown>(topic: string): TopicSnapshot<T> | undefined;
    /**
     * Run a mutation; resolves `{result, cimId, revision, duplicate}` once the hub committed it.
     * With `optimistic` the change shows in the topic's `document` at once and is rolled back if refused.
     */
    mutate<N extends MutationName>(name: N, args: MutationArgsByName[N], options?: MutateOptions<MutationArgsByName[N]>): Promise<MutationAnswer>;
    /** Run a query (`get`, `listByDeal`, ...); resolves the query's result. */
    query<N extends QueryName>(name: N, args: QueryArgsByName[N]): Promise<any>;
    /**
     * Show this connection on CIM `cimId` with `state` (`{activity, slideId?, sectionId?, name?}`);
     * null leaves. Resolves the presence id others see in `presence:<cimId>` (null after leaving).
     * The hub ends presence when the socket closes, so the client sets the last state again after
     * every reconnect (with a new presence id) until you leave. A state the hub refuses for good
     * (`invalid_args`, `not_found`) is forgotten and the promise rejects.
     */
    setPresence(cimId: string, state: PresenceState | null): Promise<string | null>;
    /** This connection's presence id on `cimId` (null: not present, or not yet answered since the last reconnect). */
    presenceId(cimId: string): string | null;
    private sendPresence;
    /** A new socket: the hub forgot this connection's presence. Set each again, unless a frame for it is on its way. */
    private restorePresence;
    /** The presence id changed: listeners of `presence:<cimId>` hear a local change, so they can tell which member is theirs. */
    private publishPresence;
    private addOptimistic;
    private answerOptimistic;
    private dropOptimistic;
    /** Drop the updates a confirmed change now includes; true if any went. */
    private settle;
    private publishLocal;
    private publish;
    private open;
    private onClose;
    private scheduleReconnect;
    private kickWatchdog;
    private stop;
    private stopped;
    private live;
    private setState;
    private notify;
    private send;
    private later;
    private nextId;
    private refresh;
    /** Ask for a fresh token `refreshAheadS` before `expiresAt` (at most half the remaining life) and send it in-band. */
    private scheduleRefresh;
    private onFrame;
    private onReady;
    private onSnapshot;
    private onPatch;
    private onSubscribed;
    private onUnsubscribed;
    private onResult;
    private onError;
    private onTokenExpired;
    private sendSubscribe;
    /** Subscribe again on this socket; the unsubscribe first makes the hub drop whatever it still holds. */
    private resync;
    private retrySubscription;
    private endTopic;
    /**
     * A handle left. When it was the topic's last, tell the hub, after the current
     * task: a React StrictMode remount (unsubscribe, then subscribe again at once)
     * keeps the topic instead of dropping and reloading it.
     */
    private release;
    private request;
    private sendRequest;
    private retryRequest;
}
export type { ErrorCodeValue };
