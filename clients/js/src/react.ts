// React bindings: a provider for one CimhubClient, and hooks over its reference-counted subscriptions.
//
//   <CimhubProvider client={client}><Board cimId={id} /></CimhubProvider>
//   const { cim, isLoading, error, updateSlide } = useCim(cimId);
//   const { members } = usePresence(client, cimId, { activity: "viewing", name: "Alice" });
//
// Every hook reads through `useSyncExternalStore`, so React never tears and
// StrictMode's mount-unmount-mount keeps the topic (the client unsubscribes
// only when the last handle is gone, after the current task). Each component
// holds its own handle: one unmounting never silences another on the topic.

import {
  createContext,
  createElement,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useSyncExternalStore,
  type ReactNode,
} from "react";

import type { CimhubClient, MutateOptions, MutationAnswer, MutationName } from "./client.js";
import type { ConnectionStatus } from "./connection.js";
import type { TopicSnapshot } from "./subscription.js";
import type {
  BuyerPersona,
  Cim,
  CimSummary,
  HeroContext,
  MutationArgsByName,
  OutlineSection,
  PresenceState,
  SlideEdit,
  UpdateStateArgs,
} from "./generated.js";
import { presenceList, presenceTopic, type PresenceMember, type PresenceMembers } from "./presence.js";

const SUSPENSE_HOLD_MS = 10_000;
const ClientContext = createContext<CimhubClient | null>(null);

export function CimhubProvider({ client, children }: { client: CimhubClient; children?: ReactNode }) {
  return createElement(ClientContext.Provider, { value: client }, children);
}

/** The provider's client; throws outside a CimhubProvider. */
export function useCimhub(): CimhubClient {
  const client = useContext(ClientContext);
  if (client === null) throw new Error("useCimhub: wrap the component in <CimhubProvider client={...}>");
  return client;
}

const LOADING: TopicSnapshot<never> = Object.freeze({
  document: null, revision: 0, isLoading: true, error: null, pending: [], lastChange: null,
});

export interface TopicOptions {
  /** Throw the subscription's `ready` promise while loading, for a <Suspense> boundary. */
  suspense?: boolean;
}

/** A live topic (`cim:<id>`, `deal:<id>`, ...) as `{document, isLoading, error, revision, pending}`; null topic: nothing. */
export function useTopic<T = unknown>(topic: string | null, options: TopicOptions = {}): TopicSnapshot<T> {
  const client = useCimhub();
  const subscribe = useCallback(
    (notify: () => void) => {
      if (topic === null) return () => {};
      const handle = client.subscribe<T>(topic, notify);
      handle.onEnd(notify);
      return () => handle.unsubscribe();
    },
    [client, topic],
  );
  const read = () => (topic === null ? LOADING : client.snapshotOf<T>(topic) ?? LOADING) as TopicSnapshot<T>;
  const snapshot = useSyncExternalStore(subscribe, read, read);
  if (options.suspense && topic !== null && snapshot.isLoading) {
    // A suspended render never commits its own subscription: hold one meanwhile, and for a
    // while after the document is here, so the retried render finds it loaded and subscribes.
    const handle = client.subscribe<T>(topic);
    throw handle.ready.finally(() => setTimeout(() => handle.unsubscribe(), SUSPENSE_HOLD_MS));
  }
  return snapshot;
}

export interface UseCimResult {
  cim: Cim | null;
  isLoading: boolean;
  error: Error | null;
  revision: number;
  /** Mutation ids of the optimistic changes not confirmed yet. */
  pending: readonly string[];
  saveBuyerPersona(persona: BuyerPersona): Promise<MutationAnswer>;
  saveHeroContext(heroContext: HeroContext): Promise<MutationAnswer>;
  createOutline(outline: OutlineSection[]): Promise<MutationAnswer>;
  updateSlide(slide: SlideEdit): Promise<MutationAnswer>;
  navigateToStage(targetStage: NonNullable<Cim["stage"]>, reason?: string): Promise<MutationAnswer>;
  navigateToSlide(target: { sectionId?: string; slideId?: string }): Promise<MutationAnswer>;
  updateState(fields: Omit<UpdateStateArgs, "cimId">): Promise<MutationAnswer>;
}

