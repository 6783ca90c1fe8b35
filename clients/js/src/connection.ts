// The connection to the hub: one socket at a time, authenticated in-band, watched by a heartbeat
// watchdog, reopened with jittered backoff, its token refreshed ahead of expiry.
//
// It answers the frames that concern the connection itself (`ready`, `ping`, `pong`, an error
// frame without an id) and hands every other frame to its owner. Close codes 4400-4499 stop it
// (reconnecting unchanged would be refused again); any other close reconnects. What the owner
// must do lives in `ConnectionHooks`: resend its subscriptions and requests on every `ready`,
// and give everything up on `stopped`.

import { backoffDelay, hubUrl, type BackoffOptions } from "./backoff.js";
import { jsonCodec, type Codec } from "./codec.js";
import { CimhubError } from "./errors.js";
import { CLOSE_STOP_RANGE, CloseCode, type ReadyFrame, type ServerFrame } from "./generated.js";

const OPEN = 1; // WebSocket.OPEN, without needing a WebSocket class at import time
const WATCHDOG_HEARTBEATS = 2.5; // no frame (not even the hub's ping) for this long: presume the socket dead
const MAX_TIMER_MS = 2 ** 31 - 1;

export type ConnectionState = "idle" | "connecting" | "live" | "reconnecting" | "stopped" | "closed";
export interface ConnectionStatus {
  state: ConnectionState;
  error: Error | null;
}
export type TokenSource = string | (() => string | Promise<string>);

interface SocketLike {
  readyState: number;
  binaryType?: string;
  send(data: string | ArrayBufferLike | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}
type SocketClass = new (url: string, protocols?: string | string[]) => SocketLike;

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
export class Connection {
  readonly url: string;
  /** Seconds between the hub's pings, from `ready`. */
  heartbeat = 15;
  /** When the current token expires (epoch seconds), from `ready`. */
  expiresAt: number | null = null;
  /** Tokens refreshed ahead of expiry so far. */
  refreshes = 0;
  private statusValue: ConnectionStatus = { state: "idle", error: null };
  private readonly tokenSource: TokenSource;
  private token: string | null;
  private readonly refreshTokenFn: (() => string | Promise<string>) | null;
  private readonly refreshAheadS: number;
  private readonly SocketClass: SocketClass | undefined;
  private readonly backoff: BackoffOptions;
  private readonly codec: Codec;
  private readonly now: () => number;
  private attempts = 0;
  private ws: SocketLike | null = null;
  private ready = false; // the current socket's first `ready` arrived
  private ids = 0;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private watchdog: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshing: Promise<string> | null = null;
  private readonly statusListeners = new Set<(status: ConnectionStatus) => void>();

  constructor(
    options: ConnectionOptions,
    private readonly hooks: ConnectionHooks,
  ) {
    this.url = hubUrl(options.url);
    this.tokenSource = options.token;
    this.token = typeof options.token === "function" ? null : options.token;
    this.refreshTokenFn = options.refreshToken ?? (typeof options.token === "function" ? options.token : null);
    this.refreshAheadS = options.refreshAheadS ?? 60;
    this.SocketClass = (options.WebSocket ?? (globalThis as { WebSocket?: unknown }).WebSocket) as SocketClass | undefined;
    this.backoff = options.backoff ?? {};
    this.codec = options.codec ?? jsonCodec;
    this.now = options.now ?? Date.now;
  }

  get status(): ConnectionStatus {
    return this.statusValue;
  }

  get state(): ConnectionState {
    return this.statusValue.state;
  }

  get error(): Error | null {
    return this.statusValue.error;
  }

