import { type ReactNode } from "react";
import type { CimhubClient, MutateOptions, MutationAnswer, MutationName } from "./client.js";
import type { ConnectionStatus } from "./connection.js";
import type { TopicSnapshot } from "./subscription.js";
import type { BuyerPersona, Cim, CimSummary, HeroContext, MutationArgsByName, OutlineSection, PresenceState, SlideEdit, UpdateStateArgs } from "./generated.js";
import { type PresenceMember } from "./presence.js";
export declare function CimhubProvider({ client, children }: {
    client: CimhubClient;
    children?: ReactNode;
}): import("react").FunctionComponentElement<import("react").ProviderProps<CimhubClient | null>>;
/** The provider's client; throws outside a CimhubProvider. */
export declare function useCimhub(): CimhubClient;
export interface TopicOptions {
    /** Throw the subscription's `ready` promise while loading, for a <Suspense> boundary. */
    suspense?: boolean;
}
/** A live topic (`cim:<id>`, `deal:<id>`, ...) as `{document, isLoading, error, revision, pending}`; null topic: nothing. */
export declare function useTopic<T = unknown>(topic: string | null, options?: TopicOptions): TopicSnapshot<T>;
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
    navigateToSlide(target: {
        sectionId?: string;
        slideId?: string;
    }): Promise<MutationAnswer>;
    updateState(fields: Omit<UpdateStateArgs, "cimId">): Promise<MutationAnswer>;
}
/** The seed's `useCIM`: one CIM, live, with its mutations applied optimistically. */
export declare function useCim(cimId: string | null, options?: TopicOptions): UseCimResult;
/** A deal's CIMs, live, newest change first. */
export declare function useDealCims(dealId: string | null, options?: TopicOptions): {
    cims: CimSummary[];
    isLoading: boolean;
    error: Error | null;
};
/** A function running mutation `name`; `options.optimistic` as in `client.mutate`. */
export declare function useMutation<N extends MutationName>(name: N, defaults?: MutateOptions<MutationArgsByName[N]>): (args: MutationArgsByName[N], options?: MutateOptions<MutationArgsByName[N]>) => Promise<MutationAnswer>;
/** The connection's `{state, error}`: `live`, `connecting`, `reconnecting`, `stopped`, `closed`. */
export declare function useConnectionState(): ConnectionStatus;
export interface UsePresenceResult {
    /** Everyone on the CIM, this connection included, longest present first. */
    members: PresenceMember[];
    /** This connection's member id (null until the hub answered, or when `myState` is not given). */
    presenceId: string | null;
    isLoading: boolean;
    error: Error | null;
}
/**
 * Who is on CIM `cimId`, live (`presence:<cimId>`). With `myState` this connection shows itself
 * with that state while the component is mounted and leaves when it unmounts (or `myState`
 * becomes null); a changed state is sent as an update, not a leave and a join. Only one mounted
 * component per CIM should pass `myState`: presence is one state per connection and CIM.
 */
export declare function usePresence(client: CimhubClient, cimId: string | null, myState?: PresenceState | null): UsePresenceResult;
