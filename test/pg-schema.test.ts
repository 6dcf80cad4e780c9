// The PostgreSQL schema prototype (issue 17; agent/db/pg/): derived from the SQLite schema with a tenant on
// every table, migrated with the committed migrations (agent/db/pg/migrations) on a real PostgreSQL server (test/pg-server.ts);
// tenants cannot see or write each other's rows, and the same SQL text gives the same rows on both engines.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { and, eq, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/bun-sql";
import { getTableConfig as pgConfig, type PgTable } from "drizzle-orm/pg-core";
import { getTableConfig as sqliteConfig, SQLiteTable } from "drizzle-orm/sqlite-core";
import { openDatabase } from "../agent/db/index.ts";
import { migratePostgres, type EmbeddedMigration } from "../agent/db/pg/migrate.ts";
import { embeddedMigrations } from "../agent/db/pg/migrations.generated.ts";
import { postgresRunner, sqliteRunner, type SqlRunner } from "../agent/db/pg/runner.ts";
import * as pg from "../agent/db/pg/schema.ts";
import { tempDir } from "./helpers.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

const root = join(import.meta.dir, "..");
const TYPE_OF: Record<string, string> = {
  SQLiteInteger: "bigint",
  SQLiteBoolean: "smallint",
  SQLiteText: "text",
  SQLiteBlobBuffer: "bytea",
};

describe("the PostgreSQL schema mirrors the SQLite one", () => {
  test("every agent/db/schema*.ts file is a source of agent/db/pg/schema.ts", () => {
    const files = readdirSync(join(root, "agent/db")).filter((f) => /^schema.*\.ts$/.test(f));
    expect(Object.keys(pg.SOURCES).sort()).toEqual(files.sort());
  });

  const sqliteTables = Object.values(pg.SOURCES).flatMap((m) =>
    Object.entries(m).filter((e): e is [string, SQLiteTable] => e[1] instanceof SQLiteTable),
  );

  test("every SQLite table has a twin of the same name, exported for drizzle-kit", () => {
    for (const [name, table] of sqliteTables) {
      const twin = (pg as Record<string, unknown>)[name] as PgTable | undefined;
      expect(twin ? pgConfig(twin).name : `agent/db/pg/schema.ts exports no ${name}`).toBe(sqliteConfig(table).name);
    }
  });

  test("each twin has the same columns (types mapped, nullability kept) behind a tenant_id", () => {
    for (const [name, table] of sqliteTables) {
      const twin = pgConfig((pg as any)[name]);
      const expected = [
        { name: "tenant_id", type: "integer", notNull: true },
        ...sqliteConfig(table).columns.map((c) => ({ name: c.name, type: TYPE_OF[c.columnType] ?? c.columnType, notNull: c.notNull })),
      ];
      expect(twin.columns.map((c) => ({ name: c.name, type: c.getSQLType(), notNull: c.notNull }))).toEqual(expected);
    }
  });

  test("natural keys and every index start with tenant_id; generated ids stay keys of their own, the events with (tenant_id, seq) beside", () => {
    for (const [name, table] of sqliteTables) {
      const source = sqliteConfig(table);
      const twin = pgConfig((pg as any)[name]);
      const sourceKey = source.primaryKeys[0]?.columns.map((c) => c.name) ?? source.columns.filter((c) => c.primary).map((c) => c.name);
      // An INTEGER PRIMARY KEY of one column is SQLite's rowid, numbered by the database when an INSERT leaves it out.
      const identity = source.columns.find((c) => c.primary && c.columnType === "SQLiteInteger");
      if (identity) expect(twin.primaryKeys).toEqual([]);
      else expect(twin.primaryKeys.map((k) => k.columns.map((c) => c.name))).toEqual([["tenant_id", ...sourceKey]]);
      expect(
        twin.indexes.map((i) => ({ name: i.config.name, unique: i.config.unique, columns: i.config.columns.map((c: any) => c.name) })),
      ).toEqual([
        // The tenant's events in seq order, as SQLite's rowid keeps them.
        ...(identity && source.name === "events" ? [{ name: "events_tenant_seq", unique: false, columns: ["tenant_id", "seq"] }] : []),
        // PostgreSQL only: a hosted tenant's prune finds its events still holding a payload (agent/db/pg/mirror.ts).
        ...(source.name === "events" ? [{ name: "events_unpruned", unique: false, columns: ["tenant_id", "received_at"] }] : []),
        ...source.indexes.map((i) => ({
          name: i.config.name,
          unique: i.config.unique,
          columns: ["tenant_id", ...i.config.columns.map((c: any) => c.name)],
        })),
      ]);
      expect(twin.policies.map((p) => p.name)).toEqual([`${source.name}_tenant`]);
    }
  });
});

const unavailable = pgUnavailable();
if (unavailable) console.warn(`PostgreSQL schema tests on a server skipped: ${unavailable}`);

let server: PgServer;
let migrations: EmbeddedMigration[];
let client: SQL;
let admin: SQL;

