// /api/v1's token check (hono/bearer-auth with kontobro's answer) and the token's syntax in the config.
import { describe, expect, test } from "bun:test";
import { Hono } from "hono";
import { validateConfig } from "../agent/config.ts";
import { requireApiToken } from "../agent/http/auth.ts";

const TOKEN = "api-token-0123456789";

function app() {
  const a = new Hono();
  a.use(
    "*",
    requireApiToken(() => TOKEN),
  );
  a.get("/x", (c) => c.text("ok"));
  return a;
}

describe("API token", () => {
  test("the right bearer token passes", async () => {
    expect((await app().request("/x", { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await app().request("/x", { headers: { authorization: `bearer ${TOKEN}` } })).status).toBe(200);
  });

  test("none, a malformed header or a wrong token: 401 with the same hint and challenge", async () => {
    for (const authorization of [undefined, "", "Basic abc", "Bearer", "Bearer a b", `Bearer ${TOKEN}x`, "Bearer wrong!token"]) {
      const res = await app().request("/x", { headers: authorization === undefined ? {} : { authorization } });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Bearer realm="kontobro"');
      expect(await res.json()).toMatchObject({ error: "unauthorized", hint: expect.stringContaining("Authorization: Bearer") });
    }
  });

  test("a configured token must be a bearer token (RFC 6750 characters), said in one line", () => {
    expect(() => validateConfig({ http: { api_token: "0123456789abcdef-._~+/==" } }, {})).not.toThrow();
    expect(() => validateConfig({ http: { api_token: "has space 0123456789" } }, {})).toThrow(
      /http\.api_token: may hold only letters, digits/,
    );
  });
});
