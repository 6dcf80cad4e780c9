// A configuration that keeps a target's name but points it at another account (review finding 7): kontobro holds ids
// of records in the old one (links: the id each record got there, so a change goes as an update), which in the new
// account would be updates to ids that do not exist or are other records. The same rule in both modes
// (agent/target-account.ts): refused naming the target and what changed, unless told to forget those ids (dropped
// with the change; records created anew) or keep them (the same account after all); a change of other settings, or
// a renamed target, goes through. The SQLite agent with kontobro.toml (started and stopped in this process, its
// SQLite file, the e-conomic sandbox over loopback, a customer really booked there) and a hosted tenant on a real
// PostgreSQL server through the admin API over HTTP (PUT /admin/v1/tenants/:slug/config).
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { Hono } from "hono";
import { join } from "node:path";
import { startAgent } from "../agent/agent.ts";
import { ConfigError, validateConfig } from "../agent/config.ts";
import { migratePostgres } from "../agent/db/pg/migrate.ts";
import { embeddedMigrations } from "../agent/db/pg/migrations.generated.ts";
import { postgresRunner } from "../agent/db/pg/runner.ts";
import { adminRoutes } from "../agent/http/admin-api.ts";
import { silentLogger } from "../agent/log.ts";
import { TenantStore } from "../agent/tenants/store.ts";
import { startEconomicSandbox, type StartedEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { customerEvent, tempDir, waitFor } from "./helpers.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

const TOKEN = "target-account-token-0123456789";
const ADMIN = "target-account-admin-token-0123456789";
const cleanups: (() => unknown)[] = [];
let sandbox: StartedEconomicSandbox;
beforeAll(async () => {
  sandbox = (await startEconomicSandbox({ port: 0 }))!;
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await sandbox?.stop();
});

const books = (over: Record<string, unknown> = {}) => ({
  name: "books",
  kind: "economic",
  rest_url: sandbox.url,
  projects_url: `${sandbox.url}/projectsapi/v1.1.0`,
  app_secret_token: "demo-app-secret",
  agreement_grant_token: "demo-agreement-grant",
  requests_per_second: 0,
  ...over,
});

/** Why the start or change was refused: its problem lines. */
async function refusedWith(p: Promise<unknown>): Promise<string[]> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error("expected a refusal");
}

describe("kontobro.toml: the SQLite agent at its start", () => {
  test("another account for a target holding links is refused; forget, keep, other settings and a new name go through", async () => {
    const dir = tempDir("kontobro-account-");
    const load = (target: Record<string, unknown>) =>
      validateConfig({ agent: { data_dir: dir }, http: { port: 0, api_token: TOKEN }, targets: [target] }, {});
    const start = (target: Record<string, unknown>, accounts?: { forget?: string[]; keep?: string[] }) => {
      const { config, targets } = load(target);
      return startAgent(config, targets, silentLogger, accounts ? { accounts } : {});
    };
    const links = () => {
      const db = new Database(join(dir, "kontobro.db"), { readonly: true });
      try {
        return (
          db.query("SELECT target, count(*) AS n FROM links GROUP BY target ORDER BY target").all() as { target: string; n: number }[]
        )
          .map((r) => `${r.target}:${r.n}`)
          .join(" ");
      } finally {
        db.close();
      }
    };

    // A customer booked in the agreement: its link is kept.
    let agent = await start(books());
    const res = await fetch(`${agent.url}/api/v1/events`, {
      method: "POST",
      body: JSON.stringify([customerEvent(1)]),
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    });
    expect(res.status).toBe(202);
    await waitFor("the customer booked", () => links() === "books:1", 20_000);
    await agent.stop();

    // Another agreement's grant token under the same name: the agent does not start.
    const problems = await refusedWith(start(books({ agreement_grant_token: "another-agreement-grant" })));
    expect(problems).toEqual([
      expect.stringMatching(
        /^targets\.books: points at another account than before \(agreement_grant_token changed\), and kontobro holds 1 id\(s\) of records in the old one/,
      ),
    ]);
    expect(problems[0]).toContain("`kontobro run --forget-links books`");
    expect(problems[0]).toContain("`kontobro run --keep-links books`");
    // A name that is not a target is refused too.
    expect(await refusedWith(start(books(), { forget: ["bookz"] }))).toEqual([
      '--forget-links/--keep-links: kontobro.toml has no target named "bookz"',
    ]);
    // Nothing was changed by the refusals: the old token starts as before.
    agent = await start(books());
    await agent.stop();
    expect(links()).toBe("books:1");

    // The same account after all (a new token for the agreement): kept.
    agent = await start(books({ agreement_grant_token: "new-token-same-agreement" }), { keep: ["books"] });
    await agent.stop();
    expect(links()).toBe("books:1");
    // Recorded: the next start with that token needs nothing.
    agent = await start(books({ agreement_grant_token: "new-token-same-agreement" }));
    await agent.stop();

    // Another agreement, its ids forgotten.
    agent = await start(books({ agreement_grant_token: "another-agreement-grant" }), { forget: ["books"] });
    await agent.stop();
    expect(links()).toBe("");

    // Settings that name no account, and no ids held: no question asked.
    agent = await start(books({ agreement_grant_token: "another-agreement-grant", customer_group: 2 }));
    await agent.stop();
  }, 90_000);
});

