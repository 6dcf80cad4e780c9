// A template column's maxLength must never turn one account, number or amount into another: the built-in Xledger
// template cuts "Account" to 4 characters, and a line booked on 30410 was written as 3041, another account.
import { describe, expect, test } from "bun:test";
import { runExport } from "../agent/exports/service.ts";
import { BASE, invoice, seed, settings, statusOf, testDb } from "./exports-fixtures.ts";

describe("template export: values too long for their column", () => {
  test("an account longer than the column refuses the export, saying which column, row and value; nothing is marked", async () => {
    const { runner } = testDb();
    await seed(runner, [...BASE(), invoice(1001, { lines: [{ text: "Konsult", quantity: 1, unitPrice: 100000, account: "30410" }] })]);
    const r = await runExport(runner, settings(), { format: "template", template: "xledger-ar10" }, { by: "cli" });
    // Before: the file was written with account 3041 (a warning said a value was cut) and 1001 marked transferred.
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problems.map((p) => p.code)).toEqual(["template.value_too_long"]);
    expect(!r.ok && r.problems[0]!.message).toContain('("Account")');
    expect(!r.ok && r.problems[0]!.message).toContain('"30410"');
    expect(await statusOf(runner, 1001)).toBe("to_transfer");
  });
});
