// A credit note always lowers what the customer owes (agent/model.ts), whatever signs the PSA wrote. A "credit note"
// of a credit note means the opposite (the first credit is taken back, the customer owes again), which the model
// cannot say: it used to be booked as a second credit of the invoice, crediting the customer twice. A credit note for
// another customer than the invoice it credits was booked too, lowering that customer's balance (and, at Uni Micro,
// marking the other customer's invoice credited).
import { expect, test } from "bun:test";
import { startStack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, waitFor } from "./helpers.ts";

const credit = (number: number, credited: number, lines: object[], more: object = {}) => ({
  id: `cn-${number}`,
  type: "invoice.credited",
  data: { ...invoiceEvent(number, 9).data, psaId: `PSA-CN-${number}`, creditedInvoiceNumber: credited, lines, ...more },
});

test("a credit note of a credit note, or of another customer's invoice or currency, is refused at intake and books nothing", async () => {
  const stack = await startStack();
  try {
    // 11,000.00: room for the full credit of 10,000.00 below and one of 1,000.00 (more would be over-crediting).
    const invoiceLines = [{ text: "Consulting", quantity: 11, unitPrice: 100000, kind: "hours" }];
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

    // Another customer's invoice, or another currency: refused too, naming the invoice's customer or currency.
    const one = [{ text: "Consulting", quantity: 1, unitPrice: 100000, kind: "hours" }];
    await stack.post([customerEvent(10)]);
    const otherCustomer = await stack.post([credit(1006, 1001, one, { customerNumber: "010" })]);
    expect(otherCustomer.status).toBe(409);
    expect(otherCustomer.body.events[0].problems[0]).toMatchObject({
      code: "invoice.credits_other_customer",
      field: "data.customerNumber",
    });
    expect(otherCustomer.body.events[0].problems[0].message).toContain("invoice 1001 of customer 9");
    const otherCurrency = await stack.post([credit(1007, 1001, one, { currency: "EUR" })]);
    expect(otherCurrency.status).toBe(409);
    expect(otherCurrency.body.events[0].problems[0]).toMatchObject({ code: "invoice.credits_other_currency", field: "data.currency" });
    // The same customer written with a leading zero is the same customer.
    expect((await stack.post([credit(1008, 1001, one, { customerNumber: "09" })])).status).toBe(202);

    await waitFor("queue settled", async () => (await stack.deliveries()).every((d: any) => d.status === "done"));
    const booked = (await stack.sandboxState()).booked.map((b: any) => [b.references?.other, b.netAmount]);
    expect(booked.sort()).toEqual([
      ["PSA-CN-1002", -10000],
      ["PSA-CN-1008", -1000],
      ["PSA-INV-1001", 11000],
    ]);
  } finally {
    await stack.stop();
  }
}, 30_000);

test("a credit note of a credit note sent before the credit note it credits needs action and is never booked", async () => {
  const stack = await startStack();
  try {
    const invoiceLines = [{ text: "Consulting", quantity: 11, unitPrice: 100000, kind: "hours" }];
    await stack.post([customerEvent(9), { ...invoiceEvent(1001, 9), data: { ...invoiceEvent(1001, 9).data, lines: invoiceLines } }]);
    await stack.waitDelivered(2);
    // The PSA sends the credit of credit note 1012 before 1012 itself (both in one request, or 1012 in a later one
    // while the first still waits): intake cannot tell yet what 1012 is, and both are stored.
    const stored = await stack.post([
      credit(1013, 1012, [{ text: "Consulting", quantity: 1, unitPrice: 100000, kind: "hours" }]),
      credit(1012, 1001, [{ text: "Consulting", quantity: -1, unitPrice: 100000, kind: "hours" }]),
    ]);
    expect(stored.status).toBe(202);
    const settled = (await waitFor("both settled", async () => {
      const ds = await stack.deliveries();
      const of = (id: string) => ds.find((d: any) => d.eventId === id && ["done", "needs_action"].includes(d.status));
      return of("cn-1012") && of("cn-1013") ? { first: of("cn-1012"), second: of("cn-1013") } : undefined;
    }))!;
    expect(settled.first.status).toBe("done");
    expect(settled.second).toMatchObject({ status: "needs_action", errorCode: "invoice.credits_credit_note" });
    expect(settled.second.errorMessage).toContain("credit note 1012");
    const booked = (await stack.sandboxState()).booked.map((b: any) => [b.references?.other, b.netAmount]);
    expect(booked.sort()).toEqual([
      ["PSA-CN-1012", -1000],
      ["PSA-INV-1001", 11000],
    ]);
  } finally {
    await stack.stop();
  }
}, 30_000);

test("a credit note sent before its invoice, for another customer or in another currency, needs action and is never booked", async () => {
  const stack = await startStack();
  try {
    await stack.post([customerEvent(9), customerEvent(10)]);
    await stack.waitDelivered(2);
    const one = [{ text: "Consulting", quantity: 1, unitPrice: 100000, kind: "hours" }];
    const invoice = (n: number) => ({ ...invoiceEvent(n, 9), data: { ...invoiceEvent(n, 9).data, lines: one } });
    // The credit notes come first: intake does not hold the invoices yet, so it cannot compare.
    const stored = await stack.post([
      credit(1022, 1021, one, { customerNumber: "10" }),
      credit(1032, 1031, one, { currency: "EUR" }),
      invoice(1021),
      invoice(1031),
    ]);
    expect(stored.status).toBe(202);
    const settled = (await waitFor("all settled", async () => {
      const ds = await stack.deliveries();
      const of = (id: string) => ds.find((d: any) => d.eventId === id && ["done", "needs_action"].includes(d.status));
      return of("cn-1022") && of("cn-1032") && of("i-1021") && of("i-1031")
        ? { customer: of("cn-1022"), currency: of("cn-1032") }
        : undefined;
    }))!;
    expect(settled.customer).toMatchObject({ status: "needs_action", errorCode: "invoice.credits_other_customer" });
    expect(settled.customer.errorMessage).toContain("invoice 1021 of customer 9");
    expect(settled.currency).toMatchObject({ status: "needs_action", errorCode: "invoice.credits_other_currency" });
    expect(settled.currency.errorMessage).toContain("invoice 1031 in NOK");
    const booked = (await stack.sandboxState()).booked.map((b: any) => b.references?.other);
    expect(booked.sort()).toEqual(["PSA-INV-1021", "PSA-INV-1031"]);
  } finally {
    await stack.stop();
  }
}, 30_000);
