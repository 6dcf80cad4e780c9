// The sandbox's Visma Online identity server (eaccounting.md §2, §13): the authorization code flow with the
// scopes eAccounting knows, access tokens of an hour, and refresh tokens that rotate: a refresh answers with a
// new refresh token and the old one stops working (reuse → invalid_grant). The refresh-token lifetime is not
// published (Q7): an option, unlimited by default. Client authentication by HTTP Basic or form fields.

export const SCOPES = [
  "ea:api",
  "offline_access",
  "ea:sales",
  "ea:sales_readonly",
  "ea:accounting",
  "ea:accounting_readonly",
  "ea:purchase",
  "ea:purchase_readonly",
] as const;

export interface OAuthOptions {
  accessTokenSeconds: number;
  /** Refresh tokens stop working this long after they were issued (unknown at eAccounting, Q7); 0 = never. */
  refreshTokenSeconds: number;
  /** The scopes the user grants at most (a company whose user lacks a module grants fewer). */
  grantable: string[];
}

export interface Client {
  clientId: string;
  clientSecret: string;
}
type Answer = { status: number; body: Record<string, unknown> };
interface Grant {
  clientId: string;
  scope: string[];
  revoked: boolean;
}
interface RefreshToken {
  grant: Grant;
  issuedAt: number;
  used: boolean;
}
interface AccessToken {
  grant: Grant;
  expiresAt: number;
}

const oauthError = (error: string, description: string, status = 400): Answer => ({
  status,
  body: { error, error_description: description },
});
const token = (prefix: string) => `${prefix}_${crypto.randomUUID().replace(/-/g, "")}${crypto.randomUUID().replace(/-/g, "").slice(0, 16)}`;

export class IdentityServer {
  private readonly codes = new Map<string, { grant: Grant; redirectUri: string; expiresAt: number; used: boolean }>();
  private readonly refresh = new Map<string, RefreshToken>();
  private readonly access = new Map<string, AccessToken>();
  /** Counters for tests and the state page. */
  stats = { codes: 0, issued: 0, refreshed: 0, rejected: 0, reused: 0 };

  constructor(
    private readonly clients: Client[],
    public o: OAuthOptions,
    private readonly now: () => number,
  ) {}

  private client(id: string | undefined, secret: string | undefined): Client | null {
    const c = this.clients.find((x) => x.clientId === id);
    return c && c.clientSecret === secret ? c : null;
  }

