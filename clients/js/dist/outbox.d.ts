/** A mutation waiting for the hub's answer, as an outbox keeps it. */
export interface StoredMutation {
    name: string;
    args: unknown;
    mutationId: string;
    expectedRevision?: number;
    /** Shown with the built-in optimistic update again when its topic is subscribed after a restart. */
    optimistic: boolean;
}
export interface OutboxStore {
    load(): StoredMutation[];
    save(mutations: StoredMutation[]): void;
}
/** An outbox in Web Storage (`localStorage`: shared by the origin's tabs; a mutation sent twice still applies once). */
export declare function webStorageOutbox(storage: Pick<Storage, "getItem" | "setItem" | "removeItem">, key?: string): OutboxStore;
