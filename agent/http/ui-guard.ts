// Protection for the status page and its buttons (/ and /ui/*), which a browser opens without a token.
import type { Context, Next } from "hono";
import { csrf } from "hono/csrf";
import { HTTPException } from "hono/http-exception";
import { bearerToken, sameSecret } from "./auth.ts";

const LOOPBACK_HOST = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/i;

/**
 * hono/csrf: a browser's form post must come from this page itself. Sec-Fetch-Site says so (same-origin,
 * or none: typed or bookmarked by the user), or else the Origin names this host ("null" or garbage is
 * another site). The status page is reached by the Host it was opened with, so Origin is compared to Host.
 */
const sameOriginPosts = csrf({
  secFetchSite: ["same-origin", "none"],
  origin: (origin, c) => {
    try {
      return new URL(origin).host === c.req.header("host");
    } catch {
      return false;
    }
  },
});

/** Whether hono/csrf refuses this request as cross-site. */
export async function isCrossSite(c: Context): Promise<boolean> {
  // A request with neither header is not a browser's (curl, a script): it carries no credentials a
  // foreign page could borrow. Every browser sends Origin on a form post, and current ones Sec-Fetch-Site.
  if (c.req.header("origin") === undefined && c.req.header("sec-fetch-site") === undefined) return false;
  try {
    await sameOriginPosts(c, async () => {});
    return false;
  } catch (e) {
    if (e instanceof HTTPException) return true;
    throw e;
  }
}

function passwordOf(header: string | undefined): string | null {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? "");
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon >= 0 ? decoded.slice(colon + 1) : null;
}

/**
 * Whether a reverse proxy passed this request on: it names the client it came from. A proxy set up for the targets'
 * webhooks forwards every path by default, with its upstream's Host (127.0.0.1), so the Host alone cannot tell.
 */
const viaProxy = (c: Context) => ["forwarded", "x-forwarded-for", "x-real-ip"].some((h) => c.req.header(h) !== undefined);

/**
 * On loopback: only loopback Host names are answered, so a web page cannot reach the status page by
 * DNS rebinding. Elsewhere, or through a reverse proxy: the API token is required (Bearer, or as the password of
 * HTTP Basic, which a browser asks for). Posts must be same-origin.
 */
export function uiGuard(opts: { loopback: boolean; apiToken: () => string }) {
  return async (c: Context, next: Next) => {
    if (opts.loopback && !viaProxy(c)) {
      if (!LOOPBACK_HOST.test(c.req.header("host") ?? "")) {
        return c.text("kontobro's status page answers only on localhost / 127.0.0.1.", 403);
      }
    } else {
      const given = bearerToken(c.req.header("authorization")) ?? passwordOf(c.req.header("authorization"));
      if (!given || !sameSecret(given, opts.apiToken())) {
        c.header("WWW-Authenticate", 'Basic realm="kontobro status page (password: the API token)"');
        return c.text("Log in with the API token as the password (any user name).", 401);
      }
    }
    if (await isCrossSite(c)) return c.text("Cross-site requests are refused.", 403);
    await next();
  };
}