  onStatus(listener: (status: ConnectionStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** Open the socket unless it is open (or opening) already, or the client stopped. */
  connect(): void {
    if (this.state === "idle") void this.open();
  }

  stopped(): boolean {
    return this.state === "stopped" || this.state === "closed";
  }

  /** The socket is open and the hub accepted our token on it: frames sent now are answered. */
  live(): boolean {
    return this.ready && this.ws !== null && this.ws.readyState === OPEN;
  }

  /** Send on the current socket; dropped when there is none (the next `ready` resends what must arrive). */
  send(frame: unknown): void {
    if (this.ws !== null && this.ws.readyState === OPEN) this.ws.send(this.codec.encode(frame));
  }

  /** A frame id unique within this client, across sockets. */
  nextId(prefix: string): string {
    this.ids += 1;
    return `${prefix}${this.ids}`;
  }

  /** Run `fn` after the backoff delay for the `failures`-th retry; cancelled if the client stops. */
  retryLater(failures: number, fn: () => void): void {
    this.later(backoffDelay(failures, this.backoff), fn);
  }

  stop(state: "stopped" | "closed", error: Error | null): void {
    if (this.stopped()) return;
    this.statusValue = { state, error };
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    clearTimeout(this.watchdog);
    clearTimeout(this.refreshTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= OPEN) ws.close(CloseCode.NORMAL, "client closed");
    this.hooks.onStop(state, error);
    this.notify();
  }

  private async open(): Promise<void> {
    this.setState(this.attempts === 0 ? "connecting" : "reconnecting");
    let token: string | null;
    try {
      token = typeof this.tokenSource === "function" ? await this.tokenSource() : this.token;
      this.token = token;
    } catch {
      this.scheduleReconnect();
      return;
    }
    if (this.stopped()) return;
    if (typeof this.SocketClass !== "function") {
      this.stop("stopped", new TypeError("no WebSocket class: pass options.WebSocket"));
      return;
    }
    const ws = new this.SocketClass(this.url, [this.codec.subprotocol]);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.ready = false;
    ws.onopen = () => {
      if (ws === this.ws) this.send({ type: "auth", token });
      this.kickWatchdog();
    };
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      this.kickWatchdog();
      let frame: ServerFrame;
      try {
        frame = this.codec.decode(event.data as string | ArrayBuffer) as ServerFrame;
      } catch {
        return; // not a frame of ours
      }
      this.onFrame(frame);
    };
    ws.onclose = (event) => {
      if (ws === this.ws) this.onClose(event.code, event.reason);
    };
    ws.onerror = () => {}; // a close event always follows
  }

  private onClose(code: number, reason: string): void {
    this.ws = null;
    this.ready = false;
    this.hooks.onSocketClosed();
    clearTimeout(this.watchdog);
    clearTimeout(this.refreshTimer);
    if (this.stopped()) return;
    const hubError = this.error;
    if (code === CloseCode.AUTH_FAILED && (hubError as CimhubError | null)?.code === "token_expired" && this.refreshTokenFn) {
      // The token we connected with had expired: get a fresh one, then reconnect.
      this.refresh().then(() => this.scheduleReconnect(), (error: Error) => this.stop("stopped", error));
      return;
    }
    if (code >= CLOSE_STOP_RANGE[0] && code <= CLOSE_STOP_RANGE[1]) {
      this.stop("stopped", hubError ?? new CimhubError("unauthenticated", `the hub closed the connection: ${code} ${reason}`));
      return;
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped()) return;
    const delay = backoffDelay(this.attempts++, this.backoff);
    this.setState("reconnecting");
    this.later(delay, () => void this.open());
  }

  private kickWatchdog(): void {
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

  private setState(state: ConnectionState, error: Error | null = this.error): void {
    if (this.state !== state || this.error !== error) {
      this.statusValue = { state, error };
      this.notify();
    }
  }

  private notify(): void {
    for (const listener of this.statusListeners) listener(this.statusValue);
  }

  private later(seconds: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, seconds * 1000);
    this.timers.add(timer);
  }

  private refresh(): Promise<string> {
    // One refresh at a time, however many frames or timers ask for it.
    if (this.refreshing === null) {
      this.refreshing = (async () => {
        if (!this.refreshTokenFn) {
          throw new CimhubError("token_expired", "the token expired and no refreshToken callback was given");
        }
        const token = await this.refreshTokenFn();
        if (typeof token !== "string" || token === "") throw new CimhubError("token_expired", "refreshToken gave no token");
        this.token = token;
        return token;
      })().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  /** Ask for a fresh token `refreshAheadS` before `expiresAt` (at most half the remaining life) and send it in-band. */
  private scheduleRefresh(): void {
    clearTimeout(this.refreshTimer);
    if (this.expiresAt === null || this.refreshTokenFn === null) return;
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
      this.refresh().then(
        (token) => {
          if (ws !== this.ws || !this.live()) return; // a new socket authenticates with it anyway
          this.refreshes += 1;
          this.send({ type: "auth", token });
        },
        () => {}, // keep the current token; `token_expired` from the hub retries, then stops
      );
    }, Math.max(0, wait));
  }

  // -- frames about the connection itself ----------------------------------------------------

  private onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case "ready":
        return this.onReady(frame);
      case "ping":
        return this.send({ type: "pong", ts: frame.ts ?? null });
      case "pong":
        return undefined;
      case "error":
        if (frame.id === undefined || frame.id === null) return this.onConnectionError(CimhubError.fromWire(frame.error));
        return this.hooks.onFrame(frame);
      default:
        return this.hooks.onFrame(frame);
    }
  }

  private onReady(frame: ReadyFrame): void {
    this.heartbeat = frame.heartbeat ?? this.heartbeat;
    this.expiresAt = frame.expiresAt ?? null;
    this.kickWatchdog();
    const first = !this.ready;
    this.ready = true;
    this.attempts = 0;
    this.setState("live", null);
    this.scheduleRefresh();
    this.hooks.onReady(first);
  }

  private onConnectionError(error: CimhubError): void {
    this.setState(this.state, error);
    if (error.code === "token_expired") this.onTokenExpired();
  }

  private onTokenExpired(): void {
    if (!this.ready) return; // refused at connect: the close that follows refreshes and reconnects
    const ws = this.ws;
    this.refresh().then(
      (token) => {
        if (ws === this.ws) this.send({ type: "auth", token });
      },
      (error: Error) => this.stop("stopped", error),
    );
  }
}
