// Sign-in for the board: a Supabase session in production, self-minted tokens in dev mode.
//
// Production: GoTrue's REST endpoints (POST {supabaseUrl}/auth/v1/token) with the
// project's anon key; the session is kept in localStorage and refreshed ahead of
// expiry by the client's token provider. Plain `fetch` rather than supabase-js
// keeps the board free of runtime dependencies. Dev mode: POST /v1/dev/token
// (served only when the hub runs with CIMHUB_DEV_MODE) mints a token for a user id.

export interface BoardConfig {
  devMode: boolean;
  supabaseUrl: string | null;
  supabaseAnonKey: string | null;
}

export interface Identity {
  userId: string;
  /** Returns a currently valid token, fetching a fresh one when asked to refresh. */
  token: () => Promise<string>;
  signOut: () => void;
}

const SESSION_KEY = "cimhub.board.session";
const DEV_USER_KEY = "cimhub.board.devUser";

export async function loadConfig(): Promise<BoardConfig> {
  const response = await fetch("/v1/board/config");
  if (!response.ok) throw new Error(`the hub did not send the board's settings (HTTP ${response.status})`);
  return (await response.json()) as BoardConfig;
}

/** The `sub` claim of a JWT (not verified: the hub verifies; the board only needs a name to show). */
export function subjectOf(token: string): string {
  const payload = token.split(".")[1] ?? "";
  const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
  return String((JSON.parse(json) as { sub?: string }).sub ?? "");
}

/** A token handed in the URL fragment (`#token=...`): fixed, never refreshed. */
export function fragmentIdentity(): Identity | null {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (!token) return null;
  return { userId: subjectOf(token), token: async () => token, signOut: () => (location.hash = "") };
}

export function devIdentity(userId: string | null = sessionStorage.getItem(DEV_USER_KEY)): Identity | null {
  if (!userId) return null;
  sessionStorage.setItem(DEV_USER_KEY, userId);
  const ttl = new URLSearchParams(location.search).get("tokenTtl");
  return {
    userId,
    token: async () => {
      const response = await fetch("/v1/dev/token", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ userId, ...(ttl ? { ttlS: Number(ttl) } : {}) }),
      });
      if (!response.ok) throw new Error(`dev sign-in failed (HTTP ${response.status})`);
      return ((await response.json()) as { token: string }).token;
    },
    signOut: () => sessionStorage.removeItem(DEV_USER_KEY),
  };
}

interface Session {
  access_token: string;
  refresh_token: string;
  expires_at: number;
}

async function gotrue(config: BoardConfig, grant: string, body: object): Promise<Session> {
  const response = await fetch(`${config.supabaseUrl}/auth/v1/token?grant_type=${grant}`, {
    method: "POST",
    headers: { "content-type": "application/json", apikey: config.supabaseAnonKey ?? "" },
    body: JSON.stringify(body),
  });
  const data = (await response.json()) as Session & { error_description?: string; msg?: string };
  if (!response.ok) throw new Error(data.error_description ?? data.msg ?? `sign-in failed (HTTP ${response.status})`);
  localStorage.setItem(SESSION_KEY, JSON.stringify(data));
  return data;
}

export async function supabaseSignIn(config: BoardConfig, email: string, password: string): Promise<Identity> {
  await gotrue(config, "password", { email, password });
  return supabaseIdentity(config)!;
}

export function supabaseIdentity(config: BoardConfig): Identity | null {
  const stored = localStorage.getItem(SESSION_KEY);
  if (!stored || !config.supabaseUrl) return null;
  let session = JSON.parse(stored) as Session;
  return {
    userId: subjectOf(session.access_token),
    token: async () => {
      // Called on connect and for each refresh ahead of expiry: refresh when less than 2 minutes remain.
      if (session.expires_at * 1000 - Date.now() < 120_000) {
        session = await gotrue(config, "refresh_token", { refresh_token: session.refresh_token });
      }
      return session.access_token;
    },
    signOut: () => localStorage.removeItem(SESSION_KEY),
  };
}
