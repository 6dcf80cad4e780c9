// The engines a storage test runs on (issue 17): a new SQLite file, and, where PostgreSQL can run, a new tenant on
// one real server per test file (test/pg-server.ts; row-level security gives each tenant an empty database). A test
// file calls storageEngines() at its top level: the server starts before its tests and stops after them. Where
// PostgreSQL cannot run, the file's tests run on SQLite only and say so once.
import { afterAll, beforeAll } from "bun:test";
import { SQL } from "bun";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { migratePostgres } from "../agent/db/pg/migrate.ts";
import { embeddedMigrations } from "../agent/db/pg/migrations.generated.ts";
import { postgresRunner, sqliteRunner, type SqlRunner } from "../agent/db/pg/runner.ts";
import { tempDir } from "./helpers.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

export type Engine = "sqlite" | "postgres";

export function storageEngines(what: string): { engines: Engine[]; open(engine: Engine): Promise<SqlRunner> } {
  const unavailable = pgUnavailable();
  if (unavailable) console.warn(`${what} on PostgreSQL skipped: ${unavailable}`);
  let pg: { server: PgServer; client: SQL; admin: SQL } | undefined;
  let tenants = 0;
  beforeAll(async () => {
    if (unavailable) return;
    const server = await startPgServer();
    const client = new SQL(server.url);
    await migratePostgres(client, embeddedMigrations);
    pg = { server, client, admin: new SQL(server.adminUrl) };
  }, 120_000);
  afterAll(async () => {
    await pg?.client.close();
    await pg?.admin.close();
    await pg?.server.stop();
  });
  return {
    engines: unavailable ? ["sqlite"] : ["sqlite", "postgres"],
    /** An empty storage: a new SQLite file, or a new tenant on the server. */
    async open(engine) {
      if (engine === "sqlite") return sqliteRunner(openDatabase(join(tempDir(), "k.db")).$client);
      const slug = `tenant-${++tenants}`;
      const [row] = await pg!.admin`INSERT INTO tenants (slug, name, api_token_hash, created_at, updated_at)
        VALUES (${slug}, ${slug}, ${slug}, 1, 1) RETURNING id`;
      return postgresRunner(pg!.client, row.id);
    },
  };
}
