// `kontobro tenant …` on a real PostgreSQL server (issue 17; test/pg-server.ts), in-process through main():
// add prints the API token once (and it resolves the tenant), list shows slug, state, targets and day, disable
// and remove (only with --yes, only a disabled tenant) work, a bad file names the key; with the SQLite file
// every sub-command says tenants need a PostgreSQL storage url.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { postgresRunner } from "../agent/db/pg/runner.ts";
import { main } from "../agent/main.ts";
import { TenantStore } from "../agent/tenants/store.ts";
import { tempDir } from "./helpers.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => void out.push(a.join(" "));
  console.error = (...a: unknown[]) => void err.push(a.join(" "));
  try {
    const code = await main(argv);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

const dir = tempDir();
const tenantFile = join(dir, "acme.toml");
writeFileSync(
  tenantFile,
  `[[targets]]
name = "books"
kind = "economic"
app_secret_token = "\${ACME_APP_SECRET}"
agreement_grant_token = "tenants-cli-grant"

[[targets]]
name = "ledger"
kind = "uniconta"
company_id = 7
username = "u"
password = "p"
`,
);

describe("with the SQLite file", () => {
  test("every sub-command says tenants need a PostgreSQL storage url and that SQLite has one tenant", async () => {
    const config = join(dir, "sqlite.toml");
    writeFileSync(config, `[agent]\ndata_dir = "${join(dir, "data")}"\n`);
    for (const argv of [
      ["add", "acme", "--file", tenantFile],
      ["list"],
      ["disable", "acme"],
      ["enable", "acme"],
      ["remove", "acme", "--yes"],
    ]) {
      const r = await cli("tenant", ...argv, "--config", config);
      expect(r).toEqual({
        code: 2,
        out: "",
        err: `kontobro tenant ${argv[0]}: tenants need PostgreSQL storage: set [storage] url = "postgres://…" in kontobro.toml. With the SQLite file (the default) there is exactly one tenant, this installation, configured by kontobro.toml itself.`,
      });
    }
  });
});

const unavailable = pgUnavailable();
if (unavailable) console.warn(`kontobro tenant on PostgreSQL skipped: ${unavailable}`);

let server: PgServer;
let client: SQL;
let config: string;

beforeAll(async () => {
  if (unavailable) return;
  server = await startPgServer();
  client = new SQL({ url: server.url, max: 2 });
  config = join(dir, "kontobro.toml");
  writeFileSync(config, `[agent]\ndata_dir = "${join(dir, "data")}"\n\n[storage]\nurl = "${server.url}"\n`);
}, 120_000);
afterAll(async () => {
  await client?.close();
  await server?.stop();
});

describe.skipIf(!!unavailable)("kontobro tenant on PostgreSQL", () => {
  test("add prints the API token once; it resolves the tenant; list, disable, remove", async () => {
    process.env.ACME_APP_SECRET = "tenants-cli-app-secret";
    const added = await cli("tenant", "add", "acme", "--file", tenantFile, "--name", "Acme A/S", "--config", config);
    expect([added.code, added.err]).toEqual([0, ""]);
    expect(added.out).toStartWith("Tenant acme added (Acme A/S); targets: books (economic), ledger (uniconta).");
    const token = /shown only now[^\n]*\n {2}(\S+)/.exec(added.out)![1]!;
    expect(added.out).toMatch(
      /Webhook tokens of its targets \(their URLs: \/t\/<slug>\/webhooks\/<kind>\/<token>…, listed again by GET \/api\/v1\/pulls\):\n {2}books {2}\S{43}$/,
    );
    const store = new TenantStore(client);
    expect(await store.resolveApiToken(token)).toMatchObject({ slug: "acme", state: "active" });
    // Never shown again: not by list, not as JSON.
    const list = await cli("tenant", "list", "--config", config);
    expect(list.out).not.toContain(token);
    expect(list.out.split("\n")).toEqual([
      "SLUG  STATE   TARGETS                              CREATED",
      expect.stringMatching(/^acme {2}active {2}books \(economic\), ledger \(uniconta\) {2}\d{4}-\d\d-\d\d$/),
    ]);
    const json = JSON.parse((await cli("tenant", "list", "--json", "--config", config)).out);
    expect(json).toEqual([
      {
        slug: "acme",
        name: "Acme A/S",
        state: "active",
        targets: [
          { name: "books", kind: "economic" },
          { name: "ledger", kind: "uniconta" },
        ],
        createdAt: expect.any(String),
      },
    ]);

    const again = await cli("tenant", "add", "acme", "--file", tenantFile, "--config", config);
    expect([again.code, again.err]).toEqual([1, expect.stringContaining('a tenant "acme" already exists')]);
    const badSlug = await cli("tenant", "add", "Acme", "--file", tenantFile, "--config", config);
    expect([badSlug.code, badSlug.err]).toEqual([2, expect.stringContaining("lowercase letters, digits and dashes")]);
    // ${ACME_APP_SECRET} unset: the key is named.
    delete process.env.ACME_APP_SECRET;
    const unset = await cli("tenant", "add", "globex", "--file", tenantFile, "--config", config);
    expect(unset.code).toBe(2);
    expect(unset.err).toContain("  - targets[0].app_secret_token: environment variable ACME_APP_SECRET is not set");

    expect(await cli("tenant", "remove", "acme", "--config", config)).toMatchObject({ code: 2, err: expect.stringContaining("--yes") });
    const active = await cli("tenant", "remove", "acme", "--yes", "--config", config);
    expect([active.code, active.err]).toEqual([1, expect.stringContaining("fix: Disable it first (kontobro tenant disable acme)")]);
    expect(await cli("tenant", "disable", "acme", "--config", config)).toEqual({ code: 0, out: "Tenant acme is disabled.", err: "" });
    expect(await store.resolveApiToken(token)).toMatchObject({ slug: "acme", state: "disabled" });
    const acme = postgresRunner(client, (await store.get("acme"))!.id);
    await acme.run(`INSERT INTO cursors (target, stream, value, updated_at) VALUES ('books', 'expenses', '7', 1)`);
    await acme.run(`INSERT INTO settings (name, value) VALUES ('api_token', 'x')`);
    expect(await cli("tenant", "remove", "acme", "--yes", "--config", config)).toEqual({
      code: 0,
      // The cursor, the setting and its target's webhook token (kept by tenant add).
      out: "Tenant acme removed, with its 3 rows.",
      err: "",
    });
    expect(await store.resolveApiToken(token)).toBeNull();
    expect((await cli("tenant", "list", "--config", config)).out).toStartWith("No tenants yet");
    expect((await cli("tenant", "disable", "acme", "--config", config)).err).toContain('there is no tenant "acme"');
  }, 60_000);
});
