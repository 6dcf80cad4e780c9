// The API token. /api/v1 is behind hono/bearer-auth (`Authorization: Bearer <token>`, RFC 6750 syntax);
// every comparison of a secret is in constant time: both sides are hashed to equal length first.
import type { Context, MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { createHash, timingSafeEqual } from "node:crypto";

const digest = (s: string) => createHash("sha256").update(s).digest();

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

/**
 * Hono middleware: the request must carry `Authorization: Bearer <api token>`, else 401 with a hint (by
 * default where the API token is; the admin API names its own).
 */
export function requireApiToken(apiToken: () => string, hint = API_TOKEN_HINT): MiddlewareHandler {
  // The expected token's digest is computed once per token, not per request.
  let expected = { token: "", hash: digest("") };
  return bearerAuth({
    realm: REALM,
    verifyToken: (token) => {
      if (expected.token !== apiToken()) expected = { token: apiToken(), hash: digest(apiToken()) };
      return timingSafeEqual(digest(token), expected.hash);
    },
    noAuthenticationHeader: { message: unauthorized(hint) },
    invalidAuthenticationHeader: { message: unauthorized(hint) },
    invalidToken: { message: unauthorized(hint) },
  });
}
