import type { Connection } from "./connection.js";
import { CimhubError } from "./errors.js";
import type { ResultFrame } from "./generated.js";
import type { OutboxStore, StoredMutation } from "./outbox.js";
interface Request {
    frame: Record<string, unknown> & {
        id: string;
    };
    stored?: StoredMutation;
    resolve: (answer: any) => void;
    reject: (error: Error) => void;
    failures: number;
    held: boolean;
    /** The CIM a presence frame is for. */
    presenceOf?: string;
}
export type RequestFrame = Request["frame"];
/** @internal The requests of one client that wait for the hub's answer. */
export declare class Requests {
    private readonly connection;
    private readonly outbox;
    private readonly waiting;
    constructor(connection: Connection, outbox: OutboxStore | null);
    /** Send `frame` (now if live, else on the next `ready`); resolves the hub's answer (the result frame without type and id). */
    send(frame: RequestFrame, stored?: StoredMutation, presenceOf?: string): Promise<any>;
    /** Queue a mutation an earlier run left unanswered, with its id; `settle` hears its revision, or null if refused. */
    adopt(mutation: StoredMutation, settle: (revision: number | null) => void): void;
    /** A new socket (`all`), or a refreshed token: send every request again, or only those held for the token. */
    resend(all: boolean): void;
    /** The CIMs a presence frame is on its way for. */
    presenceWaiting(): Set<string>;
    onResult(frame: ResultFrame): void;
    /** The hub refused frame `id`: retry or reject the request. False when no request has that id. */
    onError(id: string, error: CimhubError): boolean;
    /**
     * The client stopped: reject every request. `close()` gives up what waits, so the outbox
     * forgets it too; a stop (the hub refused the credentials) keeps it for the next client.
     */
    rejectAll(reason: Error, forget: boolean): void;
    private sendRequest;
    private retry;
    private persist;
}
export {};
