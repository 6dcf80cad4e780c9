// Export files over years: a daily export's file is kept byte for byte for download, but not for ever. Once older than
// retention_days (and written to the output folder or offered for download), its content goes; its row, SHA-256 and
// its invoices' export statuses stay, so nothing is ever exported twice, and a download says what happened.
import { describe, expect, test } from "bun:test";
import { runExport } from "../agent/exports/service.ts";
import { getFileBytes } from "../agent/exports/store.ts";
import { pruneOnce } from "../agent/retention.ts";
import { BASE, invoice, seed, settings, statusOf, testDb } from "./exports-fixtures.ts";

const DAY = 86_400_000;

describe("retention and export files", () => {
  test("an old file's content goes, its row and statuses stay; recent files and files waiting for the folder keep theirs", async () => {
    const { db, runner } = testDb();
    const s = settings();
    const exportInvoices = async (...numbers: number[]) => {
      await seed(
        runner,
        numbers.map((n) => invoice(n)),
      );
      const r = await runExport(runner, s, { format: "sie4" }, { by: "cli" });
      if (!r.ok) throw new Error(JSON.stringify(r));
      return r.files[0]!.id as number;
    };
    await seed(runner, BASE());
    const old = await exportInvoices(1001, 1002);
    const waiting = await exportInvoices(1003);
    const recent = await exportInvoices(1004);
    const now = Date.now();
    // Made 100 days ago; `waiting` has not reached the output folder yet.
    db.$client.run(`UPDATE export_files SET created_at = ?1 WHERE id IN (?2, ?3)`, [now - 100 * DAY, old, waiting]);
    db.$client.run(`UPDATE export_files SET delivered_at = NULL WHERE id = ?1`, [waiting]);
    const rowOf = (id: number) => db.$client.query(`SELECT size, sha256, length(bytes) AS stored FROM export_files WHERE id = ?1`).get(id);
    const before = rowOf(old) as { size: number; sha256: string };

    const result = await pruneOnce(db, { retentionDays: 90, now: () => now });

    // Before the fix: 0 (export files were never pruned) and every file kept its bytes.
    expect(result.exportFiles).toBe(1);
    expect(rowOf(old)).toEqual({ size: before.size, sha256: before.sha256, stored: 0 });
    const file = await getFileBytes(runner, old);
    expect(file).toMatchObject({ pruned: true, bytes: new Uint8Array(0) });
    expect((await getFileBytes(runner, waiting))!.pruned).toBe(false);
    expect((await getFileBytes(runner, recent))!.bytes.length).toBeGreaterThan(0);
    // Its invoices stay transferred: the next export does not write them again.
    expect(await statusOf(runner, 1001)).toBe("transferred");
    const again = await runExport(runner, s, { format: "sie4" }, { by: "cli" });
    expect(again.ok && again.message).toBe("No invoices to transfer.");
    // A second prune finds nothing more.
    expect((await pruneOnce(db, { retentionDays: 90, now: () => now })).exportFiles).toBe(0);
  });

  test("an invoice changed after its file's content was pruned is still reported, saying it cannot be compared", async () => {
    const { db, runner } = testDb();
    const s = settings();
    await seed(runner, [...BASE(), invoice(1001)]);
    const first = await runExport(runner, s, { format: "sie4" }, { by: "cli" });
    const fileId = first.ok ? first.files[0]!.id : 0;
    const now = Date.now();
    db.$client.run(`UPDATE export_files SET created_at = ?1 WHERE id = ?2`, [now - 100 * DAY, fileId]);
    await pruneOnce(db, { retentionDays: 90, now: () => now });
    await seed(runner, [invoice(1001, { lines: [{ text: "Konsult", quantity: 10, unitPrice: 120000, kind: "hours" }] })]);
    const next = await runExport(runner, s, { format: "sie4" }, { by: "cli" });
    const warnings = next.ok ? next.warnings.filter((w) => w.code === "exports.changed_after_export") : [];
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toContain("cannot tell whether the voucher differs");
  });
});
