// The API token. /api/v1 takes `Authorization: Bearer <token>` (RFC 6750 syntax, as hono/bearer-auth reads it);
// every comparison of a secret is in constant time: both sides are hashed to equal length first.
import type { Context, MiddlewareHandler } from "hono";
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

/** No token, a malformed header or a wrong token: the same 401, with a hint. */
const unauthorized = (hint: string) => (c: Context) =>
  c.json({ error: "unauthorized", message: "A valid API token is required.", hint }, 401, {
    "WWW-Authenticate": `Bearer realm="${REALM}"`,
  });

/** RFC 6750's b64token: the characters an API token is made of. */
const B64TOKEN = /^[A-Za-z0-9._~+/-]+=*$/;

/** The token of an API request's Authorization header: "Bearer" (any case), a space, a b64token; else null. */
function apiRequestToken(header: string | null): string | null {
  if (header === null || header[6] !== " " || header.slice(0, 6).toLowerCase() !== "bearer") return null;
  const token = header.slice(7).trimStart();
  return B64TOKEN.test(token) ? token : null;
}

/**
 * Hono middleware: the request must carry `Authorization: Bearer <api token>`, else 401 with a hint (by
 * default where the API token is; the admin API names its own). It is on every API request's path, so it
 * is one plain function (hono/bearer-auth answered by throwing, and hashed with node:crypto's slower Hash).
 */
export function requireApiToken(apiToken: () => string, hint = API_TOKEN_HINT): MiddlewareHandler {
  // The expected token's digest is computed once per token, not per request.
  let expected = { token: "", hash: digest("") };
  const refuse = unauthorized(hint);
  return async (c, next) => {
    const given = apiRequestToken(c.req.raw.headers.get("authorization"));
    const token = apiToken();
    if (expected.token !== token) expected = { token, hash: digest(token) };
    if (given === null || !timingSafeEqual(digest(given), expected.hash)) return refuse(c);
    await next();
  };
}
