// Secrets stay out of logs; tokens are compared in constant time; the agent binds to loopback unless
// an API token protects it.
import { describe, expect, test } from "bun:test";
import { validateConfig } from "../agent/config.ts";
import { bearerToken, sameSecret } from "../agent/http/auth.ts";
import { createLogger, redact, registerSecret } from "../agent/log.ts";

describe("log redaction", () => {
  test("secret-looking keys are masked at any depth", () => {
    const out = redact({
      app_secret_token: "abc",
      nested: { headers: { authorization: "Bearer xyz", "X-AgreementGrantToken": "g" } },
      list: [{ password: "p" }],
      ok: "visible",
    }) as any;
    expect(out).toEqual({
      app_secret_token: "[redacted]",
      nested: { headers: { authorization: "[redacted]", "X-AgreementGrantToken": "[redacted]" } },
      list: [{ password: "[redacted]" }],
      ok: "visible",
    });
  });

  test("registered secret values are masked inside any text, errors included", () => {
    registerSecret("s3cr3t-grant-value");
    const lines: string[] = [];
    const log = createLogger("debug", {}, (l) => lines.push(l));
    log.error("push failed", {
      error: new Error("401 for grant s3cr3t-grant-value"),
      url: "https://x/?token=s3cr3t-grant-value",
      note: "Authorization: Bearer abc.def",
    });
    expect(lines.join("\n")).not.toContain("s3cr3t-grant-value");
    expect(lines.join("\n")).not.toContain("abc.def");
    expect(lines[0]).toContain("[redacted]");
  });

  test("secrets resolved from ${ENV} in the config are registered for redaction", () => {
    validateConfig(
      { targets: [{ name: "eco", kind: "economic", app_secret_token: "${APP}", agreement_grant_token: "${GRANT}" }] },
      { APP: "env-app-secret-1", GRANT: "env-grant-secret-2" },
    );
    expect(redact("calling with env-app-secret-1 and env-grant-secret-2")).toBe("calling with [redacted] and [redacted]");
  });
});

test("secrets written directly in the config file are masked too", () => {
  validateConfig(
    {
      targets: [
        { name: "eco", kind: "economic", app_secret_token: "literal-secret-in-file", agreement_grant_token: "literal-grant-in-file" },
      ],
    },
    {},
  );
  expect(redact("x literal-secret-in-file y literal-grant-in-file")).toBe("x [redacted] y [redacted]");
});

describe("token comparison", () => {
  test("equal tokens match, anything else does not, whatever its length", () => {
    expect(sameSecret("correct-token-123", "correct-token-123")).toBe(true);
    for (const wrong of ["", "c", "correct-token-12", "correct-token-1234", "CORRECT-TOKEN-123"])
      expect(sameSecret(wrong, "correct-token-123")).toBe(false);
  });

  test("only a well-formed bearer header yields a token", () => {
    expect(bearerToken("Bearer abc")).toBe("abc");
    expect(bearerToken("bearer abc ")).toBe("abc");
    for (const h of [undefined, "", "Bearer", "Basic abc", "Bearer a b"]) expect(bearerToken(h)).toBeNull();
  });
});

describe("listening address", () => {
  test("loopback by default; another address only with an API token", () => {
    expect(validateConfig({}).config.http.host).toBe("127.0.0.1");
    expect(() => validateConfig({ http: { host: "0.0.0.0" } }, {})).toThrow(/api_token must be set/);
    expect(() => validateConfig({ http: { host: "192.168.1.10", api_token: "short" } }, {})).toThrow(/at least 16/);
    for (const host of ["127.0.0.1", "localhost", "::1"]) expect(() => validateConfig({ http: { host } }, {})).not.toThrow();
  });

  test("on PostgreSQL storage (hosted mode) every tenant's API has its own token: another address needs no http.api_token", () => {
    const storage = { url: "postgres://kontobro@db.example.com/kontobro" };
    expect(validateConfig({ http: { host: "0.0.0.0" }, storage }, {}).config.http.api_token).toBeUndefined();
  });
});
