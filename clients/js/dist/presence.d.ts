import type { PresenceState } from "./generated.js";
/** One connection on a CIM, as the hub publishes it (protocol/presence.py `member`). */
export interface PresenceMember {
    /** The presence id: one per connection and CIM; a reconnect gets a new one. */
    id: string;
    userId: string | null;
    /** The user id, or `service:<role>/<userId>` for a service (an agent) acting for a user. */
    actor: string;
    state: PresenceState;
    /** When it joined (ms since the epoch). */
    since: number;
}
/** The `presence:<cimId>` document. */
export type PresenceMembers = Record<string, PresenceMember>;
export type PresenceKind = "agent" | "person";
export declare function presenceTopic(cimId: string): string;
/** Whether a member is a service acting for a user (an agent) rather than a person signed in. */
export declare function presenceKind(member: Pick<PresenceMember, "actor">): PresenceKind;
/** The members, longest present first (ties by id), so avatars keep their places as others come and go. */
export declare function presenceList(members: PresenceMembers | null | undefined): PresenceMember[];
/** A name to show: the state's `name`, else "Agent" for an agent, else the user id (or the actor). */
export declare function presenceName(member: PresenceMember): string;
/** One or two capital letters for an avatar: "Alice Smith" -> "AS", "banker-2" -> "B2", "" -> "?". */
export declare function initials(name: string): string;
/** What a member is doing, in words: "viewing", "editing slide slide-3", "drafting section financials". */
export declare function presenceActivity(state: PresenceState): string;
/** Who edits each slide: slide id -> the members whose state is `editing` it. */
export declare function editorsBySlide(members: readonly PresenceMember[]): Map<string, PresenceMember[]>;
/** Who drafts each section (usually agents): section id -> the members whose state is `drafting` it. */
export declare function draftersBySection(members: readonly PresenceMember[]): Map<string, PresenceMember[]>;
