// [storage] url (issue 17, step 1c): the URL is checked before anything connects; openStorage opens the SQLite
// file by default, and for a postgres:// url a real PostgreSQL server (test/pg-server.ts): it connects, refuses
// a superuser or BYPASSRLS role, an old server, an unreachable one or a missing database with what to do,
// migrates under the migration lock (three workers at once) and hands out tenant runners. `kontobro storage
// check` reports it; the SQLite agent (kontobro demo's) with a postgres url refuses at start and leaves nothing behind
// (`kontobro run` on PostgreSQL is the hosted worker: test/hosted-workers.test.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { validateConfig, type ConfigError } from "../agent/config.ts";
import { StorageError } from "../agent/db/index.ts";
import { serverProblem, type ServerFacts } from "../agent/db/pg/open.ts";
import { embeddedMigrations } from "../agent/db/pg/migrations.generated.ts";
import { displayUrl, postgresUrlProblem } from "../agent/db/pg/url.ts";
import { redact, silentLogger } from "../agent/log.ts";
import { startAgent } from "../agent/agent.ts";
import { main } from "../agent/main.ts";
import { NOT_YET_ON_POSTGRES, openStorage, storageOf } from "../agent/storage.ts";
import { tempDir } from "./helpers.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

describe("[storage] url in kontobro.toml", () => {
  test("absent, the storage is the SQLite file in agent.data_dir", () => {
    const { config } = validateConfig({ agent: { data_dir: "/srv/kontobro" } });
    expect(storageOf(config)).toEqual({ engine: "sqlite", path: "/srv/kontobro/kontobro.db" });
  });

  test("a postgres:// or postgresql:// url with role, server and database is accepted, its password masked in logs", () => {
    const env = { KONTOBRO_PG_PASSWORD: "pw-in-the-environment" };
    const { config } = validateConfig(
      { storage: { url: "postgres://kontobro:${KONTOBRO_PG_PASSWORD}@db.example.com:5432/kontobro" } },
      env,
    );
    expect(storageOf(config)).toEqual({
      engine: "postgres",
      url: "postgres://kontobro:pw-in-the-environment@db.example.com:5432/kontobro",
    });
    expect(redact("connecting with pw-in-the-environment")).not.toContain("pw-in-the-environment");
    expect(displayUrl(config.storage.url!)).toBe("postgres://kontobro:***@db.example.com:5432/kontobro");
    expect(postgresUrlProblem("postgresql://kontobro@10.0.0.5/kontobro?sslmode=require")).toBeNull();
  });

  test("with a postgres url, the commands that work on the SQLite file only refuse before opening anything", async () => {
    const url = "postgres://kontobro@127.0.0.1:1/nowhere";
    const { path, dataDir } = configFile(url);
    for (const argv of [["status"], ["retry", "--all"], ["prune"], ["backup", join(dataDir, "copy.db")], ["check"]]) {
      const r = await cli(...argv, "--config", path);
      expect([argv[0], r.code]).toEqual([argv[0], 1]);
      expect(r.err).toStartWith(`kontobro: [storage] url names PostgreSQL (${url}), but this command works on the SQLite file only.`);
    }
    expect(existsSync(dataDir)).toBe(false);
  });

  test("a wrong url is a problem naming the key and how to write it, never repeating the url", () => {
    const problems = (url: string) => {
      try {
        validateConfig({ storage: { url } });
        return [];
      } catch (e) {
        return (e as ConfigError).problems;
      }
    };
    expect(problems("mysql://kontobro:secret@db/kontobro")).toEqual([
      expect.stringMatching(
        /^storage\.url: uses mysql:, which kontobro does not store in: use a postgres:\/\/ URL such as postgres:\/\/kontobro:/,
      ),
    ]);
    expect(problems("postgres://db.example.com/kontobro")[0]).toStartWith("storage.url: names no role to connect as");
    expect(problems("postgres://kontobro@db.example.com/")[0]).toStartWith("storage.url: names no database");
    expect(problems("mysql://kontobro:secret@db/kontobro")[0]).not.toContain("secret");
    expect(problems("kontobro.db")[0]).toStartWith("storage.url: is not a URL; write it as postgres://");
  });
});

describe("which servers and roles kontobro refuses", () => {
  const facts: ServerFacts = {
    versionNum: 150018,
    version: "15.18",
    role: "kontobro",
    database: "kontobro",
    superuser: false,
    bypassRls: false,
  };
  test("PostgreSQL 13 or newer, as a role that is neither superuser nor BYPASSRLS", () => {
    expect(serverProblem(facts)).toBeNull();
    expect(serverProblem({ ...facts, versionNum: 130000, version: "13.0" })).toBeNull();
    expect(serverProblem({ ...facts, versionNum: 120017, version: "12.17" })?.message).toBe(
      "PostgreSQL 12.17 is too old: kontobro needs PostgreSQL 13 or newer.",
    );
    const superuser = serverProblem({ ...facts, role: "postgres", superuser: true })!;
    expect(superuser.message).toContain('role "postgres", which is a superuser');
    expect(superuser.hint).toContain("NOSUPERUSER NOBYPASSRLS");
    expect(serverProblem({ ...facts, bypassRls: true })?.message).toContain("BYPASSRLS");
  });
});

