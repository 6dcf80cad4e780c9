// A version of an invoice that reaches Uniconta after the invoice is posted (a PSA that changed a finalized invoice,
// or a resend after a restore, where the posted invoice is found by its reference). A posted invoice cannot change;
// a version with other amounts was done with a note nobody is asked to read, and the books kept the old amounts
// while the PSA showed the new ones.
import { afterEach, expect, test } from "bun:test";
import { creditNote, ctx, invoice, project, related, seedMasterData, startEnv, thrown, type Env } from "./uniconta-fixtures.ts";

let env: Env;
afterEach(async () => {
  await env?.stop();
});

const lines = (quantity: number) => ({ lines: [{ text: "Konsulenttimer april", quantity, unitPrice: 125000, kind: "hours" }] });
const records = { record: related({ project: project() }) };

test("a later version of a posted invoice: the same amounts are done, other amounts need action naming both", async () => {
  env = startEnv();
  await seedMasterData(env);
  const first = await env.connector.push("invoice", invoice(lines(2)), ctx(records));
  const link = { remoteId: first.remoteId };

  const sameAmounts = await env.connector.push("invoice", invoice({ ...lines(2), heading: "Ny tekst" }), ctx({ ...records, link }));
  expect(sameAmounts.remoteId).toBe(first.remoteId);
  expect(sameAmounts.note).toContain("cannot change");

  for (const over of [{ link }, { uncertain: true }]) {
    const e = await thrown(env.connector.push("invoice", invoice(lines(3)), ctx({ ...records, ...over })));
    expect({ kind: e.kind, code: e.code }).toEqual({ kind: "permanent", code: "uniconta.invoice_changed_after_posting" });
    expect(e.message).toContain("2500.00 DKK");
    expect(e.message).toContain("3750.00 DKK");
  }
  const posted = await env.rows("DebtorInvoiceClient");
  expect(posted.map((i: any) => i.NetAmount)).toEqual([2500]);
});

test("a credit note posted before is compared by its negative net amount: an unchanged resend is done", async () => {
  env = startEnv();
  await seedMasterData(env);
  await env.connector.push("invoice", invoice(lines(2)), ctx(records));
  const credit = await env.connector.push("invoice", creditNote(lines(1)), ctx(records));
  const again = await env.connector.push("invoice", creditNote(lines(1)), ctx({ ...records, uncertain: true }));
  expect(again.remoteId).toBe(credit.remoteId);
  const e = await thrown(env.connector.push("invoice", creditNote(lines(2)), ctx({ ...records, uncertain: true })));
  expect(e.code).toBe("uniconta.invoice_changed_after_posting");
  expect(e.message).toContain("-1250.00 DKK");
});

test("an invoice in another currency than the company's is not compared (which currency NetAmount is in is unverified)", async () => {
  env = startEnv({ config: { company_currency: "EUR" } });
  await seedMasterData(env);
  await env.connector.push("invoice", invoice(lines(2)), ctx(records));
  const again = await env.connector.push("invoice", invoice(lines(3)), ctx({ ...records, uncertain: true }));
  expect(again.remoteId).toBe("20001");
  // Done, but not as if its amounts were checked: the note says they were not (a resend into a new data directory is
  // such a first push too).
  expect(again.note).toContain("Its amounts were not compared (the invoice is in DKK, company_currency is EUR)");
  const linked = await env.connector.push("invoice", invoice(lines(3)), ctx({ ...records, link: { remoteId: "20001" } }));
  expect(linked.note).toContain("were not compared");
  expect(linked.note).not.toContain("with these amounts");
});
