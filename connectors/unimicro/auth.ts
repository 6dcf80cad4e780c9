// OIDC client_credentials with a certificate-signed JWT client assertion (RS256), as Uni Micro server
// clients do it: no client secret, a fresh short-lived assertion per token request.
import { createPrivateKey, randomUUID, sign, X509Certificate, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { HttpClient, singleFlight, TargetError, type HttpResponse } from "../http.ts";
import type { Problem } from "../../agent/problem.ts";

export interface TokenSourceOptions {
  /** The token endpoint, e.g. https://login.unieconomy.no/connect/token; also the assertion's `aud`. */
  identityUrl: string;
  clientId: string;
  /** PEM text, or a path to a PEM file. */
  privateKey: string;
  /** PEM text or path; when given, sent as the `x5c` header the platform expects from its .p12 certificates. */
  certificate?: string;
  scope: string;
  timeoutMs: number;
  targetTitle: string;
  now?: () => number;
}

/** Assertions may live at most 300 s on this platform; we use 120 s to leave room for clock skew. */
const ASSERTION_LIFETIME_S = 120;

const b64url = (data: string | Buffer) => Buffer.from(data).toString("base64url");

/** PEM text is used as is; anything else is a file path. */
export function readPem(value: string, what: string): string {
  if (value.includes("-----BEGIN")) return value;
  try {
    return readFileSync(value, "utf8");
  } catch (e) {
    throw new TargetError("permanent", {
      code: "unimicro.key_unreadable",
      message: `The ${what} file ${value} cannot be read: ${(e as Error).message}`,
      hint: `Set ${what === "private key" ? "private_key" : "certificate"} in kontobro.toml to the PEM file exported from the Uni Micro .p12 certificate (see connectors/unimicro/README.md).`,
    });
  }
}

/** Builds the signed client assertion. Pure apart from the clock and the random jti. */
export function buildClientAssertion(o: { clientId: string; audience: string; key: KeyObject; x5c?: string; nowMs: number }): string {
  const iat = Math.floor(o.nowMs / 1000);
  const header = { alg: "RS256", typ: "JWT", ...(o.x5c ? { x5c: [o.x5c] } : {}) };
  const claims = { iss: o.clientId, sub: o.clientId, aud: o.audience, jti: randomUUID(), iat, nbf: iat, exp: iat + ASSERTION_LIFETIME_S };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(sign("sha256", Buffer.from(input), o.key))}`;
}

function describeTokenError(res: HttpResponse, title: string): Problem {
  const b = res.body && typeof res.body === "object" ? res.body : {};
  const detail = [b.error, b.error_description].filter(Boolean).join(": ") || `HTTP ${res.status}`;
  return {
    code: "unimicro.token_rejected",
    message: `The ${title} login service refused the token request (${detail}).`,
    hint: "Check client_id, the certificate/private key and identity_url in kontobro.toml; the server client must be registered with this certificate in the developer portal.",
  };
}

/** An instant as the messages show it: 2027-01-31 12:00 UTC. */
export const utcMinute = (ms: number) => `${new Date(ms).toISOString().slice(0, 16).replace("T", " ")} UTC`;

/** How to renew the certificate, for the alert, `kontobro check` and the needs-action message. */
export const RENEW_CERTIFICATE =
  "Order a new certificate for the server client in the Uni Micro developer portal, export its private key and certificate from the .p12 (connectors/unimicro/README.md), point private_key and certificate in kontobro.toml at them and restart kontobro; then run `kontobro check` and retry the records that need action.";

/** The certificate's subject and notAfter (epoch ms). */
export interface CertificateInfo {
  subject: string;
  notAfter: number;
}

/** One cached access token, refreshed before it expires by a single refresher shared by all callers. */
export class TokenSource {
  private current: { token: string; expiresAt: number } | null = null;
  private key: KeyObject | null = null;
  private x5c: string | undefined;
  private cert: CertificateInfo | undefined;
  private readonly http: HttpClient;
  private readonly now: () => number;
  private readonly refresh: () => Promise<string>;

  constructor(private readonly o: TokenSourceOptions) {
    this.now = o.now ?? Date.now;
    this.http = new HttpClient({
      baseHeaders: () => ({}),
      timeoutMs: o.timeoutMs,
      targetTitle: o.targetTitle,
      describeError: (res) => describeTokenError(res, o.targetTitle),
    });
    this.refresh = singleFlight(() => this.fetchToken());
  }

  /** A valid token: the cached one, or a new one (concurrent callers share one request). */
  async get(): Promise<string> {
    const c = this.current;
    if (c && this.now() < c.expiresAt) return c.token;
    return this.refresh();
  }

  /** After a 401: drop the token that failed, unless another caller has already replaced it. */
  invalidate(failedToken: string): void {
    if (this.current?.token === failedToken) this.current = null;
  }

  private loadKeys(): KeyObject {
    if (this.key) return this.key;
    try {
      this.key = createPrivateKey(readPem(this.o.privateKey, "private key"));
      if (this.o.certificate) {
        const cert = new X509Certificate(readPem(this.o.certificate, "certificate"));
        this.x5c = cert.raw.toString("base64");
        this.cert = { subject: cert.subject.replace(/\n/g, ", "), notAfter: Date.parse(cert.validTo) };
      }
    } catch (e) {
      if (e instanceof TargetError) throw e;
      throw new TargetError("permanent", {
        code: "unimicro.key_invalid",
        message: `The private key or certificate for ${this.o.targetTitle} is not valid PEM: ${(e as Error).message}`,
        hint: "Export them from the .p12 with openssl (see connectors/unimicro/README.md) and point private_key/certificate at the PEM files.",
      });
    }
    return this.key;
  }

  /** The configured certificate (null without one); throws as a token request would when the PEM files are unusable. */
  certificate(): CertificateInfo | null {
    this.loadKeys();
    return this.cert ?? null;
  }

  private async fetchToken(): Promise<string> {
    const key = this.loadKeys();
    // An expired certificate is not sent: the person who must act learns that, not a bare invalid_client.
    if (this.cert && this.now() >= this.cert.notAfter)
      throw new TargetError("permanent", {
        code: "unimicro.certificate_expired",
        message: `The ${this.o.targetTitle} client certificate (${this.cert.subject}) expired on ${utcMinute(this.cert.notAfter)}: kontobro cannot sign in with it, so nothing is pushed or pulled until it is renewed.`,
        hint: RENEW_CERTIFICATE,
      });
    const form = new URLSearchParams({
      grant_type: "client_credentials",
      scope: this.o.scope,
      client_id: this.o.clientId,
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: buildClientAssertion({
        clientId: this.o.clientId,
        audience: this.o.identityUrl,
        key,
        x5c: this.x5c,
        nowMs: this.now(),
      }),
    });
    const started = this.now();
    const res = await this.http
      // A token request changes nothing at the target: no push waits for a late answer to it (connectors/http.ts).
      .request("POST", this.o.identityUrl, {
        body: form.toString(),
        headers: { "content-type": "application/x-www-form-urlencoded" },
        changesNothing: true,
      })
      .catch((e) => {
        // A token request has no lasting effect, so "uncertain" would only trigger needless lookups.
        if (e instanceof TargetError && e.kind === "uncertain") throw new TargetError("retryable", e);
        throw e;
      });
    const token = res.body?.access_token;
    const expiresIn = Number(res.body?.expires_in);
    if (typeof token !== "string" || !token || !Number.isFinite(expiresIn) || expiresIn <= 0) {
      throw new TargetError("retryable", {
        code: "unimicro.token_malformed",
        message: `The ${this.o.targetTitle} login service answered without access_token/expires_in.`,
        hint: "Check that identity_url points at the token endpoint (…/connect/token).",
      });
    }
    // Refresh early: a tenth of the lifetime, at most a minute, so no request leaves with a dying token.
    const margin = Math.min(60_000, expiresIn * 100);
    this.current = { token, expiresAt: started + expiresIn * 1000 - margin };
    return token;
  }
}
