// Where kontobro keeps its data ([storage] url in kontobro.toml): the SQLite file in agent.data_dir (the
// default: one installation, one process) or PostgreSQL (hosted mode, issue 17: many tenants, many workers).
// openStorage opens either, migrated, and says what it found; `kontobro storage check` prints that.
// With a PostgreSQL url `kontobro run` is a worker of a hosted installation (agent/hosted/); what does not run there
// yet is NOT_YET_ON_POSTGRES, and what holds a SQLite file refuses such a url (refuseUntilOnPostgres).
import { statSync } from "node:fs";
import { join } from "node:path";
import type { AgentConfig } from "./config.ts";
import { openDatabase, StorageError, type Db } from "./db/index.ts";
import type { OpenPostgresOptions, PostgresStorage } from "./db/pg/open.ts";
import { sqliteRunner, type SqlRunner } from "./db/pg/runner.ts";
import { displayUrl } from "./db/pg/url.ts";

/** The SQLite file of a data directory. */
export const databasePath = (dataDir: string) => join(dataDir, "kontobro.db");

export type StorageChoice = { engine: "sqlite"; path: string } | { engine: "postgres"; url: string };

type StorageConfig = Pick<AgentConfig, "agent" | "storage">;

/** Which storage the configuration names. */
export function storageOf(config: StorageConfig): StorageChoice {
  const url = config.storage.url;
  return url ? { engine: "postgres", url } : { engine: "sqlite", path: databasePath(config.agent.data_dir) };
}

export interface SqliteReport {
  sqliteVersion: string;
  migrations: number;
  bytes: number;
}

export interface SqliteStorage {
  engine: "sqlite";
  /** The file. */
  location: string;
  db: Db;
  report: SqliteReport;
  /** SQLite holds exactly one tenant: this installation. */
  runner(): SqlRunner;
  close(): Promise<void>;
}

export type Storage = SqliteStorage | PostgresStorage;

/**
 * Opens the configured storage: creates and migrates the SQLite file, or connects to PostgreSQL, checks the
 * server and role and migrates under the migration lock (agent/db/pg/open.ts). Throws StorageError.
 */
export async function openStorage(config: StorageConfig, options: OpenPostgresOptions = {}): Promise<Storage> {
  const choice = storageOf(config);
  // PostgreSQL's modules (its client, drizzle's pg-core, the mirrored schema) load only when it is the storage.
  if (choice.engine === "postgres") {
    const migrate = { lockTimeoutMs: config.storage.migration_lock_timeout_ms, ...options.migrate };
    return (await import("./db/pg/open.ts")).openPostgres(choice.url, { ...options, migrate });
  }
  const db = openDatabase(choice.path, { busyTimeoutMs: config.agent.busy_timeout_ms });
  const c = db.$client;
  const report = {
    sqliteVersion: (c.query("SELECT sqlite_version() AS v").get() as { v: string }).v,
    migrations: (c.query("SELECT count(*) AS n FROM __drizzle_migrations").get() as { n: number }).n,
    bytes: statSync(choice.path).size,
  };
  return {
    engine: "sqlite",
    location: choice.path,
    db,
    report,
    runner: () => sqliteRunner(c),
    close: async () => c.close(),
  };
}

/** What does not run on PostgreSQL yet: the parts of the agent that still hold a SQLite connection. */
export const NOT_YET_ON_POSTGRES = [
  "call budgets kept across restarts",
  "the commands that open the SQLite file (all but kontobro run, storage check and tenant)",
];

/**
 * Throws, before anything is opened or started, when the configuration names PostgreSQL: `what` holds the SQLite
 * file and must never run half on one engine and half on the other.
 */
export function refuseUntilOnPostgres(config: StorageConfig, what: string): void {
  const choice = storageOf(config);
  if (choice.engine === "sqlite") return;
  throw new StorageError(
    `[storage] url names PostgreSQL (${displayUrl(choice.url)}), but ${what} works on the SQLite file only. ` +
      `Not yet on PostgreSQL: ${NOT_YET_ON_POSTGRES.join("; ")} (issue 17, in progress). Nothing was started.`,
    "`kontobro run` serves a hosted installation's tenants on PostgreSQL (`kontobro tenant status SLUG` shows a tenant as " +
      `\`kontobro status\` shows the SQLite file); for this, leave [storage] url out of kontobro.toml to use the SQLite file in ${config.agent.data_dir}.`,
  );
}
