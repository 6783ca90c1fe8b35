import type { CimhubClient, MutateOptions, MutationAnswer } from "./client.js";
import type { Cim, RestoreRevisionArgs } from "./generated.js";
import type { JsonOp } from "./patch.js";
/** `cimAt`: the CIM as it was at `revision`. */
export interface CimAtResult {
    cim: Cim;
    revision: number;
    epoch: string;
    /** Patches the hub applied after the nearest snapshot (fewer than CIMHUB_HISTORY_SNAPSHOT_EVERY). */
    patchesApplied: number;
}
/** One patch-log entry: the change that made revision `rev`. */
export interface HistoryEntry {
    cimId: string;
    rev: number;
    epoch: string;
    ops: JsonOp[];
    mutation: string | null;
    mutationId: string | null;
    actor: string | null;
    ts: number | null;
    deleted?: boolean;
}
/** `cimDiff`: the entries after `from` up to `to`, oldest first. */
export interface CimDiffResult {
    cimId: string;
    epoch: string;
    from: number;
    to: number;
    patches: HistoryEntry[];
    actors: string[];
    /** `limit` entries came back before the `to` asked for: ask again from `to`. */
    truncated: boolean;
}
/** One row of `cimHistory`: who made a revision, with what mutation (no ops). */
export interface HistoryItem {
    revision: number;
    mutation: string | null;
    actor: string | null;
    ts: number | null;
    changes: number;
    snapshot: boolean;
}
/** `cimHistory`: revisions newest first; `nextBefore` pages on (null: no older ones kept). */
export interface CimHistoryResult {
    cimId: string;
    revision: number;
    epoch: string;
    /** The oldest revision still readable (null: none). */
    oldest: number | null;
    items: HistoryItem[];
    nextBefore: number | null;
}
/** `restoreRevision`'s result: `changed` false when that revision was already the current document. */
export interface RestoreResult {
    restoredFrom: number;
    changed: boolean;
}
type Queries = Pick<CimhubClient, "query">;
type Mutations = Pick<CimhubClient, "mutate">;
/** The CIM at `revision`; rejects `not_found` when the log no longer holds it, `invalid_args` when it is in the future. */
export declare function cimAt(client: Queries, cimId: string, revision: number): Promise<CimAtResult>;
/** The changes after revision `from` (0: since creation) up to `to` (default: now), at most `limit` of them. */
export declare function cimDiff(client: Queries, cimId: string, from: number, to?: number | null, limit?: number): Promise<CimDiffResult>;
/** Revisions newest first, `limit` at a time, older than `before` when given. */
export declare function cimHistory(client: Queries, cimId: string, page?: {
    before?: number | null;
    limit?: number;
}): Promise<CimHistoryResult>;
/**
 * Make `revision` the current document, as a new revision. Exactly once: the mutation id
 * (fresh unless `options.mutationId` is given) goes out again unchanged after a reconnect.
 */
export declare function restoreRevision(client: Mutations, cimId: string, revision: number, options?: Pick<MutateOptions<RestoreRevisionArgs>, "mutationId">): Promise<MutationAnswer<RestoreResult>>;
export {};
