// A version of an invoice that reaches eAccounting after a person sent kontobro's draft there (eAccounting then
// books it, and a sent invoice cannot change): by its link, or after a restore or an uncertain attempt by its
// reference. A version with other amounts was done with a note nobody is asked to read, and the books kept the old
// amounts while the PSA showed the new ones.
import { afterEach, expect, test } from "bun:test";
import { CreditNote } from "../agent/model.ts";
import { ctx, customer, invoice, invoiceData, project, related, startEnv, thrown, type Env } from "./eaccounting-fixtures.ts";

let env: Env;
afterEach(async () => {
  await env?.stop();
});

const lines = (quantity: number) => ({ lines: [{ text: "Konsulttimmar april", quantity, unitPrice: 125000, kind: "hours" }] });
const records = { record: related({ customer: customer() }) };

async function seed(e: Env): Promise<void> {
  await e.connector.push("customer", customer(), ctx());
  await e.connector.push("project", project(), ctx());
}

test("a later version of a sent invoice: the same amounts are done, other amounts need action naming both", async () => {
  env = startEnv();
  await seed(env);
  const draft = await env.connector.push("invoice", invoice(lines(2)), ctx(records));
  await env.control("send-draft", { draftId: draft.remoteId.slice(6) });
  const link = { remoteId: draft.remoteId };

  const sameAmounts = await env.connector.push("invoice", invoice({ ...lines(2), heading: "Ny text" }), ctx({ ...records, link }));
  expect(sameAmounts.remoteId).toBe(draft.remoteId);
  expect(sameAmounts.note).toContain("as invoice 1001");

  for (const over of [{ link }, { uncertain: true }]) {
    const e = await thrown(env.connector.push("invoice", invoice(lines(3)), ctx({ ...records, ...over })));
    expect({ kind: e.kind, code: e.code }).toEqual({ kind: "permanent", code: "eaccounting.invoice_changed_after_sending" });
    expect(e.message).toContain("2500.00 SEK");
    expect(e.message).toContain("3750.00 SEK");
  }
  const s = await env.state();
  expect(s.drafts).toHaveLength(0);
  expect(s.invoices.map((i: any) => [i.InvoiceNumber, i.TotalAmount - i.TotalVatAmount])).toEqual([[1001, 2500]]);
});

test("a sent credit invoice is compared by its size: an unchanged resend is done, another amount needs action", async () => {
  env = startEnv({ config: { credit_notes: "draft" } });
  await seed(env);
  const credit = (quantity: number) =>
    CreditNote.parse({
      ...invoiceData({ number: "20002", psaId: "psa-cn-20002", ...lines(quantity) }),
      kind: "credit_note",
      creditedInvoiceNumber: "20001",
    });
  const draft = await env.connector.push("invoice", credit(1), ctx(records));
  await env.control("send-draft", { draftId: draft.remoteId.slice(6) });
  const again = await env.connector.push("invoice", credit(1), ctx({ ...records, uncertain: true }));
  expect(again.remoteId).toBe(draft.remoteId);
  const e = await thrown(env.connector.push("invoice", credit(2), ctx({ ...records, uncertain: true })));
  expect(e.code).toBe("eaccounting.invoice_changed_after_sending");
  expect(e.message).toContain("-1250.00 SEK");
  expect(e.message).toContain("-2500.00 SEK");
});
