// The same PSA invoice sent again under a new number after kontobro's local state was lost. The restored database has
// forgotten the booking, so intake cannot refuse the PSA id (invoice.psa_id_taken); the PSA renumbered the invoice
// meanwhile. e-conomic looked booked invoices up only by number, found nothing under the new number and booked the
// PSA invoice a second time. The lookup now also finds our PSA id (references.other) under another number.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { databasePath } from "../agent/agent.ts";
import { backupDatabase, restoreDatabase } from "../agent/restore-sqlite.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { bookByHand, canonical, draftsFor, pushCtx, startEconomic } from "./economic-fixtures.ts";
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

describe("the connector's lookup by number and PSA id", () => {
  test("an uncertain push finds our PSA id under another number: needs action, its drafts removed, nothing booked", async () => {
    const { sb, conn } = await startEconomic();
    try {
      const customer = canonical(customerEvent(5));
      await conn.push("customer", customer, pushCtx());
      await bookByHand(sb, 80011, 5, "PSA-INV-80011");
      // A draft left by an earlier attempt whose answer was lost.
      sb.sandbox.state.drafts.set(999, {
        invoice: { draftInvoiceNumber: 999, references: { other: "PSA-INV-80011" }, customer: { customerNumber: 5 }, lines: [] },
      });
      const renumbered = canonical(invoiceEvent(80012, 5, undefined, { psaId: "PSA-INV-80011" }));
      const e = await conn.push("invoice", renumbered, pushCtx({ customer, uncertain: true })).catch((err) => err);
      expect(e).toMatchObject({ kind: "permanent", code: "economic.invoice_booked_under_other_number", field: "number" });
      expect(e.message).toContain("booked invoice 80011");
      expect([...sb.sandbox.state.booked.keys()]).toEqual([80011]);
      expect(draftsFor(sb, "PSA-INV-80011")).toEqual([]);
      expect(await conn.find("invoice", renumbered).catch((err) => err.code)).toBe("economic.invoice_booked_under_other_number");
    } finally {
      await sb.stop();
    }
  });

  test("a booked invoice whose reference differs from our PSA id only in case is not ours (filters ignore case)", async () => {
    const { sb, conn } = await startEconomic();
    try {
      const customer = canonical(customerEvent(5));
      await conn.push("customer", customer, pushCtx());
      await bookByHand(sb, 80021, 5, "psa-inv-80021");
      const other = canonical(invoiceEvent(80022, 5, undefined, { psaId: "PSA-INV-80021" }));
      expect(await conn.push("invoice", other, pushCtx({ customer, uncertain: true }))).toMatchObject({ remoteId: "80022" });
      expect([...sb.sandbox.state.booked.keys()].sort()).toEqual([80021, 80022]);
    } finally {
      await sb.stop();
    }
  });
});
