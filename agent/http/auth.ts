// Bearer-token check in constant time: both sides are hashed to equal length before comparing.
import type { Context, Next } from "hono";
import { createHash, timingSafeEqual } from "node:crypto";

const digest = (s: string) => createHash("sha256").update(s).digest();

export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

export function bearerToken(header: string | undefined | null): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return m ? m[1]! : null;
}

/** Hono middleware: the request must carry `Authorization: Bearer <api token>`, else 401 with a hint. */
export function requireApiToken(apiToken: () => string) {
  // The expected token's digest is computed once per token, not per request.
  let expected = { token: "", hash: digest("") };
  return async (c: Context, next: Next) => {
    if (expected.token !== apiToken()) expected = { token: apiToken(), hash: digest(apiToken()) };
    const token = bearerToken(c.req.header("authorization"));
    if (!token || !timingSafeEqual(digest(token), expected.hash)) {
      c.header("WWW-Authenticate", 'Bearer realm="kontobro"');
      return c.json({ error: "unauthorized", message: "A valid API token is required.", hint: "Send the header Authorization: Bearer <token> with the token from kontobro.toml (http.api_token) or `kontobro status`." }, 401);
    }
    await next();
  };
}
