// An invoice the PSA changes after an SIE export transferred it keeps its status (exporting it again would book it
// twice), so its new amounts never reach the accounting system by themselves: SIE exports say so until one that writes
// a file has said it.
import { describe, expect, test } from "bun:test";
import { runExport } from "../agent/exports/service.ts";
import { BASE, invoice, seed, settings, statusOf, testDb } from "./exports-fixtures.ts";

const changedWarnings = (r: Awaited<ReturnType<typeof runExport>>) =>
  r.ok ? r.warnings.filter((w) => w.code === "exports.changed_after_export") : [];

describe("an invoice changed after its SIE export", () => {
  test("the next SIE export warns, naming the file and the old and new amounts; a resend of the same invoice does not", async () => {
    const { runner } = testDb();
    const s = settings();
    await seed(runner, [...BASE(), invoice(1001), invoice(1002)]);
    const first = await runExport(runner, s, { format: "sie4" }, { by: "cli" });
    expect(first.ok && first.invoices.exported).toEqual(["1001", "1002"]);
    const fileName = first.ok ? first.files[0]!.fileName : "";

    // The PSA sends 1001 again unchanged (a new event id, same content): nothing to say.
    await seed(runner, [invoice(1001), invoice(1003)]);
    const second = await runExport(runner, s, { format: "sie4" }, { by: "cli" });
    expect(second.ok && second.invoices.exported).toEqual(["1003"]);
    expect(changedWarnings(second)).toEqual([]);

    // Then with another amount: it stays transferred, and the next export says what the accounting system lacks.
    await seed(runner, [invoice(1002, { lines: [{ text: "Konsult", quantity: 10, unitPrice: 120000, kind: "hours" }] })]);
    const third = await runExport(runner, s, { format: "sie4" }, { by: "cli" });
    expect(third.ok && third.message).toBe("No invoices to transfer.");
    expect(await statusOf(runner, 1002)).toBe("transferred");
    const [warning, ...more] = changedWarnings(third);
    // Before: no warning; the changed invoice was never mentioned again.
    expect(warning?.message).toContain(`Invoice 1002 changed after ${fileName}`);
    expect(warning?.message).toContain("11754.56"); // 7.5 h × 1200.00 + 25 % VAT, 450.50 + 12 % VAT, as exported
    expect(warning?.message).toContain("15000.00"); // 10 h × 1200.00 + 25 % VAT, now
    expect(warning?.hint).toContain("set-status 1002 to_transfer");
    expect(more).toEqual([]);

    // Said until an export that writes a file has said it (its run keeps the warning), then no more.
    await seed(runner, [invoice(1004)]);
    const fourth = await runExport(runner, s, { format: "sie4" }, { by: "cli" });
    expect(changedWarnings(fourth).map((w) => w.message)).toEqual([warning!.message]);
    await seed(runner, [invoice(1005)]);
    const fifth = await runExport(runner, s, { format: "sie4" }, { by: "cli" });
    expect(fifth.ok && fifth.invoices.exported).toEqual(["1005"]);
    expect(changedWarnings(fifth)).toEqual([]);
  });
});
