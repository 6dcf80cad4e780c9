// A process killed with SIGKILL in the middle of an export: no invoice is marked without its file, no
// file is kept without its invoices marked, and the next export takes every invoice exactly once. On a SQLite file,
// and on a tenant of a real PostgreSQL server (test/pg-server.ts), where the server rolls the dead process's
// transaction back.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { migratePostgres } from "../agent/db/pg/migrate.ts";
import { embeddedMigrations } from "../agent/db/pg/migrations.generated.ts";
import { postgresRunner, sqliteRunner, type SqlRunner } from "../agent/db/pg/runner.ts";
import { deliverOnStart } from "../agent/exports/deliver.ts";
import { runExport } from "../agent/exports/service.ts";
import { getFileBytes, listFiles } from "../agent/exports/store.ts";
import { silentLogger } from "../agent/log.ts";
import { readSie } from "../formats/sie4/reader.ts";
import { BASE, count, invoice, seed, settings, testDb } from "./exports-fixtures.ts";
import { tempDir, waitFor } from "./helpers.ts";
import { type PgServer, pgUnavailable, startPgServer } from "./pg-server.ts";

const CHILD = join(import.meta.dir, "export-crash-child.ts");
const N = 40;

async function seeded() {
  const t = testDb();
  await seed(t.runner, [
    ...BASE(),
    ...Array.from({ length: N }, (_, i) => invoice(5001 + i, { date: `2026-03-${String(1 + (i % 28)).padStart(2, "0")}` })),
  ]);
  return t;
}

function spawnChild(dbPath: string, stage: string, marker: string, outputDir?: string, tenant?: number) {
  return Bun.spawn([process.execPath, CHILD, dbPath, stage, marker, ...(outputDir ? [outputDir] : [])], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, EXPORT_TENANT: String(tenant ?? "") },
  });
}

/** Invoice number → how many stored SIE files hold its voucher. */
async function vouchersPerInvoice(dbPath: string): Promise<Map<string, number>> {
  const file = openDatabase(dbPath);
  const db = sqliteRunner(file.$client);
  const seen = new Map<string, number>();
  for (const f of await listFiles(db)) {
    for (const v of readSie((await getFileBytes(db, f.id))!.bytes).document.vouchers) {
      const n = /^Faktura (\d+)/.exec(v.text ?? "")![1]!;
      seen.set(n, (seen.get(n) ?? 0) + 1);
    }
  }
  file.$client.close();
  return seen;
}

describe("SIGKILL during an export", () => {
  for (const stage of ["afterFilesStored", "afterInvoicesMarked"]) {
    test(`killed at ${stage} (inside the transaction): nothing stored, nothing marked; the next export takes each invoice once`, async () => {
      const { runner: db, dir, path } = await seeded();
      const marker = join(dir, "marker");
      const child = spawnChild(path, stage, marker);
      await waitFor("the child inside the export", () => existsSync(marker));
      child.kill("SIGKILL");
      expect(await child.exited).not.toBe(0);

      expect(await count(db, `SELECT count(*) AS n FROM export_files`)).toBe(0);
      expect(await count(db, `SELECT count(*) AS n FROM export_runs`)).toBe(0);
      expect(await count(db, `SELECT count(*) AS n FROM invoice_export_status WHERE status = 'to_transfer'`)).toBe(N);

      const r = await runExport(db, settings({ company_name: "Krasj AB" }), { format: "sie4" }, { by: "cli" });
      expect(r.ok && r.invoices.exported.length).toBe(N);
      const per = await vouchersPerInvoice(path);
      expect(per.size).toBe(N);
      expect([...per.values()].every((n) => n === 1)).toBe(true);
      expect(
        await count(
          db,
          `SELECT count(*) AS n FROM invoice_export_status s JOIN export_files f ON f.id = s.export_file_id WHERE s.status = 'transferred'`,
        ),
      ).toBe(N);
    });
  }

  test("killed after the commit but before writing to the output folder: both are kept, and the file is written at the next start", async () => {
    const { runner: db, dir, path } = await seeded();
    const out = tempDir("kontobro-out-");
    const marker = join(dir, "marker");
    const child = spawnChild(path, "beforeDelivery", marker, out);
    await waitFor("the child after its commit", () => existsSync(marker));
    child.kill("SIGKILL");
    await child.exited;
    const [file] = await listFiles(db);
    expect(file!.deliveredAt).toBeNull();
    expect(
      await count(db, `SELECT count(*) AS n FROM invoice_export_status WHERE status = 'transferred' AND export_file_id = ${file!.id}`),
    ).toBe(N);
    await deliverOnStart(db, settings({ output_dir: out }), silentLogger);
    expect(Buffer.from((await getFileBytes(db, file!.id))!.bytes).equals(readFileSync(join(out, file!.fileName)))).toBe(true);
    expect(await runExport(db, settings(), { format: "sie4" }, { by: "cli" })).toMatchObject({ ok: true, files: [] });
  });

  test("two processes exporting at the same moment never export an invoice twice", async () => {
    const { path, dir } = await seeded();
    const markers = [join(dir, "a"), join(dir, "b")];
    const children = markers.map((m) => spawnChild(path, "none", m));
    const codes = await Promise.all(children.map((c) => c.exited));
    expect(codes).toEqual([0, 0]);
    const results = markers.map((m) => JSON.parse(readFileSync(m, "utf8")));
    expect(results.map((r) => r.exported).sort((a: number, b: number) => a - b)).toEqual([0, N]);
    const per = await vouchersPerInvoice(path);
    expect(per.size).toBe(N);
    expect([...per.values()].every((n) => n === 1)).toBe(true);
  });
});

