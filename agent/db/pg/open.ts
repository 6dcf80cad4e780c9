// Opens PostgreSQL storage ([storage] url = "postgres://…", issue 17): connects, refuses a server or role that
// cannot keep tenants apart, migrates with the embedded migrations under the migration lock (any number of
// workers may start at once), and hands out one runner per tenant. Every refusal is a StorageError that says
// what is wrong and how to fix it; nothing is migrated before the checks pass.
import { SQL } from "bun";
import { StorageError } from "../index.ts";
import { type EmbeddedMigration, IndexStepError, type MigrateOptions, MigrationStopped, migratePostgres } from "./migrate.ts";
import { embeddedMigrations } from "./migrations.generated.ts";
import { postgresRunner, type SqlRunner } from "./runner.ts";
import { MIN_SERVER_VERSION } from "./tenancy.ts";
import { displayUrl, partsOf, POSTGRES_URL_EXAMPLE, postgresUrlProblem } from "./url.ts";

export { MIN_SERVER_VERSION };

/** What the server says about itself and the role kontobro connected as. */
export interface ServerFacts {
  /** server_version_num: 150018 for 15.18. */
  versionNum: number;
  version: string;
  role: string;
  database: string;
  superuser: boolean;
  bypassRls: boolean;
}

/** What `kontobro storage check` reports after a successful open. */
export interface PostgresReport extends ServerFacts {
  migrations: number;
  /** Tenant tables, and how many of them row-level security holds the owner to (FORCE): all of them. */
  tables: number;
  forcedRls: number;
  tenants: number;
}

export interface PostgresStorage {
  engine: "postgres";
  /** The URL without its password. */
  location: string;
  client: SQL;
  report: PostgresReport;
  /** The runner of one tenant: row-level security holds its statements to that tenant's rows. */
  runner(tenant: number): SqlRunner;
  /**
   * A pool of its own of `max` connections to the same database with the same settings, closed with the storage: for
   * work that must not wait behind the main pool's (a worker's heartbeat).
   */
  separatePool(max: number): SQL;
  close(): Promise<void>;
}

export interface OpenPostgresOptions {
  /** Connections in the pool (default 10). */
  max?: number;
  /** Seconds to wait for a connection before the server counts as unreachable (default 10). */
  connectTimeoutSeconds?: number;
  /** Server settings every connection starts with (e.g. idle_in_transaction_session_timeout), as Bun's SQL `connection`. */
  connection?: Record<string, string | number | boolean>;
  /** The migrations to apply; the embedded ones unless a test gives others. */
  migrations?: EmbeddedMigration[];
  /**
   * Told when another process is migrating (and every minute while it still is), of each index built or dropped
   * CONCURRENTLY, and every minute while one runs, with what it waits on, and each time a migration's transaction gave
   * up waiting for a lock (the worker logs them); lockTimeoutMs is [storage] migration_lock_timeout_ms.
   */
  migrate?: Pick<MigrateOptions, "onWait" | "onStep" | "onSlowStep" | "reportEveryMs" | "lockTimeoutMs" | "onLockTimeout" | "signal">;
}

const FACTS = `SELECT current_setting('server_version_num')::integer AS "versionNum", current_setting('server_version') AS version,
  current_user AS role, current_database() AS database, r.rolsuper AS superuser, r.rolbypassrls AS "bypassRls"
  FROM pg_roles r WHERE r.rolname = current_user`;

export async function openPostgres(url: string, options: OpenPostgresOptions = {}): Promise<PostgresStorage> {
  const problem = postgresUrlProblem(url);
  if (problem) throw new StorageError(`[storage] url ${problem}.`, `Correct [storage] url in kontobro.toml.`);
  const where = partsOf(url);
  const pool = (max: number) =>
    new SQL({
      url,
      max,
      connectionTimeout: options.connectTimeoutSeconds ?? 10,
      ...(options.connection ? { connection: options.connection } : {}),
    });
  const client = pool(options.max ?? 10);
  const separate: SQL[] = [];
  try {
    let facts: ServerFacts;
    try {
      [facts] = (await client.unsafe(FACTS)) as ServerFacts[];
    } catch (e) {
      throw connectError(e, where);
    }
    const refused = serverProblem(facts!);
    if (refused) throw refused;
    try {
      await migratePostgres(client, options.migrations ?? embeddedMigrations, options.migrate);
    } catch (e) {
      // Stopped on purpose (SIGTERM), not failed: `kontobro run` says so and exits 0.
      if (e instanceof MigrationStopped) throw e;
      throw migrateError(e, facts!);
    }
    const report = { ...facts!, ...(await tableFacts(client)) };
    return {
      engine: "postgres",
      location: displayUrl(url),
      client,
      report,
      runner: (tenant) => postgresRunner(client, tenant),
      separatePool(max) {
        const p = pool(max);
        separate.push(p);
        return p;
      },
      async close() {
        await Promise.all(separate.map((p) => p.close()));
        await client.close();
      },
    };
  } catch (e) {
    await client.close().catch(() => {});
    throw e;
  }
}

