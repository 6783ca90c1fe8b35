// What the board tells a banker when something goes wrong: plain words, not developer text.

import { CimhubError } from "../src/index.js";

const BY_CODE: Record<string, string> = {
  invalid_transition: "That step isn't possible yet",
  invalid_args: "Some of the details aren't valid",
  not_found: "This CIM no longer exists",
  access_denied: "You don't have access to this deal",
  unauthenticated: "Please sign in again",
  token_expired: "Your session expired: please sign in again",
  rate_limited: "Too many changes at once: please wait a moment",
  overloaded: "The server is busy: your change will be retried",
  unavailable: "The server is unavailable: your change will be retried",
  conflict: "Someone else changed this at the same time: please try again",
  payload_too_large: "That is too large to save",
  closed: "The connection was closed",
};

/** A sentence for `error`; the hub's own message follows when it adds something specific. */
export function humanError(error: unknown, doing?: string): string {
  const prefix = doing ? `Couldn't ${doing}. ` : "";
  if (error instanceof CimhubError) {
    const plain = BY_CODE[error.code] ?? "Something went wrong";
    const detail = error.code === "invalid_transition" || error.code === "invalid_args" ? ` (${error.message})` : "";
    return `${prefix}${plain}${detail}.`;
  }
  return `${prefix}Something went wrong: ${error instanceof Error ? error.message : String(error)}.`;
}
