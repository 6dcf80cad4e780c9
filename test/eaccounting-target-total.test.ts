// eAccounting computes a draft's totals itself (eaccounting.md §8.1: TotalAmount, TotalVatAmount, set by the server) and
// answers the draft's POST with them. A person sends the draft as it stands, so one eAccounting computed otherwise than
// the PSA (here a price list of the sandbox's, a fault) must not stand: through the real agent, the invoice needs action
// naming both totals, its draft is deleted, and a retry once the price is right makes it again with the PSA's total.
import { afterEach, describe, expect, test } from "bun:test";
import { ev, startEaStack, type EaStack } from "./eaccounting-harness.ts";
import { customerData, invoiceData, projectData } from "./eaccounting-fixtures.ts";
import { waitFor } from "./helpers.ts";

let s: EaStack | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

const masterData = () => [ev("customer.upserted", customerData()), ev("project.upserted", projectData())];

describe("eAccounting: the draft's own total checked before it stands as the invoice", () => {
  test("a draft priced otherwise (a price list) is deleted: needs action with both totals; retry makes it with the PSA's total", async () => {
    s = await startEaStack();
    await s.control("price-list", { "100": 1500 }, "PUT"); // default_article: both lines
    await s.send([...masterData(), ev("invoice.finalized", invoiceData())]);
    const inv = await waitFor("invoice needs action", async () =>
      (await s!.deliveries("needs_action")).find((d: any) => d.entity === "invoice"),
    );
    expect(inv.errorCode).toBe("eaccounting.total_differs");
    // 37.5 h and one expense line at 1500 instead of 1250.00 and 1984.00.
    expect(inv.errorMessage).toContain("eAccounting computed its total excluding VAT as 57750.00 SEK, but the PSA invoiced 48859.00 SEK");
    expect(inv.errorMessage).toContain("but the PSA invoiced 48859.00 SEK. Its draft was deleted in eAccounting");
    expect(inv.errorMessage).not.toContain("booked"); // kontobro books nothing in eAccounting: a person sends the drafts
    expect(inv.errorHint).toContain("a product's own price or a price list");
    expect(inv.errorHint).toContain("kontobro retry");
    expect((await s.state()).drafts).toHaveLength(0);

    await s.control("price-list", {}, "PUT");
    expect((await s.api(`/api/v1/deliveries/${inv.id}/retry`, { method: "POST" })).status).toBe(200);
    await waitFor("invoice done after retry", async () => (await s!.deliveries("done")).some((d: any) => d.id === inv.id));
    const drafts = (await s.state()).drafts;
    expect(drafts.map((d: any) => [d.ElectronicReference, d.TotalAmount, d.TotalVatAmount])).toEqual([
      ["kontobro:psa-inv-20001", 61073.75, 12214.75],
    ]);
  });
});
