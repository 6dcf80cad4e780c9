// Opens the agent's SQLite file: durable settings, embedded migrations (one agent per data directory:
// agent/lock.ts).
import type { Database } from "bun:sqlite";
import { drizzle, type BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import * as schema from "./schema.ts";
import { embeddedMigrations } from "./migrations.generated.ts";
import { normaliseStoredPayloads } from "./normalise.ts";
import { canonicaliseRecordKeys } from "./rekey.ts";
import { connect, type OpenOptions } from "./connect.ts";
import { VERSION } from "../version.ts";

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
    if (path !== ":memory:") keepOwnerOnly(path);
    sqlite = connect(path, options);
    const check = sqlite.query("PRAGMA quick_check").get() as { quick_check: string } | null;
    if (check && check.quick_check !== "ok") throw new Error(`integrity check failed: ${check.quick_check}`);
  } catch (e) {
    throw describeOpenError(path, e);
  }
  const db = drizzle({ client: sqlite, schema }) as Db;
  try {
    refuseNewerSchema(sqlite, path);
    migrate(db);
    recordSchemaWriter(sqlite);
    canonicaliseRecordKeys(sqlite);
    normaliseStoredPayloads(sqlite);
  } catch (e) {
    sqlite.close();
    throw describeOpenError(path, e);
  }
  return db;
}

/**
 * The database holds the targets' OAuth tokens and the PSA's invoices: only its owner may read it. A new file is made
 * 0600 before SQLite opens it (its -wal and -shm files take the database's mode); one others can read (made before,
 * under the usual umask 022, or copied by hand) loses those bits. A file of another owner is left as it is.
 */
function keepOwnerOnly(path: string): void {
  if (process.platform === "win32") return;
  if (!existsSync(path)) closeSync(openSync(path, "a", 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    if (!existsSync(file)) continue;
    const mode = statSync(file).mode & 0o777;
    if ((mode & 0o077) === 0) continue;
    try {
      chmodSync(file, mode & 0o700);
    } catch (e) {
      if ((e as { code?: string }).code !== "EPERM") throw e;
    }
  }
}

/** A plain-language StorageError for a database (or lock) file that could not be opened. */
export function describeOpenError(path: string, e: unknown): StorageError {
  if (e instanceof StorageError) return e;
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

/** The newest migration this binary carries; a database with a later one was migrated by a newer kontobro. */
const NEWEST_MIGRATION = embeddedMigrations[embeddedMigrations.length - 1]!;

/** The settings row naming the kontobro (and its newest migration) that last migrated or opened the database. */
const SCHEMA_WRITER = "schema_written_by";

interface SchemaWriter {
  version: string;
  migration: string;
}

/**
 * Refuses a database that a newer kontobro has migrated (a rollback to an older binary): drizzle's migrator would
 * skip every migration it knows and let this binary run on columns and rules it does not know. Nothing is written.
 */
export function refuseNewerSchema(c: Database, path: string): void {
  const problem = newerSchemaProblem(c, path);
  if (problem) throw problem;
}

/** The refusal for a database migrated by a newer kontobro, or null when this binary knows its schema. */
export function newerSchemaProblem(c: Database, path: string): StorageError | null {
  const tracked = c.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '__drizzle_migrations'").get();
  if (!tracked) return null;
  const newer = c
    .query("SELECT count(*) AS count, max(created_at) AS newest FROM __drizzle_migrations WHERE created_at > ?1")
    .get(NEWEST_MIGRATION.when) as { count: number; newest: number | null };
  if (newer.count === 0) return null;
  const writer = schemaWriter(c);
  const by = writer
    ? `kontobro ${writer.version} (schema ${writer.migration})`
    : `a newer kontobro (${newer.count} migration(s) this one does not know, the newest written ${new Date(Number(newer.newest)).toISOString().slice(0, 10)})`;
  const needs = writer ? `kontobro ${writer.version} or newer` : "the newer kontobro that upgraded it";
  return new StorageError(
    `The database ${path} was upgraded by ${by}; this kontobro ${VERSION} knows the schema only up to ${NEWEST_MIGRATION.tag} and will not run on it (it could book wrong).`,
    `Install ${needs} again, which this database needs; or, to go back to kontobro ${VERSION}, restore the backup taken before the upgrade (kontobro restore FILE; what happened since then is lost from the database).`,
  );
}

function schemaWriter(c: Database): SchemaWriter | null {
  const row = c.query("SELECT value FROM settings WHERE name = ?1").get(SCHEMA_WRITER) as { value: string } | null;
  if (!row) return null;
  try {
    const parsed = JSON.parse(row.value) as Partial<SchemaWriter>;
    return typeof parsed.version === "string" && typeof parsed.migration === "string" ? (parsed as SchemaWriter) : null;
  } catch {
    return null;
  }
}

/** Names this binary as the database's writer (after its migrations), for the refusal an older one gives. */
function recordSchemaWriter(c: Database): void {
  const value = JSON.stringify({ version: VERSION, migration: NEWEST_MIGRATION.tag } satisfies SchemaWriter);
  c.run(
    "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value WHERE settings.value <> excluded.value",
    [SCHEMA_WRITER, value],
  );
}
