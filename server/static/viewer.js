// The live CIM viewer: /static/index.html?cim=<id>&token=<token> (or #token=<token>).
//
// Subscribes to `cim:<id>` with the browser client and redraws on every
// snapshot and patch. It only reads; changes come from the CIM Builder or any
// other client. The token may sit in the fragment instead of the query string:
// the fragment never reaches the server, so it stays out of access logs.
// Everything from the document is put in with textContent, never as HTML.

import { CimhubClient } from "./cimhub.js";

const STAGES = ["welcome", "buyer_persona", "hero_concept", "outline", "building_sections"];
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

const words = (value) => String(value).replaceAll("_", " ");

function setConnection(state, text = state) {
  const pill = $("connection");
  pill.dataset.state = state;
  pill.textContent = text;
}

function showError(message) {
  $("notices").replaceChildren(el("p", { class: "notice error", id: "error" }, message));
}

function render(cim, change) {
  document.title = `${cim.title} · CIM viewer`;
  $("title").textContent = cim.title;
  $("stage").textContent = words(cim.stage);
  $("stage").dataset.value = cim.stage;
  $("status").textContent = words(cim.status);
  $("status").dataset.value = cim.status;
  $("revision").textContent = String(cim.revision);
  $("last-change").textContent = change.snapshot
    ? (change.reset ? "reloaded" : "loaded")
    : `${change.mutation ?? "change"}${change.actor ? ` by ${change.actor}` : ""}`;

  const done = new Set(cim.completedStages ?? []);
  $("stages").replaceChildren(...STAGES.map((stage) => el(
    "li",
    { class: stage === cim.stage ? "current" : done.has(stage) ? "done" : "", "data-stage": stage },
    words(stage),
  )));

  const notices = [];
  if (cim.heroStale) notices.push(el("p", { class: "notice", id: "hero-stale" }, `Hero context needs review (${words(cim.heroStale.reason)}).`));
  if (cim.outlineStale) notices.push(el("p", { class: "notice", id: "outline-stale" }, `Outline needs review (${words(cim.outlineStale.reason)}).`));
  $("notices").replaceChildren(...notices);

  const context = [];
  if (cim.buyerPersona) {
    context.push(el("p", {}, el("span", { class: "label" }, "Buyer persona: "), el("span", { id: "persona" }, cim.buyerPersona.type)));
  }
  if (cim.heroContext) {
    context.push(el("p", {}, el("span", { class: "label" }, "Hero: "), el("span", { id: "hero" }, cim.heroContext.selectedHero)));
  }
  $("context").replaceChildren(...(context.length ? [el("div", { class: "card" }, ...context)] : []));

  renderSlides(cim);
}

function renderSlides(cim) {
  const slides = cim.slides ?? [];
  const sections = (cim.outline ?? []).map((section) => ({ ...section, slides: [] }));
  const byId = new Map(sections.map((section) => [section.id, section]));
  const other = { id: "", title: "Not in the outline", slides: [] };
  for (const slide of slides) (byId.get(slide.sectionId) ?? other).slides.push(slide);
  if (other.slides.length) sections.push(other);
  if (!sections.length) {
    $("slides").replaceChildren(el("p", { class: "empty" }, "No outline yet."));
    return;
  }
  $("slides").replaceChildren(...sections.map((section) => el(
    "section",
    { class: "card", "data-section-id": section.id },
    el("h3", {}, section.title),
    section.slides.length
      ? el("ul", { class: "slides" }, ...section.slides.map(slideItem))
      : el("p", { class: "empty" }, "No slides yet."),
  )));
}

function slideItem(slide) {
  return el(
    "li",
    { "data-slide-id": slide.id },
    el("span", { class: "slide-title" }, slide.title),
    slide.staleReason ? el("span", { class: "stale-reason" }, words(slide.staleReason)) : null,
    el("span", { class: "slide-status", "data-status": slide.status }, words(slide.status)),
  );
}

function start() {
  const query = new URLSearchParams(location.search);
  const fragment = new URLSearchParams(location.hash.slice(1));
  const cimId = query.get("cim");
  const token = fragment.get("token") ?? query.get("token");
  if (!cimId || !token) {
    $("title").textContent = "CIM viewer";
    setConnection("stopped", "not connected");
    showError("Open this page as index.html?cim=<CIM id>#token=<access token> (or &token=<access token>).");
    return;
  }
  const client = new CimhubClient({ token });
  // Exposed for debugging in the console, and for tests/test_browser.py.
  const viewer = { client, subscription: null, snapshots: 0, patches: 0 };
  window.cimhubViewer = viewer;
  client.onStatus(({ state, error }) => {
    if (state === "stopped") {
      setConnection("stopped");
      showError(error?.code === "token_expired"
        ? "The token expired: reload the page with a fresh one."
        : `Stopped: ${error?.message ?? "the hub refused the connection"}`);
    } else {
      setConnection(state);
    }
  });
  const subscription = client.subscribe(`cim:${cimId}`, (change) => {
    if (change.snapshot) viewer.snapshots += 1;
    else viewer.patches += 1;
    if (change.deleted) {
      setConnection("deleted");
      showError("This CIM was deleted.");
      return;
    }
    render(change.document, change);
  });
  viewer.subscription = subscription;
  subscription.onEnd((error) => {
    if (error) {
      setConnection("stopped", "not subscribed");
      showError(error.code === "not_found" ? `CIM ${cimId} was not found.` : `Subscription ended: ${error.message}`);
    }
  });
}

start();
