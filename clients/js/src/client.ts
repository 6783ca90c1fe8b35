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

import { newMutationId, type BackoffOptions } from "./backoff.js";
import type { Codec } from "./codec.js";
import { Connection, type ConnectionState, type ConnectionStatus, type TokenSource } from "./connection.js";
import { CimhubError } from "./errors.js";
import type { MutationArgsByName, PresenceState, QueryArgsByName, ResultFrame, ServerFrame } from "./generated.js";
import type { OptimisticUpdate } from "./optimistic.js";
import type { OutboxStore, StoredMutation } from "./outbox.js";
import { OwnPresence } from "./own-presence.js";
import { PendingUpdates } from "./pending.js";
import type { Change } from "./replica.js";
import { Requests, type RequestFrame } from "./requests.js";
import type { Subscription, TopicSnapshot } from "./subscription.js";
import { Topics } from "./topics.js";

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

export class CimhubClient {
  private readonly connection: Connection;
  private readonly requests: Requests;
  private readonly pending: PendingUpdates;
  private readonly topics: Topics;
  private readonly presence: OwnPresence;

  constructor(options: ClientOptions) {
    if (options?.token === undefined) throw new TypeError("pass a token (or a function that returns one)");
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

  get url(): string {
    return this.connection.url;
  }

  /** Seconds between the hub's pings, from `ready`. */
  get heartbeat(): number {
    return this.connection.heartbeat;
  }

  /** When the current token expires (epoch seconds), from `ready`. */
  get expiresAt(): number | null {
    return this.connection.expiresAt;
  }

  /** Tokens refreshed ahead of expiry so far (for tests and monitoring). */
  get refreshes(): number {
    return this.connection.refreshes;
  }

  /** `{state, error}`: the same object until the state changes. */
  get status(): ConnectionStatus {
    return this.connection.status;
  }

  get state(): ConnectionState {
    return this.connection.state;
  }

  get error(): Error | null {
    return this.connection.error;
  }

  /** Call `listener({state, error})` whenever the connection state changes; returns a function that stops it. */
  onStatus(listener: (status: ConnectionStatus) => void): () => void {
    return this.connection.onStatus(listener);
  }

  /** Open the connection. Subscribing or mutating first is fine: they wait. */
  connect(): this {
    this.connection.connect();
    return this;
  }

  /** Close for good: pending requests reject (and leave the outbox), subscriptions end. */
  close(): void {
    this.connection.stop("closed", null);
  }

  /** Subscribe to a topic (`cim:<id>`, `deal:<id>`, `messages:<id>`); every call returns its own handle. */
  subscribe<T = unknown>(topic: string, onChange?: (change: Change<T>) => void): Subscription<T> {
    if (this.connection.stopped()) {
      throw this.error ?? new CimhubError("closed", "the client is closed");
    }
    const handle = this.topics.subscribe<T>(topic);
    if (onChange) handle.onChange(onChange);
    this.connection.connect();
    return handle;
  }

  /** The latest state of a subscribed topic as one immutable object (undefined when nobody subscribes). */
  snapshotOf<T = unknown>(topic: string): TopicSnapshot<T> | undefined {
    return this.topics.get(topic)?.snapshot as TopicSnapshot<T> | undefined;
  }

  /**
   * Run a mutation; resolves `{result, cimId, revision, duplicate}` once the hub committed it.
   * With `optimistic` the change shows in the topic's `document` at once and is rolled back if refused.
   */
  mutate<N extends MutationName>(
    name: N,
    args: MutationArgsByName[N],
    options: MutateOptions<MutationArgsByName[N]> = {},
  ): Promise<MutationAnswer> {
    const mutationId = options.mutationId ?? newMutationId();
    const frame: RequestFrame = { type: "mutate", id: this.connection.nextId("m"), name, args, mutationId };
    if (options.expectedRevision !== undefined) frame.expectedRevision = options.expectedRevision;
    this.pending.add(name, args, mutationId, options.optimistic, options.topic);
    const stored: StoredMutation = {
      name, args, mutationId, optimistic: options.optimistic === true,
      ...(options.expectedRevision !== undefined ? { expectedRevision: options.expectedRevision } : {}),
    };
    return this.requests.send(frame, stored).then(
      (answer: MutationAnswer) => {
        this.pending.answer(mutationId, answer.revision ?? 0);
        return answer;
      },
      (error: Error) => {
        this.pending.drop(mutationId);
        throw error;
      },
    );
  }

  /** Run a query (`get`, `listByDeal`, ...); resolves the query's result. */
  query<N extends QueryName>(name: N, args: QueryArgsByName[N]): Promise<any> {
    return this.requests.send({ type: "query", id: this.connection.nextId("q"), name, args }).then((answer: ResultFrame) => answer.result);
  }

  /**
   * Show this connection on CIM `cimId` with `state` (`{activity, slideId?, sectionId?, name?}`);
   * null leaves. Resolves the presence id others see in `presence:<cimId>` (null after leaving).
   * The hub ends presence when the socket closes, so the client sets the last state again after
   * every reconnect (with a new presence id) until you leave. A state the hub refuses for good
   * (`invalid_args`, `not_found`) is forgotten and the promise rejects.
   */
  setPresence(cimId: string, state: PresenceState | null): Promise<string | null> {
    return this.presence.set(cimId, state);
  }

  /** This connection's presence id on `cimId` (null: not present, or not yet answered since the last reconnect). */
  presenceId(cimId: string): string | null {
    return this.presence.id(cimId);
  }

  private onReady(first: boolean): void {
    // A new socket: the hub knows nothing of us. Resume every subscription, re-send every request.
    // A refreshed token: send what the hub refused while the old one was expired.
    this.topics.resume(first);
    this.requests.resend(first);
    if (first) this.presence.restore();
  }

  private onFrame(frame: ServerFrame): void {
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
        const id = frame.id!; // the connection answers error frames without an id itself
        if (!this.requests.onError(id, error)) this.topics.onError(id, error);
        return undefined;
      }
      default:
        return undefined; // a newer hub's frame: ignore rather than fail
    }
  }

  private onStop(state: "stopped" | "closed", error: Error | null): void {
    this.requests.rejectAll(error ?? new CimhubError("closed", "the client was closed"), state === "closed");
    this.pending.clear();
    this.presence.clear();
    this.topics.endAll(error);
  }
}
