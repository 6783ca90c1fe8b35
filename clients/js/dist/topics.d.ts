import type { Connection } from "./connection.js";
import { CimhubError } from "./errors.js";
import type { PatchFrame, SnapshotFrame, SubscribedFrame, UnsubscribedFrame } from "./generated.js";
import type { PendingUpdates } from "./pending.js";
import { Subscription, TopicState } from "./subscription.js";
/** @internal The topics of one client. */
export declare class Topics {
    private readonly connection;
    private readonly pending;
    private readonly states;
    constructor(connection: Connection, pending: PendingUpdates);
    get(topic: string): TopicState<any> | undefined;
    /** A new handle on `topic`; the first one subscribes (now if live, else on the next `ready`). */
    subscribe<T>(topic: string): Subscription<T>;
    /** A new socket (`all`: the hub knows nothing of us, resume every topic), or a refreshed token (only those held). */
    resume(all: boolean): void;
    /** The client stopped: end every topic with `error`. */
    endAll(error: Error | null): void;
    onSnapshot(frame: SnapshotFrame): void;
    onPatch(frame: PatchFrame): void;
    onSubscribed(frame: SubscribedFrame): void;
    onUnsubscribed(frame: UnsubscribedFrame): void;
    /** The hub refused frame `id`: retry or end the topic it subscribed. False when no subscribe has that id. */
    onError(id: string, error: CimhubError): boolean;
    private sendSubscribe;
    /** Subscribe again on this socket; the unsubscribe first makes the hub drop whatever it still holds. */
    private resync;
    private retry;
    private end;
    /**
     * A handle left. When it was the topic's last, tell the hub, after the current
     * task: a React StrictMode remount (unsubscribe, then subscribe again at once)
     * keeps the topic instead of dropping and reloading it.
     */
    private release;
}
