// A version of an invoice that reaches Uni Micro after the invoice is booked (a PSA that changed a finalized invoice,
// or a resend after a restore). A booked invoice cannot change; a version with other amounts was done with a note
// nobody is asked to read, and the books kept the old amounts while the PSA showed the new ones.
import { afterEach, expect, test } from "bun:test";
import { Invoice } from "../agent/model.ts";
import { ctx, invoice, seedMasterData, startEnv, thrown, type Env } from "./unimicro-fixtures.ts";

let env: Env;
afterEach(() => env?.stop());

const lines = (quantity: number) => ({ lines: [{ text: "Konsulenttimer", quantity, unitPrice: 125000, kind: "hours" }] });

test("a later version of a booked invoice: the same amounts are done, other amounts need action naming both", async () => {
  env = startEnv();
  await seedMasterData(env);
  const first = await env.connector.push("invoice", Invoice.parse(invoice(lines(2))), ctx());
  const link = { remoteId: first.remoteId };

  const sameAmounts = await env.connector.push("invoice", Invoice.parse(invoice({ ...lines(2), heading: "Ny tekst" })), ctx({ link }));
  expect(sameAmounts.remoteId).toBe(first.remoteId);

  for (const over of [{ link }, { uncertain: true }]) {
    const e = await thrown(env.connector.push("invoice", Invoice.parse(invoice(lines(3))), ctx(over)));
    expect({ kind: e.kind, code: e.code }).toEqual({ kind: "permanent", code: "unimicro.invoice_changed_after_booking" });
    expect(e.message).toContain("2500.00");
    expect(e.message).toContain("3750.00");
  }
  const booked = (await env.company()).invoices.filter((i: any) => i.StatusCode !== 42001);
  expect(booked.map((i: any) => i.TaxExclusiveAmount)).toEqual([2500]);
});
