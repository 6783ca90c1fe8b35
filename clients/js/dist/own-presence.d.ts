import type { PresenceState } from "./generated.js";
import type { Requests } from "./requests.js";
import type { Topics } from "./topics.js";
/** @internal */
export declare class OwnPresence {
    private readonly requests;
    private readonly topics;
    private readonly nextId;
    private readonly entries;
    constructor(requests: Requests, topics: Topics, nextId: (prefix: string) => string);
    /** Show `state` on CIM `cimId` (null leaves); resolves the presence id (null after leaving). */
    set(cimId: string, state: PresenceState | null): Promise<string | null>;
    id(cimId: string): string | null;
    /** The socket closed: every presence ended with it. */
    socketClosed(): void;
    clear(): void;
    /** A new socket: the hub forgot this connection's presence. Set each again, unless a frame for it is on its way. */
    restore(): void;
    private send;
}