beforeAll(async () => {
  if (unavailable) return;
  // The committed PostgreSQL migrations, as the binary embeds them (test/migrations-current.test.ts: current).
  migrations = embeddedMigrations;
  server = await startPgServer();
  client = new SQL(server.url);
  admin = new SQL(server.adminUrl);
}, 120_000);
afterAll(async () => {
  await client?.close();
  await admin?.close();
  await server?.stop();
});

describe.skipIf(!!unavailable)("the PostgreSQL schema on a real server", () => {
  test("workers starting together migrate once; every tenant table is held to row-level security", async () => {
    const other = new SQL(server.url);
    await Promise.all([migratePostgres(client, migrations), migratePostgres(other, migrations), migratePostgres(client, migrations)]);
    await other.close();
    await admin`INSERT INTO tenants (slug, name, api_token_hash, created_at, updated_at) VALUES ('acme', 'Acme', 'a', 1, 1), ('globex', 'Globex', 'b', 1, 1)`;
    expect(await admin`SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations`).toEqual([{ n: migrations.length }]);
    const tables = await admin`SELECT relname AS name, relrowsecurity AS rls, relforcerowsecurity AS forced FROM pg_class
      WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY relname`;
    const tenantTables = Object.values(pg.tenantTables).map((t) => pgConfig(t).name);
    // The installation's own tables (tenants, workers, database_history) are global; every other table is a tenant's.
    const global = ["database_history", "tenants", "workers"];
    expect(tables.filter((t: any) => global.includes(t.name))).toEqual(global.map((name) => ({ name, rls: false, forced: false })));
    expect(tables.filter((t: any) => !global.includes(t.name))).toEqual(
      tenantTables.sort().map((name) => ({ name, rls: true, forced: true })),
    );
  });

  test("a tenant sees and changes only its own rows; without a tenant nothing is readable", async () => {
    const acme = postgresRunner(client, 1);
    const globex = postgresRunner(client, 2);
    const insert = `INSERT INTO events (event_id, type, entity, key, payload, received_at) VALUES (?1, 'customer.upserted', 'customer', ?2, '{}', ?3)
      ON CONFLICT (event_id) DO NOTHING RETURNING seq`;
    expect(await acme.all(insert, "e-1", "1000", 1)).toHaveLength(1);
    expect(await acme.all(insert, "e-1", "1000", 2)).toEqual([]);
    // Another tenant's PSA may use the same event id: it is another event.
    expect(await globex.all(insert, "e-1", "2000", 3)).toHaveLength(1);

    expect(await acme.all("SELECT key, tenant_id AS tenantId FROM events")).toEqual([{ key: "1000", tenantId: 1 }]);
    expect(await globex.all("SELECT key, tenant_id AS tenantId FROM events")).toEqual([{ key: "2000", tenantId: 2 }]);
    expect(await globex.run("UPDATE events SET payload = 'x' WHERE key = '1000'")).toEqual({ changes: 0 });
    expect(await globex.run("DELETE FROM events WHERE tenant_id = 1")).toEqual({ changes: 0 });
    await expect(
      globex.run(
        "INSERT INTO events (tenant_id, event_id, type, entity, key, payload, received_at) VALUES (1, 'x', 't', 'customer', 'k', '{}', 1)",
      ),
    ).rejects.toThrow(/row-level security/);
    await expect(client`SELECT count(*) FROM events`).rejects.toThrow(/kontobro\.tenant/);
    expect(await admin`SELECT tenant_id, key FROM events ORDER BY tenant_id`).toEqual([
      { tenant_id: 1, key: "1000" },
      { tenant_id: 2, key: "2000" },
    ]);
  });

  test("the same SQL text gives the same rows on SQLite and on PostgreSQL", async () => {
    const sqlite = openDatabase(join(tempDir(), "k.db"));
    try {
      const onSqlite = await intakeAndClaim(sqliteRunner(sqlite.$client));
      const onPostgres = await intakeAndClaim(postgresRunner(client, 1));
      expect(onPostgres).toEqual(onSqlite);
      expect(onSqlite.claimed as unknown[]).toEqual([{ eventId: "ev-2", key: "c-1", attempts: 1, uncertain: 1, payload: '{"v":2}' }]);
      expect(onSqlite.counts).toEqual([
        { status: "in_flight", n: 1 },
        { status: "superseded", n: 1 },
      ]);
    } finally {
      sqlite.$client.close();
    }
  });

  test("drizzle's query builder works on the twins: typed columns, flags as booleans, epoch ms as numbers, SKIP LOCKED", async () => {
    const db = drizzle({ client, schema: pg });
    const at = Date.UTC(2026, 10, 20, 12);
    const seq = await db.transaction(async (tx) => {
      await tx.execute(sql`SELECT set_config('kontobro.tenant', '2', true)`);
      const [event] = await tx
        .insert(pg.events)
        .values({ eventId: "e-typed", type: "customer.upserted", entity: "customer", key: "3000", payload: "{}", receivedAt: at })
        .returning({ seq: pg.events.seq });
      await tx.insert(pg.deliveries).values({
        eventSeq: event!.seq,
        target: "ledger",
        entity: "customer",
        key: "3000",
        status: "pending",
        nextAttemptAt: at,
        uncertain: true,
        createdAt: at,
        updatedAt: at,
      });
      return event!.seq;
    });
    const claimed = await db.transaction(async (tx) => {
      await tx.execute(sql`SELECT set_config('kontobro.tenant', '2', true)`);
      return tx
        .select({
          id: pg.deliveries.id,
          eventSeq: pg.deliveries.eventSeq,
          uncertain: pg.deliveries.uncertain,
          next: pg.deliveries.nextAttemptAt,
        })
        .from(pg.deliveries)
        .where(and(eq(pg.deliveries.target, "ledger"), eq(pg.deliveries.status, "pending")))
        .for("update", { skipLocked: true });
    });
    expect(claimed).toEqual([{ id: expect.any(Number), eventSeq: seq, uncertain: true, next: at }]);
  });
});

