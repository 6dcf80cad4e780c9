// Over-crediting: credit notes of one invoice that together credit more than the invoice's total. Before, each was
// pushed as it came: two credit notes of 100 % (a PSA bug, or one credit sent under two numbers) both booked, and a
// credit note larger than its invoice was booked as it was. Now the one that would go beyond the invoice needs action,
// naming what is booked already, and is never sent; credit notes that fit, whatever their signs, are booked.
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

const invoice = (n: number, unitPrice: number) => ({
  ...invoiceEvent(n, 1, undefined, {}, `inv-${n}`),
  data: { ...invoiceEvent(n, 1).data, lines: [{ text: "Consulting", quantity: 1, unitPrice, kind: "hours" }] },
});
const credit = (n: number, credits: number, lines: { quantity: number; unitPrice: number }[], id = `cn-${n}`) => ({
  id,
  type: "invoice.credited",
  data: {
    ...invoiceEvent(n, 1).data,
    psaId: `PSA-CN-${n}`,
    creditedInvoiceNumber: credits,
    lines: lines.map((l, i) => ({ text: `Credit ${i + 1}`, kind: "hours", ...l })),
  },
});

/** The delivery of event `id` once it is done or needs action. */
const settled = (s: Stack, id: string) =>
  waitFor(`${id} settled`, async () =>
    (await s.deliveries()).find((d: any) => d.eventId === id && ["done", "needs_action"].includes(d.status)),
  );
const outcome = (d: any) => ({ status: d.status, code: d.errorCode ?? null });
const bookedNets = async (s: Stack) =>
  Object.fromEntries((await s.sandboxState()).booked.map((b: any) => [b.bookedInvoiceNumber, b.netAmount]));

test("two credit notes of 100 % for one invoice: the first is booked, the second needs action and is never sent", async () => {
  stack = await startStack();
  const s = stack;
  await s.post([customerEvent(1), invoice(100, 100_000)]);
  await s.waitDelivered(2);
  await s.post([credit(200, 100, [{ quantity: 1, unitPrice: 100_000 }]), credit(201, 100, [{ quantity: 1, unitPrice: 100_000 }])]);
  const first = await settled(s, "cn-200");
  const second = await settled(s, "cn-201");
  expect(outcome(first)).toEqual({ status: "done", code: null });
  expect(outcome(second)).toEqual({ status: "needs_action", code: "invoice.credit_exceeds_invoice" });
  expect(second.errorMessage).toContain("credit note 200 (1,000.00 NOK) already credits it at eco");
  expect(second.errorMessage).toContain("together that is 2,000.00 NOK");
  expect(second.errorHint).toContain("cancel it in the PSA");
  expect(await bookedNets(s)).toEqual({ 100: 1000, 200: -1000 });

  // Retry does not send it either: it is checked again.
  const retried = await fetch(`${s.agent.url}/api/v1/deliveries/${second.id}/retry`, {
    method: "POST",
    headers: { authorization: "Bearer test-token-0123456789" },
  });
  expect(retried.status).toBeLessThan(300);
  await waitFor("the retry settled", async () => (await s.deliveries("needs_action")).some((d: any) => d.id === second.id));
  expect(await bookedNets(s)).toEqual({ 100: 1000, 200: -1000 });
}, 30_000);

test("a credit note larger than its invoice needs action; one that fits, written with minus signs or mixed signs, is booked", async () => {
  stack = await startStack();
  const s = stack;
  await s.post([customerEvent(1), invoice(110, 100_000)]);
  await s.waitDelivered(2);
  await s.post([credit(210, 110, [{ quantity: 1, unitPrice: 150_000 }])]);
  const larger = await settled(s, "cn-210");
  expect(outcome(larger)).toEqual({ status: "needs_action", code: "invoice.credit_exceeds_invoice" });
  expect(larger.errorMessage).toContain("Credit note 210 credits 1,500.00 NOK of invoice 110, whose total is 1,000.00 NOK");

  // Minus signs: 600.00 credited; then mixed signs adding up to 400.00: together exactly the invoice.
  await s.post([credit(211, 110, [{ quantity: -1, unitPrice: 60_000 }])]);
  expect(outcome(await settled(s, "cn-211"))).toEqual({ status: "done", code: null });
  await s.post([
    credit(212, 110, [
      { quantity: 1, unitPrice: 50_000 },
      { quantity: -1, unitPrice: 10_000 },
    ]),
  ]);
  expect(outcome(await settled(s, "cn-212"))).toEqual({ status: "done", code: null });
  // Anything more is beyond it, whichever way it is signed.
  await s.post([credit(213, 110, [{ quantity: -1, unitPrice: 100 }])]);
  const beyond = await settled(s, "cn-213");
  expect(outcome(beyond)).toEqual({ status: "needs_action", code: "invoice.credit_exceeds_invoice" });
  expect(beyond.errorMessage).toContain("0.00 NOK is left");
  expect(await bookedNets(s)).toEqual({ 110: 1000, 211: -600, 212: -400 });

  // The PSA corrects the larger credit note: a new version is checked by itself (nothing is left, so it still needs action).
  await s.post([credit(210, 110, [{ quantity: 1, unitPrice: 100_000 }], "cn-210-v2")]);
  expect(outcome(await settled(s, "cn-210-v2"))).toEqual({ status: "needs_action", code: "invoice.credit_exceeds_invoice" });
}, 30_000);

