// The connection logic of server/static/cimhub.js against an in-memory socket, driven by the
// golden server frames: auth first, pong, resume after reconnect, mutations answered by id,
// token refresh, stop codes. Run: node --test tests/js/

import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { CimhubClient, CimhubError, SUBPROTOCOL, backoffDelay, hubUrl } from "../../server/static/cimhub.js";
import { cimPatches, golden, goldenFrames } from "./golden.mjs";
import { FakeSocket, NOW_MS, tick, until } from "./harness.mjs";

const fast = { base: 0.001, cap: 0.002 };
const clients = [];
function makeClient(options = {}) {
  const client = new CimhubClient({
    url: "http://hub.test", token: "token-1", WebSocket: FakeSocket, backoff: fast, now: () => NOW_MS, ...options,
  });
  clients.push(client);
  return client;
}

/** Open a socket for `client` and answer its auth with the golden ready frame. */
async function connectLive(client) {
  client.connect();
  await until(() => FakeSocket.latest()?.onopen, "a socket");
  const socket = FakeSocket.latest();
  socket.open();
  socket.receive(golden("server/ready.json"));
  return socket;
}

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  FakeSocket.all = [];
});

// Frame keys the golden client frames show, per type: what the client sends must stay inside them.
const GOLDEN_KEYS = new Map();
for (const [, frame] of goldenFrames("client")) {
  const keys = GOLDEN_KEYS.get(frame.type) ?? new Set();
  for (const key of Object.keys(frame)) keys.add(key);
  GOLDEN_KEYS.set(frame.type, keys);
}
function assertLikeGolden(frame) {
  const keys = GOLDEN_KEYS.get(frame.type);
  assert.ok(keys, `the client sent a ${frame.type} frame, which has no golden example`);
  for (const key of Object.keys(frame)) assert.ok(keys.has(key), `${frame.type}.${key} is in no golden ${frame.type} frame`);
}

test("connects with the subprotocol, sends auth first, answers ping with pong", async () => {
  const client = makeClient();
  const socket = await connectLive(client);
  assert.equal(socket.url, "ws://hub.test/v1/ws");
  assert.deepEqual(socket.protocols, [SUBPROTOCOL]);
  assert.deepEqual(socket.sent[0], { type: "auth", token: "token-1" });
  assert.equal(client.state, "live");
  assert.equal(client.heartbeat, golden("server/ready.json").heartbeat);
  const ping = golden("server/ping.json");
  socket.receive(ping);
  assert.deepEqual(socket.last("pong"), { type: "pong", ts: ping.ts });
  socket.sent.forEach(assertLikeGolden);
});

