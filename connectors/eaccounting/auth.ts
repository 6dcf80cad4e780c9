// OAuth 2 for eAccounting (eaccounting.md §2): the authorization code flow once (`kontobro connect`), then
// hour-long access tokens from a refresh token that rotates with every use. The rules from pitfalls.md §7:
// one refresh at a time (single-flight in the process, `exclusive` across the agent's processes and a hosted
// tenant's workers), the new refresh token committed before the new access token is used (the token is handed out
// only once `exclusive` has resolved), and a refresh token that is refused
// becomes the "reconnect" state (stored, so `kontobro check` and the status page show it) instead of a loop.
// Tokens never reach a log: the agent's store registers every token it reads or writes for redaction, and the
// bootstrap refresh_token is a secret of kontobro.toml.
import type { CredentialStore, StoredCredential } from "../contract.ts";
import { HttpClient, singleFlight, TargetError, type HttpResponse } from "../http.ts";
import { retryAfterOf } from "./client.ts";

export interface TokenOptions {
  target: string;
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  /** HTTP Basic or form fields for the app's credentials (which eAccounting expects is inferred). */
  clientAuth?: "basic" | "form";
  /** From kontobro.toml: used only while nothing is stored for this identity server. */
  bootstrapRefreshToken?: string;
  store: CredentialStore;
  /** The command that signs the target in again (ConnectorDeps.signIn); `kontobro connect <target>` by default. */
  signIn?: string;
  timeoutMs: number;
  now?: () => number;
}

/** Refresh this long before the access token expires, so no request leaves with a dying token. */
const MARGIN_MS = 60_000;

export const reconnectHint = (signIn: string) =>
  `Run \`${signIn}\` and sign in to eAccounting as a user with access to the company (the app's access was removed, or its refresh token expired or was used elsewhere); kontobro retries by itself afterwards.`;

/** Deliveries and pulls wait this long between looks at the stored state while a person must reconnect. */
export const RECONNECT_RETRY_MS = 60_000;

/**
 * The reconnect state. Retryable (nothing is sent while it lasts, so a retry costs nothing): the deliveries go
 * on by themselves once `kontobro connect` has stored new tokens. Status 401: the agent's credentials watch
 * (/readyz, alerts) records it like any other refusal.
 */
export class ReconnectNeeded extends TargetError {
  constructor(target: string, why: string, signIn: string) {
    super("retryable", {
      code: "eaccounting.reconnect",
      status: 401,
      retryAfterMs: RECONNECT_RETRY_MS,
      message: `reconnect: eAccounting no longer accepts kontobro's authorisation for ${target} (${why}).`,
      hint: reconnectHint(signIn),
    });
  }
}

function describeTokenError(res: HttpResponse): string {
  const b = res.body && typeof res.body === "object" ? res.body : {};
  const oauth = [b.error, b.error_description].filter(Boolean).join(": ");
  // eAccounting's own error envelope, where the answer is one (e.g. a 429 saying "Try again in N seconds").
  return oauth || (b.DeveloperErrorMessage ? `HTTP ${res.status} (${b.DeveloperErrorMessage})` : `HTTP ${res.status}`);
}

/** An in-memory store (no database: a one-off command); `exclusive` is the process's own. */
export function memoryCredentials(): CredentialStore {
  let current: StoredCredential | null = null;
  return {
    read: async () => current,
    write: async (c) => {
      current = { ...c, updatedAt: Date.now() };
    },
    exclusive: (fn) => fn(),
  };
}

export class OAuthTokens {
  private readonly http: HttpClient;
  private readonly now: () => number;
  private readonly refreshOnce: () => Promise<string>;
  /** The command that signs the target in again, for hints. */
  readonly signIn: string;
  private cached: { token: string; expiresAt: number } | null = null;

