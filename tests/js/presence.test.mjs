// Presence and history in the npm package: setPresence frames like the golden ones, set again
// after every reconnect; the `presence:<cimId>` topic from the golden snapshot and patches, with a
// fresh snapshot after a reconnect; the pure member helpers; the typed history calls and an
// exactly-once restore. Driven by the golden frames against an in-memory socket. Run: node --test tests/js/

import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import {
  CimhubClient,
  cimAt,
  cimDiff,
  cimHistory,
  draftersBySection,
  editorsBySlide,
  initials,
  presenceActivity,
  presenceKind,
  presenceList,
  presenceName,
  presenceTopic,
  restoreRevision,
} from "../../clients/js/dist/index.js";
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

async function connectLive(client) {
  client.connect();
  await until(() => FakeSocket.latest()?.onopen, "a socket");
  const socket = FakeSocket.latest();
  socket.open();
  socket.receive(golden("server/ready.json"));
  return socket;
}

/** Drop the socket and connect again; returns the new socket, live. */
async function reconnect(client, socket) {
  const count = FakeSocket.all.length;
  socket.drop(1012, "hub restarting");
  await until(() => FakeSocket.all.length === count + 1, "a reconnect");
  return connectLive(client);
}

const sentOf = (socket, type) => socket.sent.filter((frame) => frame.type === type);
/** A golden frame with the id of the frame the client sent. */
const answer = (name, sent) => ({ ...golden(name), id: sent.id });

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  FakeSocket.all = [];
});

test("setPresence sends the golden presence frame and resolves the presence id", async () => {
  const client = makeClient();
  const socket = await connectLive(client);
  const want = golden("client/presence.json");
  const joined = client.setPresence(want.cimId, want.state);
  const sent = socket.last("presence");
  assert.deepEqual(sent, { ...want, id: sent.id });
  socket.receive(answer("server/result.presence.json", sent));
  assert.equal(await joined, golden("server/result.presence.json").result.presenceId);
  assert.equal(client.presenceId(want.cimId), "819a0bb06b7ca542");

  const leave = golden("client/presence.leave.json");
  const left = client.setPresence(leave.cimId, null);
  const sentLeave = socket.last("presence");
  assert.deepEqual(sentLeave, { ...leave, id: sentLeave.id });
  socket.receive({ type: "result", id: sentLeave.id, result: { presenceId: null } });
  assert.equal(await left, null);
  assert.equal(client.presenceId(leave.cimId), null);
});

test("presence is set again after a reconnect, with the latest state, and not after leaving", async () => {
  const client = makeClient();
  let socket = await connectLive(client);
  const cimId = golden("client/presence.json").cimId;
  const first = client.setPresence(cimId, { activity: "viewing", name: "Alice" });
  socket.receive({ type: "result", id: socket.last("presence").id, result: { presenceId: "old" } });
  await first;
  const editing = client.setPresence(cimId, { activity: "editing", slideId: "slide-3", name: "Alice" });
  socket.receive({ type: "result", id: socket.last("presence").id, result: { presenceId: "old" } });
  await editing;

  socket = await reconnect(client, socket);
  assert.equal(client.presenceId(cimId), null, "the old presence ended with the old socket");
  const again = sentOf(socket, "presence");
  assert.equal(again.length, 1, "one frame per CIM, the latest state");
  assert.deepEqual(again[0].state, { activity: "editing", slideId: "slide-3", name: "Alice" });
  assert.ok(sentOf(socket, "auth").length === 1 && socket.sent.indexOf(again[0]) > 0, "after auth");
  socket.receive({ type: "result", id: again[0].id, result: { presenceId: "new" } });
  await until(() => client.presenceId(cimId) === "new", "the new presence id");

  const left = client.setPresence(cimId, null);
  socket.receive({ type: "result", id: socket.last("presence").id, result: { presenceId: null } });
  await left;
  socket = await reconnect(client, socket);
  await tick();
  assert.equal(sentOf(socket, "presence").length, 0, "left: nothing to restore");
});