/** Why kontobro refuses this server or role, or null. Pure. */
export function serverProblem(f: ServerFacts): StorageError | null {
  const major = Math.floor(f.versionNum / 10_000);
  if (major < MIN_SERVER_VERSION) {
    return new StorageError(
      `PostgreSQL ${f.version} is too old: kontobro needs PostgreSQL ${MIN_SERVER_VERSION} or newer.`,
      "Upgrade the server (pg_upgrade, or a dump restored into a newer server), or point [storage] url at a newer one.",
    );
  }
  if (f.superuser || f.bypassRls) {
    const what = f.superuser ? "a superuser" : "allowed to bypass row-level security (BYPASSRLS)";
    return new StorageError(
      `kontobro connects to PostgreSQL as role "${f.role}", which is ${what}: row-level security, which keeps each tenant's rows from the others, would not hold for it.`,
      `Connect as a role of its own that owns the database and is neither: CREATE ROLE kontobro LOGIN PASSWORD '…' NOSUPERUSER NOBYPASSRLS; ` +
        `ALTER DATABASE ${f.database} OWNER TO kontobro; then set that role in [storage] url` +
        (f.superuser ? "." : ` (or take the right from this role: ALTER ROLE "${f.role}" NOBYPASSRLS).`),
    );
  }
  return null;
}

/** The server's own error under drizzle's "Failed query" wrapping: its code, SQLSTATE (errno) and message. */
function errorParts(e: unknown): { code?: string; errno?: string; message: string } {
  let err = e as { code?: string; errno?: unknown; message?: string; cause?: unknown } | undefined;
  while (err?.cause && typeof err.cause === "object") err = err.cause as typeof err;
  return { code: err?.code, errno: typeof err?.errno === "string" ? err.errno : undefined, message: err?.message ?? String(e) };
}

/** A connection that failed, in plain words. */
function connectError(e: unknown, where: ReturnType<typeof partsOf>): StorageError {
  const { code, errno, message } = errorParts(e);
  const server = `${where.host}:${where.port}`;
  if (errno === "3D000") {
    return new StorageError(
      `The database "${where.database}" does not exist on the PostgreSQL server ${server}.`,
      `Create it, owned by the role kontobro connects as: CREATE DATABASE ${where.database} OWNER ${where.role}; (or correct the database in [storage] url).`,
    );
  }
  if (errno === "28P01" || errno === "28000") {
    return new StorageError(
      `The PostgreSQL server ${server} refused role "${where.role}": ${message}.`,
      `Check the role and password in [storage] url (keep the password in the environment: url = "${POSTGRES_URL_EXAMPLE}"), ` +
        "and that the server's pg_hba.conf lets this machine connect as that role to that database.",
    );
  }
  if (/CONNECTION|ECONNREFUSED|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH/i.test(code ?? "") || errno === "57P03") {
    return new StorageError(
      `Cannot reach the PostgreSQL server ${server} (${message}${code ? `, ${code}` : ""}).`,
      "Check that the server runs and listens on that address (listen_addresses and port in postgresql.conf), " +
        "the host and port in [storage] url, and that no firewall stands between this machine and the server.",
    );
  }
  return new StorageError(`PostgreSQL at ${server} could not be used: ${message}.`, "Check [storage] url and the server's log.");
}

function migrateError(e: unknown, f: ServerFacts): StorageError {
  const { errno, message } = errorParts(e);
  if (errno === "42501") {
    return new StorageError(
      `Role "${f.role}" may not create kontobro's tables in the database "${f.database}": ${message}.`,
      `Make the role own the database (PostgreSQL 15 and newer let only the owner create tables in schema public): ` +
        `ALTER DATABASE ${f.database} OWNER TO "${f.role}"; ALTER SCHEMA public OWNER TO "${f.role}";`,
    );
  }
  if (e instanceof IndexStepError) {
    return new StorageError(
      `The database "${f.database}" could not be migrated: ${e.message}.`,
      `Migration ${e.migration} is applied; this index step and any after it stay in drizzle.kontobro_index_steps and are run again at the next start, before any later migration. ` +
        (errno === "23505"
          ? "Remove the duplicated rows the message names, then start again."
          : errno === "40P01"
            ? "PostgreSQL ended the step to break a deadlock with another session (the message names its process); nothing needs fixing: start again (a worker waiting for this one's migration runs the step at once)."
            : "See the server's log, fix the cause, and start again."),
    );
  }
  return new StorageError(
    `The database "${f.database}" could not be migrated: ${message}.`,
    "Each migration runs in its own transaction: the one that failed was rolled back and those before it stay applied; see the server's log, fix the cause, and start again.",
  );
}

async function tableFacts(client: SQL): Promise<Pick<PostgresReport, "migrations" | "tables" | "forcedRls" | "tenants">> {
  const [row] = (await client.unsafe(`SELECT
      (SELECT count(*)::integer FROM drizzle.__drizzle_migrations) AS migrations,
      (SELECT count(*)::integer FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r' AND relrowsecurity) AS tables,
      (SELECT count(*)::integer FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r' AND relforcerowsecurity) AS "forcedRls",
      (SELECT count(*)::integer FROM tenants) AS tenants`)) as Pick<PostgresReport, "migrations" | "tables" | "forcedRls" | "tenants">[];
  return row!;
}