describe("kontobro.toml: a target renamed", () => {
  test("to a name new to kontobro, on the same account where the old name holds links: refused, naming the old name", async () => {
    const dir = tempDir("kontobro-account-rename-");
    const start = (target: Record<string, unknown>, accounts?: { forget?: string[] }) => {
      const { config, targets } = validateConfig({ agent: { data_dir: dir }, http: { port: 0, api_token: TOKEN }, targets: [target] }, {});
      return startAgent(config, targets, silentLogger, accounts ? { accounts } : {});
    };
    const linked = () => {
      const db = new Database(join(dir, "kontobro.db"), { readonly: true });
      try {
        return (db.query("SELECT count(*) AS n FROM links WHERE target = 'books'").get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    let agent = await start(books());
    const res = await fetch(`${agent.url}/api/v1/events`, {
      method: "POST",
      body: JSON.stringify([customerEvent(1)]),
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    });
    expect(res.status).toBe(202);
    await waitFor("the customer booked", () => linked() === 1, 20_000);
    await agent.stop();

    const problems = await refusedWith(start(books({ name: "books-dk" })));
    expect(problems).toEqual([
      expect.stringMatching(
        /^targets\.books-dk: points at the same account as target "books", which is no longer configured and under whose name kontobro holds 1 id\(s\) of records there \(links, master data, pull cursors\), as far as the settings tell \(the same kind, rest_url, agreement_grant_token\)/,
      ),
    ]);
    expect(problems[0]).toContain('Give the target back its name "books"');
    expect(problems[0]).toContain("`kontobro run --forget-links books-dk`");
    // Its old name back: starts with its link.
    agent = await start(books());
    await agent.stop();
    // Afresh under the new name all the same, when asked.
    agent = await start(books({ name: "books-dk" }), { forget: ["books-dk"] });
    await agent.stop();
    expect(linked()).toBe(1);
  }, 60_000);
});

describe("kontobro demo on the data directory of an earlier run", () => {
  test("starts: each run's sandbox is a new one (another port), and the ids of the last one's records are forgotten", async () => {
    const data = tempDir("kontobro-account-demo-");
    const demo = async () => {
      const proc = Bun.spawn(
        [process.execPath, join(import.meta.dir, "../agent/main.ts"), "demo", "--port", "0", "--data", data, "--interval", "1"],
        {
          cwd: tempDir("kontobro-account-demo-cwd-"),
          stdout: "pipe",
          stderr: "pipe",
        },
      );
      cleanups.push(() => proc.kill("SIGKILL"));
      let out = "";
      void (async () => {
        for await (const chunk of proc.stdout) out += new TextDecoder().decode(chunk);
      })();
      const up = await Promise.race([
        waitFor("the demo's banner", () => /Status page\s+http:/.test(out), 60_000),
        proc.exited.then(async (code) => {
          throw new Error(`the demo ended (${code}): ${await new Response(proc.stderr).text()}`);
        }),
      ]);
      return { up, proc };
    };
    const linked = () => {
      const db = new Database(join(data, "kontobro.db"), { readonly: true });
      try {
        return (db.query("SELECT count(*) AS n FROM links").get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    let run = await demo();
    await waitFor("the demo's records booked", () => linked() > 0, 60_000);
    run.proc.kill("SIGTERM");
    await run.proc.exited;
    run = await demo();
    expect(run.up).toBe(true);
    run.proc.kill("SIGTERM");
    await run.proc.exited;
  }, 180_000);
});

const unavailable = pgUnavailable();
if (unavailable) console.warn(`a tenant's target pointed at another account, on PostgreSQL, skipped: ${unavailable}`);

describe.skipIf(!!unavailable)("a hosted tenant: PUT /admin/v1/tenants/:slug/config", () => {
  let server: PgServer;
  let client: SQL;
  beforeAll(async () => {
    server = await startPgServer();
    client = new SQL({ url: server.url, max: 2 });
    await migratePostgres(client, embeddedMigrations);
  }, 120_000);
  afterAll(async () => {
    await client?.close();
    await server?.stop();
  });

  test("the same rule: refused naming the target, nothing changed; forget_links and keep_links; a renamed target goes through", async () => {
    const store = new TenantStore(client);
    const added = await store.add({ slug: "acme", config: { targets: [books()] } }, {});
    const runner = postgresRunner(client, added.tenant.id);
    const link = (key: string) =>
      runner.run(
        `INSERT INTO links (target, entity, key, remote_id, payload_hash, updated_at) VALUES ('books', 'customer', ?1, ?1, 'h', 1)`,
        key,
      );
    // Two customers booked in the first agreement (their links as delivery writes them).
    await link("1");
    await link("2");
    const linked = async () => (await runner.get<{ n: number }>(`SELECT count(*) AS n FROM links WHERE target = 'books'`))!.n;
    const app = new Hono();
    app.route("/admin/v1", adminRoutes({ token: ADMIN, tenants: store }));
    const http = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch });
    cleanups.push(() => http.stop(true));
    const put = async (config: unknown, query = "") => {
      const res = await fetch(`http://127.0.0.1:${http.port}/admin/v1/tenants/acme/config${query}`, {
        method: "PUT",
        body: JSON.stringify(config),
        headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    const storedToken = async () => (await store.get("acme"))!.config.targets as { agreement_grant_token: string }[];

    const other = { targets: [books({ agreement_grant_token: "another-agreement-grant" })] };
    const refused = await put(other);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toBe("account_changed");
    expect(refused.body.problems).toEqual([
      expect.stringMatching(
        /^targets\.books: points at another account than before \(agreement_grant_token changed\), and kontobro holds 2 id\(s\) of records in the old one/,
      ),
    ]);
    expect(refused.body.problems[0]).toContain("--forget-links books (kontobro tenant set) or ?forget_links=books");
    expect((await storedToken())[0]!.agreement_grant_token).toBe("demo-agreement-grant");
    expect(await linked()).toBe(2);
    expect((await put(other, "?forget_links=bookz")).body.problems).toContain(
      'forget/keep links: the configuration has no target named "bookz"',
    );

    // The same account after all: kept, and said so.
    const sameAccount = { targets: [books({ agreement_grant_token: "new-token-same-agreement" })] };
    const kept = await put(sameAccount, "?keep_links=books");
    expect(kept.status).toBe(200);
    expect(kept.body.warnings).toEqual([expect.stringContaining("taken for the same account (kept): its 2 id(s)")]);
    expect(await linked()).toBe(2);
    // Other settings: no question.
    expect((await put({ targets: [books({ agreement_grant_token: "new-token-same-agreement", customer_group: 3 })] })).status).toBe(200);

    // Another agreement, forgotten with the change.
    const forgotten = await put(other, "?forget_links=books");
    expect(forgotten.status).toBe(200);
    expect(forgotten.body.warnings).toEqual([expect.stringContaining("its 2 id(s) of records in the old one were forgotten")]);
    expect(await linked()).toBe(0);
    expect((await storedToken())[0]!.agreement_grant_token).toBe("another-agreement-grant");

    // A target dropped and later back under its name is compared with the account it had.
    await link("3");
    expect((await put({ targets: [] })).status).toBe(200);
    const back = await put({ targets: [books()] });
    expect([back.status, back.body.error]).toEqual([409, "account_changed"]);
    // Under a new name it starts afresh: no ids, no question.
    expect((await put({ targets: [books({ name: "books-dk" })] })).status).toBe(200);
  }, 90_000);
});
