// The API token. /api/v1 takes `Authorization: Bearer <token>` (RFC 6750 syntax, as hono/bearer-auth reads it);
// every comparison of a secret is in constant time: both sides are hashed to equal length first.
import type { MiddlewareHandler } from "hono";
import { timingSafeEqual } from "node:crypto";

const digest = (s: string) => Bun.SHA256.hash(s) as Uint8Array;

export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** The token of an `Authorization: Bearer …` header (the status page's guard also takes HTTP Basic). */
export function bearerToken(header: string | undefined | null): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return m ? m[1]! : null;
}

const REALM = "kontobro";

const API_TOKEN_HINT =
  "Send the header Authorization: Bearer <token> with the token from kontobro.toml (http.api_token) or `kontobro status`.";

/** RFC 6750's b64token: the characters an API token is made of. */
const B64TOKEN = /^[A-Za-z0-9._~+/-]+=*$/;

/** The token of an API request's Authorization header: "Bearer" (any case), a space, a b64token; else null. */
function apiRequestToken(header: string | null): string | null {
  if (header === null || header[6] !== " " || header.slice(0, 6).toLowerCase() !== "bearer") return null;
  const token = header.slice(7).trimStart();
  return B64TOKEN.test(token) ? token : null;
}

/** Two SHA-256 digests equal, in time that does not depend on where they differ. */
function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length && i < b.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * The API token check, on the Authorization header alone: null when it carries `Bearer <api token>`, else the 401
 * to answer (no token, a malformed header or a wrong token: the same answer, with a hint; by default where the API
 * token is, the admin API names its own). Framework-free: the Hono middleware (requireApiToken) and the agent's
 * native route for event intake (agent/http/api.ts) use it alike.
 */
export function apiTokenCheck(apiToken: () => string, hint = API_TOKEN_HINT): (header: string | null) => Response | null {
  // The expected token's digest is computed once per token, not per request.
  let expected = { token: "", hash: digest("") };
  const body = JSON.stringify({ error: "unauthorized", message: "A valid API token is required.", hint });
  return (header) => {
    const given = apiRequestToken(header);
    const token = apiToken();
    if (expected.token !== token) expected = { token, hash: digest(token) };
    if (given !== null && sameDigest(digest(given), expected.hash)) return null;
    return new Response(body, {
      status: 401,
      headers: { "Content-Type": "application/json", "WWW-Authenticate": `Bearer realm="${REALM}"` },
    });
  };
}

/**
 * Hono middleware: the request must carry `Authorization: Bearer <api token>`, else 401 (apiTokenCheck). It is on
 * every API request's path, so it is one plain function (hono/bearer-auth answered by throwing, and hashed with
 * node:crypto's slower Hash).
 */
export function requireApiToken(apiToken: () => string, hint = API_TOKEN_HINT): MiddlewareHandler {
  const check = apiTokenCheck(apiToken, hint);
  return async (c, next) => {
    const refused = check(c.req.raw.headers.get("authorization"));
    if (refused) return refused;
    await next();
  };
}
