// The engines a storage test runs on (issue 17): a new SQLite file, and, where PostgreSQL can run, a new tenant on
// one real server per test file (test/pg-server.ts; row-level security gives each tenant an empty database),
// reachable through several clients: each is a worker of its own, registered in `workers` (its runs carry its id;
// nobody beats or recovers here: test/pull-dead-worker.test.ts does). A test file calls workerEngines() or
// storageEngines() at its top level: the server starts before its tests and stops after them. Where PostgreSQL
// cannot run, the file's tests run on SQLite only and say so once.
import { afterAll, beforeAll } from "bun:test";
import { SQL } from "bun";
import { join } from "node:path";
import { type Db, openDatabase } from "../agent/db/index.ts";
import { migratePostgres } from "../agent/db/pg/migrate.ts";
import { embeddedMigrations } from "../agent/db/pg/migrations.generated.ts";
import { postgresRunner, type SqlRunner, sqliteRunner } from "../agent/db/pg/runner.ts";
import { type Recovery, recoverDeadWorkers } from "../agent/db/pg/dead-workers.ts";
import { Worker } from "../agent/db/pg/workers.ts";
import { tempDir } from "./helpers.ts";
import { type PgServer, pgUnavailable, startPgServer } from "./pg-server.ts";

export type Engine = "sqlite" | "postgres";

/** One tenant's storage, and what a worker has of its own. */
export interface EngineStorage {
  engine: Engine;
  /** The first worker's runner. */
  storage: SqlRunner;
  /** The worker's data directory and its SQLite file (progress files, master data; on SQLite also the storage). */
  dataDir: string;
  db: Db;
  /** Another worker on the same tenant: on PostgreSQL a runner on a client (connection pool) of its own. */
  worker(): Promise<SqlRunner>;
  /** The workers.id a runner of this storage runs pulls as (RunnerDeps.worker); null on SQLite. */
  workerOf(storage: SqlRunner): number | null;
  /**
   * PostgreSQL: the worker of `storage` falls silent (its heartbeat an hour old on the server's clock) and is
   * declared dead as a live worker's beat does it (recoverDeadWorkers): its leases go back to pending, uncertain.
   * SQLite has no workers (a lease there runs out: Outbox.recoverExpiredLeases).
   */
  declareDead(storage: SqlRunner): Promise<Recovery>;
  /** PostgreSQL: the server's URLs (the app role's, the superuser's), for a command run against it. */
  server?: { url: string; adminUrl: string };
}

export function workerEngines(what: string): { engines: Engine[]; open(engine: Engine): Promise<EngineStorage> } {
  const unavailable = pgUnavailable();
  if (unavailable) console.warn(`${what} on PostgreSQL skipped: ${unavailable}`);
  let pg: { server: PgServer; admin: SQL; clients: SQL[] } | undefined;
  let tenants = 0;
  beforeAll(async () => {
    if (unavailable) return;
    const server = await startPgServer();
    const client = new SQL(server.url);
    await migratePostgres(client, embeddedMigrations);
    pg = { server, admin: new SQL(server.adminUrl), clients: [client] };
  }, 120_000);
  afterAll(async () => {
    for (const c of pg?.clients ?? []) await c.close();
    await pg?.admin.close();
    await pg?.server.stop();
  });
  return {
    engines: unavailable ? ["sqlite"] : ["sqlite", "postgres"],
    async open(engine) {
      const dataDir = tempDir("kontobro-pulls-");
      const db = openDatabase(join(dataDir, "k.db"));
      if (engine === "sqlite") {
        const storage = sqliteRunner(db.$client);
        const declareDead = () => Promise.reject(new Error("SQLite has no workers: let the lease run out (Outbox.recoverExpiredLeases)"));
        return { engine, storage, dataDir, db, worker: async () => storage, workerOf: () => null, declareDead };
      }
      const slug = `tenant-${++tenants}`;
      const [row] = await pg!.admin`INSERT INTO tenants (slug, name, api_token_hash, created_at, updated_at)
        VALUES (${slug}, ${slug}, ${slug}, 1, 1) RETURNING id`;
      const tenant = Number(row.id);
      const workers = new Map<SqlRunner, number>();
      const runnerOn = async (client: SQL) => {
        const storage = postgresRunner(client, tenant);
        workers.set(storage, (await Worker.register(client)).id);
        return storage;
      };
      return {
        engine,
        storage: await runnerOn(pg!.clients[0]!),
        dataDir,
        db,
        worker: () => {
          const client = new SQL(pg!.server.url);
          pg!.clients.push(client);
          return runnerOn(client);
        },
        workerOf: (storage) => workers.get(storage) ?? null,
        server: { url: pg!.server.url, adminUrl: pg!.server.adminUrl },
        declareDead: async (storage) => {
          const id = workers.get(storage);
          if (id === undefined) throw new Error("declareDead: not a runner of this storage");
          await pg!.admin`UPDATE workers SET heartbeat_at = clock_timestamp() - interval '1 hour' WHERE id = ${id}`;
          // Dead after ten minutes: only the worker silenced here, never one of this file's idle workers.
          return recoverDeadWorkers(pg!.clients[0]!, 10 * 60_000);
        },
      };
    },
  };
}

/** The same engines when a test needs only one runner per storage. */
export function storageEngines(what: string): { engines: Engine[]; open(engine: Engine): Promise<SqlRunner> } {
  const e = workerEngines(what);
  return { engines: e.engines, open: async (engine) => (await e.open(engine)).storage };
}
