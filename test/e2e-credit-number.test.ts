// Issue 10 (item 1/11): a credit note is stored as record ("invoice", number). A PSA that numbers
// credit notes in their own series (credit note 1, 2, … next to invoice 1, 2, …) makes credit note 1 a "newer
// version" of invoice 1: the invoice's pending delivery is superseded (coalescing) and never booked, while the
// credit note is booked: the customer ends up credited for an invoice that was never charged.
import { expect, test } from "bun:test";
import { startStack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, waitFor } from "./helpers.ts";

test("invoice 1 and credit note 1 (own series): both reach e-conomic, or the credit note is refused at intake", async () => {
  const stack = await startStack({ economic: { paused: true } }); // e.g. e-conomic down for a while
  try {
    await stack.post([customerEvent(9), invoiceEvent(1, 9)]);
    const credit = {
      id: "cn-1",
      type: "invoice.credited",
      data: {
        ...invoiceEvent(1, 9).data,
        psaId: "PSA-CN-1",
        creditedInvoiceNumber: 77, // an invoice from before kontobro
        lines: [{ text: "Credit for invoice 77", quantity: 1, unitPrice: 50000, kind: "hours" }],
      },
    };
    const res = await stack.post([credit]);
    expect(res.status).toBe(409); // refused with a reason, nothing replaced
    expect(res.body.events[0].problems[0].code).toBe("invoice.number_taken");
    // The invoice itself is still booked once the target is back.
    await stack.restartWith({ paused: false });
    await waitFor(
      "queue settled",
      async () => (await stack.deliveries("pending")).length === 0 && (await stack.deliveries("waiting")).length === 0,
    );
    await Bun.sleep(500);
    const booked = (await stack.sandboxState()).booked.map((b: any) => ({
      number: b.bookedInvoiceNumber,
      ref: b.references?.other,
      net: b.netAmount,
    }));
    expect(booked.map((b: any) => b.ref).sort()).toEqual(["PSA-INV-1"]);
  } finally {
    await stack.stop();
  }
}, 30_000);