  constructor(private readonly o: TokenOptions) {
    this.now = o.now ?? Date.now;
    this.signIn = o.signIn ?? `kontobro connect ${o.target}`;
    this.http = new HttpClient({
      baseHeaders: () => ({}),
      timeoutMs: o.timeoutMs,
      targetTitle: "eAccounting's identity server",
      // What reaches here is not 400/401/403 (those are read in refresh and exchangeCode): a 5xx, a 429.
      describeError: (res) => ({
        code: "eaccounting.token_error",
        message: `eAccounting's identity server answered ${describeTokenError(res)} to a token request.`,
      }),
    });
    // The token is handed out (and cached) only once `exclusive` has resolved: its refresh token is committed then.
    this.refreshOnce = singleFlight(async () => {
      const fresh = await this.o.store.exclusive(() => this.refresh());
      this.cached = fresh;
      return fresh.token;
    });
  }

  /** The stored credential if it belongs to this identity server and client. */
  async stored(): Promise<StoredCredential | null> {
    const c = await this.o.store.read();
    return c && c.issuer === this.o.tokenUrl && c.clientId === this.o.clientId ? c : null;
  }

  /** connected / reconnect / not connected, for `kontobro check` and the status page. */
  async status(): Promise<{
    state: "connected" | "reconnect" | "not_connected";
    scope: string | null;
    problem: string | null;
    updatedAt: number | null;
  }> {
    const c = await this.stored();
    if (c) return { state: c.state, scope: c.scope, problem: c.problem, updatedAt: c.updatedAt };
    return { state: this.o.bootstrapRefreshToken ? "connected" : "not_connected", scope: null, problem: null, updatedAt: null };
  }

  /** A valid access token: cached, stored by another process, or refreshed (one refresh for all callers). */
  async get(): Promise<string> {
    if (this.cached && this.now() < this.cached.expiresAt - MARGIN_MS) return this.cached.token;
    const c = await this.stored();
    if (c?.state === "connected" && c.accessToken && c.accessExpiresAt && this.now() < c.accessExpiresAt - MARGIN_MS) {
      this.cached = { token: c.accessToken, expiresAt: c.accessExpiresAt };
      return c.accessToken;
    }
    return this.refreshOnce();
  }

  /**
   * After a 401: forget the token that failed, unless it was replaced meanwhile. Read and written under `exclusive`: a
   * refresh by another worker between the read and the write would otherwise be overwritten with the refresh token
   * it has just rotated away, and the next refresh be refused (reconnect needed).
   */
  async invalidate(failed: string): Promise<void> {
    if (this.cached?.token === failed) this.cached = null;
    await this.o.store.exclusive(async () => {
      const c = await this.stored();
      if (c?.accessToken === failed) await this.o.store.write({ ...c, accessToken: null, accessExpiresAt: null });
    });
  }

  /**
   * Runs under `exclusive`: another process or worker may have refreshed while this one waited, so the store is read
   * first. Returns the access token to use once `exclusive` has resolved (what it wrote is committed then).
   */
  private async refresh(): Promise<{ token: string; expiresAt: number }> {
    const c = await this.stored();
    if (
      c?.state === "connected" &&
      c.accessToken &&
      c.accessExpiresAt &&
      this.now() < c.accessExpiresAt - MARGIN_MS &&
      c.accessToken !== this.cached?.token
    ) {
      return { token: c.accessToken, expiresAt: c.accessExpiresAt };
    }
    if (c?.state === "reconnect") throw new ReconnectNeeded(this.o.target, c.problem ?? "the refresh token was refused", this.signIn);
    const refreshToken = c?.refreshToken ?? (c ? null : (this.o.bootstrapRefreshToken ?? null));
    if (!refreshToken) {
      throw new TargetError("retryable", {
        code: "eaccounting.not_connected",
        retryAfterMs: RECONNECT_RETRY_MS,
        message: `kontobro has no authorisation for eAccounting (${this.o.target}) yet.`,
        hint: `Run \`${this.signIn}\` and sign in to eAccounting; kontobro retries by itself afterwards.`,
      });
    }
    const answer = await this.tokenRequest({ grant_type: "refresh_token", refresh_token: refreshToken });
    if (answer.status !== 200) {
      const why = describeTokenError(answer);
      if (answer.status === 400 && /invalid_grant/.test(String(answer.body?.error))) {
        await this.o.store.write({
          ...this.base(c),
          refreshToken,
          accessToken: null,
          accessExpiresAt: null,
          state: "reconnect",
          problem: why,
        });
        throw new ReconnectNeeded(this.o.target, why, this.signIn);
      }
      if (answer.status === 401 || /invalid_client/.test(String(answer.body?.error))) {
        throw new TargetError("permanent", {
          code: "eaccounting.client_refused",
          message: `eAccounting's identity server refused kontobro's app credentials (${why}).`,
          hint: "Check client_id and client_secret in kontobro.toml against the app in the Visma Developer Portal, then run `kontobro check`.",
        });
      }
      throw new TargetError("retryable", {
        code: "eaccounting.token_error",
        message: `eAccounting's identity server answered ${why} to a token refresh.`,
        hint: "Usually temporary; kontobro tries again.",
      });
    }
    return this.accept(answer.body, c);
  }

