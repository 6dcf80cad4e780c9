// e-conomic computes a draft's total itself (economic.md §8.1: the draft's answer carries its totals). One it computes
// otherwise than the PSA (here a price list of the sandbox's, a fault) is never booked: the invoice needs action naming
// both totals, its draft is deleted, and once the price is right again a retry books it.
import { afterEach, describe, expect, test } from "bun:test";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, projectEvent, waitFor } from "./helpers.ts";

let stack: Stack;
afterEach(async () => {
  await stack?.stop();
});

const priceList = (prices: Record<string, number>) =>
  fetch(`${stack.sandboxUrl}/__sandbox/price-list`, {
    method: "PUT",
    body: JSON.stringify(prices),
    headers: { "content-type": "application/json" },
  });

describe("e-conomic: the draft's own total checked before booking", () => {
  test("a draft priced otherwise (a price list) is not booked: needs action with both totals, draft deleted; retry books it", async () => {
    stack = await startStack();
    expect((await priceList({ TIME: 1500 })).status).toBe(200);
    await stack.post([customerEvent(10042), projectEvent(4711, 10042), invoiceEvent(20001, 10042, 4711)]);
    const inv = await waitFor("invoice needs action", async () =>
      (await stack.deliveries("needs_action")).find((d) => d.entity === "invoice"),
    );
    expect(inv.errorCode).toBe("economic.total_differs");
    expect(inv.errorMessage).toContain("e-conomic computed its total excluding VAT as 11750.00 NOK, but the PSA invoiced 11375.00 NOK");
    expect(inv.errorMessage).toContain("It was not booked.");
    expect(inv.errorHint).toContain("a product's own price or a price list");
    expect(inv.errorHint).toContain("kontobro retry");
    let s = await stack.sandboxState();
    expect(s.booked).toHaveLength(0);
    expect(s.drafts).toHaveLength(0);

    await priceList({});
    const res = await fetch(`${stack.agent.url}/api/v1/deliveries/${inv.id}/retry`, {
      method: "POST",
      headers: { authorization: "Bearer test-token-0123456789" },
    });
    expect(res.status).toBe(200);
    await waitFor("invoice booked after retry", async () => (await stack.deliveries("done")).some((d) => d.id === inv.id));
    s = await stack.sandboxState();
    expect(s.booked.map((b: any) => [b.bookedInvoiceNumber, b.netAmount])).toEqual([[20001, 11375]]);
    expect(s.drafts).toHaveLength(0);
  });

  test("a line e-conomic discounts (netAmount is before discounts) is not booked: needs action naming the line; retry books it", async () => {
    stack = await startStack();
    const discounts = (d: Record<string, number>) =>
      fetch(`${stack.sandboxUrl}/__sandbox/line-discounts`, {
        method: "PUT",
        body: JSON.stringify(d),
        headers: { "content-type": "application/json" },
      });
    expect((await discounts({ TIME: 10 })).status).toBe(200);
    await stack.post([customerEvent(10042), projectEvent(4711, 10042), invoiceEvent(20001, 10042, 4711)]);
    const inv = await waitFor("invoice needs action", async () =>
      (await stack.deliveries()).find((d) => d.entity === "invoice" && (d.status === "needs_action" || d.status === "done")),
    );
    expect(inv.status).toBe("needs_action");
    expect(inv.errorCode).toBe("economic.total_differs");
    expect(inv.errorMessage).toContain('e-conomic gave line 1 ("Consulting") a discount of 10%');
    expect(inv.errorMessage).toContain("It was not booked.");
    expect(inv.errorHint).toContain("kontobro retry");
    let s = await stack.sandboxState();
    expect(s.booked).toHaveLength(0);
    expect(s.drafts).toHaveLength(0);

    await discounts({});
    const res = await fetch(`${stack.agent.url}/api/v1/deliveries/${inv.id}/retry`, {
      method: "POST",
      headers: { authorization: "Bearer test-token-0123456789" },
    });
    expect(res.status).toBe(200);
    await waitFor("invoice booked after retry", async () => (await stack.deliveries("done")).some((d) => d.id === inv.id));
    s = await stack.sandboxState();
    expect(s.booked.map((b: any) => [b.bookedInvoiceNumber, b.netAmount])).toEqual([[20001, 11375]]);
  });
});
