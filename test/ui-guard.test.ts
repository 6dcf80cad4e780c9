// The status page's guard: loopback Host names only (no DNS rebinding), the API token when listening
// elsewhere, and same-origin form posts.
import { describe, expect, test } from "bun:test";
import { Hono } from "hono";
import { uiGuard } from "../agent/http/ui-guard.ts";

function app(loopback: boolean) {
  const a = new Hono();
  const guard = uiGuard({ loopback, apiToken: () => "the-api-token-123456" });
  a.use("/", guard);
  a.use("/ui/*", guard);
  a.get("/", (c) => c.text("page"));
  a.post("/ui/x", (c) => c.text("done"));
  return a;
}

describe("status page guard", () => {
  test("on loopback: loopback Host names pass, any other Host is refused", async () => {
    for (const host of ["127.0.0.1:8787", "localhost:8787", "[::1]:8787"])
      expect((await app(true).request("/", { headers: { host } })).status).toBe(200);
    for (const host of ["evil.example", "evil.example:8787", "192.168.1.5:8787"])
      expect((await app(true).request("/", { headers: { host } })).status).toBe(403);
  });

  test("on loopback, a request a reverse proxy passed on (Forwarded, X-Forwarded-For, X-Real-IP) needs the API token", async () => {
    // A proxy set up for the targets' webhooks forwards everything by default, with the Host of its upstream.
    const host = "127.0.0.1:8787";
    const forwards: Record<string, string>[] = [
      { "x-forwarded-for": "203.0.113.9" },
      { forwarded: "for=203.0.113.9" },
      { "x-real-ip": "203.0.113.9" },
    ];
    for (const proxied of forwards) {
      const res = await app(true).request("/", { headers: { host, ...proxied } });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toContain("Basic");
      const withToken = await app(true).request("/", { headers: { host, ...proxied, authorization: "Bearer the-api-token-123456" } });
      expect(withToken.status).toBe(200);
    }
  });

  test("posts must be same-origin; a null or garbage Origin is refused, not a crash", async () => {
    const post = (headers: Record<string, string>) =>
      app(true).request("/ui/x", { method: "POST", headers: { host: "127.0.0.1:8787", ...headers } });
    expect((await post({ origin: "http://127.0.0.1:8787" })).status).toBe(200);
    expect((await post({})).status).toBe(200); // a plain form post from curl
    for (const origin of ["null", "not a url", "http://evil.example"]) expect((await post({ origin })).status).toBe(403);
    expect((await post({ "sec-fetch-site": "cross-site" })).status).toBe(403);
  });

  test("elsewhere: the API token is required, as Bearer or as the Basic password", async () => {
    const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
    const res = await app(false).request("/", { headers: { host: "kontobro.internal:8787" } });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain("Basic");
    expect((await app(false).request("/", { headers: { authorization: basic("me", "wrong") } })).status).toBe(401);
    expect((await app(false).request("/", { headers: { authorization: basic("me", "the-api-token-123456") } })).status).toBe(200);
    expect((await app(false).request("/", { headers: { authorization: "Bearer the-api-token-123456" } })).status).toBe(200);
  });
});