const unavailable = pgUnavailable();
if (unavailable) console.warn(`SIGKILL during an export on PostgreSQL skipped: ${unavailable}`);

describe.skipIf(!!unavailable)("SIGKILL during an export on PostgreSQL", () => {
  let server: PgServer;
  let admin: SQL;
  const clients: SQL[] = [];
  let tenants = 0;
  beforeAll(async () => {
    server = await startPgServer();
    const client = new SQL(server.url);
    clients.push(client);
    await migratePostgres(client, embeddedMigrations);
    admin = new SQL(server.adminUrl);
  }, 120_000);
  afterAll(async () => {
    for (const c of clients) await c.close();
    await admin?.close();
    await server?.stop();
  });

  /** A new tenant holding N invoices to transfer. */
  async function seededTenant(): Promise<{ tenant: number; db: SqlRunner }> {
    const slug = `crash-${++tenants}`;
    const [row] =
      await admin`INSERT INTO tenants (slug, name, api_token_hash, created_at, updated_at) VALUES (${slug}, ${slug}, ${slug}, 1, 1) RETURNING id`;
    const tenant = Number(row.id);
    const db = postgresRunner(clients[0]!, tenant);
    await seed(db, [
      ...BASE(),
      ...Array.from({ length: N }, (_, i) => invoice(5001 + i, { date: `2026-03-${String(1 + (i % 28)).padStart(2, "0")}` })),
    ]);
    return { tenant, db };
  }

  for (const stage of ["afterFilesStored", "afterInvoicesMarked"]) {
    test(`killed at ${stage} (inside the transaction): nothing stored, nothing marked; the next export takes each invoice once`, async () => {
      const { tenant, db } = await seededTenant();
      const marker = join(tempDir("kontobro-crash-pg-"), "marker");
      const child = spawnChild(server.url, stage, marker, undefined, tenant);
      await waitFor("the child inside the export", () => existsSync(marker));
      child.kill("SIGKILL");
      expect(await child.exited).not.toBe(0);
      // The server rolled the dead connection's transaction back (its socket closed with the process), releasing the
      // tenant's export turn: the next export finds every invoice still to transfer and no file.
      const r = await runExport(db, settings({ company_name: "Krasj AB" }), { format: "sie4" }, { by: "cli" });
      expect(r.ok && r.invoices.exported.length).toBe(N);
      const files = await listFiles(db);
      expect(files).toHaveLength(1);
      expect(files[0]!.fileName.split("_").pop()).toBe("1.SI");
      const vouchers = readSie((await getFileBytes(db, files[0]!.id))!.bytes).document.vouchers;
      expect(new Set(vouchers.map((v) => v.text)).size).toBe(N);
      expect(await count(db, `SELECT count(*) AS n FROM export_runs`)).toBe(1);
      expect(
        await count(
          db,
          `SELECT count(*) AS n FROM invoice_export_status WHERE status = 'transferred' AND export_file_id = ${files[0]!.id}`,
        ),
      ).toBe(N);
    });
  }

  test("killed after the commit: the file and its marks are kept, and the next export makes no second file", async () => {
    const { tenant, db } = await seededTenant();
    const marker = join(tempDir("kontobro-crash-pg-"), "marker");
    const child = spawnChild(server.url, "beforeDelivery", marker, tempDir("kontobro-out-"), tenant);
    await waitFor("the child after its commit", () => existsSync(marker));
    child.kill("SIGKILL");
    await child.exited;
    const [file] = await listFiles(db);
    expect(file!.deliveredAt).toBeNull();
    expect(
      await count(db, `SELECT count(*) AS n FROM invoice_export_status WHERE status = 'transferred' AND export_file_id = ${file!.id}`),
    ).toBe(N);
    expect(await runExport(db, settings(), { format: "sie4" }, { by: "cli" })).toMatchObject({ ok: true, files: [] });
  });
});
