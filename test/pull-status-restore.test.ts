// Payment status after a restore of yesterday's backup, end to end over loopback (real agent, e-conomic sandbox,
// a PSA that dedupes on the item's id as the README tells it to): a change reported after the backup rolls the
// record's status back, and the next change must not reach the PSA under the id of the one it already took.
import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import { databasePath } from "../agent/agent.ts";
import { backupDatabase, restoreDatabase } from "../agent/restore-sqlite.ts";
import { tempDir, waitFor } from "./helpers.ts";
import { day, seedPsa, startPullStack, type PullStack } from "./pull-harness.ts";

let stack: PullStack;
afterEach(async () => {
  await stack?.stop();
});

/** The PSA's view: each id taken once (the first copy wins), the invoice's status is the last one taken. */
function psaStatusOf(invoice: string): string | undefined {
  const byId = new Map<number, any>();
  for (const item of stack.psa.accepted()) if (!byId.has(item.id)) byId.set(item.id, item);
  return [...byId.values()].filter((i) => i.data.invoiceNumber === invoice).at(-1)?.data.status;
}

test("an invoice paid after a restore reaches the PSA as paid, not under the id of the overdue it took before", async () => {
  stack = await startPullStack();
  await seedPsa(stack, [], [20001]);
  await stack.control("invoices/booked/20001", { dueDate: day(30) }, "PATCH");
  expect(await stack.runNow("payments")).toMatchObject({ status: "ok", imported: 0 }); // unpaid: the PSA knows that
  const backup = join(tempDir(), "nightly.db");
  backupDatabase(databasePath(stack.dataDir), backup); // yesterday's backup

  await stack.control("invoices/booked/20001", { dueDate: day(-10) }, "PATCH");
  expect(await stack.runNow("payments")).toMatchObject({ imported: 1 });
  await waitFor("overdue at the PSA", () => psaStatusOf("20001") === "overdue");

  await stack.agent.stop();
  restoreDatabase(stack.dataDir, databasePath(stack.dataDir), backup);
  await stack.restart();
  await stack.control("payments", { invoice: 20001 });
  expect(await stack.runNow("payments")).toMatchObject({ imported: 1 });
  await waitFor("the paid item at the PSA", () => stack.psa.accepted().length === 2);
  expect(psaStatusOf("20001")).toBe("paid");
}, 60_000);
