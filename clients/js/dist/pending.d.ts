import { type OptimisticUpdate } from "./optimistic.js";
import type { StoredMutation } from "./outbox.js";
import type { TopicState } from "./subscription.js";
/** @internal */
export declare class PendingUpdates {
    private readonly topicOf;
    private readonly byMutation;
    private restored;
    /** `topicOf(topic)`: the subscribed topic's state, if any. */
    constructor(topicOf: (topic: string) => TopicState<any> | undefined);
    /** Show a mutation's change at once on its topic (when subscribed); throws TypeError when there is no update to use. */
    add(name: string, args: unknown, mutationId: string, chosen: boolean | OptimisticUpdate<any, any> | undefined, topic?: string): void;
    /** The hub answered at `revision`: the update goes once the replica reaches it. */
    answer(mutationId: string, revision: number): void;
    /** Roll the update back (or drop it once confirmed). */
    drop(mutationId: string): void;
    /** Drop the updates a confirmed change now includes; true if any went. */
    settle(state: TopicState<any>, mutationId: string | null): boolean;
    /** The topic went: forget its updates. */
    forget(state: TopicState<any>): void;
    clear(): void;
    /** Keep a restored mutation's built-in update, to show once its topic is subscribed. */
    restore(mutation: StoredMutation): void;
    /** A restored mutation was answered at `revision`, or refused (null). */
    settleRestored(mutationId: string, revision: number | null): void;
    /** A topic is subscribed: put the restored updates waiting for it on it. */
    attachRestored(state: TopicState<any>): void;
}
