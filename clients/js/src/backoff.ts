// Reconnect delays, mutation ids and hub URLs: small pure helpers of the client.

import { JSON_SUBPROTOCOL } from "./generated.js";

export const WS_PATH = "/v1/ws";
export const SUBPROTOCOL = JSON_SUBPROTOCOL;

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
export function backoffDelay(attempt: number, { base = 0.5, cap = 10, random = Math.random }: BackoffOptions = {}): number {
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 32));
  return ceiling / 2 + random() * (ceiling / 2);
}

/** A random UUID v4. `crypto.randomUUID` exists only in secure contexts (https, localhost), hence the fallback. */
export function newMutationId(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The hub's WebSocket URL from a page location, an http(s) base URL or a ws(s) URL. */
export function hubUrl(url?: string): string {
  if (url === undefined) {
    if (typeof location === "undefined") throw new TypeError("pass the hub URL: there is no page location to derive it from");
    url = location.origin;
  }
  const parsed = new URL(url);
  if (parsed.protocol === "http:") parsed.protocol = "ws:";
  else if (parsed.protocol === "https:") parsed.protocol = "wss:";
  else if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") throw new TypeError(`expected an http(s) or ws(s) URL, got ${url}`);
  if (parsed.pathname === "/" || parsed.pathname === "") parsed.pathname = WS_PATH;
  return parsed.toString();
}

/** The hub's HTTP base URL (no trailing slash) from the same kinds of URL as `hubUrl`. */
export function httpBase(url?: string): string {
  const parsed = new URL(hubUrl(url));
  parsed.protocol = parsed.protocol === "wss:" ? "https:" : "http:";
  return parsed.origin;
}