test("a presence frame not answered before the socket dropped goes out once on the new socket", async () => {
  const client = makeClient();
  let socket = await connectLive(client);
  const cimId = golden("client/presence.json").cimId;
  const joined = client.setPresence(cimId, { activity: "viewing" });
  const sent = socket.last("presence");
  socket = await reconnect(client, socket);
  const again = sentOf(socket, "presence");
  assert.equal(again.length, 1);
  assert.deepEqual(again[0], sent);
  socket.receive({ type: "result", id: sent.id, result: { presenceId: "p-1" } });
  assert.equal(await joined, "p-1");
});

test("a state the hub refuses for good rejects and is not sent again after a reconnect", async () => {
  const client = makeClient();
  let socket = await connectLive(client);
  const refused = client.setPresence("cim-1", { activity: "viewing", name: "x".repeat(81) });
  const error = { code: "invalid_args", message: "state.name: at most 80 characters", retryable: false, path: "state.name" };
  socket.receive({ type: "error", id: socket.last("presence").id, error });
  await assert.rejects(refused, (e) => e.code === "invalid_args" && e.path === "state.name");
  socket = await reconnect(client, socket);
  await tick();
  assert.equal(sentOf(socket, "presence").length, 0);
});

test("the presence topic follows the golden snapshot and join/update/leave patches, and reloads after a reconnect", async () => {
  const client = makeClient();
  const snapshot = golden("server/snapshot.presence.json");
  const cimId = snapshot.topic.slice("presence:".length);
  assert.equal(presenceTopic(cimId), snapshot.topic);
  const changes = [];
  const people = client.subscribe(presenceTopic(cimId), (change) => changes.push(change));
  let socket = await connectLive(client);
  const subscribe = socket.last("subscribe");
  assert.deepEqual(subscribe, { type: "subscribe", id: subscribe.id, topic: snapshot.topic });
  socket.receive({ ...snapshot, id: subscribe.id });
  await people.ready;
  assert.deepEqual(Object.keys(people.document), ["819a0bb06b7ca542"]);

  socket.receive(golden("server/patch.presence-join.json"));
  socket.receive(golden("server/patch.presence-update.json"));
  assert.deepEqual(presenceList(people.document).map((m) => [m.actor, presenceActivity(m.state)]), [
    ["banker-1", "drafting section financials"],
    ["banker-2", "editing slide slide-3"],
  ]);
  socket.receive(golden("server/patch.presence-leave.json"));
  assert.deepEqual(presenceList(people.document).map((m) => m.id), ["a6754a5067af6cc3"]);
  assert.deepEqual(changes.slice(1).map((c) => c.mutation), ["join", "update", "leave"]);

  // Presence is not sequenced: after a reconnect the client asks for a fresh snapshot (no resume).
  socket = await reconnect(client, socket);
  const resubscribe = socket.last("subscribe");
  assert.equal(resubscribe.resume, undefined);
  socket.receive({ ...snapshot, data: {}, id: resubscribe.id });
  assert.deepEqual(people.document, {});
});

test("a listener of the presence topic hears when this connection's presence id changes", async () => {
  const client = makeClient();
  const snapshot = golden("server/snapshot.presence.json");
  const cimId = snapshot.topic.slice("presence:".length);
  const people = client.subscribe(presenceTopic(cimId));
  const socket = await connectLive(client);
  socket.receive({ ...snapshot, id: socket.last("subscribe").id });
  await people.ready;
  const heard = [];
  people.onChange((change) => heard.push({ local: change.local, id: client.presenceId(cimId) }));
  const joined = client.setPresence(cimId, { activity: "viewing", name: "Alice" });
  socket.receive(answer("server/result.presence.json", socket.last("presence")));
  await joined;
  assert.deepEqual(heard, [{ local: true, id: "819a0bb06b7ca542" }]);
});

