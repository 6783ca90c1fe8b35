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
import { createContext, createElement, useCallback, useContext, useEffect, useMemo, useSyncExternalStore, } from "react";
import { presenceList, presenceTopic } from "./presence.js";
const SUSPENSE_HOLD_MS = 10_000;
const ClientContext = createContext(null);
export function CimhubProvider({ client, children }) {
    return createElement(ClientContext.Provider, { value: client }, children);
}
/** The provider's client; throws outside a CimhubProvider. */
export function useCimhub() {
    const client = useContext(ClientContext);
    if (client === null)
        throw new Error("useCimhub: wrap the component in <CimhubProvider client={...}>");
    return client;
}
const LOADING = Object.freeze({
    document: null, revision: 0, isLoading: true, error: null, pending: [], lastChange: null,
});
/** A live topic (`cim:<id>`, `deal:<id>`, ...) as `{document, isLoading, error, revision, pending}`; null topic: nothing. */
export function useTopic(topic, options = {}) {
    const client = useCimhub();
    const subscribe = useCallback((notify) => {
        if (topic === null)
            return () => { };
        const handle = client.subscribe(topic, notify);
        handle.onEnd(notify);
        return () => handle.unsubscribe();
    }, [client, topic]);
    const read = () => (topic === null ? LOADING : client.snapshotOf(topic) ?? LOADING);
    const snapshot = useSyncExternalStore(subscribe, read, read);
    if (options.suspense && topic !== null && snapshot.isLoading) {
        // A suspended render never commits its own subscription: hold one meanwhile, and for a
        // while after the document is here, so the retried render finds it loaded and subscribes.
        const handle = client.subscribe(topic);
        throw handle.ready.finally(() => setTimeout(() => handle.unsubscribe(), SUSPENSE_HOLD_MS));
    }
    return snapshot;
}
/** The seed's `useCIM`: one CIM, live, with its mutations applied optimistically. */
export function useCim(cimId, options = {}) {
    const client = useCimhub();
    const snapshot = useTopic(cimId === null ? null : `cim:${cimId}`, options);
    const mutations = useMemo(() => {
        const run = (name, args) => {
            if (cimId === null)
                return Promise.reject(new Error(`${name}: no CIM is selected`));
            return client.mutate(name, { ...args, cimId }, { optimistic: true });
        };
        return {
            saveBuyerPersona: (persona) => run("saveBuyerPersona", { persona }),
            saveHeroContext: (heroContext) => run("saveHeroContext", { heroContext }),
            createOutline: (outline) => run("createOutline", { outline }),
            updateSlide: (slide) => run("updateSlide", { slide }),
            navigateToStage: (targetStage, reason = "") => run("navigateToStage", { targetStage, reason }),
            navigateToSlide: (target) => run("navigateToSlide", target),
            updateState: (fields) => run("updateState", fields),
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
export function useDealCims(dealId, options = {}) {
    const snapshot = useTopic(dealId === null ? null : `deal:${dealId}`, options);
    const cims = useMemo(() => Object.values(snapshot.document ?? {}).sort((a, b) => b.updatedAt - a.updatedAt), [snapshot.document]);
    return { cims, isLoading: snapshot.isLoading, error: snapshot.error };
}
/** A function running mutation `name`; `options.optimistic` as in `client.mutate`. */
export function useMutation(name, defaults = {}) {
    const client = useCimhub();
    const { optimistic, topic } = defaults;
    return useCallback((args, options = {}) => client.mutate(name, args, { optimistic, topic, ...options }), [client, name, optimistic, topic]);
}
/** The connection's `{state, error}`: `live`, `connecting`, `reconnecting`, `stopped`, `closed`. */
export function useConnectionState() {
    const client = useCimhub();
    const subscribe = useCallback((notify) => client.onStatus(notify), [client]);
    return useSyncExternalStore(subscribe, () => client.status, () => client.status);
}
const NO_MEMBERS = [];
const ignore = () => { };
/**
 * Who is on CIM `cimId`, live (`presence:<cimId>`). With `myState` this connection shows itself
 * with that state while the component is mounted and leaves when it unmounts (or `myState`
 * becomes null); a changed state is sent as an update, not a leave and a join. Only one mounted
 * component per CIM should pass `myState`: presence is one state per connection and CIM.
 */
export function usePresence(client, cimId, myState) {
    const topic = cimId === null ? null : presenceTopic(cimId);
    const subscribe = useCallback((notify) => {
        if (topic === null)
            return () => { };
        const handle = client.subscribe(topic, notify);
        handle.onEnd(notify);
        return () => handle.unsubscribe();
    }, [client, topic]);
    const read = () => (topic === null ? LOADING : client.snapshotOf(topic) ?? LOADING);
    const snapshot = useSyncExternalStore(subscribe, read, read);
    // Compared as JSON: a new object literal on every render must not send a frame every render.
    const stateKey = myState ? JSON.stringify(myState) : null;
    const present = stateKey !== null;
    useEffect(() => {
        if (cimId !== null && stateKey !== null)
            client.setPresence(cimId, JSON.parse(stateKey)).catch(ignore);
    }, [client, cimId, stateKey]);
    useEffect(() => {
        if (cimId === null || !present)
            return undefined;
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