  /**
   * GET /connect/authorize: the user signs in and consents (the sandbox does so at once) and is sent back to
   * redirect_uri with a one-time code, or with error=… as OAuth 2 says.
   */
  authorize(q: Record<string, string>): { redirect: string } | Answer {
    if (q.response_type !== "code") return oauthError("unsupported_response_type", "response_type must be code");
    if (!this.clients.some((c) => c.clientId === q.client_id))
      return oauthError("invalid_client", `Unknown client ${q.client_id ?? "(none)"}`);
    if (!q.redirect_uri || !/^https?:\/\//.test(q.redirect_uri)) return oauthError("invalid_request", "redirect_uri is required");
    const back = new URL(q.redirect_uri);
    if (q.state !== undefined) back.searchParams.set("state", q.state);
    const asked = (q.scope ?? "").split(/\s+/).filter(Boolean);
    const unknown = asked.filter((s) => !(SCOPES as readonly string[]).includes(s) && s !== "openid" && s !== "profile" && s !== "email");
    if (unknown.length > 0 || !asked.includes("ea:api")) {
      back.searchParams.set("error", "invalid_scope");
      back.searchParams.set("error_description", unknown.length ? `Unknown scope(s): ${unknown.join(" ")}` : "ea:api is required");
      return { redirect: back.toString() };
    }
    const scope = asked.filter((s) => this.o.grantable.includes(s) || !(SCOPES as readonly string[]).includes(s));
    const code = token("code");
    this.codes.set(code, {
      grant: { clientId: q.client_id!, scope, revoked: false },
      redirectUri: q.redirect_uri,
      expiresAt: this.now() + 300_000,
      used: false,
    });
    this.stats.codes++;
    back.searchParams.set("code", code);
    return { redirect: back.toString() };
  }

  /** POST /connect/token with grant_type authorization_code or refresh_token. */
  token(form: Record<string, string>, authorization: string | null): Answer {
    const answer = this.tokenAnswer(form, authorization);
    if (answer.status !== 200) this.stats.rejected++;
    return answer;
  }

  private tokenAnswer(form: Record<string, string>, authorization: string | null): Answer {
    let id = form.client_id,
      secret = form.client_secret;
    const basic = /^Basic\s+(\S+)$/i.exec(authorization ?? "");
    if (basic) [id, secret] = Buffer.from(basic[1]!, "base64").toString("utf8").split(":").map(decodeURIComponent) as [string, string];
    const client = this.client(id, secret);
    if (!client) return oauthError("invalid_client", "Client authentication failed", 401);
    if (form.grant_type === "authorization_code") {
      const c = this.codes.get(form.code ?? "");
      if (!c || c.used || c.expiresAt < this.now() || c.grant.clientId !== client.clientId)
        return oauthError("invalid_grant", "The authorization code is invalid or expired");
      if (c.redirectUri !== form.redirect_uri)
        return oauthError("invalid_grant", "redirect_uri does not match the one of the authorization request");
      c.used = true;
      this.stats.issued++;
      return { status: 200, body: this.issue(c.grant) };
    }
    if (form.grant_type === "refresh_token") {
      const r = this.refresh.get(form.refresh_token ?? "");
      if (!r || r.grant.clientId !== client.clientId) return oauthError("invalid_grant", "Invalid refresh token");
      if (r.used) {
        this.stats.reused++;
        return oauthError("invalid_grant", "The refresh token has already been used");
      }
      if (r.grant.revoked) return oauthError("invalid_grant", "The grant has been revoked");
      if (this.o.refreshTokenSeconds > 0 && r.issuedAt + this.o.refreshTokenSeconds * 1000 < this.now())
        return oauthError("invalid_grant", "The refresh token has expired");
      r.used = true;
      this.stats.refreshed++;
      return { status: 200, body: this.issue(r.grant) };
    }
    return oauthError("unsupported_grant_type", `grant_type ${form.grant_type ?? "(none)"} is not supported`);
  }

  private issue(grant: Grant): Record<string, unknown> {
    const accessToken = token("eyJsbx");
    this.access.set(accessToken, { grant, expiresAt: this.now() + this.o.accessTokenSeconds * 1000 });
    const body: Record<string, unknown> = {
      access_token: accessToken,
      expires_in: this.o.accessTokenSeconds,
      token_type: "Bearer",
      scope: grant.scope.join(" "),
    };
    // A refresh token only with offline_access (§2).
    if (grant.scope.includes("offline_access")) {
      const refreshToken = token("rt");
      this.refresh.set(refreshToken, { grant, issuedAt: this.now(), used: false });
      body.refresh_token = refreshToken;
    }
    return body;
  }

  /** A grant made outside the browser (demo, tests): its refresh token, optionally a fixed one. */
  grant(clientId: string, scope: string[], refreshToken: string = token("rt")): string {
    this.refresh.set(refreshToken, { grant: { clientId, scope, revoked: false }, issuedAt: this.now(), used: false });
    return refreshToken;
  }

  /** The grant behind `Authorization: Bearer …`, or why not. */
  authenticate(authorization: string | null | undefined): { ok: true; clientId: string; scope: string[] } | { ok: false; reason: string } {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? "");
    if (!m) return { ok: false, reason: "No bearer token" };
    const t = this.access.get(m[1]!);
    if (!t) return { ok: false, reason: "Unknown access token" };
    if (t.grant.revoked) return { ok: false, reason: "The grant has been revoked" };
    if (t.expiresAt <= this.now()) return { ok: false, reason: "The access token has expired" };
    return { ok: true, clientId: t.grant.clientId, scope: t.grant.scope };
  }

  /** The user removed the app's access: every token of every grant (or of the grant of `refreshToken`) stops working. */
  revoke(refreshToken?: string): number {
    const grants = new Set(
      refreshToken ? [this.refresh.get(refreshToken)?.grant].filter(Boolean) : [...this.refresh.values()].map((r) => r.grant),
    );
    for (const g of grants) g!.revoked = true;
    return grants.size;
  }

  /** Every access token issued so far expires now. */
  expireAccessTokens(): void {
    for (const t of this.access.values()) t.expiresAt = 0;
  }

  /** Whether `refreshToken` would still be accepted. */
  isValidRefreshToken(refreshToken: string): boolean {
    const r = this.refresh.get(refreshToken);
    return !!r && !r.used && !r.grant.revoked;
  }

  state() {
    return {
      ...this.stats,
      liveRefreshTokens: [...this.refresh.values()].filter((r) => !r.used && !r.grant.revoked).length,
      options: this.o,
    };
  }
}
