import { type BackoffOptions } from "./backoff.js";
import type { Codec } from "./codec.js";
import { type ConnectionState, type ConnectionStatus, type TokenSource } from "./connection.js";
import type { MutationArgsByName, PresenceState, QueryArgsByName } from "./generated.js";
import type { OptimisticUpdate } from "./optimistic.js";
import type { OutboxStore } from "./outbox.js";
import type { Change } from "./replica.js";
import type { Subscription, TopicSnapshot } from "./subscription.js";
export type MutationName = keyof MutationArgsByName;
export type QueryName = keyof QueryArgsByName;
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
export declare class CimhubClient {
    private readonly connection;
    private readonly requests;
    private readonly pending;
    private readonly topics;
    private readonly presence;
    constructor(options: ClientOptions);
    get url(): string;
    /** Seconds between the hub's pings, from `ready`. */
    get heartbeat(): number;
    /** When the current token expires (epoch seconds), from `ready`. */
    get expiresAt(): number | null;
    /** Tokens refreshed ahead of expiry so far (for tests and monitoring). */
    get refreshes(): number;
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
    private onReady;
    private onFrame;
    private onStop;
}
