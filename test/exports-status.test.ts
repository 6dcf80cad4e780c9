// Export status transitions on a real SQLite file and a tenant on a real PostgreSQL server: one invoice, a range,
// invalid transitions.
import { beforeEach, describe, expect, test } from "bun:test";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { changeExportStatus, listInvoiceStatuses, statusCounts, transitionProblem } from "../agent/exports/status.ts";
import { type Engine, workerEngines } from "./engines.ts";
import { BASE, creditNote, invoice, seed, statusOf } from "./exports-fixtures.ts";

const storages = workerEngines("export status");

describe("transition rules", () => {
  test("allowed and refused, with a reason and a way out", () => {
    const allowed = [
      ["to_transfer", "transferred"],
      ["to_transfer", "do_not_transfer"],
      ["transferred", "to_transfer"],
      ["do_not_transfer", "to_transfer"],
      [null, "do_not_transfer"],
    ] as const;
    for (const [from, to] of allowed) expect(transitionProblem("1", from, to)).toBeNull();
    const p = transitionProblem("1001", "transferred", "do_not_transfer")!;
    expect(p).toMatchObject({ code: "exports.invalid_transition", field: "status" });
    expect(p.message).toContain("already been transferred");
    expect(p.hint).toContain('"to transfer"');
    expect(transitionProblem("1001", "do_not_transfer", "transferred")!.message).toContain("no export has transferred it");
  });
});

describe.each(storages.engines)("on %s", (engine: Engine) => {
  let db: SqlRunner;
  beforeEach(async () => {
    db = (await storages.open(engine)).storage;
    await seed(db, [
      ...BASE(),
      invoice(1001),
      invoice(1002),
      invoice(1003),
      creditNote(1004, 1001),
      invoice(1010),
      invoice(2001),
      invoice("A-7" as any),
    ]);
  });

  describe("changing the status", () => {
    test("one invoice, by number; setting the same status again changes nothing", async () => {
      const r = await changeExportStatus(db, { number: "1002" }, "do_not_transfer", "api");
      expect(r).toMatchObject({ ok: true, changed: ["1002"], unchanged: [], skipped: [] });
      expect(await statusOf(db, 1002)).toBe("do_not_transfer");
      expect(await changeExportStatus(db, { number: "1002" }, "do_not_transfer", "api")).toMatchObject({
        ok: true,
        changed: [],
        unchanged: ["1002"],
      });
      const row = (await db.get<{ by: string }>(`SELECT changed_by AS by FROM invoice_export_status WHERE invoice_key = '1002'`))!;
      expect(row.by).toBe("api");
      expect(await changeExportStatus(db, { number: "A-7" }, "transferred", "cli")).toMatchObject({ ok: true, changed: ["A-7"] });
    });

    test("a range selects invoices and credit notes by number, numerically", async () => {
      const r = await changeExportStatus(db, { from: "1002", to: "1010" }, "do_not_transfer", "cli");
      expect(r.ok && r.changed).toEqual(["1002", "1003", "1004", "1010"]);
      expect(await Promise.all([1001, 2001].map((n) => statusOf(db, n)))).toEqual(["to_transfer", "to_transfer"]);
      expect(await statusCounts(db)).toEqual({ to_transfer: 3, transferred: 0, do_not_transfer: 4 });
      expect((await listInvoiceStatuses(db, { status: "do_not_transfer" })).map((r) => r.number)).toEqual(["1010", "1004", "1003", "1002"]);
    });

    test("an invalid transition in a range changes nothing, and says which invoice and why", async () => {
      await changeExportStatus(db, { number: "1003" }, "transferred", "cli");
      const r = await changeExportStatus(db, { from: "1001", to: "1004" }, "do_not_transfer", "api");
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.httpStatus).toBe(409);
      expect(r.problems[0]!.message).toContain("Nothing was changed: 1 of the 4 invoices 1001–1004");
      expect(r.problems[0]!.hint).toContain("skip");
      expect(r.problems[1]!.message).toContain("Invoice 1003 has already been transferred");
      expect(await Promise.all([1001, 1002, 1003, 1004].map((n) => statusOf(db, n)))).toEqual([
        "to_transfer",
        "to_transfer",
        "transferred",
        "to_transfer",
      ]);
    });

    test("skipInvalid changes the others and reports the skipped", async () => {
      await changeExportStatus(db, { number: "1003" }, "transferred", "cli");
      const r = await changeExportStatus(db, { from: "1001", to: "1004" }, "do_not_transfer", "api", { skipInvalid: true });
      expect(r.ok && r.changed).toEqual(["1001", "1002", "1004"]);
      expect(r.ok && r.skipped.map((s) => [s.number, s.problem.code])).toEqual([["1003", "exports.invalid_transition"]]);
      expect(await statusOf(db, 1003)).toBe("transferred");
    });

    test("do not transfer → transferred is refused for one invoice too", async () => {
      await changeExportStatus(db, { number: "1001" }, "do_not_transfer", "ui");
      const r = await changeExportStatus(db, { number: "1001" }, "transferred", "ui");
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.httpStatus).toBe(409);
        expect(r.problems).toHaveLength(1);
        expect(r.problems[0]!.message).toBe('Invoice 1001 is marked "do not transfer", so no export has transferred it.');
      }
      expect(await statusOf(db, 1001)).toBe("do_not_transfer");
    });

    test("unknown invoices, bad ranges and unknown statuses are refused clearly", async () => {
      const missing = await changeExportStatus(db, { number: "999" }, "transferred", "api");
      expect(!missing.ok && [missing.httpStatus, missing.problems[0]!.code]).toEqual([404, "exports.invoice_not_found"]);
      const emptyRange = await changeExportStatus(db, { from: "5000", to: "6000" }, "transferred", "api");
      expect(!emptyRange.ok && emptyRange.problems[0]!.message).toContain("No invoices 5000–6000");
      const letters = await changeExportStatus(db, { from: "A-1", to: "A-9" }, "transferred", "api");
      expect(!letters.ok && [letters.httpStatus, letters.problems[0]!.field]).toEqual([422, "from"]);
      const reversed = await changeExportStatus(db, { from: "1010", to: "1001" }, "transferred", "api");
      expect(!reversed.ok && reversed.problems[0]!.hint).toBe("Swap the numbers.");
      const status = await changeExportStatus(db, { number: "1001" }, "booked" as any, "api");
      expect(!status.ok && status.problems[0]!.code).toBe("exports.bad_status");
    });
  });
});
