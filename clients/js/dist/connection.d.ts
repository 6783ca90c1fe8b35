import { type BackoffOptions } from "./backoff.js";
import { type Codec } from "./codec.js";
import { type ServerFrame } from "./generated.js";
export type ConnectionState = "idle" | "connecting" | "live" | "reconnecting" | "stopped" | "closed";
export interface ConnectionStatus {
    state: ConnectionState;
    error: Error | null;
}
export type TokenSource = string | (() => string | Promise<string>);
export interface ConnectionOptions {
    url?: string;
    token: TokenSource;
    refreshToken?: () => string | Promise<string>;
    refreshAheadS?: number;
    WebSocket?: unknown;
    backoff?: BackoffOptions;
    codec?: Codec;
    now?: () => number;
}
/** What the connection's owner does when the connection changes; each is called synchronously. */
export interface ConnectionHooks {
    /** A `ready` arrived. `first`: a new socket, the hub knows nothing of us; otherwise a refreshed token was accepted. */
    onReady(first: boolean): void;
    /** Any frame the connection does not answer itself. */
    onFrame(frame: ServerFrame): void;
    /** The socket closed (a new one may follow). */
    onSocketClosed(): void;
    /** Stopped or closed for good, with the reason: reject and end what waits. */
    onStop(state: "stopped" | "closed", error: Error | null): void;
}
/** @internal The socket side of `CimhubClient`. */
export declare class Connection {
    private readonly hooks;
    readonly url: string;
    /** Seconds between the hub's pings, from `ready`. */
    heartbeat: number;
    /** When the current token expires (epoch seconds), from `ready`. */
    expiresAt: number | null;
    /** Tokens refreshed ahead of expiry so far. */
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
    private ids;
    private readonly timers;
    private watchdog;
    private refreshTimer;
    private refreshing;
    private readonly statusListeners;
    constructor(options: ConnectionOptions, hooks: ConnectionHooks);
    get status(): ConnectionStatus;
    get state(): ConnectionState;
    get error(): Error | null;
    onStatus(listener: (status: ConnectionStatus) => void): () => void;
    /** Open the socket unless it is open (or opening) already, or the client stopped. */
    connect(): void;
    stopped(): boolean;
    /** The socket is open and the hub accepted our token on it: frames sent now are answered. */
    live(): boolean;
    /** Send on the current socket; dropped when there is none (the next `ready` resends what must arrive). */
    send(frame: unknown): void;
    /** A frame id unique within this client, across sockets. */
    nextId(prefix: string): string;
    /** Run `fn` after the backoff delay for the `failures`-th retry; cancelled if the client stops. */
    retryLater(failures: number, fn: () => void): void;
    stop(state: "stopped" | "closed", error: Error | null): void;
    private open;
    private onClose;
    private scheduleReconnect;
    private kickWatchdog;
    private setState;
    private notify;
    private later;
    private refresh;
    /** Ask for a fresh token `refreshAheadS` before `expiresAt` (at most half the remaining life) and send it in-band. */
    private scheduleRefresh;
    private onFrame;
    private onReady;
    private onConnectionError;
    private onTokenExpired;
}