test("a subscription follows the golden snapshot and patches, then resumes after a reconnect", async () => {
  const client = makeClient();
  const snapshot = golden("server/snapshot.json");
  const changes = [];
  const sub = client.subscribe(snapshot.topic, (change) => changes.push(change));
  let socket = await connectLive(client);
  const subscribe = socket.last("subscribe");
  assert.deepEqual(subscribe, { type: "subscribe", id: subscribe.id, topic: snapshot.topic });
  socket.receive({ ...snapshot, id: subscribe.id });
  await sub.ready;
  const patches = cimPatches().filter((frame) => frame.revision <= 10);
  for (const frame of patches.slice(0, 4)) socket.receive(frame);
  assert.equal(sub.revision, 5);

  socket.drop(1012, "hub restarting");
  await until(() => FakeSocket.all.length === 2, "a reconnect");
  assert.equal(client.state, "reconnecting");
  socket = await connectLive(client);
  const resume = socket.last("subscribe");
  assert.deepEqual(resume.resume, { revision: 5, epoch: snapshot.epoch });
  for (const frame of patches.slice(2)) socket.receive(frame); // the hub may replay some: ignored
  socket.receive({ ...golden("server/subscribed.json"), topic: snapshot.topic, id: resume.id, revision: 10, epoch: snapshot.epoch });
  assert.deepEqual(sub.document, golden("replay/cim.r10.json"));
  assert.deepEqual(changes.map((c) => c.revision), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(changes.filter((c) => c.snapshot).length, 1);
  socket.sent.forEach(assertLikeGolden);
});

test("a gap makes the client unsubscribe, resubscribe from its revision, and drop stale frames meanwhile", async () => {
  const client = makeClient();
  const snapshot = golden("server/snapshot.json");
  const sub = client.subscribe(snapshot.topic);
  const socket = await connectLive(client);
  socket.receive({ ...snapshot, id: socket.last("subscribe").id });
  const patches = cimPatches();
  socket.receive(patches[0]); // r2
  socket.receive(patches[2]); // r4: r3 is missing
  const unsubscribe = socket.last("unsubscribe");
  const resubscribe = socket.last("subscribe");
  assert.equal(unsubscribe.topic, snapshot.topic);
  assert.deepEqual(resubscribe.resume, { revision: 2, epoch: snapshot.epoch });
  socket.receive(patches[3]); // r5, queued before the hub saw the unsubscribe: stale
  assert.equal(sub.revision, 2);
  socket.receive({ type: "unsubscribed", topic: snapshot.topic, id: unsubscribe.id });
  socket.receive(patches[1]);
  socket.receive(patches[2]);
  socket.receive({ type: "subscribed", topic: snapshot.topic, id: resubscribe.id, revision: 4, epoch: snapshot.epoch });
  assert.equal(sub.revision, 4);
  assert.equal(socket.sent.filter((f) => f.type === "subscribe").length, 2);
});

test("mutate sends a mutationId, resolves on result, rejects on error, and is re-sent unchanged after a reconnect", async () => {
  const client = makeClient();
  let socket = await connectLive(client);
  const done = client.mutate("saveBuyerPersona", golden("client/mutate.json").args);
  const sent = socket.last("mutate");
  assert.match(sent.mutationId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assertLikeGolden(sent);

  socket.drop();
  await until(() => FakeSocket.all.length === 2, "a reconnect");
  socket = await connectLive(client);
  const again = socket.last("mutate");
  assert.deepEqual(again, sent, "the same frame, so the hub applies it once");
  socket.receive({ ...golden("server/result.json"), id: sent.id, duplicate: true });
  const answer = await done;
  assert.equal(answer.duplicate, true);
  assert.equal(answer.revision, golden("server/result.json").revision);

  const refused = client.mutate("navigateToStage", { cimId: "x", targetStage: "nowhere" });
  socket.receive({ ...golden("server/error.json"), id: socket.last("mutate").id });
  await assert.rejects(refused, (error) => error instanceof CimhubError && error.code === "invalid_args" && !error.retryable);
});

test("a retryable error re-sends the same mutation after a backoff", async () => {
  const client = makeClient();
  const socket = await connectLive(client);
  const done = client.mutate("updateState", { cimId: "x", title: "T" }, { mutationId: "fixed-id" });
  const sent = socket.last("mutate");
  socket.receive({ type: "error", id: sent.id, error: { code: "rate_limited", message: "slow down", retryable: true } });
  await until(() => socket.sent.filter((f) => f.type === "mutate").length === 2, "the retry");
  assert.deepEqual(socket.last("mutate"), sent);
  socket.receive({ type: "result", id: sent.id, result: {}, cimId: "x", revision: 3, duplicate: false });
  assert.equal((await done).revision, 3);
});

test("query resolves the result", async () => {
  const client = makeClient();
  const socket = await connectLive(client);
  const answer = client.query("get", golden("client/query.json").args);
  const sent = socket.last("query");
  assertLikeGolden(sent);
  socket.receive({ ...golden("server/result.query.json"), id: sent.id });
  assert.deepEqual((await answer).cim, golden("replay/cim.r10.json"));
});

test("token_expired: the client asks refreshToken and sends the fresh token, then re-sends what was refused", async () => {
  let calls = 0;
  const client = makeClient({ refreshToken: async () => `token-${++calls + 1}` });
  const socket = await connectLive(client);
  socket.receive(golden("server/error.token-expired.json"));
  await until(() => socket.sent.filter((f) => f.type === "auth").length === 2, "a second auth frame");
  assert.deepEqual(socket.last("auth"), { type: "auth", token: "token-2" });
  const pending = client.mutate("updateState", { cimId: "x", title: "T" });
  const sent = socket.last("mutate");
  socket.receive({ type: "error", id: sent.id, error: { code: "token_expired", message: "expired", retryable: true } });
  socket.receive(golden("server/ready.json"));
  assert.equal(socket.sent.filter((f) => f.type === "mutate").length, 2);
  socket.receive({ type: "result", id: sent.id, result: {}, cimId: "x", revision: 2, duplicate: false });
  await pending;
  assert.equal(calls, 1);
});

test("an expired token at connect: refresh, reconnect with the new token", async () => {
  const client = makeClient({ refreshToken: async () => "token-2" });
  client.connect();
  await until(() => FakeSocket.latest()?.onopen, "a socket");
  const socket = FakeSocket.latest();
  socket.open();
  socket.receive(golden("server/error.token-expired.json"));
  socket.drop(4403, "token expired");
  await until(() => FakeSocket.all.length === 2, "a reconnect");
  const next = FakeSocket.latest();
  next.open();
  assert.deepEqual(next.sent[0], { type: "auth", token: "token-2" });
});

test("a close code in 4400-4499 stops the client and rejects what waits", async () => {
  const client = makeClient();
  const socket = await connectLive(client);
  const statuses = [];
  client.onStatus((status) => statuses.push(status.state));
  const pending = client.mutate("updateState", { cimId: "x", title: "T" });
  socket.drop(4403, "authentication failed");
  await assert.rejects(pending, CimhubError);
  await tick();
  assert.equal(client.state, "stopped");
  assert.deepEqual(statuses, ["stopped"]);
  assert.equal(FakeSocket.all.length, 1, "no reconnect");
});

test("the hub ending a subscription with a retryable error makes the client subscribe again", async () => {
  const client = makeClient();
  const snapshot = golden("server/snapshot.json");
  const sub = client.subscribe(snapshot.topic);
  const socket = await connectLive(client);
  socket.receive({ ...snapshot, id: socket.last("subscribe").id });
  socket.receive(golden("server/unsubscribed.ended.json"));
  await until(() => socket.sent.filter((f) => f.type === "subscribe").length === 2, "a new subscribe");
  assert.deepEqual(socket.last("subscribe").resume, { revision: 1, epoch: snapshot.epoch });
  assert.equal(sub.ended, false);
});

test("a not_found subscribe ends the subscription", async () => {
  const client = makeClient();
  const sub = client.subscribe("cim:missing");
  const socket = await connectLive(client);
  socket.receive({ type: "error", id: socket.last("subscribe").id, error: { code: "not_found", message: "cim:missing not found", retryable: false } });
  await assert.rejects(sub.ready, (error) => error.code === "not_found");
  assert.equal(sub.ended, true);
});

test("backoff delays grow, stay capped, and keep half of each step fixed", () => {
  assert.equal(backoffDelay(0, { random: () => 0 }), 0.25);
  assert.equal(backoffDelay(0, { random: () => 1 }), 0.5);
  assert.equal(backoffDelay(3, { random: () => 0 }), 2);
  assert.equal(backoffDelay(40, { random: () => 1 }), 10);
});

test("hubUrl turns a base URL into the WebSocket endpoint", () => {
  assert.equal(hubUrl("http://127.0.0.1:8000"), "ws://127.0.0.1:8000/v1/ws");
  assert.equal(hubUrl("https://hub.example.com/"), "wss://hub.example.com/v1/ws");
  assert.equal(hubUrl("ws://h/custom"), "ws://h/custom");
  assert.throws(() => hubUrl("ftp://h"), TypeError);
});

test("a token function is asked again on every connect", async () => {
  let calls = 0;
  const client = makeClient({ token: async () => `token-${++calls}` });
  let socket = await connectLive(client);
  assert.deepEqual(socket.sent[0], { type: "auth", token: "token-1" });
  socket.drop();
  await until(() => FakeSocket.all.length === 2, "a reconnect");
  socket = await connectLive(client);
  assert.deepEqual(socket.sent[0], { type: "auth", token: "token-2" });
});
