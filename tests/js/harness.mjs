// A hub played by the test: an in-memory WebSocket look-alike, and waiting helpers.

import assert from "node:assert/strict";

import { golden } from "./golden.mjs";

/** A WebSocket look-alike: records what the client sends; the test plays the hub. */
export class FakeSocket {
  static all = [];

  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    this.closed = null;
    FakeSocket.all.push(this);
  }

  send(data) {
    assert.equal(this.readyState, 1, "sent on a socket that is not open");
    this.sent.push(JSON.parse(data));
  }

  close(code = 1000, reason = "") {
    if (this.readyState === 3) return;
    this.closed = { code, reason };
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({ code, reason }));
  }

  // -- the hub's side --
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }

  receive(frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  drop(code = 1006, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  last(type) {
    return this.sent.filter((frame) => frame.type === type).at(-1);
  }

  static latest() {
    return FakeSocket.all.at(-1);
  }
}

// An hour before the golden ready frame's expiresAt: no refresh ahead of expiry unless a test asks.
export const NOW_MS = (golden("server/ready.json").expiresAt - 3600) * 1000;
export const tick = () => new Promise((resolve) => setTimeout(resolve, 5));
export async function until(predicate, what) {
  for (let i = 0; i < 200; i += 1) {
    if (predicate()) return;
    await tick();
  }
  assert.fail(`timed out waiting for ${what}`);
}

