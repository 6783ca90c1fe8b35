import { type ErrorCodeValue, type WireError } from "./generated.js";
/** An error the hub sent (protocol/errors.py holds the table of codes), or a client-side stop. */
export declare class CimhubError extends Error {
    readonly code: ErrorCodeValue | "closed";
    readonly retryable: boolean;
    readonly path: string | null;
    constructor(code: ErrorCodeValue | "closed", message: string, options?: {
        retryable?: boolean;
        path?: string | null;
    });
    /** From the `error` member of an `error` or `unsubscribed` frame, or an HTTP error body. */
    static fromWire(wire: Partial<WireError> | null | undefined): CimhubError;
}
/** A patch whose ops do not fit the document (RFC 6902 §5: the whole patch fails). */
export declare class PatchError extends Error {
    constructor(message: string);
}
/** A patch that does not follow the replica: resubscribe, resuming unless `replica.loaded` went false. */
export declare class ReplicaGap extends Error {
    constructor(message: string);
}
