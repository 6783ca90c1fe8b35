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

export { backoffDelay, httpBase, hubUrl, newMutationId, SUBPROTOCOL, WS_PATH, type BackoffOptions } from "./backoff.js";
export {
  CimhubClient,
  type ClientOptions,
  type MutateOptions,
  type MutationAnswer,
  type MutationName,
  type QueryName,
} from "./client.js";
export { jsonCodec, type Codec } from "./codec.js";
export { type ConnectionState, type ConnectionStatus, type TokenSource } from "./connection.js";
export { webStorageOutbox, type OutboxStore, type StoredMutation } from "./outbox.js";
export { Subscription, type TopicSnapshot } from "./subscription.js";
export { CimhubError, PatchError, ReplicaGap } from "./errors.js";
export * from "./generated.js";
export {
  cimAt,
  cimDiff,
  cimHistory,
  restoreRevision,
  type CimAtResult,
  type CimDiffResult,
  type CimHistoryResult,
  type HistoryEntry,
  type HistoryItem,
  type RestoreResult,
} from "./history.js";
export { applyPending, cimUpdates, type OptimisticUpdate, type PendingUpdate } from "./optimistic.js";
export { applyPatch, parsePointer, type JsonOp, type JsonValue } from "./patch.js";
export {
  draftersBySection,
  editorsBySlide,
  initials,
  presenceActivity,
  presenceKind,
  presenceList,
  presenceName,
  presenceTopic,
  type PresenceKind,
  type PresenceMember,
  type PresenceMembers,
} from "./presence.js";
export { Replica, type Change } from "./replica.js";
