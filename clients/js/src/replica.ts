// The confirmed state of one topic: clients/replica.py, in TypeScript.

import { ReplicaGap } from "./errors.js";
import type { PatchFrame, SnapshotFrame } from "./generated.js";
import { applyPatch, type JsonOp } from "./patch.js";

const SEQUENCED_KINDS = new Set(["cim", "messages"]);

/** One snapshot or patch as a listener sees it. */
export interface Change<T = unknown> {
  topic: string;
  revision: number;
  epoch: string;
  /** The document listeners should show: the hub's, with pending optimistic updates on top. */
  document: T | null;
  /** The hub's document at `revision`, without optimistic updates. */
  confirmed: T | null;
  ops: JsonOp[];
  mutation: string | null;
  mutationId: string | null;
  actor: string | null;
  ts: number | null;
  deleted: boolean;
  snapshot: boolean;
  reset: boolean;
  /** True for a change made only by optimistic updates being added or dropped (no new revision). */
  local: boolean;
  /** Mutation ids of the optimistic updates still applied on top. */
  pending: string[];
}

/**
 * `document` at `revision` of `epoch`, as confirmed by the hub.
 *
 * For sequenced topics (`cim:`, `messages:`) patches must come as r+1, r+2, ...;
 * repeats are ignored (a resume may replay what is already here) and anything
 * else throws ReplicaGap. A `cim:` or `messages:` revision is also named by its commit id, and
 * resuming names it, so after Redis came back older the hub answers with a
 * reset snapshot rather than patches of another history. A `deal:` topic is not sequenced: its patches apply as
 * they come and a lost place is repaired with a fresh snapshot.
 */
export class Replica<T = unknown> {
  readonly topic: string;
  readonly sequenced: boolean;
  document: T | null = null;
  revision = 0;
  epoch = "";
  /** The commit id of `revision`, for topics that have them (protocol 2). */
  commit: string | null = null;
  loaded = false;

  constructor(topic: string) {
    this.topic = topic;
    this.sequenced = SEQUENCED_KINDS.has(topic.split(":", 1)[0]!);
  }

  /** What to put in a subscribe frame's `resume`: null means "send me a snapshot". */
  resumePoint(): { revision: number; epoch: string; commit?: string } | null {
    if (!(this.loaded && this.sequenced)) return null;
    const point: { revision: number; epoch: string; commit?: string } = { revision: this.revision, epoch: this.epoch };
    if (this.commit) point.commit = this.commit;
    return point;
  }

  /** Whether the replica holds exactly this change (a `subscribed` frame's end point). */
  isAt(revision: number, epoch: string, commit: string | null | undefined): boolean {
    if (!this.loaded || this.revision !== revision || this.epoch !== epoch) return false;
    return !commit || !this.commit || commit === this.commit;
  }

  /** Drop the state, so the next subscribe asks for a fresh snapshot. */
  forget(): void {
    this.loaded = false;
  }

  /** Replace the state with a snapshot frame. */
  load(frame: SnapshotFrame): void {
    this.document = frame.data as T;
    this.revision = frame.revision;
    this.epoch = frame.epoch;
    this.commit = frame.commit ?? null;
    this.loaded = true;
  }

  /** Apply a patch frame; false for a repeat (or before any snapshot). Throws ReplicaGap. */
  apply(frame: PatchFrame): boolean {
    if (!this.loaded) return false;
    if (this.sequenced) {
      if (frame.epoch !== this.epoch) throw new ReplicaGap(`${this.topic}: epoch changed from ${this.epoch} to ${frame.epoch}`);
      if (frame.revision < this.revision) return false;
      if (frame.revision === this.revision) {
        if (frame.commit && this.commit && frame.commit !== this.commit) {
          throw new ReplicaGap(`${this.topic}: revision ${frame.revision} is another commit than the one held`);
        }
        return false;
      }
      if (frame.revision !== this.revision + 1) {
        throw new ReplicaGap(`${this.topic}: expected revision ${this.revision + 1}, got ${frame.revision}`);
      }
    }
    let document: T | null = null;
    if (!frame.deleted) {
      try {
        document = applyPatch(this.document, frame.ops as unknown as JsonOp[]);
      } catch (error) {
        // Resuming from a document that disagrees with the hub would only fail again.
        this.forget();
        throw new ReplicaGap(`${this.topic}: revision ${frame.revision} does not apply: ${(error as Error).message}`);
      }
    }
    this.document = document;
    this.revision = frame.revision;
    this.commit = frame.commit ?? null;
    return true;
  }
}