/**
 * A few of the outbox's kinds of statement, written once in SQLite's text: insert-or-ignore with RETURNING,
 * an upsert reading the stored row, coalescing by supersede, a claim joining events with camelCase aliases,
 * a lease, and an untyped parameter that needs its CAST on PostgreSQL.
 */
async function intakeAndClaim(db: SqlRunner) {
  const insertEvent = `INSERT INTO events (event_id, type, entity, key, payload, received_at) VALUES (?1, 'customer.upserted', 'customer', ?2, ?3, ?4)
    ON CONFLICT (event_id) DO NOTHING RETURNING seq`;
  const upsertRecord = `INSERT INTO records (entity, key, payload, version, last_event_seq, updated_at) VALUES ('customer', ?1, ?2, 1, ?3, ?4)
    ON CONFLICT (entity, key) DO UPDATE SET payload = excluded.payload, version = records.version + 1, last_event_seq = excluded.last_event_seq
    RETURNING version`;
  const supersede = `UPDATE deliveries SET status = 'superseded', updated_at = ?4 WHERE target = ?1 AND entity = ?2 AND key = ?3 AND status = 'pending'
    RETURNING uncertain`;
  const insertDelivery = `INSERT INTO deliveries (event_seq, target, entity, key, status, next_attempt_at, created_at, updated_at, uncertain)
    VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5, ?5, ?6)`;
  const now = 1_700_000_000_000;
  const log: unknown[] = [];
  for (const [id, version] of [
    ["ev-1", 1],
    ["ev-2", 2],
  ] as const) {
    await db.transaction(async (tx) => {
      const seq = (await tx.get<{ seq: number }>(insertEvent, id, "c-1", JSON.stringify({ v: version }), now))!.seq;
      log.push(await tx.all(upsertRecord, "c-1", JSON.stringify({ v: version }), seq, now));
      const replaced = await tx.all<{ uncertain: number }>(supersede, "ledger", "customer", "c-1", now);
      await tx.run(insertDelivery, seq, "ledger", "customer", "c-1", now, version === 1 ? 1 : replaced.some((r) => r.uncertain) ? 1 : 0);
    });
    // The first delivery may have reached the target (an answer that never came): the doubt carries over.
    if (version === 1) await db.run("UPDATE deliveries SET uncertain = 1 WHERE key = ?1", "c-1");
  }
  log.push(
    await db.all(
      "SELECT event_id AS eventId FROM events WHERE event_id IN (SELECT value FROM json_each(?1)) ORDER BY seq",
      '["ev-2","ev-1","x"]',
    ),
  );
  const claimed = await db.transaction(async (tx) => {
    const rows = await tx.all<{ id: number; attempts: number }>(
      `SELECT d.id, e.event_id AS eventId, d.key, d.attempts, d.uncertain, e.payload
         FROM deliveries d JOIN events e ON e.seq = d.event_seq
        WHERE d.target = ?1 AND d.status = 'pending' AND d.next_attempt_at <= ?2 ORDER BY d.next_attempt_at, d.id LIMIT ?3`,
      "ledger",
      now,
      10,
    );
    for (const r of rows) {
      await tx.run(
        `UPDATE deliveries SET status = 'in_flight', lease_until = ?2, attempts = attempts + 1 WHERE id = ?1`,
        r.id,
        now + 60_000,
      );
      r.attempts += 1;
    }
    return rows;
  });
  const waiting = await db.run(
    `UPDATE deliveries SET waiting_since = CASE WHEN CAST(?2 AS BIGINT) IS NULL THEN NULL ELSE coalesce(waiting_since, ?2) END WHERE id = ?1`,
    claimed[0]!.id,
    null,
  );
  const counts = await db.all("SELECT status, count(*) AS n FROM deliveries GROUP BY status ORDER BY status");
  // Generated ids differ between the engines (PostgreSQL's sequences are shared by the tenants): left out.
  return { log, claimed: claimed.map(({ id, ...rest }) => rest), waiting, counts };
}