describe("openStorage without [storage] url", () => {
  test("creates and migrates the SQLite file in agent.data_dir; its runner runs the SQL", async () => {
    const dir = tempDir();
    const storage = await openStorage(validateConfig({ agent: { data_dir: dir } }).config);
    try {
      expect(storage.engine).toBe("sqlite");
      expect(storage.location).toBe(join(dir, "kontobro.db"));
      if (storage.engine !== "sqlite") return;
      expect(storage.report.migrations).toBeGreaterThan(10);
      expect(await storage.runner().get("SELECT count(*) AS n FROM deliveries")).toEqual({ n: 0 });
    } finally {
      await storage.close();
    }
  });
});

const unavailable = pgUnavailable();
if (unavailable) console.warn(`PostgreSQL storage tests skipped: ${unavailable}`);

/** Runs main(argv), capturing what it prints. */
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

/** A kontobro.toml with a data directory of its own and, when given, [storage] url. */
function configFile(url?: string): { path: string; dataDir: string } {
  const dir = tempDir();
  const dataDir = join(dir, "data");
  const path = join(dir, "kontobro.toml");
  writeFileSync(path, `[agent]\ndata_dir = "${dataDir}"\n${url ? `[storage]\nurl = "${url}"\n` : ""}`, { mode: 0o600 });
  return { path, dataDir };
}

