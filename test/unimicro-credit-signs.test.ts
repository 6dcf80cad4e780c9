// Issue 10 item 1 at Uni Micro: the model's one sign convention, through the connector and the sandbox over
// real HTTP. The sandbox computes the totals itself (as the platform does) and books the receivable on 1500,
// so "what the customer owes" is read from its ledger, not from what kontobro sent.
import { afterEach, describe, expect, test } from "bun:test";
import { CreditNote, Invoice } from "../agent/model.ts";
import { ctx, invoice, seedMasterData, startEnv, type Env } from "./unimicro-fixtures.ts";

let env: Env;
afterEach(() => env?.stop());

/** The customer's balance in the sandbox's ledger (receivables account 1500, the customer's sub-account), in kroner. */
async function owed(): Promise<number> {
  const co = await env.company();
  const ledger = (await (await fetch(`${env.url}/__sandbox/ledger`)).json()) as any[];
  const receivables = ledger.filter((l: any) => l.SubAccountID === co.customers[0].ID);
  return Math.round(receivables.reduce((s: number, l: any) => s + l.Amount, 0) * 100) / 100;
}

/** The canonical payload, parsed as intake does. */
const credit = (number: string, lines: object[]) =>
  CreditNote.parse(invoice({ kind: "credit_note", number, psaId: `psa-inv-${number}`, creditedInvoiceNumber: "10117", lines }));

async function bookOriginal(): Promise<void> {
  await seedMasterData(env);
  await env.connector.push("invoice", Invoice.parse(invoice()), ctx());
}

describe("Uni Micro credit notes follow the model's sign convention", () => {
  test("a credit note written with positive lines books negative and lowers what the customer owes", async () => {
    env = startEnv();
    await bookOriginal();
    const before = await owed();
    expect(before).toBe(61073.75); // 48 859.00 + 25 % VAT

    const r = await env.connector.push(
      "invoice",
      credit("10118", [{ text: "Kreditert reise", quantity: 1, unitPrice: 198400, kind: "expenses" }]),
      ctx(),
    );
    const co = await env.company();
    const cn = co.invoices.find((i: any) => String(i.ID) === r.remoteId);
    expect(cn).toMatchObject({ StatusCode: 42002, InvoiceType: 1, TaxExclusiveAmount: -1984, TaxInclusiveAmount: -2480 });
    expect(await owed()).toBe(before - 2480);
    expect(co.invoices.find((i: any) => i.InvoiceNumber === "10117").RestAmount).toBe(before - 2480);
  });

  test("a credit note written with minus signs (all lines negative) also books negative, never as a charge", async () => {
    env = startEnv();
    await bookOriginal();
    const before = await owed();
    const payload = credit("10119", [
      { text: "Kreditert timer", quantity: -2, unitPrice: 125000, kind: "hours" },
      { text: "Kreditert reise", quantity: 1, unitPrice: -198400, kind: "expenses" },
    ]);
    const r = await env.connector.push("invoice", payload, ctx());
    const cn = (await env.company()).invoices.find((i: any) => String(i.ID) === r.remoteId);
    expect(cn.Items.map((i: any) => i.NumberOfItems)).toEqual([-2, -1]);
    expect(cn.Items.every((i: any) => i.PriceExVat > 0)).toBe(true);
    expect(cn).toMatchObject({ TaxExclusiveAmount: -4484, TaxInclusiveAmount: -5605 });
    expect(await owed()).toBe(before - 5605);
  });

  test("a credit note with mixed signs keeps their relative meaning", async () => {
    env = startEnv();
    await bookOriginal();
    const before = await owed();
    // Credit 3 hours, but one hour of it had already been given as a discount.
    const r = await env.connector.push(
      "invoice",
      credit("10120", [
        { text: "Kreditert timer", quantity: 3, unitPrice: 125000, kind: "hours" },
        { text: "Allerede gitt rabatt", quantity: -1, unitPrice: 125000, kind: "hours" },
      ]),
      ctx(),
    );
    const cn = (await env.company()).invoices.find((i: any) => String(i.ID) === r.remoteId);
    expect(cn.Items.map((i: any) => i.NumberOfItems)).toEqual([-3, 1]);
    expect(cn.TaxExclusiveAmount).toBe(-2500);
    expect(await owed()).toBe(before - 3125);
  });

  test("an invoice with a discount line (mixed signs, positive total) is booked with the right total", async () => {
    env = startEnv();
    await seedMasterData(env);
    const inv = Invoice.parse(
      invoice({
        lines: [
          { text: "Konsulenttimer april", quantity: 37.5, unitPrice: 125000, kind: "hours" },
          { text: "Rabatt", quantity: 1, unitPrice: -500000, kind: "hours" },
        ],
      }),
    );
    const r = await env.connector.push("invoice", inv, ctx());
    const booked = (await env.company()).invoices.find((i: any) => String(i.ID) === r.remoteId);
    expect(booked.Items.map((i: any) => [i.NumberOfItems, i.PriceExVat])).toEqual([
      [37.5, 1250],
      [-1, 5000],
    ]);
    expect(booked).toMatchObject({ StatusCode: 42002, TaxExclusiveAmount: 41875, TaxInclusiveAmount: 52343.75 });
    expect(await owed()).toBe(52343.75);
  });

  test("a credit note stored with minus signs before the convention is turned round by the model at push time", async () => {
    env = startEnv();
    await bookOriginal();
    const before = await owed();
    const parsed = credit("10121", [{ text: "Kreditert timer", quantity: 1, unitPrice: 100000, kind: "hours" }]);
    const old = { ...parsed, lines: parsed.lines.map((l) => ({ ...l, quantity: -l.quantity })) }; // as stored, not parsed
    const r = await env.connector.push("invoice", old, ctx());
    const cn = (await env.company()).invoices.find((i: any) => String(i.ID) === r.remoteId);
    expect(cn.TaxInclusiveAmount).toBe(-1250);
    expect(await owed()).toBe(before - 1250);
  });
});

describe("the sandbox books totals as the platform does", () => {
  test("a credit note with a positive total and an invoice with a negative total are refused at the invoice transition", async () => {
    env = startEnv();
    await bookOriginal();
    const co = await env.company();
    const original = co.invoices[0];
    const product = co.products[0].ID;
    // A credit draft rewritten by hand to positive lines cannot be booked.
    const res = await fetch(`${env.url}/__sandbox/manual/invoices`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        creditOf: original.ID,
        book: true,
        invoice: { Items: [{ ProductID: product, NumberOfItems: 1, PriceExVat: 100 }] },
      }),
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain("A credit note must have a negative total");
    const neg = await fetch(`${env.url}/__sandbox/manual/invoices`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        book: true,
        invoice: { CustomerID: original.CustomerID, Items: [{ ProductID: product, NumberOfItems: -1, PriceExVat: 100 }] },
      }),
    });
    expect(neg.status).toBe(400);
    expect(JSON.stringify(await neg.json())).toContain("cannot have a negative total");
  });
});
