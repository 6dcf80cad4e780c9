import { describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfigFile, validateConfig } from "../agent/config.ts";

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("config", () => {
  test("an empty file gives the embedded defaults", () => {
    const { config, targets } = validateConfig({});
    expect(config.http.host).toBe("127.0.0.1");
    expect(config.http.port).toBe(8787);
    expect(config.agent.data_dir).toBe("./data");
    expect(targets).toEqual([]);
  });

  test("secrets come from ${ENV} and a missing variable names the key", () => {
    const raw = { targets: [{ name: "eco", kind: "economic", app_secret_token: "${APP}", agreement_grant_token: "${GRANT}" }] };
    const { targets } = validateConfig(raw, { APP: "a-secret", GRANT: "g-secret" });
    expect(targets[0]!.settings.app_secret_token).toBe("a-secret");
    const problems = problemsOf(() => validateConfig(raw, { APP: "a-secret" }));
    expect(problems).toContain(
      "targets[0].agreement_grant_token: environment variable GRANT is not set (export it, or write the value in the file)",
    );
  });

  test("every problem is one line naming its key", () => {
    const problems = problemsOf(() =>
      validateConfig(
        {
          http: { port: "eighty" },
          targets: [
            { name: "Bad Name", kind: "economic" },
            { name: "x", kind: "nosuch" },
          ],
        },
        {},
      ),
    );
    expect(problems.some((p) => p.startsWith("http.port:"))).toBe(true);
    expect(problems.some((p) => p.startsWith("targets[0].name:"))).toBe(true);
    expect(problems.some((p) => p.startsWith('targets[1].kind: unknown kind "nosuch"'))).toBe(true);
    for (const p of problems) expect(p).not.toContain("\n");
  });

  test("a misspelt key in any connector's table is refused, naming it (not silently left at its default)", () => {
    const targets = [
      { name: "eco", kind: "economic", app_secret_token: "a", agreement_grant_token: "g", request_timeout_msx: 1000 },
      { name: "uni", kind: "unimicro", client_id: "c", private_key: "k", company_key: "ck", company_curency: "SEK" },
      { name: "eac", kind: "eaccounting", client_id: "c", client_secret: "s", atach_pdf: true },
      { name: "unc", kind: "uniconta", company_id: 1, username: "u", password: "p", atach_pdf: true },
    ];
    const problems = problemsOf(() => validateConfig({ targets }, {}));
    expect(problems).toContain("targets[0]: unknown key(s) request_timeout_msx");
    expect(problems).toContain("targets[1]: unknown key(s) company_curency");
    expect(problems).toContain("targets[2]: unknown key(s) atach_pdf");
    expect(problems).toContain("targets[3]: unknown key(s) atach_pdf");
  });

  test("a non-loopback address requires an API token", () => {
    const problems = problemsOf(() => validateConfig({ http: { host: "0.0.0.0" } }, {}));
    expect(problems[0]).toContain("http.api_token must be set");
    expect(() => validateConfig({ http: { host: "0.0.0.0", api_token: "x".repeat(32) } }, {})).not.toThrow();
  });

  test("a config file readable by others earns a warning; invalid TOML is one clear line", () => {
    const dir = mkdtempSync(join(tmpdir(), "kontobro-cfg-"));
    const path = join(dir, "kontobro.toml");
    writeFileSync(path, "[http]\nport = 9999\n");
    chmodSync(path, 0o644);
    expect(loadConfigFile(path).warnings[0]).toContain("chmod 600");
    chmodSync(path, 0o600);
    expect(loadConfigFile(path).warnings).toEqual([]);
    writeFileSync(path, "[http\nport = ");
    expect(problemsOf(() => loadConfigFile(path))[0]).toContain("is not valid TOML");
  });
});
