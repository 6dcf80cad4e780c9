// The sandbox's identity server: client_credentials with an RS256 JWT client assertion, checked the way
// unimicro.md §2 describes (iss = sub = client_id, aud = token URL, exp ≤ iat + 300, signature, no replay).
import { createPublicKey, verify, type KeyObject } from "node:crypto";

export interface SandboxClient {
  clientId: string;
  publicKey: string | KeyObject;
}

const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

type TokenAnswer = { status: number; body: Record<string, unknown> };
const oauthError = (error: string, description: string, status = 400): TokenAnswer => ({
  status,
  body: { error, error_description: description },
});

function decodePart(part: string | undefined): any {
  try {
    return JSON.parse(Buffer.from(part ?? "", "base64url").toString("utf8"));
  } catch {
    return null;
  }
}

export class IdentityServer {
  private readonly keys = new Map<string, KeyObject>();
  private readonly tokens = new Map<string, { clientId: string; expiresAt: number }>();
  private readonly seenJti = new Set<string>();
  issued = 0;
  rejected = 0;

  constructor(
    clients: SandboxClient[],
    public lifetimeSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    for (const c of clients) this.keys.set(c.clientId, typeof c.publicKey === "string" ? createPublicKey(c.publicKey) : c.publicKey);
  }

  /** POST /connect/token. `tokenUrl` is this endpoint's own URL, the assertion's required audience. */
  token(form: Record<string, string>, tokenUrl: string): TokenAnswer {
    const answer = this.check(form, tokenUrl);
    if (answer.status !== 200) this.rejected++;
    return answer;
  }

  private check(form: Record<string, string>, tokenUrl: string): TokenAnswer {
    if (form.grant_type !== "client_credentials")
      return oauthError("unsupported_grant_type", `grant_type ${form.grant_type ?? "(none)"} is not supported for server clients`);
    if (form.client_assertion_type !== ASSERTION_TYPE)
      return oauthError("invalid_client", "client_assertion_type must be " + ASSERTION_TYPE);
    const key = this.keys.get(form.client_id ?? "");
    if (!key) return oauthError("invalid_client", `Unknown client ${form.client_id ?? "(none)"}`);
    const parts = (form.client_assertion ?? "").split(".");
    const header = decodePart(parts[0]),
      claims = decodePart(parts[1]);
    if (parts.length !== 3 || !header || !claims) return oauthError("invalid_client", "client_assertion is not a JWT");
    if (header.alg !== "RS256") return oauthError("invalid_client", `Assertion alg ${header.alg} is not RS256`);
    const signed = verify("sha256", Buffer.from(`${parts[0]}.${parts[1]}`), key, Buffer.from(parts[2]!, "base64url"));
    if (!signed) return oauthError("invalid_client", "The assertion signature does not match the client's certificate");
    const nowS = Math.floor(this.now() / 1000);
    if (claims.iss !== form.client_id || claims.sub !== form.client_id)
      return oauthError("invalid_client", "iss and sub must both be the client_id");
    if (claims.aud !== tokenUrl) return oauthError("invalid_client", `aud must be ${tokenUrl}`);
    if (typeof claims.exp !== "number" || typeof claims.iat !== "number" || claims.exp <= nowS || claims.exp - claims.iat > 300)
      return oauthError("invalid_client", "Assertion expired or lives longer than 300 seconds");
    if (!claims.jti || this.seenJti.has(claims.jti)) return oauthError("invalid_client", "Assertion jti missing or already used");
    this.seenJti.add(claims.jti);
    if (!(form.scope ?? "").split(" ").includes("AppFramework")) return oauthError("invalid_scope", "scope must include AppFramework");
    const token = `sbx_${crypto.randomUUID().replace(/-/g, "")}`;
    this.tokens.set(token, { clientId: form.client_id!, expiresAt: this.now() + this.lifetimeSeconds * 1000 });
    this.issued++;
    return { status: 200, body: { access_token: token, expires_in: this.lifetimeSeconds, token_type: "Bearer", scope: "AppFramework" } };
  }

  /** The client behind a valid `Authorization: Bearer …`, or null (missing, unknown or expired). */
  authenticate(authorization: string | undefined | null): string | null {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? "");
    const t = m ? this.tokens.get(m[1]!) : undefined;
    return t && t.expiresAt > this.now() ? t.clientId : null;
  }

  /** Test hook: every token issued so far stops working now. */
  expireAll(): void {
    for (const t of this.tokens.values()) t.expiresAt = 0;
  }

  resetCounters(): void {
    this.issued = 0;
    this.rejected = 0;
  }
}
