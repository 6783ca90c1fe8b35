import type { Cim, MutationArgsByName } from "./generated.js";
/** A local change to a topic's document: must not change `document` in place. */
export type OptimisticUpdate<T = unknown, A = unknown> = (document: T, args: A) => T;
export interface PendingUpdate {
    mutationId: string;
    topic: string;
    args: unknown;
    update: OptimisticUpdate<any, any>;
    /** The revision the hub answered with; the update goes once the replica reaches it. */
    answeredRevision: number | null;
}
/** `confirmed` with each pending update applied in order; an update that throws is skipped. */
export declare function applyPending<T>(confirmed: T | null, pending: readonly PendingUpdate[]): T | null;
/**
 * Built-in optimistic updates for the CIM mutations a person makes by hand.
 *
 * They predict the visible part of protocol/mutations/ (the edited fields,
 * the stage, a slide back to draft after an edit) and leave derived bookkeeping
 * (section progress, stale marks) to the hub's patch, which follows within
 * milliseconds. A wrong prediction is corrected by that patch.
 */
export declare const cimUpdates: {
    [N in keyof MutationArgsByName]?: OptimisticUpdate<Cim, MutationArgsByName[N]>;
};