  /** Stores a token answer (durably once the caller's `exclusive` has resolved) and returns its access token. */
  private async accept(body: any, previous: StoredCredential | null): Promise<{ token: string; expiresAt: number }> {
    const access = body?.access_token;
    const expiresIn = Number(body?.expires_in);
    if (typeof access !== "string" || !access || !Number.isFinite(expiresIn) || expiresIn <= 0) {
      throw new TargetError("retryable", {
        code: "eaccounting.token_malformed",
        message: "eAccounting's identity server answered without access_token/expires_in.",
        hint: "Check identity_url in kontobro.toml (…/connect).",
      });
    }
    const expiresAt = this.now() + expiresIn * 1000;
    await this.o.store.write({
      ...this.base(previous),
      refreshToken: typeof body.refresh_token === "string" ? body.refresh_token : (previous?.refreshToken ?? null),
      accessToken: access,
      accessExpiresAt: expiresAt,
      scope: typeof body.scope === "string" ? body.scope : (previous?.scope ?? null),
      state: "connected",
      problem: null,
    });
    return { token: access, expiresAt };
  }

  private base(previous: StoredCredential | null) {
    return { issuer: this.o.tokenUrl, clientId: this.o.clientId, scope: previous?.scope ?? null };
  }

  /** `kontobro connect`: the authorization code for tokens, stored durably. Returns the granted scopes. */
  async exchangeCode(code: string, redirectUri: string): Promise<string> {
    const answer = await this.tokenRequest({ grant_type: "authorization_code", code, redirect_uri: redirectUri });
    if (answer.status !== 200) {
      throw new TargetError("permanent", {
        code: "eaccounting.code_refused",
        message: `eAccounting's identity server refused the authorization code (${describeTokenError(answer)}).`,
        hint: "Codes work once and for a few minutes: run `kontobro connect` again and paste the new code at once; check redirect_uri in kontobro.toml matches the app's in the Visma Developer Portal.",
      });
    }
    this.cached = await this.accept(answer.body, null);
    return String(answer.body.scope ?? "");
  }

  private async tokenRequest(form: Record<string, string>): Promise<HttpResponse> {
    const basic = Buffer.from(`${encodeURIComponent(this.o.clientId)}:${encodeURIComponent(this.o.clientSecret)}`).toString("base64");
    const asForm = this.o.clientAuth === "form";
    try {
      return await this.http.request("POST", this.o.tokenUrl, {
        body: new URLSearchParams(asForm ? { ...form, client_id: this.o.clientId, client_secret: this.o.clientSecret } : form).toString(),
        accept: [400, 401, 403],
        headers: { "content-type": "application/x-www-form-urlencoded", ...(asForm ? {} : { authorization: `Basic ${basic}` }) },
        // Not a record's write: nothing would use a late answer, so no push waits for one (connectors/http.ts).
        changesNothing: true,
      });
    } catch (e) {
      // A token request books nothing; "uncertain" would only start lookups. (A lost answer to a refresh may
      // still have used up the refresh token: the next refresh then says reconnect. See README, unverified.)
      if (e instanceof TargetError && e.kind === "uncertain") throw new TargetError("retryable", e);
      // A 429's wait may be in its message only, as the API's are: the pause it asks for holds the whole target.
      if (e instanceof TargetError && e.status === 429)
        throw new TargetError(e.kind, { ...e, message: e.message, retryAfterMs: retryAfterOf(e) });
      throw e;
    }
  }
}