describe.skipIf(!!unavailable)("openStorage with a postgres:// url, on a real server", () => {
  let server: PgServer;
  let admin: SQL;
  const pgConfig = (url: string) => validateConfig({ storage: { url } }).config;
  beforeAll(async () => {
    server = await startPgServer();
    admin = new SQL(server.adminUrl);
  }, 120_000);
  afterAll(async () => {
    await admin?.close();
    await server?.stop();
  });

  test("three workers starting at once: each connects and checks, one migrates, all get tenant runners", async () => {
    const url = await server.createDatabase("three_workers");
    const opened = await Promise.all([1, 2, 3].map(() => openStorage(pgConfig(url), { max: 2 })));
    try {
      for (const s of opened) {
        if (s.engine !== "postgres") throw new Error("expected PostgreSQL");
        expect(s.location).toBe(url);
        expect(s.report).toMatchObject({ role: "kontobro", database: "three_workers", superuser: false, bypassRls: false, tenants: 0 });
        expect(s.report.versionNum).toBeGreaterThanOrEqual(130000);
        expect(s.report.migrations).toBe(embeddedMigrations.length);
        expect(s.report.forcedRls).toBe(s.report.tables);
        expect(s.report.tables).toBeGreaterThan(20);
      }
      const first = opened[0]!;
      if (first.engine !== "postgres") return;
      await first.client`INSERT INTO tenants (slug, name, api_token_hash, created_at, updated_at) VALUES ('acme', 'Acme', 'h', 1, 1)`;
      const acme = first.runner(1);
      await acme.run(
        "INSERT INTO events (event_id, type, entity, key, payload, received_at) VALUES (?1, 'customer.upserted', 'customer', '1', '{}', 1)",
        "e-1",
      );
      expect(await acme.all("SELECT event_id AS eventId, tenant_id AS tenantId FROM events")).toEqual([{ eventId: "e-1", tenantId: 1 }]);
      const again = opened[2]!;
      if (again.engine === "postgres") expect(await again.runner(1).get("SELECT count(*) AS n FROM events")).toEqual({ n: 1 });
    } finally {
      await Promise.all(opened.map((s) => s.close()));
    }
  });

  test("a superuser or a BYPASSRLS role is refused, saying how to fix it, before anything is migrated", async () => {
    const url = await server.createDatabase("refused_roles");
    const asSuperuser = url.replace("kontobro@", "postgres@");
    const refusal = await openStorage(pgConfig(asSuperuser)).catch((e) => e);
    expect(refusal).toBeInstanceOf(StorageError);
    expect(refusal.message).toContain('role "postgres", which is a superuser');
    expect(refusal.hint).toContain(
      "CREATE ROLE kontobro LOGIN PASSWORD '…' NOSUPERUSER NOBYPASSRLS; ALTER DATABASE refused_roles OWNER TO kontobro",
    );
    await admin.unsafe("CREATE ROLE bypasser LOGIN NOSUPERUSER BYPASSRLS");
    const bypass = await openStorage(pgConfig(url.replace("kontobro@", "bypasser@"))).catch((e) => e);
    expect(bypass.message).toContain('role "bypasser", which is allowed to bypass row-level security (BYPASSRLS)');
    expect(bypass.hint).toEndWith('(or take the right from this role: ALTER ROLE "bypasser" NOBYPASSRLS).');
    const check = new SQL(server.adminUrl.replace(/\/[^/]+$/, "/refused_roles"));
    try {
      expect(await check`SELECT count(*)::integer AS n FROM pg_namespace WHERE nspname = 'drizzle'`).toEqual([{ n: 0 }]);
    } finally {
      await check.close();
    }
  });

  test("an unreachable server, a missing database, a role that may not create tables: each says what to do", async () => {
    const closedPort = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = closedPort.port;
    closedPort.stop(true);
    const unreachable = await openStorage(pgConfig(`postgres://kontobro@127.0.0.1:${port}/kontobro`), { connectTimeoutSeconds: 5 }).catch(
      (e) => e,
    );
    expect(unreachable).toBeInstanceOf(StorageError);
    expect(unreachable.message).toStartWith(`Cannot reach the PostgreSQL server 127.0.0.1:${port}`);
    expect(unreachable.hint).toContain("listen_addresses");

    const missing = await openStorage(pgConfig(server.url.replace(/\/[^/]+$/, "/nowhere"))).catch((e) => e);
    expect(missing.message).toBe(`The database "nowhere" does not exist on the PostgreSQL server 127.0.0.1:${server.port}.`);
    expect(missing.hint).toContain("CREATE DATABASE nowhere OWNER kontobro");

    await admin.unsafe("CREATE ROLE visitor LOGIN NOSUPERUSER NOBYPASSRLS");
    const url = await server.createDatabase("not_visitors");
    const visitor = await openStorage(pgConfig(url.replace("kontobro@", "visitor@"))).catch((e) => e);
    expect(visitor.message).toStartWith('Role "visitor" may not create kontobro\'s tables in the database "not_visitors"');
    expect(visitor.hint).toContain('ALTER DATABASE not_visitors OWNER TO "visitor"');
  });

  test("kontobro storage check reports the server, role, migrations and row-level security; a refusal exits 1 with the fix", async () => {
    const url = await server.createDatabase("checked");
    const ok = await cli("storage", "check", "--config", configFile(url).path);
    expect(ok.err).toBe("");
    expect(ok.code).toBe(0);
    const lines = ok.out.split("\n");
    expect(lines[0]).toBe("Storage: PostgreSQL");
    expect(lines[1]).toBe(`  ok   ${url}`);
    expect(lines[2]).toMatch(/^ {2}ok {3}server: PostgreSQL 1\d\.\d+ .*\(13 or newer is needed\)$/);
    expect(lines.slice(3, 7)).toEqual([
      '  ok   role "kontobro" on database "checked": no superuser, no BYPASSRLS, so row-level security holds for it',
      `  ok   migrations: ${embeddedMigrations.length} applied`,
      expect.stringMatching(/^ {2}ok {3}row-level security: on (\d+) tenant tables, forced for their owner on \1$/),
      "  ok   tenants: 0 (kontobro tenant add adds one)",
    ]);
    expect(lines[7]).toStartWith(
      `kontobro run starts a worker of this hosted installation. Not yet on PostgreSQL: ${NOT_YET_ON_POSTGRES[0]}`,
    );

    const refused = await cli("storage", "check", "--config", configFile(url.replace("kontobro@", "postgres@")).path);
    expect(refused.code).toBe(1);
    expect(refused.out).toContain('  FAIL kontobro connects to PostgreSQL as role "postgres", which is a superuser');
    expect(refused.out).toContain("       fix: Connect as a role of its own");
  });

  test("the single-installation agent (kontobro demo's) with a postgres url refuses at start, naming what does not run there yet, and starts nothing", async () => {
    const url = await server.createDatabase("not_run");
    const dataDir = join(tempDir(), "data");
    const { config } = validateConfig({ agent: { data_dir: dataDir }, storage: { url } });
    const refused = await startAgent(config, [], silentLogger).catch((e) => e);
    expect(refused).toBeInstanceOf(StorageError);
    expect(refused.message).toStartWith(
      `[storage] url names PostgreSQL (${url}), but the single-installation agent (kontobro demo, and kontobro run on the SQLite file) works on the SQLite file only. ` +
        `Not yet on PostgreSQL: ${NOT_YET_ON_POSTGRES[0]}`,
    );
    expect(refused.hint).toContain("leave [storage] url out of kontobro.toml to use the SQLite file");
    expect(existsSync(dataDir)).toBe(false);
    const check = new SQL(server.adminUrl.replace(/\/[^/]+$/, "/not_run"));
    try {
      expect(await check`SELECT count(*)::integer AS n FROM pg_tables WHERE schemaname = 'public'`).toEqual([{ n: 0 }]);
    } finally {
      await check.close();
    }
  });
});

describe("kontobro storage check without [storage] url", () => {
  test("reports the SQLite file in agent.data_dir", async () => {
    const { path, dataDir } = configFile();
    const r = await cli("storage", "check", "--config", path);
    expect(r.code).toBe(0);
    expect(r.out.split("\n")[0]).toBe(`Storage: the SQLite file ${join(dataDir, "kontobro.db")}`);
    expect(r.out).toMatch(/^ {2}ok {3}SQLite 3\.\d+\.\d+, \d+ migrations applied, \d+ bytes$/m);
  });

  test("a wrong url exits 2 naming the key", async () => {
    const r = await cli("storage", "check", "--config", configFile("mysql://kontobro@db/kontobro").path);
    expect(r.code).toBe(2);
    expect(r.err).toContain("storage.url: uses mysql:");
  });
});
