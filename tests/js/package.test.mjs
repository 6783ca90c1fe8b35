// What the npm package adds to the client: reference-counted subscriptions, optimistic
// updates (shown at once, dropped by the hub's patch, rolled back on refusal), the token
// refreshed ahead of expiry in-band, and close codes from the generated constants.
// Driven by the golden frames against an in-memory socket. Run: node --test tests/js/

import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { CimhubClient, CloseCode, cimUpdates, applyPending, webStorageOutbox } from "../../clients/js/dist/index.js";
import { golden } from "./golden.mjs";
import { FakeSocket, NOW_MS, tick, until } from "./harness.mjs";

const clients = [];
function makeClient(options = {}) {
  const client = new CimhubClient({
    url: "http://hub.test", token: "token-1", WebSocket: FakeSocket, backoff: { base: 0.001, cap: 0.002 },
    now: () => NOW_MS, ...options,
  });
  clients.push(client);
  return client;
}

async function connectLive(client, ready = golden("server/ready.json")) {
  client.connect();
  await until(() => FakeSocket.latest()?.onopen, "a socket");
  const socket = FakeSocket.latest();
  socket.open();
  socket.receive(ready);
  return socket;
}

/** Subscribe to the golden CIM topic and answer with the golden snapshot (revision 1). */
async function liveCim(client) {
  const snapshot = golden("server/snapshot.json");
  const socket = await connectLive(client);
  const sub = client.subscribe(snapshot.topic);
  socket.receive({ ...snapshot, id: socket.last("subscribe").id });
  await sub.ready;
  return { socket, sub, snapshot, cimId: snapshot.topic.slice(4) };
}

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  FakeSocket.all = [];
});

test("two handles on one topic share one hub subscription; the first leaving keeps the other live", async () => {
  const client = makeClient();
  const { socket, sub: first, snapshot } = await liveCim(client);
  const second = client.subscribe(snapshot.topic);
  assert.notEqual(first, second);
  await second.ready; // already loaded: ready at once, no second subscribe frame
  assert.equal(socket.sent.filter((f) => f.type === "subscribe").length, 1);
  const seen = [];
  second.onChange((change) => seen.push(change.revision));
  first.unsubscribe();
  await tick();
  assert.equal(socket.sent.filter((f) => f.type === "unsubscribe").length, 0, "another handle still watches");
  const patch = golden("server/patch.json");
  socket.receive(patch);
  assert.deepEqual(seen, [patch.revision]);
  assert.equal(second.revision, patch.revision);
  second.unsubscribe();
  await tick();
  assert.equal(socket.sent.filter((f) => f.type === "unsubscribe").length, 1, "the last handle tells the hub");
});

test("unsubscribing and subscribing again in one task (React StrictMode) keeps the topic", async () => {
  const client = makeClient();
  const { socket, sub, snapshot } = await liveCim(client);
  sub.unsubscribe();
  const again = client.subscribe(snapshot.topic);
  await tick();
  assert.equal(socket.sent.filter((f) => f.type === "unsubscribe").length, 0);
  assert.equal(socket.sent.filter((f) => f.type === "subscribe").length, 1);
  assert.equal(again.document.title, snapshot.data.title);
});

test("an optimistic update shows at once and gives way to the hub's patch for its mutation", async () => {
  const client = makeClient();
  const { socket, sub, cimId, snapshot } = await liveCim(client);
  const changes = [];
  sub.onChange((change) => changes.push(change));
  const answer = client.mutate("updateState", { cimId, title: "Renamed" }, { optimistic: true });
  assert.equal(sub.document.title, "Renamed", "shown before any frame from the hub");
  assert.equal(sub.confirmed.title, snapshot.data.title);
  assert.equal(changes.at(-1).local, true);
  const sent = socket.last("mutate");
  // An unrelated change from someone else arrives first: the prediction stays on top.
  socket.receive({ type: "patch", topic: snapshot.topic, revision: 2, epoch: snapshot.epoch,
    ops: [{ op: "replace", path: "/status", value: "in_progress" }], mutation: "updateState", mutationId: "other", actor: "user-2" });
  assert.equal(sub.document.title, "Renamed");
  assert.equal(sub.document.status, "in_progress");
  assert.deepEqual(changes.at(-1).pending, [sent.mutationId]);
  // The hub's patch for this mutation: the confirmed document now holds it, the prediction goes.
  socket.receive({ type: "patch", topic: snapshot.topic, revision: 3, epoch: snapshot.epoch,
    ops: [{ op: "replace", path: "/title", value: "Renamed" }], mutation: "updateState", mutationId: sent.mutationId, actor: "user-1" });
  assert.deepEqual(changes.at(-1).pending, []);
  assert.equal(sub.document, sub.confirmed);
  socket.receive({ type: "result", id: sent.id, result: {}, cimId, revision: 3, duplicate: false });
  assert.equal((await answer).revision, 3);
});

