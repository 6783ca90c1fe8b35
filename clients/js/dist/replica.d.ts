import type { PatchFrame, SnapshotFrame } from "./generated.js";
import { type JsonOp } from "./patch.js";
/** One snapshot or patch as a listener sees it. */
export interface Change<T = unknown> {
    topic: string;
    revision: number;
    epoch: string;
    /** The document listeners should show: the hub's, with pending optimistic updates on top. */
    document: T | null;
    /** The hub's document at `revision`, without optimistic updates. */
    confirmed: T | null;
    ops: JsonOp[];
    mutation: string | null;
    mutationId: string | null;
    actor: string | null;
    ts: number | null;
    deleted: boolean;
    snapshot: boolean;
    reset: boolean;
    /** True for a change made only by optimistic updates being added or dropped (no new revision). */
    local: boolean;
    /** Mutation ids of the optimistic updates still applied on top. */
    pending: string[];
}
/**
 * `document` at `revision` of `epoch`, as confirmed by the hub.
 *
 * For sequenced topics (`cim:`, `messages:`) patches must come as r+1, r+2, ...;
 * repeats are ignored (a resume may replay what is already here) and anything
 * else throws ReplicaGap. A `cim:` or `messages:` revision is also named by its commit id, and
 * resuming names it, so after Redis came back older the hub answers with a
 * reset snapshot rather than patches of another history. A `deal:` topic is not sequenced: its patches apply as
 * they come and a lost place is repaired with a fresh snapshot.
 */
export declare class Replica<T = unknown> {
    readonly topic: string;
    readonly sequenced: boolean;
    document: T | null;
    revision: number;
    epoch: string;
    /** The commit id of `revision`, for topics that have them (protocol 2). */
    commit: string | null;
    loaded: boolean;
    constructor(topic: string);
    /** What to put in a subscribe frame's `resume`: null means "send me a snapshot". */
    resumePoint(): {
        revision: number;
        epoch: string;
        commit?: string;
    } | null;
    /** Whether the replica holds exactly this change (a `subscribed` frame's end point). */
    isAt(revision: number, epoch: string, commit: string | null | undefined): boolean;
    /** Drop the state, so the next subscribe asks for a fresh snapshot. */
    forget(): void;
    /** Replace the state with a snapshot frame. */
    load(frame: SnapshotFrame): void;
    /** Apply a patch frame; false for a repeat (or before any snapshot). Throws ReplicaGap. */
    apply(frame: PatchFrame): boolean;
}