test("a credit note for an invoice kontobro never held (booked before kontobro) is booked unchecked", async () => {
  stack = await startStack();
  const s = stack;
  await s.post([customerEvent(1), credit(220, 77, [{ quantity: 1, unitPrice: 5_000_000 }])]);
  expect(outcome(await settled(s, "cn-220"))).toEqual({ status: "done", code: null });
}, 30_000);

test("after a restore that forgot a booked credit note: its resend is found, and the same credit under a new number needs action", async () => {
  stack = await startStack();
  const s = stack;
  await s.post([customerEvent(1), invoice(130, 100_000)]);
  await s.waitDelivered(2);
  const backup = join(tempDir(), "backup.db");
  backupDatabase(databasePath(s.dataDir), backup);
  await s.post([credit(230, 130, [{ quantity: 1, unitPrice: 100_000 }])]);
  expect(outcome(await settled(s, "cn-230"))).toEqual({ status: "done", code: null });
  await s.agent.stop();
  restoreDatabase(s.dataDir, databasePath(s.dataDir), backup);
  await s.restart();

  // The PSA sends again what changed since the backup: the credit note, found booked, not booked twice.
  await s.post([credit(230, 130, [{ quantity: 1, unitPrice: 100_000 }], "cn-230-again")]);
  expect(outcome(await settled(s, "cn-230-again"))).toEqual({ status: "done", code: null });
  // And, by mistake, the same credit under a new number.
  await s.post([credit(231, 130, [{ quantity: 1, unitPrice: 100_000 }])]);
  expect(outcome(await settled(s, "cn-231"))).toEqual({ status: "needs_action", code: "invoice.credit_exceeds_invoice" });
  expect(await bookedNets(s)).toEqual({ 130: 1000, 230: -1000 });
}, 30_000);

test("a credit note for an invoice still waiting waits with it, and is then checked against it", async () => {
  stack = await startStack();
  const s = stack;
  // The invoice waits for its customer; its credit notes wait for the invoice.
  await s.post([
    invoice(140, 100_000),
    credit(240, 140, [{ quantity: 1, unitPrice: 70_000 }]),
    credit(241, 140, [{ quantity: 1, unitPrice: 70_000 }]),
  ]);
  await waitFor(
    "both credit notes waiting",
    async () => (await s.deliveries("waiting")).filter((d: any) => d.eventId.startsWith("cn-")).length === 2,
  );
  await s.post([customerEvent(1)]);
  const outcomes = [outcome(await settled(s, "cn-240")), outcome(await settled(s, "cn-241"))];
  expect(outcomes).toContainEqual({ status: "done", code: null });
  expect(outcomes).toContainEqual({ status: "needs_action", code: "invoice.credit_exceeds_invoice" });
  expect(Object.keys(await bookedNets(s)).length).toBe(2);
}, 30_000);

test("a later version of a booked invoice that needs action (other amounts) does not widen what its credit notes may credit", async () => {
  stack = await startStack();
  const s = stack;
  await s.post([customerEvent(1), invoice(100, 100_000)]);
  await s.waitDelivered(2);
  // The PSA corrects the booked invoice to 2,000.00: e-conomic keeps the booked 1,000.00, so this version needs action.
  await s.post([{ ...invoice(100, 200_000), id: "inv-100-v2" }]);
  expect(outcome(await settled(s, "inv-100-v2"))).toEqual({ status: "needs_action", code: "economic.invoice_already_booked" });
  // A credit note of 1,500.00 credits more than the 1,000.00 booked, whatever the refused version says.
  await s.post([credit(200, 100, [{ quantity: 1, unitPrice: 150_000 }])]);
  const over = await settled(s, "cn-200");
  expect(outcome(over)).toEqual({ status: "needs_action", code: "invoice.credit_exceeds_invoice" });
  expect(over.errorMessage).toContain("whose total is 1,000.00 NOK");
  expect(await bookedNets(s)).toEqual({ 100: 1000 });
});
