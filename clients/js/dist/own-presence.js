// This client's own presence on CIMs: what it shows on each, set again after every reconnect.
//
// The hub ends presence when the socket closes, so the last state set on each CIM is kept here and
// sent again (with a new presence id) on every new socket until the caller leaves (null). A state
// the hub refuses for good (`invalid_args`, `not_found`) is forgotten.
import { CimhubError } from "./errors.js";
import { presenceTopic } from "./presence.js";
/** @internal */
export class OwnPresence {
    requests;
    topics;
    nextId;
    entries = new Map(); // cim id -> what to show there, kept across reconnects
    constructor(requests, topics, nextId) {
        this.requests = requests;
        this.topics = topics;
        this.nextId = nextId;
    }
    /** Show `state` on CIM `cimId` (null leaves); resolves the presence id (null after leaving). */
    set(cimId, state) {
        if (state === null)
            this.entries.delete(cimId);
        else
            this.entries.set(cimId, { state, id: this.entries.get(cimId)?.id ?? null });
        return this.send(cimId, state);
    }
    id(cimId) {
        return this.entries.get(cimId)?.id ?? null;
    }
    /** The socket closed: every presence ended with it. */
    socketClosed() {
        for (const entry of this.entries.values())
            entry.id = null;
    }
    clear() {
        this.entries.clear();
    }
    /** A new socket: the hub forgot this connection's presence. Set each again, unless a frame for it is on its way. */
    restore() {
        const waiting = this.requests.presenceWaiting();
        for (const [cimId, entry] of this.entries) {
            if (!waiting.has(cimId))
                this.send(cimId, entry.state).catch(() => { }); // a refusal forgets it
        }
    }
    send(cimId, state) {
        const frame = { type: "presence", id: this.nextId("p"), cimId, state };
        return this.requests.send(frame, undefined, cimId).then((answer) => {
            const given = answer.result?.presenceId;
            const id = typeof given === "string" ? given : null;
            const entry = this.entries.get(cimId);
            if (entry !== undefined && entry.state === state)
                entry.id = id;
            // Listeners of `presence:<cimId>` hear a local change, so they can tell which member is theirs.
            this.topics.get(presenceTopic(cimId))?.publishLocal();
            return state === null ? null : id;
        }, (error) => {
            const entry = this.entries.get(cimId);
            if (entry !== undefined && entry.state === state && !(error instanceof CimhubError && error.retryable)) {
                this.entries.delete(cimId); // sending it again after each reconnect would only be refused again
            }
            throw error;
        });
    }
}
