export declare const WS_PATH = "/v1/ws";
export declare const SUBPROTOCOL: "cimhub.json.v1";
export interface BackoffOptions {
    /** First step in seconds (default 0.5). */
    base?: number;
    /** Largest step in seconds (default 10). */
    cap?: number;
    random?: () => number;
}
/**
 * Seconds to wait before retry number `attempt` (0 first): "equal jitter", half of
 * the capped exponential step fixed and half random, like clients/backoff.py. The
 * jitter spreads out the clients a hub restart dropped all at once; the fixed half
 * keeps a refused client from hammering the hub.
 */
export declare function backoffDelay(attempt: number, { base, cap, random }?: BackoffOptions): number;
/** A random UUID v4. `crypto.randomUUID` exists only in secure contexts (https, localhost), hence the fallback. */
export declare function newMutationId(): string;
/** The hub's WebSocket URL from a page location, an http(s) base URL or a ws(s) URL. */
export declare function hubUrl(url?: string): string;
/** The hub's HTTP base URL (no trailing slash) from the same kinds of URL as `hubUrl`. */
export declare function httpBase(url?: string): string;
