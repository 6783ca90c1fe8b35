// A CIM's past: typed calls for the history queries and the restore mutation (docs/history.md).
//
//   const { cim } = await cimAt(client, cimId, 12);           // the CIM at revision 12
//   const { patches } = await cimDiff(client, cimId, 11, 12); // what changed, and who
//   await restoreRevision(client, cimId, 12);                 // revision 12 becomes the current one
//
// The query results are plain JSON from the hub (server/store/history.py), not
// pydantic models, so their types are written here rather than generated.
/** The CIM at `revision`; rejects `not_found` when the log no longer holds it, `invalid_args` when it is in the future. */
export function cimAt(client, cimId, revision) {
    return client.query("cimAt", { cimId, revision });
}
/** The changes after revision `from` (0: since creation) up to `to` (default: now), at most `limit` of them. */
export function cimDiff(client, cimId, from, to, limit) {
    return client.query("cimDiff", {
        cimId, from, ...(to !== undefined && to !== null ? { to } : {}), ...(limit !== undefined ? { limit } : {}),
    });
}
/** Revisions newest first, `limit` at a time, older than `before` when given. */
export function cimHistory(client, cimId, page = {}) {
    return client.query("cimHistory", {
        cimId,
        ...(page.before !== undefined && page.before !== null ? { before: page.before } : {}),
        ...(page.limit !== undefined ? { limit: page.limit } : {}),
    });
}
/**
 * Make `revision` the current document, as a new revision. Exactly once: the mutation id
 * (fresh unless `options.mutationId` is given) goes out again unchanged after a reconnect.
 */
export async function restoreRevision(client, cimId, revision, options = {}) {
    const answer = await client.mutate("restoreRevision", { cimId, revision }, options);
    return answer; // the hub's result for this mutation (docs/history.md)
}