test("a refused mutation rolls its optimistic update back and rejects", async () => {
  const client = makeClient();
  const { socket, sub, cimId, snapshot } = await liveCim(client);
  const answer = client.mutate("navigateToStage", { cimId, targetStage: "outline", reason: "" }, { optimistic: true });
  assert.equal(sub.document.stage, "outline");
  const sent = socket.last("mutate");
  socket.receive({ type: "error", id: sent.id, error: { code: "invalid_transition", message: "stage 'outline' needs heroContext first", retryable: false, path: "args.stage" } });
  await assert.rejects(answer, (error) => error.code === "invalid_transition");
  assert.equal(sub.document.stage, snapshot.data.stage);
  assert.equal(sub.document, sub.confirmed);
});

test("an answered mutation with no patch (a no-op or a duplicate) drops its update once the replica is there", async () => {
  const client = makeClient();
  const { socket, sub, cimId, snapshot } = await liveCim(client);
  const answer = client.mutate("updateState", { cimId, title: snapshot.data.title }, { optimistic: true });
  const sent = socket.last("mutate");
  socket.receive({ type: "result", id: sent.id, result: {}, cimId, revision: snapshot.revision, duplicate: true });
  await answer;
  assert.equal(sub.document, sub.confirmed);
});

test("an optimistic edit queued while offline stays shown and is sent once on reconnect", async () => {
  const client = makeClient();
  const { socket, sub, cimId, snapshot } = await liveCim(client);
  socket.drop(CloseCode.RESTART, "hub restarting");
  const answer = client.mutate("updateState", { cimId, title: "Offline edit" }, { optimistic: true });
  assert.equal(sub.document.title, "Offline edit");
  await until(() => FakeSocket.all.length === 2, "a reconnect");
  const next = FakeSocket.latest();
  next.open();
  next.receive(golden("server/ready.json"));
  const resume = next.last("subscribe");
  assert.deepEqual(resume.resume, { revision: snapshot.revision, epoch: snapshot.epoch });
  const sent = next.sent.filter((f) => f.type === "mutate");
  assert.equal(sent.length, 1);
  next.receive({ type: "patch", topic: snapshot.topic, revision: 2, epoch: snapshot.epoch,
    ops: [{ op: "replace", path: "/title", value: "Offline edit" }], mutationId: sent[0].mutationId });
  next.receive({ type: "subscribed", topic: snapshot.topic, id: resume.id, revision: 2, epoch: snapshot.epoch });
  next.receive({ type: "result", id: sent[0].id, result: {}, cimId, revision: 2, duplicate: false });
  await answer;
  assert.equal(sub.confirmed.title, "Offline edit");
  assert.equal(sub.document, sub.confirmed);
});

test("the token is refreshed ahead of expiry and sent in-band, without a reconnect", async () => {
  let now = NOW_MS;
  const ready = golden("server/ready.json");
  const expiresAt = Math.floor(now / 1000) + 2; // two seconds left: refresh after one (half the remaining life)
  let calls = 0;
  const client = makeClient({ now: () => now, refreshToken: async () => `token-${++calls + 1}` });
  const socket = await connectLive(client, { ...ready, expiresAt });
  await until(() => socket.sent.filter((f) => f.type === "auth").length === 2, "an auth frame before expiry");
  assert.deepEqual(socket.last("auth"), { type: "auth", token: "token-2" });
  assert.equal(FakeSocket.all.length, 1, "no reconnect");
  assert.equal(client.refreshes, 1);
  assert.equal(client.state, "live");
});

test("a far-away expiry schedules no refresh yet (setTimeout cannot wait beyond 2^31 ms)", async () => {
  const ready = golden("server/ready.json");
  const client = makeClient({ refreshToken: async () => "token-2" });
  const socket = await connectLive(client, { ...ready, expiresAt: Math.floor(NOW_MS / 1000) + 60 * 86_400 });
  await tick();
  await tick();
  assert.equal(socket.sent.filter((f) => f.type === "auth").length, 1);
});

test("close codes come from the generated constants of protocol/frames.py", () => {
  assert.equal(CloseCode.AUTH_FAILED, 4403);
  assert.equal(CloseCode.RESTART, 1012);
});

test("built-in updates: an edited approved slide goes back to draft; a new slide is added", () => {
  const cim = golden("replay/cim.r10.json");
  const approved = { ...cim, slides: cim.slides.map((s) => ({ ...s, status: "approved" })) };
  const edited = cimUpdates.updateSlide(approved, { cimId: cim.id, slide: { id: cim.slides[0].id, title: "New heading" } });
  assert.equal(edited.slides[0].title, "New heading");
  assert.equal(edited.slides[0].status, "draft");
  assert.equal(approved.slides[0].status, "approved", "the input is left alone");
  const sectionId = cim.outline[0].id;
  const added = cimUpdates.updateSlide(cim, { cimId: cim.id, slide: { id: "new", sectionId, title: "Fresh" } });
  assert.equal(added.slides.at(-1).id, "new");
  const stage = cimUpdates.navigateToStage(cim, { cimId: cim.id, targetStage: "outline", reason: "" });
  assert.equal(stage.stage, "outline");
});

