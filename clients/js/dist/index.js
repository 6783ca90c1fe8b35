// @cimhub/client: live CIM documents from a cimhub hub, with exactly-once and optimistic mutations.
//
//   import { CimhubClient } from "@cimhub/client";
//   const hub = new CimhubClient({ url: "https://hub.example.com", token: () => getAccessToken() });
//   const sub = hub.subscribe<Cim>(`cim:${cimId}`, (change) => render(change.document));
//   await hub.mutate("updateSlide", { cimId, slide: { id, title } }, { optimistic: true });
//
//   await hub.setPresence(cimId, { activity: "editing", slideId }); // others see it in `presence:<cimId>`
//
// React bindings are in "@cimhub/client/react".
export { backoffDelay, httpBase, hubUrl, newMutationId, SUBPROTOCOL, WS_PATH } from "./backoff.js";
export { CimhubClient, } from "./client.js";
export { jsonCodec } from "./codec.js";
export { webStorageOutbox } from "./outbox.js";
export { Subscription } from "./subscription.js";
export { CimhubError, PatchError, ReplicaGap } from "./errors.js";
export * from "./generated.js";
export { cimAt, cimDiff, cimHistory, restoreRevision, } from "./history.js";
export { applyPending, cimUpdates } from "./optimistic.js";
export { applyPatch, parsePointer } from "./patch.js";
export { draftersBySection, editorsBySlide, initials, presenceActivity, presenceKind, presenceList, presenceName, presenceTopic, } from "./presence.js";
export { Replica } from "./replica.js";
