// A React app on another origin, using @cimhub/client as a front-end team would:
// installed from the packed tarball, typed, two components on one CIM, optimistic edits.
// tests/test_browser_react.py builds and serves it; the page reads ?hub=, ?token=, ?cim=.

import { StrictMode, Suspense, useState } from "react";
import { createRoot } from "react-dom/client";
import { CimhubClient, presenceName, type Cim, type MutationAnswer } from "@cimhub/client";
import { CimhubProvider, useCim, useConnectionState, useDealCims, usePresence } from "@cimhub/client/react";

const params = new URLSearchParams(location.search);
const hub = params.get("hub")!;
const token = params.get("token")!;
const cimId = params.get("cim")!;
const client = new CimhubClient({ url: hub, token });

function Slides({ name }: { name: string }) {
  const { cim, isLoading, error, pending, updateSlide } = useCim(cimId);
  if (error) return <p id={`${name}-error`}>{error.message}</p>;
  if (isLoading || cim === null) return <p id={`${name}-loading`}>Loading…</p>;
  const title: string = cim.title;
  const rename = (): Promise<MutationAnswer> => updateSlide({ id: "slide-1", title: `Renamed by ${name}` });
  return (
    <section id={name} data-pending={pending.length}>
      <h2 className="title">{title}</h2>
      <ol>
        {(cim.slides ?? []).map((slide) => (
          <li key={slide.id} data-slide-id={slide.id}>{slide.title}</li>
        ))}
      </ol>
      <button className="rename" onClick={() => void rename()}>Rename slide 1</button>
    </section>
  );
}

function Suspended() {
  const { cim } = useCim(cimId, { suspense: true });
  return <p id="suspended">{cim?.title}</p>;
}

function Deal({ dealId }: { dealId: string }) {
  const { cims } = useDealCims(dealId);
  return <ul id="deal">{cims.map((c) => <li key={c.id}>{c.title}</li>)}</ul>;
}

function WhoIsHere() {
  const { members, presenceId } = usePresence(client, cimId, { activity: "viewing", name: "React app" });
  return (
    <ul id="presence">
      {members.map((m) => (
        <li key={m.id} data-actor={m.actor} data-self={m.id === presenceId ? "true" : undefined}>{presenceName(m)}</li>
      ))}
    </ul>
  );
}

// Never called: the compiler must refuse these, or the package's types are not doing their job.
export function typeChecks(cim: Cim): void {
  // @ts-expect-error: targetStage must be one of the CIM's stages
  void client.mutate("navigateToStage", { cimId: cim.id, targetStage: "nowhere", reason: "" });
  // @ts-expect-error: updateSlide's argument is { cimId, slide }
  void client.mutate("updateSlide", { cimId: cim.id, title: "x" });
}

function App() {
  const [showFirst, setShowFirst] = useState(true);
  const [present, setPresent] = useState(true);
  const { state } = useConnectionState();
  const [cors, setCors] = useState("");
  const callHttp = async () => {
    const response = await fetch(`${hub}/v1/query`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "get", args: { cimId } }),
    });
    const body = (await response.json()) as { result: { cim: Cim } };
    setCors(body.result.cim.title);
  };
  return (
    <main>
      <p id="connection">{state}</p>
      <button id="unmount-first" onClick={() => setShowFirst(false)}>Unmount the first</button>
      <button id="leave" onClick={() => setPresent(false)}>Leave</button>
      {present ? <WhoIsHere /> : null}
      <button id="http" onClick={() => void callHttp()}>Call the HTTP API</button>
      <p id="cors">{cors}</p>
      {showFirst ? <Slides name="first" /> : null}
      <Slides name="second" />
      <Suspense fallback={<p id="suspense-fallback">Loading…</p>}>
        <Suspended />
      </Suspense>
      <Deal dealId={params.get("deal") ?? ""} />
    </main>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <CimhubProvider client={client}>
      <App />
    </CimhubProvider>
  </StrictMode>,
);
