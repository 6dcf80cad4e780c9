// Opens the agent's SQLite file: durable settings, embedded migrations (one agent per data directory:
// agent/lock.ts).
import type { Database } from "bun:sqlite";
import { drizzle, type BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import * as schema from "./schema.ts";
import { embeddedMigrations } from "./migrations.generated.ts";
import { normaliseStoredPayloads } from "./normalise.ts";
import { canonicaliseRecordKeys } from "./rekey.ts";
import { connect, type OpenOptions } from "./connect.ts";

export { connect, type OpenOptions } from "./connect.ts";

export type Db = BunSQLiteDatabase<typeof schema> & { $client: Database };

export class StorageError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = "StorageError";
  }
}

/** Opens (creating if needed) and migrates the database. Throws StorageError with a plain message. */
export function openDatabase(path: string, options: OpenOptions = {}): Db {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  let sqlite: Database;
  try {
    sqlite = connect(path, options);
    const check = sqlite.query("PRAGMA quick_check").get() as { quick_check: string } | null;
    if (check && check.quick_check !== "ok") throw new Error(`integrity check failed: ${check.quick_check}`);
  } catch (e) {
    throw describeOpenError(path, e);
  }
  const db = drizzle({ client: sqlite, schema }) as Db;
  try {
    migrate(db);
    canonicaliseRecordKeys(sqlite);
    normaliseStoredPayloads(sqlite);
  } catch (e) {
    sqlite.close();
    throw describeOpenError(path, e);
  }
  return db;
}

/** A plain-language StorageError for a database (or lock) file that could not be opened. */
export function describeOpenError(path: string, e: unknown): StorageError {
  const msg = e instanceof Error ? e.message : String(e);
  if (/readonly|read-only|permission denied|unable to open|EACCES/i.test(msg)) {
    return new StorageError(
      `The database ${path} cannot be written (${msg}).`,
      "Give the user running kontobro write access to the data directory and the files in it, or set agent.data_dir to a writable folder.",
    );
  }
  if (/not a database|malformed|corrupt|integrity check/i.test(msg)) {
    return new StorageError(
      `The database ${path} is damaged (${msg}).`,
      "Stop kontobro, move the file aside (keep it for support), and restore the latest backup or start with an empty data directory; the PSA can resend its events.",
    );
  }
  if (/locked|busy/i.test(msg)) {
    return new StorageError(
      `The database ${path} is locked by another program (${msg}).`,
      "Stop the other program using the file, then start kontobro again.",
    );
  }
  return new StorageError(`The database ${path} could not be opened: ${msg}`, "Check the path in agent.data_dir and the free disk space.");
}

/** Applies the embedded migrations with drizzle's own bookkeeping (table __drizzle_migrations). */
export function migrate(db: Db): void {
  const migrations = embeddedMigrations.map((m) => ({
    sql: m.sql.split("--> statement-breakpoint"),
    bps: m.breakpoints,
    folderMillis: m.when,
    hash: m.hash,
  }));
  (db as any).dialect.migrate(migrations, (db as any).session, {});
}
