// A credit note always lowers what the customer owes (agent/model.ts), whatever signs the PSA wrote. A "credit note"
// of a credit note means the opposite (the first credit is taken back, the customer owes again), which the model
// cannot say: it used to be booked as a second credit of the invoice, crediting the customer twice.
import { expect, test } from "bun:test";
import { startStack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, waitFor } from "./helpers.ts";

const credit = (number: number, credited: number, lines: object[], id = `cn-${number}`) => ({
  id,
  type: "invoice.credited",
  data: { ...invoiceEvent(number, 9).data, psaId: `PSA-CN-${number}`, creditedInvoiceNumber: credited, lines },
});

test("a credit note of a credit note is refused at intake, stored or in the same request, and never books a second credit", async () => {
  const stack = await startStack();
  try {
    const invoiceLines = [{ text: "Consulting", quantity: 10, unitPrice: 100000, kind: "hours" }];
    // The PSA writes credit notes with minus signs; taking a credit back it writes the credit note's lines turned round.
    await stack.post([customerEvent(9), { ...invoiceEvent(1001, 9), data: { ...invoiceEvent(1001, 9).data, lines: invoiceLines } }]);
    expect((await stack.post([credit(1002, 1001, [{ text: "Consulting", quantity: -10, unitPrice: 100000, kind: "hours" }])])).status).toBe(
      202,
    );

    const stored = await stack.post([credit(1003, 1002, invoiceLines)]);
    expect(stored.status).toBe(409);
    expect(stored.body.events[0].problems[0]).toMatchObject({ code: "invoice.credits_credit_note", field: "data.creditedInvoiceNumber" });
    expect(stored.body.events[0].problems[0].message).toContain("credit note 1002");

    // The same within one request: the credited credit note comes first, the credit of it after.
    const sameRequest = await stack.post([
      credit(1004, 1001, [{ text: "Consulting", quantity: 1, unitPrice: 100000, kind: "hours" }]),
      credit(1005, 1004, [{ text: "Consulting", quantity: 1, unitPrice: 100000, kind: "hours" }]),
    ]);
    expect(sameRequest.status).toBe(409);
    expect(sameRequest.body.events[0].index).toBe(1);
    expect(sameRequest.body.events[0].problems[0].code).toBe("invoice.credits_credit_note");

    await waitFor("queue settled", async () => (await stack.deliveries()).every((d: any) => d.status === "done"));
    const booked = (await stack.sandboxState()).booked.map((b: any) => [b.references?.other, b.netAmount]);
    expect(booked.sort()).toEqual([
      ["PSA-CN-1002", -10000],
      ["PSA-INV-1001", 10000],
    ]);
  } finally {
    await stack.stop();
  }
}, 30_000);