/** The seed's `useCIM`: one CIM, live, with its mutations applied optimistically. */
export function useCim(cimId: string | null, options: TopicOptions = {}): UseCimResult {
  const client = useCimhub();
  const snapshot = useTopic<Cim>(cimId === null ? null : `cim:${cimId}`, options);
  const mutations = useMemo(() => {
    const run = <N extends MutationName>(name: N, args: Omit<MutationArgsByName[N], "cimId">) => {
      if (cimId === null) return Promise.reject(new Error(`${name}: no CIM is selected`));
      return client.mutate(name, { ...args, cimId } as MutationArgsByName[N], { optimistic: true });
    };
    return {
      saveBuyerPersona: (persona: BuyerPersona) => run("saveBuyerPersona", { persona }),
      saveHeroContext: (heroContext: HeroContext) => run("saveHeroContext", { heroContext }),
      createOutline: (outline: OutlineSection[]) => run("createOutline", { outline } as never),
      updateSlide: (slide: SlideEdit) => run("updateSlide", { slide }),
      navigateToStage: (targetStage: NonNullable<Cim["stage"]>, reason = "") =>
        run("navigateToStage", { targetStage, reason }),
      navigateToSlide: (target: { sectionId?: string; slideId?: string }) => run("navigateToSlide", target),
      updateState: (fields: Omit<UpdateStateArgs, "cimId">) => run("updateState", fields),
    };
  }, [client, cimId]);
  return {
    cim: snapshot.document,
    isLoading: snapshot.isLoading,
    error: snapshot.error,
    revision: snapshot.revision,
    pending: snapshot.pending,
    ...mutations,
  };
}

/** A deal's CIMs, live, newest change first. */
export function useDealCims(dealId: string | null, options: TopicOptions = {}): {
  cims: CimSummary[];
  isLoading: boolean;
  error: Error | null;
} {
  const snapshot = useTopic<Record<string, CimSummary>>(dealId === null ? null : `deal:${dealId}`, options);
  const cims = useMemo(
    () => Object.values(snapshot.document ?? {}).sort((a, b) => b.updatedAt - a.updatedAt),
    [snapshot.document],
  );
  return { cims, isLoading: snapshot.isLoading, error: snapshot.error };
}

/** A function running mutation `name`; `options.optimistic` as in `client.mutate`. */
export function useMutation<N extends MutationName>(
  name: N,
  defaults: MutateOptions<MutationArgsByName[N]> = {},
): (args: MutationArgsByName[N], options?: MutateOptions<MutationArgsByName[N]>) => Promise<MutationAnswer> {
  const client = useCimhub();
  const { optimistic, topic } = defaults;
  return useCallback(
    (args: MutationArgsByName[N], options: MutateOptions<MutationArgsByName[N]> = {}) =>
      client.mutate(name, args, { optimistic, topic, ...options }),
    [client, name, optimistic, topic],
  );
}

/** The connection's `{state, error}`: `live`, `connecting`, `reconnecting`, `stopped`, `closed`. */
export function useConnectionState(): ConnectionStatus {
  const client = useCimhub();
  const subscribe = useCallback((notify: () => void) => client.onStatus(notify), [client]);
  return useSyncExternalStore(subscribe, () => client.status, () => client.status);
}

export interface UsePresenceResult {
  /** Everyone on the CIM, this connection included, longest present first. */
  members: PresenceMember[];
  /** This connection's member id (null until the hub answered, or when `myState` is not given). */
  presenceId: string | null;
  isLoading: boolean;
  error: Error | null;
}

const NO_MEMBERS: PresenceMember[] = [];
const ignore = () => {};

/**
 * Who is on CIM `cimId`, live (`presence:<cimId>`). With `myState` this connection shows itself
 * with that state while the component is mounted and leaves when it unmounts (or `myState`
 * becomes null); a changed state is sent as an update, not a leave and a join. Only one mounted
 * component per CIM should pass `myState`: presence is one state per connection and CIM.
 */
export function usePresence(
  client: CimhubClient,
  cimId: string | null,
  myState?: PresenceState | null,
): UsePresenceResult {
  const topic = cimId === null ? null : presenceTopic(cimId);
  const subscribe = useCallback(
    (notify: () => void) => {
      if (topic === null) return () => {};
      const handle = client.subscribe<PresenceMembers>(topic, notify);
      handle.onEnd(notify);
      return () => handle.unsubscribe();
    },
    [client, topic],
  );
  const read = () =>
    (topic === null ? LOADING : client.snapshotOf<PresenceMembers>(topic) ?? LOADING) as TopicSnapshot<PresenceMembers>;
  const snapshot = useSyncExternalStore(subscribe, read, read);
  // Compared as JSON: a new object literal on every render must not send a frame every render.
  const stateKey = myState ? JSON.stringify(myState) : null;
  const present = stateKey !== null;
  useEffect(() => {
    if (cimId !== null && stateKey !== null) client.setPresence(cimId, JSON.parse(stateKey) as PresenceState).catch(ignore);
  }, [client, cimId, stateKey]);
  useEffect(() => {
    if (cimId === null || !present) return undefined;
    return () => void client.setPresence(cimId, null).catch(ignore);
  }, [client, cimId, present]);
  const members = useMemo(() => (snapshot.document ? presenceList(snapshot.document) : NO_MEMBERS), [snapshot.document]);
  return {
    members,
    presenceId: cimId === null ? null : client.presenceId(cimId),
    isLoading: topic !== null && snapshot.isLoading,
    error: snapshot.error,
  };
}
