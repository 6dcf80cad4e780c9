// The same PSA invoice sent again under a new number after kontobro's local state was lost. The restored database has
// forgotten the booking, so intake cannot refuse the PSA id (invoice.psa_id_taken); the PSA renumbered the invoice
// meanwhile. e-conomic looked booked invoices up only by number, found nothing under the new number and booked the
// PSA invoice a second time. The lookup now also finds our PSA id (references.other) under another number.
import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import { databasePath } from "../agent/agent.ts";
import { backupDatabase, restoreDatabase } from "../agent/restore-sqlite.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, tempDir, waitFor } from "./helpers.ts";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

test("after a restore, the PSA invoice resent under a new number is not booked again but needs action naming the booked one", async () => {
  stack = await startStack();
  const s = stack;
  await s.post([customerEvent(1)]);
  await s.waitDelivered(1);
  const backup = join(tempDir(), "backup.db");
  backupDatabase(databasePath(s.dataDir), backup);
  await s.post([invoiceEvent(1701, 1)]);
  await s.waitDelivered(2);
  await s.agent.stop();
  restoreDatabase(s.dataDir, databasePath(s.dataDir), backup);
  await s.restart();

  // The PSA sends the invoice again (same PSA id), renumbered to 1702.
  expect((await s.post([invoiceEvent(1702, 1, undefined, { psaId: "PSA-INV-1701" }, "renumbered")])).status).toBe(202);
  const resent = await waitFor("the renumbered invoice settled", async () =>
    (await s.deliveries()).find((d: any) => d.eventId === "renumbered" && ["done", "needs_action"].includes(d.status)),
  );
  const state = await s.sandboxState();
  expect(state.booked.map((b: any) => [b.bookedInvoiceNumber, b.references?.other])).toEqual([[1701, "PSA-INV-1701"]]);
  expect(state.drafts).toEqual([]);
  expect({ status: resent.status, code: resent.errorCode }).toEqual({
    status: "needs_action",
    code: "economic.invoice_booked_under_other_number",
  });
  expect(resent.errorMessage).toContain("booked invoice 1701");
  expect(resent.errorMessage).toContain("PSA-INV-1701");
  expect(resent.errorMessage).toContain("1702");
  expect(resent.errorHint).toBeTruthy();
}, 30_000);
