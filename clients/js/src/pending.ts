// The optimistic updates the client shows while their mutations wait for the hub, by mutation id.
//
// The updates themselves are pure functions (optimistic.ts); this keeps which ones are pending on
// which topic, and drops each when the hub's change includes it, or rolls it back when refused.
// Updates of mutations restored from the outbox wait here until their topic is subscribed.

import type { Cim } from "./generated.js";
import { cimUpdates, type OptimisticUpdate, type PendingUpdate } from "./optimistic.js";
import type { StoredMutation } from "./outbox.js";
import type { TopicState } from "./subscription.js";

/** @internal */
export class PendingUpdates {
  private readonly byMutation = new Map<string, PendingUpdate>();
  private restored: PendingUpdate[] = []; // optimistic updates of restored mutations, until their topic is subscribed

  /** `topicOf(topic)`: the subscribed topic's state, if any. */
  constructor(private readonly topicOf: (topic: string) => TopicState<any> | undefined) {}

  /** Show a mutation's change at once on its topic (when subscribed); throws TypeError when there is no update to use. */
  add(name: string, args: unknown, mutationId: string, chosen: boolean | OptimisticUpdate<any, any> | undefined, topic?: string): void {
    if (!chosen) return;
    const update = typeof chosen === "function" ? chosen : (cimUpdates as Record<string, OptimisticUpdate<Cim, any>>)[name];
    if (update === undefined) throw new TypeError(`no built-in optimistic update for ${name}: pass a function`);
    const cimId = (args as { cimId?: string } | null)?.cimId;
    const target = topic ?? (cimId ? `cim:${cimId}` : null);
    if (target === null) throw new TypeError("pass options.topic: the arguments name no cimId");
    const state = this.topicOf(target);
    if (state === undefined) return; // nobody shows this topic: nothing to predict
    const entry: PendingUpdate = { mutationId, topic: target, args, update, answeredRevision: null };
    this.byMutation.set(mutationId, entry);
    state.pending.push(entry);
    state.publishLocal();
  }

  /** The hub answered at `revision`: the update goes once the replica reaches it. */
  answer(mutationId: string, revision: number): void {
    const entry = this.byMutation.get(mutationId);
    if (entry === undefined) return;
    entry.answeredRevision = revision;
    const state = this.topicOf(entry.topic);
    if (state !== undefined && state.replica.revision >= revision) this.drop(mutationId);
  }

  /** Roll the update back (or drop it once confirmed). */
  drop(mutationId: string): void {
    const entry = this.byMutation.get(mutationId);
    if (entry === undefined) return;
    this.byMutation.delete(mutationId);
    const state = this.topicOf(entry.topic);
    if (state === undefined) return;
    state.pending = state.pending.filter((e) => e !== entry);
    state.publishLocal();
  }

  /** Drop the updates a confirmed change now includes; true if any went. */
  settle(state: TopicState<any>, mutationId: string | null): boolean {
    const before = state.pending.length;
    state.pending = state.pending.filter((entry) => {
      const done = entry.mutationId === mutationId
        || (entry.answeredRevision !== null && state.replica.revision >= entry.answeredRevision);
      if (done) this.byMutation.delete(entry.mutationId);
      return !done;
    });
    return state.pending.length !== before;
  }

  /** The topic went: forget its updates. */
  forget(state: TopicState<any>): void {
    for (const entry of state.pending) this.byMutation.delete(entry.mutationId);
  }

  clear(): void {
    this.byMutation.clear();
  }

  /** Keep a restored mutation's built-in update, to show once its topic is subscribed. */
  restore(mutation: StoredMutation): void {
    const update = (cimUpdates as Record<string, OptimisticUpdate<Cim, any>>)[mutation.name];
    const cimId = (mutation.args as { cimId?: string } | null)?.cimId;
    if (mutation.optimistic && update && cimId) {
      this.restored.push({ mutationId: mutation.mutationId, topic: `cim:${cimId}`, args: mutation.args, update, answeredRevision: null });
    }
  }

  /** A restored mutation was answered at `revision`, or refused (null). */
  settleRestored(mutationId: string, revision: number | null): void {
    this.restored = this.restored.filter((e) => e.mutationId !== mutationId);
    if (revision === null) this.drop(mutationId);
    else this.answer(mutationId, revision);
  }

  /** A topic is subscribed: put the restored updates waiting for it on it. */
  attachRestored(state: TopicState<any>): void {
    for (const entry of this.restored.filter((e) => e.topic === state.topic)) {
      state.pending.push(entry);
      this.byMutation.set(entry.mutationId, entry);
    }
    this.restored = this.restored.filter((e) => e.topic !== state.topic);
  }
}