test("an update that no longer fits is skipped, not fatal", () => {
  const cim = golden("replay/cim.r10.json");
  const pending = [
    { mutationId: "a", topic: "t", args: { slide: { id: "gone" } }, update: cimUpdates.updateSlide, answeredRevision: null },
    { mutationId: "b", topic: "t", args: { targetStage: "outline" }, update: cimUpdates.navigateToStage, answeredRevision: null },
  ];
  const view = applyPending(cim, pending);
  assert.equal(view.stage, "outline");
  assert.deepEqual(view.slides, cim.slides);
});

test("a codec option changes the subprotocol offered and how frames are encoded and decoded", async () => {
  const encoded = [];
  const codec = {
    subprotocol: "cimhub.msgpack.v1",
    encode: (frame) => { encoded.push(frame.type); return JSON.stringify(frame); },
    decode: (data) => JSON.parse(data),
  };
  const client = makeClient({ codec });
  const socket = await connectLive(client);
  assert.deepEqual(socket.protocols, ["cimhub.msgpack.v1"]);
  assert.deepEqual(encoded, ["auth"]);
  assert.equal(client.state, "live");
});

class MemoryStorage {
  constructor() { this.items = new Map(); }
  getItem(key) { return this.items.has(key) ? this.items.get(key) : null; }
  setItem(key, value) { this.items.set(key, String(value)); }
  removeItem(key) { this.items.delete(key); }
}

test("an unanswered mutation survives in the outbox and the next client sends it with the same id, shown again", async () => {
  const storage = new MemoryStorage();
  const snapshot = golden("server/snapshot.json");
  const cimId = snapshot.topic.slice(4);
  const first = makeClient({ outbox: webStorageOutbox(storage) });
  const socket = await connectLive(first);
  first.mutate("updateState", { cimId, title: "Kept" }, { optimistic: true }).catch(() => {});
  const sent = socket.last("mutate");
  assert.equal(JSON.parse(storage.getItem("cimhub.outbox")).length, 1);
  socket.drop(1006, "the tab closed"); // no answer ever came; the page is gone (no close())
  FakeSocket.all = [];

  const second = makeClient({ outbox: webStorageOutbox(storage) });
  const next = await connectLive(second);
  const resent = next.last("mutate");
  assert.equal(resent.mutationId, sent.mutationId, "the same id: the hub applies it at most once");
  const sub = second.subscribe(snapshot.topic);
  next.receive({ ...snapshot, id: next.last("subscribe").id });
  await sub.ready;
  assert.equal(sub.document.title, "Kept", "its optimistic update shows again");
  next.receive({ type: "patch", topic: snapshot.topic, revision: 2, epoch: snapshot.epoch,
    ops: [{ op: "replace", path: "/title", value: "Kept" }], mutationId: sent.mutationId });
  next.receive({ type: "result", id: resent.id, result: {}, cimId, revision: 2, duplicate: false });
  assert.equal(storage.getItem("cimhub.outbox"), null, "answered: gone from the outbox");
  assert.equal(sub.document, sub.confirmed);
});

test("a refused restored mutation leaves the outbox and its update is rolled back", async () => {
  const storage = new MemoryStorage();
  const snapshot = golden("server/snapshot.json");
  const cimId = snapshot.topic.slice(4);
  webStorageOutbox(storage).save([{ name: "navigateToStage", args: { cimId, targetStage: "outline", reason: "" }, mutationId: "m-1", optimistic: true }]);
  const client = makeClient({ outbox: webStorageOutbox(storage) });
  const socket = await connectLive(client);
  const sub = client.subscribe(snapshot.topic);
  socket.receive({ ...snapshot, id: socket.last("subscribe").id });
  await sub.ready;
  assert.equal(sub.document.stage, "outline");
  socket.receive({ type: "error", id: socket.last("mutate").id, error: { code: "invalid_transition", message: "no", retryable: false } });
  assert.equal(sub.document.stage, snapshot.data.stage);
  assert.equal(storage.getItem("cimhub.outbox"), null);
});

test("close() gives up what waits and empties the outbox; an unreadable outbox starts empty", async () => {
  const storage = new MemoryStorage();
  const client = makeClient({ outbox: webStorageOutbox(storage) });
  await connectLive(client);
  const pending = client.mutate("updateState", { cimId: "x", title: "T" });
  assert.notEqual(storage.getItem("cimhub.outbox"), null);
  client.close();
  await assert.rejects(pending);
  assert.equal(storage.getItem("cimhub.outbox"), null);
  storage.setItem("cimhub.outbox", "{not json");
  assert.deepEqual(webStorageOutbox(storage).load(), []);
});
