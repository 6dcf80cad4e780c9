// A pull on a full disk: the page is not stored, the run says why and what to do, and the next run once there is room
// brings every item, once. Real agent and SQLite file, the e-conomic sandbox's ledger over loopback.
import { afterEach, expect, test } from "bun:test";
import { day, PDF, seedPsa, startPullStack, type PullStack } from "./pull-harness.ts";

let stack: PullStack;
afterEach(async () => {
  await stack?.stop();
});

test("a page that cannot be stored for a full disk: told to free space, and imported once by the next run", async () => {
  stack = await startPullStack({ economic: { expenses: { accounts: "2800", cost_types: "1", activity: "Udlæg", billable: true } } });
  await seedPsa(stack);
  const vouchers = Array.from({ length: 20 }, (_, i) => ({
    date: day(-1),
    supplierNumber: 1,
    supplierInvoiceNumber: `F-${i}`,
    text: `Cement ${i} ${"x".repeat(200)}`,
    lines: [{ account: 2800, amount: 1000 + i, vatCode: "I25", projectNumber: 4711, costTypeNumber: 1 }],
    attachment: { fileName: `f${i}.pdf`, contentBase64: PDF.toString("base64") },
  }));
  await stack.book(vouchers);
  const c = stack.agent.db.$client;
  const pages = (c.query("PRAGMA page_count").get() as { page_count: number }).page_count;
  c.run(`PRAGMA max_page_count = ${pages}`); // the disk is full: writes that need no new page still go through

  const failed = await stack.runNow("expenses");
  expect(failed.status).toBe("failed");
  // Before: "Unexpected error: database or disk is full", hint "… send the log to kontobro support".
  expect(failed.problem.message).toContain("database or disk is full");
  expect(failed.problem.hint).toContain("Free disk space");
  expect(failed.problem.hint).not.toContain("support");

  c.run("PRAGMA max_page_count = 1073741823"); // space freed
  expect(await stack.runNow("expenses")).toMatchObject({ status: "ok", imported: 20, duplicates: 0 });
}, 60_000);
