// The confirmed state of one topic: clients/replica.py, in TypeScript.
import { ReplicaGap } from "./errors.js";
import { applyPatch } from "./patch.js";
const SEQUENCED_KINDS = new Set(["cim", "messages"]);
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
export class Replica {
    topic;
    sequenced;
    document = null;
    revision = 0;
    epoch = "";
    /** The commit id of `revision`, for topics that have them (protocol 2). */
    commit = null;
    loaded = false;
    constructor(topic) {
        this.topic = topic;
        this.sequenced = SEQUENCED_KINDS.has(topic.split(":", 1)[0]);
    }
    /** What to put in a subscribe frame's `resume`: null means "send me a snapshot". */
    resumePoint() {
        if (!(this.loaded && this.sequenced))
            return null;
        const point = { revision: this.revision, epoch: this.epoch };
        if (this.commit)
            point.commit = this.commit;
        return point;
    }
    /** Whether the replica holds exactly this change (a `subscribed` frame's end point). */
    isAt(revision, epoch, commit) {
        if (!this.loaded || this.revision !== revision || this.epoch !== epoch)
            return false;
        return !commit || !this.commit || commit === this.commit;
    }
    /** Drop the state, so the next subscribe asks for a fresh snapshot. */
    forget() {
        this.loaded = false;
    }
    /** Replace the state with a snapshot frame. */
    load(frame) {
        this.document = frame.data;
        this.revision = frame.revision;
        this.epoch = frame.epoch;
        this.commit = frame.commit ?? null;
        this.loaded = true;
    }
    /** Apply a patch frame; false for a repeat (or before any snapshot). Throws ReplicaGap. */
    apply(frame) {
        if (!this.loaded)
            return false;
        if (this.sequenced) {
            if (frame.epoch !== this.epoch)
                throw new ReplicaGap(`${this.topic}: epoch changed from ${this.epoch} to ${frame.epoch}`);
            if (frame.revision < this.revision)
                return false;
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
        let document = null;
        if (!frame.deleted) {
            try {
                document = applyPatch(this.document, frame.ops);
            }
            catch (error) {
                // Resuming from a document that disagrees with the hub would only fail again.
                this.forget();
                throw new ReplicaGap(`${this.topic}: revision ${frame.revision} does not apply: ${error.message}`);
            }
        }
        this.document = document;
        this.revision = frame.revision;
        this.commit = frame.commit ?? null;
        return true;
    }
}
