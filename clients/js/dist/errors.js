// The errors a caller of the client can see.
//
//   Error
//   ├── CimhubError   the hub refused something: code, message, retryable, path
//   ├── PatchError    a JSON Patch does not fit the document (RFC 6902 §5)
//   └── ReplicaGap    a patch does not follow the replica: resubscribe
import { RETRYABLE } from "./generated.js";
/** An error the hub sent (protocol/errors.py holds the table of codes), or a client-side stop. */
export class CimhubError extends Error {
    code;
    retryable;
    path;
    constructor(code, message, options = {}) {
        super(message);
        this.name = "CimhubError";
        this.code = code;
        this.retryable = options.retryable ?? (code === "closed" ? false : RETRYABLE[code] ?? false);
        this.path = options.path ?? null;
    }
    /** From the `error` member of an `error` or `unsubscribed` frame, or an HTTP error body. */
    static fromWire(wire) {
        return new CimhubError((wire?.code ?? "internal"), wire?.message ?? "", {
            retryable: Boolean(wire?.retryable),
            path: wire?.path ?? null,
        });
    }
}
/** A patch whose ops do not fit the document (RFC 6902 §5: the whole patch fails). */
export class PatchError extends Error {
    constructor(message) {
        super(message);
        this.name = "PatchError";
    }
}
/** A patch that does not follow the replica: resubscribe, resuming unless `replica.loaded` went false. */
export class ReplicaGap extends Error {
    constructor(message) {
        super(message);
        this.name = "ReplicaGap";
    }
}
