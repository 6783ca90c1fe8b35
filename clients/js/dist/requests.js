// Requests and their answers: each `mutate`, `query` and `presence` frame waits here, by frame id,
// for its `result` or `error`.
//
// A request is sent again, the same frame, after every reconnect until answered, so a mutation
// keeps its mutationId and applies exactly once. Retryable errors are retried with backoff a few
// times; a `token_expired` holds it until the refreshed token is accepted. Mutations are kept in
// the outbox (if any) from the moment they are made until they are answered.
import { CimhubError } from "./errors.js";
const RETRY_LIMIT = 5;
/** @internal The requests of one client that wait for the hub's answer. */
export class Requests {
    connection;
    outbox;
    waiting = new Map();
    constructor(connection, outbox) {
        this.connection = connection;
        this.outbox = outbox;
    }
    /** Send `frame` (now if live, else on the next `ready`); resolves the hub's answer (the result frame without type and id). */
    send(frame, stored, presenceOf) {
        const connection = this.connection;
        if (connection.stopped())
            return Promise.reject(connection.error ?? new CimhubError("closed", "the client is closed"));
        return new Promise((resolve, reject) => {
            const request = {
                frame, resolve, reject, failures: 0, held: false, ...(stored ? { stored } : {}), ...(presenceOf ? { presenceOf } : {}),
            };
            this.waiting.set(frame.id, request);
            if (stored)
                this.persist();
            if (connection.live())
                this.sendRequest(request);
            connection.connect();
        });
    }
    /** Queue a mutation an earlier run left unanswered, with its id; `settle` hears its revision, or null if refused. */
    adopt(mutation, settle) {
        const frame = {
            type: "mutate", id: this.connection.nextId("m"), name: mutation.name, args: mutation.args, mutationId: mutation.mutationId,
        };
        if (mutation.expectedRevision !== undefined)
            frame.expectedRevision = mutation.expectedRevision;
        this.waiting.set(frame.id, {
            frame, stored: mutation, failures: 0, held: false,
            resolve: (answer) => settle(answer.revision ?? 0),
            reject: () => settle(null),
        });
    }
    /** A new socket (`all`), or a refreshed token: send every request again, or only those held for the token. */
    resend(all) {
        for (const request of this.waiting.values())
            if (all || request.held)
                this.sendRequest(request);
    }
    /** The CIMs a presence frame is on its way for. */
    presenceWaiting() {
        const cims = new Set();
        for (const request of this.waiting.values())
            if (request.presenceOf !== undefined)
                cims.add(request.presenceOf);
        return cims;
    }
    onResult(frame) {
        const request = this.waiting.get(frame.id);
        if (request === undefined)
            return;
        this.waiting.delete(frame.id);
        if (request.stored)
            this.persist();
        const { type: _type, id: _id, ...answer } = frame;
        request.resolve({ cimId: null, revision: null, duplicate: false, ...answer, result: answer.result ?? null });
    }
    /** The hub refused frame `id`: retry or reject the request. False when no request has that id. */
    onError(id, error) {
        const request = this.waiting.get(id);
        if (request === undefined)
            return false;
        this.retry(request, error);
        return true;
    }
    /**
     * The client stopped: reject every request. `close()` gives up what waits, so the outbox
     * forgets it too; a stop (the hub refused the credentials) keeps it for the next client.
     */
    rejectAll(reason, forget) {
        for (const request of this.waiting.values())
            request.reject(reason);
        this.waiting.clear();
        if (forget)
            this.persist();
    }
    sendRequest(request) {
        request.held = false;
        this.connection.send(request.frame);
    }
    retry(request, error) {
        if (!error.retryable || request.failures >= RETRY_LIMIT) {
            this.waiting.delete(request.frame.id);
            if (request.stored)
                this.persist();
            request.reject(error);
            return;
        }
        if (error.code === "token_expired") {
            request.held = true;
            return;
        }
        request.failures += 1;
        // The same frame, so a mutation keeps its mutationId and applies at most once.
        this.connection.retryLater(request.failures, () => {
            if (this.waiting.get(request.frame.id) === request && this.connection.live())
                this.sendRequest(request);
        });
    }
    persist() {
        if (this.outbox === null)
            return;
        const stored = [];
        for (const request of this.waiting.values())
            if (request.stored)
                stored.push(request.stored);
        try {
            this.outbox.save(stored);
        }
        catch {
            // Storage full or refused: the mutations are still kept in memory and sent.
        }
    }
}
