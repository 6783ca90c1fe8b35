// The live CIM board served at `/`: sign-in, the list of CIMs, one CIM's page, the connection banner.
//
//   /                    the CIMs of your deals (add ?deal=<id> to include another deal)
//   /?cim=<id>           one CIM, live and editable
//   #token=<jwt>         use this token instead of signing in (tests, links from other tools)
//
// Moving between the list and a CIM keeps the page loaded (history.pushState): the client and
// its socket stay, and the page left is destroyed (its subscriptions end, its presence is cleared).

import { CimhubClient, CimhubError, webStorageOutbox, type Change, type ConnectionStatus } from "../src/index.js";
import { devIdentity, fragmentIdentity, loadConfig, supabaseIdentity, supabaseSignIn, type BoardConfig, type Identity } from "./auth.js";
import { CimPage } from "./cim-page.js";
import { el, setAttr, setText } from "./dom.js";
import { ListPage } from "./list-page.js";
import { humanError } from "./messages.js";

const main = document.getElementById("app")!;
const banner = document.getElementById("connection")!;
const toasts = document.getElementById("toasts")!;

function notify(message: string, kind: "error" | "info" = "info"): void {
  const toast = el("p", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, message,
    el("button", { type: "button", class: "dismiss", "aria-label": "Dismiss" }, "×"));
  toast.querySelector("button")!.addEventListener("click", () => toast.remove());
  toasts.append(toast);
  setTimeout(() => toast.remove(), kind === "error" ? 12_000 : 5_000);
}

const BANNERS: Record<string, string> = {
  idle: "",
  live: "",
  connecting: "Connecting…",
  reconnecting: "You're offline. Changes you make are kept and sent when the connection returns.",
  stopped: "Disconnected.",
  closed: "Disconnected.",
};

function showStatus({ state, error }: ConnectionStatus): void {
  setAttr(banner, "data-state", state);
  let text = BANNERS[state] ?? "";
  if (state === "stopped" && error) text = `Disconnected: ${humanError(error)}`;
  setText(banner, text);
  banner.hidden = text === "";
}

function signInForm(config: BoardConfig, done: (identity: Identity) => void): HTMLElement {
  const message = el("p", { class: "empty" });
  if (config.devMode) {
    const user = el("input", { name: "userId", "aria-label": "User id", value: "user-1", required: true });
    const form = el("form", { class: "card signin", id: "signin" }, el("h1", {}, "Sign in (development)"),
      el("p", {}, "This hub runs in development mode: pick any user id; the hub mints its tokens."),
      el("label", {}, "User id ", user), el("button", { type: "submit" }, "Sign in"), message);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      done(devIdentity(user.value.trim())!);
    });
    return form;
  }
  if (!config.supabaseUrl) {
    return el("p", { class: "notice error" }, "Sign-in is not configured: set CIMHUB_SUPABASE_URL and CIMHUB_SUPABASE_ANON_KEY on the hub.");
  }
  const email = el("input", { type: "email", name: "email", "aria-label": "Email", required: true, autocomplete: "username" });
  const password = el("input", { type: "password", name: "password", "aria-label": "Password", required: true, autocomplete: "current-password" });
  const form = el("form", { class: "card signin", id: "signin" }, el("h1", {}, "Sign in"),
    el("label", {}, "Email ", email), el("label", {}, "Password ", password), el("button", { type: "submit" }, "Sign in"), message);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    supabaseSignIn(config, email.value, password.value).then(done, (error: Error) => setText(message, `Couldn't sign in: ${error.message}`));
  });
  return form;
}

function start(identity: Identity): void {
  // Edits not yet answered are kept in localStorage: closing the tab while offline loses none.
  const client = new CimhubClient({ token: identity.token, outbox: webStorageOutbox(localStorage, `cimhub.board.outbox:${identity.userId}`) });
  client.onStatus(showStatus);
  const signOut = el("button", { type: "button", id: "sign-out" }, "Sign out");
  signOut.addEventListener("click", () => {
    identity.signOut();
    client.close();
    location.replace("/");
  });
  setText(document.getElementById("who")!, identity.userId);
  document.getElementById("account")!.append(signOut);
  const renders: Array<{ at: number; revision: number; topic: string; local: boolean; snapshot: boolean }> = [];
  // For debugging in the console and for the tests: the client, the page shown, and when each change reached the DOM.
  const board = {
    client,
    page: null as CimPage | ListPage | null,
    renders,
    rendered(change: Change<unknown>) {
      renders.push({ at: Date.now(), revision: change.revision, topic: change.topic, local: change.local, snapshot: change.snapshot });
      if (renders.length > 1000) renders.shift();
    },
  };
  window.cimhubBoard = board;

  /** Show the page the URL names; the page left behind gives up its subscriptions and its presence. */
  const show = (): void => {
    board.page?.destroy();
    const params = new URLSearchParams(location.search);
    const cimId = params.get("cim");
    board.page = cimId
      ? new CimPage(client, cimId, notify, identity.userId)
      : new ListPage(client, identity.userId, params.getAll("deal"), notify);
    main.replaceChildren(board.page.root);
  };
  // Links between the board's pages change the URL without a reload: the one client (its socket,
  // its outbox, the #token) stays, so the page left must be destroyed here rather than by unloading.
  main.addEventListener("click", (event) => {
    const link = (event.target as Element | null)?.closest?.("a");
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const url = new URL(link.href, location.href);
    if (link.target || url.origin !== location.origin || url.pathname !== "/") return;
    event.preventDefault();
    history.pushState(null, "", `${url.pathname}${url.search}${location.hash}`);
    show();
  });
  window.addEventListener("popstate", show);
  show();
}

async function boot(): Promise<void> {
  const fromFragment = fragmentIdentity();
  if (fromFragment) return start(fromFragment);
  let config: BoardConfig;
  try {
    config = await loadConfig();
  } catch (error) {
    main.replaceChildren(el("p", { class: "notice error" }, humanError(error, "load the board")));
    return;
  }
  const identity = config.devMode ? devIdentity() : supabaseIdentity(config);
  if (identity) return start(identity);
  main.replaceChildren(signInForm(config, start));
}

boot().catch((error: unknown) => {
  main.replaceChildren(el("p", { class: "notice error" }, humanError(error instanceof CimhubError ? error : String(error))));
});
