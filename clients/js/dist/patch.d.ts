export type JsonValue = null | boolean | number | string | JsonValue[] | {
    [key: string]: JsonValue;
};
export interface JsonOp {
    op: string;
    path: string;
    value?: unknown;
}
/** RFC 6901 §3-4: split a JSON Pointer into unescaped tokens ("~1" -> "/" first, then "~0" -> "~"). */
export declare function parsePointer(path: string): string[];
/** `document` with `ops` applied; throws PatchError (and changes nothing) when an op does not fit. */
export declare function applyPatch<T = unknown>(document: T, ops: readonly JsonOp[]): T;