test("member helpers: order, kind, names, initials, who edits which slide", () => {
  const member = (id, actor, state, since, userId = actor) => ({ id, userId, actor, state, since });
  const members = {
    b: member("b", "service:service_role/banker-1", { activity: "drafting", sectionId: "market" }, 5, "banker-1"),
    a: member("a", "banker-2", { activity: "editing", slideId: "slide-3", name: "Bob Stone" }, 5),
    c: member("c", "banker-1", { activity: "editing", slideId: "slide-3" }, 1),
    d: member("d", "banker-3", {}, 9),
  };
  const list = presenceList(members);
  assert.deepEqual(list.map((m) => m.id), ["c", "a", "b", "d"], "longest present first, ties by id");
  assert.deepEqual(list.map(presenceKind), ["person", "person", "agent", "person"]);
  assert.deepEqual(list.map(presenceName), ["banker-1", "Bob Stone", "Agent", "banker-3"]);
  assert.deepEqual(["Bob Stone", "banker-2", "alice", "x", "", "émile zola"].map(initials), ["BS", "B2", "AL", "X", "?", "ÉZ"]);
  assert.equal(presenceActivity({}), "viewing");
  assert.equal(presenceActivity({ activity: "editing" }), "editing");
  assert.deepEqual([...editorsBySlide(list)].map(([slide, who]) => [slide, who.map((m) => m.id)]), [["slide-3", ["c", "a"]]]);
  assert.deepEqual([...draftersBySection(list)].map(([section, who]) => [section, who.map((m) => m.id)]), [["market", ["b"]]]);
  assert.deepEqual(presenceList(null), []);
});

test("history calls send the golden queries and resolve the golden results", async () => {
  const client = makeClient();
  const socket = await connectLive(client);
  const at = golden("client/query.cim-at.json");
  const pastCim = cimAt(client, at.args.cimId, at.args.revision);
  const sentAt = socket.last("query");
  assert.deepEqual(sentAt, { ...at, id: sentAt.id });
  socket.receive(answer("server/result.cim-at.json", sentAt));
  assert.equal((await pastCim).cim.revision, 2);

  const diff = golden("client/query.cim-diff.json");
  const changes = cimDiff(client, diff.args.cimId, diff.args.from, diff.args.to);
  const sentDiff = socket.last("query");
  assert.deepEqual(sentDiff, { ...diff, id: sentDiff.id });
  socket.receive(answer("server/result.cim-diff.json", sentDiff));
  const result = await changes;
  assert.deepEqual(result.patches.map((p) => [p.rev, p.actor]), [[2, "banker-1"], [3, "banker-1"]]);

  const list = cimHistory(client, at.args.cimId, { limit: 2 });
  const sentList = socket.last("query");
  assert.deepEqual(sentList.args, { cimId: at.args.cimId, limit: 2 }, "no before: the newest");
  socket.receive({ type: "result", id: sentList.id, result: { items: [], nextBefore: null } });
  await list;
  const older = cimHistory(client, at.args.cimId, { before: 7 });
  assert.deepEqual(socket.last("query").args, { cimId: at.args.cimId, before: 7 });
  socket.receive({ type: "result", id: socket.last("query").id, result: { items: [], nextBefore: null } });
  await older;
  const sinceCreation = cimDiff(client, at.args.cimId, 0);
  assert.deepEqual(socket.last("query").args, { cimId: at.args.cimId, from: 0 }, "no to: up to now");
  socket.receive({ type: "result", id: socket.last("query").id, result: { patches: [] } });
  await sinceCreation;
});

test("restoreRevision is one mutation id, sent again unchanged after a reconnect, so it applies once", async () => {
  const client = makeClient();
  let socket = await connectLive(client);
  const want = golden("client/mutate.restore.json");
  const restored = restoreRevision(client, want.args.cimId, want.args.revision, { mutationId: want.mutationId });
  const sent = socket.last("mutate");
  assert.deepEqual(sent, { ...want, id: sent.id });
  socket = await reconnect(client, socket);
  assert.deepEqual(socket.last("mutate"), sent);
  socket.receive(answer("server/result.restore.json", sent));
  const done = await restored;
  assert.deepEqual(done.result, { restoredFrom: 2, changed: true });
  assert.equal(done.revision, 4);
  assert.equal(sentOf(socket, "mutate").length, 1);
});
