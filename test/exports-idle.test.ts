// An export on PostgreSQL reads its data and builds its files in one transaction of the tenant's runner; the build is
// JavaScript with no statement sent, which the server counts as idle in transaction. A hosted worker's connections
// end a transaction idle longer than dead_after / 2 (idle_in_transaction_session_timeout, agent/hosted/worker.ts):
// a large export's build (5 s at 20,000 invoices) lost its connection and rolled back (review finding 9b). Here the
// timeout is 300 ms and the build is held 1.5 s (a synchronous wait in its progress listener, where a large build
// spends its time): the export commits. Its writing is held to the worker's own timeout again. Real parts: a tenant
// on a real PostgreSQL server (test/pg-server.ts), connections opened as a worker opens them, the real intake.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { migratePostgres } from "../agent/db/pg/migrate.ts";
import { embeddedMigrations } from "../agent/db/pg/migrations.generated.ts";
import { openPostgres, type PostgresStorage } from "../agent/db/pg/open.ts";
import { runExport } from "../agent/exports/service.ts";
import { BASE, invoice, seed, settings } from "./exports-fixtures.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

const unavailable = pgUnavailable();
if (unavailable) console.warn(`exports idle in transaction on PostgreSQL skipped: ${unavailable}`);

const IDLE_TIMEOUT_MS = 300;
let server: PgServer;
let storage: PostgresStorage;
let admin: SQL;

beforeAll(async () => {
  if (unavailable) return;
  server = await startPgServer();
  const client = new SQL(server.url);
  await migratePostgres(client, embeddedMigrations);
  await client.close();
  // As a hosted worker opens its storage, with a short timeout.
  storage = await openPostgres(server.url, { connection: { idle_in_transaction_session_timeout: IDLE_TIMEOUT_MS } });
  admin = new SQL(server.adminUrl);
}, 120_000);
afterAll(async () => {
  await storage?.close();
  await admin?.close();
  await server?.stop();
});

let tenants = 0;
async function tenantWithInvoices() {
  const slug = `idle-${++tenants}`;
  const [row] = await admin`INSERT INTO tenants (slug, name, api_token_hash, created_at, updated_at)
    VALUES (${slug}, ${slug}, ${slug}, 1, 1) RETURNING id`;
  const runner = storage.runner(Number(row.id));
  await seed(runner, [...BASE(), invoice(5001), invoice(5002)]);
  return runner;
}

/** A synchronous wait: JavaScript busy between two statements of the transaction, as a large build is. */
const busy = (ms: number) => Bun.sleepSync(ms);

describe.skipIf(!!unavailable)("an export whose build outlasts idle_in_transaction_session_timeout", () => {
  test("commits: its reading and building may idle", async () => {
    const runner = await tenantWithInvoices();
    let held = false;
    const r = await runExport(
      runner,
      settings(),
      { format: "sie4" },
      {
        by: "api",
        onProgress: (w) => {
          if (w.stage === "writing the file" && !held) {
            held = true;
            busy(5 * IDLE_TIMEOUT_MS);
          }
        },
      },
    );
    expect(held).toBe(true);
    expect(r.ok && r.invoices.exported).toEqual(["5001", "5002"]);
    expect(await runner.all("SELECT invoice_key AS k, status FROM invoice_export_status ORDER BY invoice_key")).toEqual([
      { k: "5001", status: "transferred" },
      { k: "5002", status: "transferred" },
    ]);
    // The connection's own timeout is back for the next transaction (SET LOCAL ends with the export's).
    const [{ t }] = await admin`SELECT setting AS t FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout'`;
    expect(t).toBe("0");
    expect(await runner.get("SELECT current_setting('idle_in_transaction_session_timeout') AS t")).toEqual({ t: `${IDLE_TIMEOUT_MS}ms` });
  }, 60_000);

  test("its writing is held to the worker's timeout: idle there, it rolls back whole", async () => {
    const runner = await tenantWithInvoices();
    const exporting = runExport(
      runner,
      settings(),
      { format: "sie4" },
      { by: "api", faults: { afterFilesStored: () => busy(5 * IDLE_TIMEOUT_MS) } },
    );
    await expect(exporting).rejects.toThrow();
    expect(await runner.all("SELECT id FROM export_files")).toEqual([]);
    expect(await runner.all("SELECT invoice_key AS k, status FROM invoice_export_status ORDER BY invoice_key")).toEqual([
      { k: "5001", status: "to_transfer" },
      { k: "5002", status: "to_transfer" },
    ]);
    // The runner goes on with a new connection.
    const again = await runExport(runner, settings(), { format: "sie4" }, { by: "api" });
    expect(again.ok && again.invoices.exported).toEqual(["5001", "5002"]);
  }, 60_000);
});
