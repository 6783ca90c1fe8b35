// Presence on a CIM: who is on it right now and what they are doing (docs/presence.md).
//
// The `presence:<cimId>` topic is a map `{presenceId: member}`: a snapshot, then one
// unsequenced patch (revision 0) per join, update or leave; after a reconnect the hub
// sends a fresh snapshot. These are pure helpers over that map; `CimhubClient.setPresence`
// shows this connection on a CIM and sets it again after every reconnect.
export function presenceTopic(cimId) {
    return `presence:${cimId}`;
}
/** Whether a member is a service acting for a user (an agent) rather than a person signed in. */
export function presenceKind(member) {
    return member.actor.startsWith("service:") ? "agent" : "person";
}
/** The members, longest present first (ties by id), so avatars keep their places as others come and go. */
export function presenceList(members) {
    return Object.values(members ?? {}).sort((a, b) => a.since - b.since || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
/** A name to show: the state's `name`, else "Agent" for an agent, else the user id (or the actor). */
export function presenceName(member) {
    if (member.state.name)
        return member.state.name;
    return presenceKind(member) === "agent" ? "Agent" : member.userId ?? member.actor;
}
/** One or two capital letters for an avatar: "Alice Smith" -> "AS", "banker-2" -> "B2", "" -> "?". */
export function initials(name) {
    const words = name.split(/[\s._@-]+/u).filter((word) => word !== "");
    const letters = words.length > 1 ? [words[0], words.at(-1)] : words.length === 1 ? [words[0]] : [];
    const picked = letters.length === 1 ? [...letters[0]].slice(0, 2) : letters.map((word) => [...word][0]);
    return picked.join("").toUpperCase() || "?";
}
/** What a member is doing, in words: "viewing", "editing slide slide-3", "drafting section financials". */
export function presenceActivity(state) {
    const activity = state.activity ?? "viewing";
    if (activity === "editing" && state.slideId)
        return `editing slide ${state.slideId}`;
    if (activity === "drafting" && state.sectionId)
        return `drafting section ${state.sectionId}`;
    return activity;
}
/** Who edits each slide: slide id -> the members whose state is `editing` it. */
export function editorsBySlide(members) {
    return groupBy(members, (state) => (state.activity === "editing" ? state.slideId : null));
}
/** Who drafts each section (usually agents): section id -> the members whose state is `drafting` it. */
export function draftersBySection(members) {
    return groupBy(members, (state) => (state.activity === "drafting" ? state.sectionId : null));
}
function groupBy(members, target) {
    const groups = new Map();
    for (const member of members) {
        const id = target(member.state);
        if (!id)
            continue;
        groups.set(id, [...(groups.get(id) ?? []), member]);
    }
    return groups;
}
