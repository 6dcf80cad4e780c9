// Migrates a PostgreSQL database with the embedded migrations (scripts/embed-migrations.ts's shape) through
// drizzle's own migrator and bookkeeping (drizzle.__drizzle_migrations); openPostgres (agent/db/pg/open.ts) calls
// it. Many workers may start at once: an advisory lock lets one migrate while the others wait, then find nothing
// left to do.
import type { SQL } from "bun";
import { drizzle } from "drizzle-orm/bun-sql";

export interface EmbeddedMigration {
  tag: string;
  when: number;
  breakpoints: boolean;
  hash: string;
  sql: string;
}

/** The advisory lock key every kontobro process takes to migrate ("kont" in ASCII). */
export const MIGRATION_LOCK = 0x6b6f6e74;

export async function migratePostgres(client: SQL, migrations: EmbeddedMigration[]): Promise<void> {
  const conn = await client.reserve();
  try {
    await conn`SELECT pg_advisory_lock(${MIGRATION_LOCK})`;
    try {
      const db = drizzle({ client: conn });
      const entries = migrations.map((m) => ({
        sql: m.sql.split("--> statement-breakpoint"),
        bps: m.breakpoints,
        folderMillis: m.when,
        hash: m.hash,
      }));
      await (db as any).dialect.migrate(entries, (db as any).session, {});
      // The tables' owner (the role kontobro connects as) is held to row-level security too.
      const unforced = await conn`
        SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relrowsecurity AND NOT c.relforcerowsecurity`;
      for (const { name } of unforced as { name: string }[]) await conn.unsafe(`ALTER TABLE "${name}" FORCE ROW LEVEL SECURITY`);
    } finally {
      await conn`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`;
    }
  } finally {
    conn.release();
  }
}
