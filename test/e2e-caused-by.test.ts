// Issue 10 (item 7): an invoice refused because of its customer is retried when the PSA
// corrects the customer — also when the customer has more than one thing to fix.
import { expect, test } from "bun:test";
import { startStack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, waitFor } from "./helpers.ts";

test("customer name AND street too long for the recipient: fixing the customer re-sends the invoice by itself", async () => {
  const stack = await startStack();
  try {
    const long = { name: "N".repeat(253), addresses: [{ street: "S".repeat(300), zip: "5013", city: "Bergen", country: "NO" }] };
    await stack.post([customerEvent(101, long), invoiceEvent(93010, 101)]);
    const d = await waitFor("invoice needs action", async () =>
      (await stack.deliveries("needs_action")).find((x) => x.entity === "invoice"),
    );
    expect(d.errorCode).toBe("economic.recipient_too_long");
    expect(d.errorHint).toContain("is sent again by itself"); // the promise made to the user

    // The PSA corrects the customer, as the hint says.
    await stack.post([customerEvent(101, { name: "Short name" }, "c-101-fixed")]);
    await waitFor(
      "customer 101 updated at e-conomic",
      async () => (await stack.deliveries("done")).filter((x) => x.entity === "customer").length >= 2,
    );
    await Bun.sleep(2_000);
    const inv = (await stack.deliveries()).filter((x) => x.entity === "invoice");
    expect(inv.map((x: any) => x.status)).toEqual(["done"]);
  } finally {
    await stack.stop();
  }
}, 30_000);

test("control: only the name too long — the same fix re-sends the invoice (passes today)", async () => {
  const stack = await startStack();
  try {
    await stack.post([customerEvent(101, { name: "N".repeat(253) }), invoiceEvent(93011, 101)]);
    await waitFor("invoice needs action", async () => (await stack.deliveries("needs_action")).find((x) => x.entity === "invoice"));
    await stack.post([customerEvent(101, { name: "Short name" }, "c-101-fixed")]);
    await waitFor("invoice booked", async () => (await stack.sandboxState()).booked.some((b: any) => b.bookedInvoiceNumber === 93011));
  } finally {
    await stack.stop();
  }
}, 30_000);
