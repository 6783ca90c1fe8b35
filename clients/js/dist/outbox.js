// Where mutations not yet answered are kept, so a closed tab or a reload loses none of them.
/** An outbox in Web Storage (`localStorage`: shared by the origin's tabs; a mutation sent twice still applies once). */
export function webStorageOutbox(storage, key = "cimhub.outbox") {
    return {
        load: () => {
            try {
                const stored = JSON.parse(storage.getItem(key) ?? "[]");
                return Array.isArray(stored) ? stored : [];
            }
            catch {
                return []; // unreadable: start empty rather than fail to start
            }
        },
        save: (mutations) => {
            if (mutations.length === 0)
                storage.removeItem(key);
            else
                storage.setItem(key, JSON.stringify(mutations));
        },
    };
}
