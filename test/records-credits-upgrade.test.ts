// records.credits (the invoice a credit note credits, read by the over-credit check and the payment status pull) is
// filled for the credit notes stored before it existed: in the SQLite file, and on PostgreSQL for every tenant, though
// row-level security is forced on the tables' owner (the migration takes each tenant's turn), on a real server.
import { afterAll, expect, test } from "bun:test";
import { SQL } from "bun";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { drizzle } from "drizzle-orm/bun-sqlite";
import { openDatabase } from "../agent/db/index.ts";
import { embeddedMigrations as sqliteMigrations } from "../agent/db/migrations.generated.ts";
import { migratePostgres } from "../agent/db/pg/migrate.ts";
import { embeddedMigrations } from "../agent/db/pg/migrations.generated.ts";
import { tempDir } from "./helpers.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

const unavailable = pgUnavailable();
if (unavailable) console.warn(`records-credits-upgrade (PostgreSQL) skipped: ${unavailable}`);
const BEFORE = embeddedMigrations.slice(
  0,
  embeddedMigrations.findIndex((m) => m.tag.endsWith("_records_credits")),
);

let server: PgServer | undefined;
const clients: SQL[] = [];
afterAll(async () => {
  for (const c of clients) await c.close();
  await server?.stop();
});

test.skipIf(unavailable !== null)(
  "the upgrade fills records.credits for every tenant's credit notes",
  async () => {
    server = await startPgServer();
    const url = await server.createDatabase("credits");
    const app = new SQL({ url, max: 1 });
    const admin = new SQL({ url: url.replace("kontobro@", "postgres@"), max: 1 });
    clients.push(app, admin);
    await migratePostgres(app, BEFORE);
    for (const slug of ["a", "b"])
      await admin.unsafe(`INSERT INTO tenants (slug, name, api_token_hash, created_at, updated_at) VALUES ($1, $1, $1, 0, 0)`, [slug]);
    const rows = [
      [1, "10", { kind: "invoice", lines: [] }],
      [1, "11", { kind: "credit_note", creditedInvoiceNumber: "10", lines: [] }],
      [2, "11", { kind: "credit_note", creditedInvoiceNumber: "7", lines: [] }],
    ] as const;
    for (const [tenant, key, payload] of rows)
      await admin.unsafe(
        `INSERT INTO records (tenant_id, entity, key, payload, version, last_event_seq, updated_at) VALUES ($1, 'invoice', $2, $3, 1, 1, 0)`,
        [tenant, key, JSON.stringify(payload)],
      );
    await migratePostgres(app, embeddedMigrations);
    const credits = await admin.unsafe(`SELECT tenant_id::int AS tenant, key, credits FROM records ORDER BY tenant_id, key`);
    expect(credits.map((r: any) => [r.tenant, r.key, r.credits])).toEqual([
      [1, "10", null],
      [1, "11", "10"],
      [2, "11", "7"],
    ]);
  },
  60_000,
);

test("the upgrade fills records.credits for the SQLite file's credit notes", () => {
  const path = join(tempDir(), "kontobro.db");
  const before = new Database(path);
  const upTo = sqliteMigrations.findIndex((m) => m.tag.endsWith("_records_credits"));
  const db = drizzle({ client: before }) as any;
  db.dialect.migrate(
    sqliteMigrations
      .slice(0, upTo)
      .map((m) => ({ sql: m.sql.split("--> statement-breakpoint"), bps: m.breakpoints, folderMillis: m.when, hash: m.hash })),
    db.session,
    {},
  );
  const insert = before.query(
    "INSERT INTO records (entity, key, payload, version, last_event_seq, updated_at) VALUES ('invoice', ?1, ?2, 1, 1, 0)",
  );
  insert.run("10", JSON.stringify({ kind: "invoice", lines: [] }));
  insert.run("11", JSON.stringify({ kind: "credit_note", creditedInvoiceNumber: "10", lines: [] }));
  before.close();
  const after = openDatabase(path);
  expect(after.$client.query("SELECT key, credits FROM records ORDER BY key").all()).toEqual([
    { key: "10", credits: null },
    { key: "11", credits: "10" },
  ]);
  after.$client.close();
});

test("records.credits follows the one-off upgrades of an older file that spelt the credited invoice 0010", () => {
  const path = join(tempDir(), "kontobro.db");
  const before = new Database(path);
  const upTo = sqliteMigrations.findIndex((m) => m.tag.endsWith("_records_credits"));
  const db = drizzle({ client: before }) as any;
  db.dialect.migrate(
    sqliteMigrations
      .slice(0, upTo)
      .map((m) => ({ sql: m.sql.split("--> statement-breakpoint"), bps: m.breakpoints, folderMillis: m.when, hash: m.hash })),
    db.session,
    {},
  );
  // Stored before numbers had one spelling: the invoice under key 0010, its credit notes naming it so (one of them
  // under key 012 too). The migration copies 0010; the upgrades that run after it make them 10 and 12.
  const doc = (number: string, extra: Record<string, unknown>) => ({
    number,
    psaId: `PSA-${number}`,
    customerNumber: "1",
    date: "2026-11-20",
    dueDate: "2026-12-04",
    currency: "NOK",
    lines: [{ text: "Consulting", quantity: 1, unitPrice: 100_000, kind: "hours" }],
    ...extra,
  });
  const insert = before.query(
    "INSERT INTO records (entity, key, payload, version, last_event_seq, updated_at) VALUES ('invoice', ?1, ?2, 1, 1, 0)",
  );
  insert.run("0010", JSON.stringify(doc("0010", { kind: "invoice" })));
  insert.run("11", JSON.stringify(doc("11", { kind: "credit_note", creditedInvoiceNumber: "0010" })));
  insert.run("012", JSON.stringify(doc("012", { kind: "credit_note", creditedInvoiceNumber: "0010" })));
  before.close();
  const after = openDatabase(path);
  expect(
    after.$client.query("SELECT key, credits, json_extract(payload, '$.creditedInvoiceNumber') AS named FROM records ORDER BY key").all(),
  ).toEqual([
    { key: "10", credits: null, named: null },
    { key: "11", credits: "10", named: "10" },
    { key: "12", credits: "10", named: "10" },
  ]);
  after.$client.close();
});
