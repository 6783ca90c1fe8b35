// The replica and JSON Patch logic of the client (server/static/cimhub.js, built from clients/js), fed the golden frames
// the Python tests validate against protocol/frames.py. Run: node --test tests/js/

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { PatchError, Replica, ReplicaGap, applyPatch, parsePointer } from "../../server/static/cimhub.js";
import { cimPatches, golden } from "./golden.mjs";

const clone = (value) => JSON.parse(JSON.stringify(value));

describe("replaying the golden CIM frames", () => {
  test("snapshot then patches 2..10 give the document the hub returned at revision 10", () => {
    const snapshot = golden("server/snapshot.json");
    const replica = new Replica(snapshot.topic);
    replica.load(snapshot);
    assert.equal(replica.loaded, true);
    const patches = cimPatches().filter((frame) => frame.revision <= 10);
    assert.deepEqual(patches.map((frame) => frame.revision), [2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const frame of patches) {
      assert.equal(replica.apply(frame), true);
      assert.equal(replica.revision, frame.revision);
    }
    assert.deepEqual(replica.document, golden("replay/cim.r10.json"));
    assert.deepEqual(replica.resumePoint(), { revision: 10, epoch: snapshot.epoch });
  });

  test("each change leaves the documents handed out before it untouched", () => {
    const snapshot = golden("server/snapshot.json");
    const replica = new Replica(snapshot.topic);
    replica.load(snapshot);
    const seen = [[replica.document, JSON.stringify(snapshot.data)]];
    for (const frame of cimPatches().filter((f) => f.revision <= 10)) {
      const before = JSON.stringify(frame);
      replica.apply(frame);
      const document = replica.document;
      assert.equal(JSON.stringify(frame), before, `revision ${frame.revision} changed its own frame`);
      seen.push([document, JSON.stringify(document)]);
    }
    for (const [document, json] of seen) assert.equal(JSON.stringify(document), json);
  });

  test("the navigate-back patch marks every slide needs_review with a staleReason", () => {
    const replica = new Replica(golden("server/snapshot.json").topic);
    replica.load(golden("server/snapshot.json"));
    for (const frame of cimPatches().filter((f) => f.revision <= 9)) replica.apply(frame);
    assert.equal(replica.document.stage, "hero_concept");
    assert.deepEqual(
      replica.document.slides.map((s) => [s.id, s.status, s.staleReason]),
      [["slide-1", "needs_review", "hero_concept_changed"], ["slide-2", "needs_review", "hero_concept_changed"]],
    );
  });

  test("keys with / and ~ arrive escaped (RFC 6901) and land under their real names", () => {
    const replica = new Replica(golden("server/snapshot.json").topic);
    replica.load(golden("server/snapshot.json"));
    for (const frame of cimPatches().filter((f) => f.revision <= 4)) replica.apply(frame);
    assert.deepEqual(replica.document.gatheredContext, { "revenue/ebitda": "14/4", "owner~ship": "family" });
  });

  test("a repeated patch is ignored; a skipped revision is a gap", () => {
    const replica = new Replica(golden("server/snapshot.json").topic);
    replica.load(golden("server/snapshot.json"));
    const [r2, r3] = cimPatches();
    replica.apply(r2);
    assert.equal(replica.apply(r2), false);
    assert.equal(replica.revision, 2);
    const r4 = cimPatches().find((f) => f.revision === 4);
    assert.throws(() => replica.apply(r4), ReplicaGap);
    assert.equal(replica.loaded, true, "a gap keeps the replica: resume from where it is");
    replica.apply(r3);
    assert.equal(replica.revision, 3);
  });

  test("a patch from another epoch is a gap", () => {
    const replica = new Replica(golden("server/snapshot.json").topic);
    replica.load(golden("server/snapshot.json"));
    assert.throws(() => replica.apply({ ...cimPatches()[0], epoch: "another" }), ReplicaGap);
  });

  test("the delete patch empties the document", () => {
    const replica = new Replica(golden("server/snapshot.json").topic);
    replica.load(golden("server/snapshot.json"));
    for (const frame of cimPatches().filter((f) => f.revision <= 10)) replica.apply(frame);
    const deleted = golden("server/patch.r12-deleted.json");
    assert.throws(() => replica.apply(deleted), ReplicaGap, "revision 11 is missing from the walk-through");
    assert.equal(replica.apply({ ...deleted, revision: 11 }), true);
    assert.equal(replica.document, null);
  });

  test("a patch that does not fit forgets the replica, so the next subscribe takes a snapshot", () => {
    const replica = new Replica(golden("server/snapshot.json").topic);
    replica.load(golden("server/snapshot.json"));
    const bad = { ...cimPatches()[0], ops: [{ op: "replace", path: "/nope/deeper", value: 1 }] };
    assert.throws(() => replica.apply(bad), ReplicaGap);
    assert.equal(replica.loaded, false);
    assert.equal(replica.resumePoint(), null);
  });

  test("a reset snapshot replaces the state", () => {
    const frame = golden("server/snapshot.reset.json");
    const replica = new Replica(frame.topic);
    replica.load(frame);
    assert.equal(frame.reset, true);
    assert.equal(replica.document.title, "Project Osprey II");
  });
});

describe("replaying the golden deal frames", () => {
  test("a deal's CIM list follows add (insert and update) and remove", () => {
    const snapshot = golden("server/snapshot.deal.json");
    const replica = new Replica(snapshot.topic);
    replica.load(snapshot);
    for (const name of ["deal-add", "deal-update", "deal-remove"]) {
      assert.equal(replica.apply(golden(`server/patch.${name}.json`)), true);
    }
    assert.deepEqual(replica.document, golden("replay/deal.json"));
    assert.equal(replica.sequenced, false);
    assert.equal(replica.resumePoint(), null, "an unsequenced topic always restarts from a snapshot");
  });
});

describe("applyPatch", () => {
  test("parsePointer unescapes ~1 before ~0 (RFC 6901 §4)", () => {
    assert.deepEqual(parsePointer(""), []);
    assert.deepEqual(parsePointer("/a~1b/c~0d/~01"), ["a/b", "c~d", "~1"]);
    assert.throws(() => parsePointer("a"), PatchError);
  });

  test("add inserts into arrays (and appends at -); replace and remove change members", () => {
    const doc = { list: [1, 3], map: { a: 1, b: 2 } };
    const out = applyPatch(doc, [
      { op: "add", path: "/list/1", value: 2 },
      { op: "add", path: "/list/-", value: 4 },
      { op: "replace", path: "/map/a", value: 10 },
      { op: "remove", path: "/map/b" },
      { op: "add", path: "/map/c", value: { deep: [] } },
      { op: "add", path: "/map/c/deep/0", value: "x" },
      { op: "remove", path: "/list/0" },
    ]);
    assert.deepEqual(out, { list: [2, 3, 4], map: { a: 10, c: { deep: ["x"] } } });
    assert.deepEqual(doc, { list: [1, 3], map: { a: 1, b: 2 } }, "the input is never changed");
    assert.equal(applyPatch(doc, []), doc);
  });

  test("an unchanged subtree is shared, not copied", () => {
    const doc = { a: { x: 1 }, b: { y: 2 } };
    const out = applyPatch(doc, [{ op: "replace", path: "/a/x", value: 5 }]);
    assert.equal(out.b, doc.b);
    assert.notEqual(out.a, doc.a);
  });

  test("ops that do not fit throw PatchError", () => {
    const doc = { list: [1], map: {} };
    const bad = [
      { op: "remove", path: "/map/missing" },
      { op: "replace", path: "/map/missing", value: 1 },
      { op: "add", path: "/list/2", value: 1 },
      { op: "add", path: "/list/01", value: 1 },
      { op: "remove", path: "/list/-" },
      { op: "add", path: "/missing/x", value: 1 },
      { op: "add", path: "/list/0/x", value: 1 },
      { op: "move", from: "/list/0", path: "/map/x" },
      { op: "add", path: "/map/x" },
      { op: "remove", path: "" },
    ];
    for (const op of bad) {
      assert.throws(() => applyPatch(doc, [op]), PatchError, JSON.stringify(op));
    }
    assert.deepEqual(doc, { list: [1], map: {} });
  });

  test("a member called __proto__ is data, not the object's prototype", () => {
    const out = applyPatch({ ctx: {} }, [{ op: "add", path: "/ctx/__proto__", value: { polluted: true } }]);
    assert.equal(Object.getPrototypeOf(out.ctx), Object.prototype);
    assert.deepEqual(Object.keys(out.ctx), ["__proto__"]);
    assert.equal({}.polluted, undefined);
    const again = applyPatch(clone(out), [{ op: "replace", path: "/ctx/__proto__/polluted", value: false }]);
    assert.equal(Object.getPrototypeOf(again.ctx), Object.prototype);
  });

  test("the whole document can be replaced", () => {
    assert.deepEqual(applyPatch({ a: 1 }, [{ op: "replace", path: "", value: { b: 2 } }]), { b: 2 });
  });
});

describe("commit ids (protocol 2)", () => {
  test("the replica resumes from the commit id of the last change it applied", () => {
    const snapshot = golden("server/snapshot.commit.json");
    const patch = golden("server/patch.commit.json");
    const replica = new Replica(snapshot.topic);
    replica.load(snapshot);
    assert.equal(replica.commit, snapshot.commit);
    assert.deepEqual(replica.resumePoint(), { revision: 1, epoch: snapshot.epoch, commit: snapshot.commit });
    assert.equal(replica.apply(patch), true);
    assert.equal(replica.commit, patch.commit);
    assert.deepEqual(replica.resumePoint(), golden("client/subscribe.resume-commit.json").resume);
    assert.equal(replica.isAt(patch.revision, patch.epoch, patch.commit), true);
    assert.equal(replica.isAt(patch.revision, patch.epoch, "0123456789abcdef"), false);
  });

  test("the same revision under another commit id is another history: a gap, not a repeat", () => {
    const snapshot = golden("server/snapshot.commit.json");
    const patch = golden("server/patch.commit.json");
    const replica = new Replica(snapshot.topic);
    replica.load(snapshot);
    replica.apply(patch);
    assert.equal(replica.apply(clone(patch)), false, "the very same commit again is a repeat");
    assert.throws(() => replica.apply({ ...clone(patch), commit: "0123456789abcdef" }), ReplicaGap);
  });

  test("a messages: topic is named by commit ids too: a resume names the last message's", () => {
    const snapshot = golden("server/snapshot.messages-commit.json");
    const patch = golden("server/patch.messages-commit.json");
    const replica = new Replica(snapshot.topic);
    replica.load(snapshot);
    assert.equal(replica.apply(patch), true);
    assert.deepEqual(replica.document.messages.map((message) => message.role), ["user", "assistant"]);
    assert.deepEqual(replica.resumePoint(), { revision: 2, epoch: patch.epoch, commit: patch.commit });
    assert.throws(() => replica.apply({ ...clone(patch), commit: "0123456789abcdef" }), ReplicaGap);
  });

  test("a reset snapshot replaces the replica and its commit id", () => {
    const reset = golden("server/snapshot.reset-commit.json");
    const replica = new Replica(reset.topic);
    replica.load(golden("server/snapshot.commit.json"));
    replica.load(reset);
    assert.deepEqual(replica.resumePoint(), { revision: reset.revision, epoch: reset.epoch, commit: reset.commit });
  });
});
