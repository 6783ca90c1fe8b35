// Where mutations not yet answered are kept, so a closed tab or a reload loses none of them.

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
export function webStorageOutbox(storage: Pick<Storage, "getItem" | "setItem" | "removeItem">, key = "cimhub.outbox"): OutboxStore {
  return {
    load: () => {
      try {
        const stored = JSON.parse(storage.getItem(key) ?? "[]") as unknown;
        return Array.isArray(stored) ? (stored as StoredMutation[]) : [];
      } catch {
        return []; // unreadable: start empty rather than fail to start
      }
    },
    save: (mutations) => {
      if (mutations.length === 0) storage.removeItem(key);
      else storage.setItem(key, JSON.stringify(mutations));
    },
  };
}
