// The file exports follow the model's sign convention: however the PSA writes a credit note's signs,
// intake's parsing (CreditNote) makes it one credit note, and the SIE voucher and every template row
// credit the customer's receivable by the same amount. No export looks at line signs itself.
import { describe, expect, test } from "bun:test";
import { parseEvents } from "../agent/intake.ts";
import { customerTotal, type InvoiceLike } from "../agent/model.ts";
import { invoicesToSieInput, invoiceToVoucher, SieInvoiceConfig } from "../formats/sie4/invoices.ts";
import { writeSie4i } from "../formats/sie4/writer.ts";
import { builtinTemplates } from "../formats/templates/builtin.ts";
import { renderTemplate } from "../formats/templates/render.ts";
import { buildRows, type ExportData } from "../formats/templates/rows.ts";

const posting = SieInvoiceConfig.parse({ costCentre: { source: "fixed", id: "200" }, customerDimension: true });
const HEADER = {
  program: "kontobro",
  programVersion: "test",
  generatedAt: "2026-03-31",
  companyName: "Test AB",
  fiscalYear: { start: "2026-01-01", end: "2026-12-31" },
};

const creditData = (lines: unknown[]) => ({
  number: "5002",
  psaId: "cn-5002",
  customerNumber: "100",
  projectNumber: "P-1",
  date: "2026-03-12",
  dueDate: "2026-03-12",
  currency: "SEK",
  creditedInvoiceNumber: "5001",
  lines,
});

/** As intake parses it: the envelope, then the model's CreditNote schema. */
function received(lines: unknown[]): InvoiceLike {
  const r = parseEvents({ id: `cn-${Math.random()}`, type: "invoice.credited", data: creditData(lines) });
  if (!r.ok) throw new Error(JSON.stringify(r.events));
  return r.events[0]!.data as InvoiceLike;
}

// The same credit note written four ways: positive lines (the convention), negative quantities,
// negative unit prices, and mixed signs whose total is negative (a discount line credited back).
const positive = received([
  { text: "Konsult", quantity: 2, unitPrice: 100000, vatCode: "25" },
  { text: "Rabatt", quantity: 1, unitPrice: -20000, vatCode: "25" },
  { text: "Resa", quantity: 1, unitPrice: 45050, kind: "expenses", vatCode: "12" },
]);
const variants: [string, InvoiceLike][] = [
  [
    "negative quantities",
    received([
      { text: "Konsult", quantity: -2, unitPrice: 100000, vatCode: "25" },
      { text: "Rabatt", quantity: 1, unitPrice: 20000, vatCode: "25" },
      { text: "Resa", quantity: -1, unitPrice: 45050, kind: "expenses", vatCode: "12" },
    ]),
  ],
  [
    "negative unit prices",
    received([
      { text: "Konsult", quantity: 2, unitPrice: -100000, vatCode: "25" },
      { text: "Rabatt", quantity: -1, unitPrice: -20000, vatCode: "25" },
      { text: "Resa", quantity: 1, unitPrice: -45050, kind: "expenses", vatCode: "12" },
    ]),
  ],
  [
    "negative quantity and price mixed",
    received([
      { text: "Konsult", quantity: -2, unitPrice: 100000, vatCode: "25" },
      { text: "Rabatt", quantity: -1, unitPrice: -20000, vatCode: "25" },
      { text: "Resa", quantity: 1, unitPrice: -45050, kind: "expenses", vatCode: "12" },
    ]),
  ],
];

const data = (doc: InvoiceLike): ExportData => ({
  customers: new Map([["100", { number: "100", name: "Kund AB", currency: "SEK", addresses: [], contacts: [], active: true } as any]]),
  projects: new Map([["P-1", { number: "P-1", name: "Projekt", status: "active", department: "200" } as any]]),
  users: new Map(),
  invoices: [{ doc, status: "to_transfer" }],
});

const voucher = (doc: InvoiceLike) => {
  const r = invoiceToVoucher(doc, posting);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.voucher;
};

describe("credit notes in the file exports", () => {
  // Net 2000.00 − 200.00 at 25 % and 450.50 at 12 %: VAT 450.00 + 54.06, gross 2754.56 credited.
  const gross = 200000 - 20000 + 45050 + 45000 + 5406;

  test("the receivable is credited with the gross, revenue and VAT are debited", () => {
    const v = voucher(positive);
    expect(v.transactions.map((t) => [String(t.account), t.amountMinor, t.meta?.role])).toEqual([
      ["1510", -gross, "receivable"],
      ["3041", 180000, "revenue"],
      ["3590", 45050, "revenue"],
      ["2611", 45000, "vat"],
      ["2621", 5406, "vat"],
    ]);
    expect(customerTotal(positive)).toBe(-(180000 + 45050));
  });

  for (const [how, doc] of variants) {
    test(`written with ${how}: the same SIE voucher and file`, () => {
      expect(voucher(doc)).toEqual(voucher(positive));
      const file = (d: InvoiceLike) => writeSie4i(invoicesToSieInput([d], posting, HEADER).input).text;
      expect(file(doc)).toBe(file(positive));
    });

    test(`written with ${how}: the same template rows and files`, () => {
      for (const dataType of ["invoices", "invoices_by_account"] as const) {
        expect(buildRows(dataType, data(doc), { posting })).toEqual(buildRows(dataType, data(positive), { posting }));
      }
      for (const t of builtinTemplates().filter((x) => x.dataType === "invoices" || x.dataType === "invoices_by_account")) {
        const render = (d: InvoiceLike) => renderTemplate(t, buildRows(t.dataType, data(d), { posting }).rows).text;
        expect(render(doc)).toBe(render(positive));
      }
    });
  }

  test("template rows: the customer owes less by the gross; net equals the model's customerTotal", () => {
    const [row] = buildRows("invoices", data(positive), { posting }).rows;
    expect(row).toMatchObject({ kind: "credit_note", netAmount: customerTotal(positive), vatAmount: -(45000 + 5406), grossAmount: -gross });
    const receivable = buildRows("invoices_by_account", data(positive), { posting }).rows.filter((r) => r.rowType === "receivable");
    expect(receivable.map((r) => [r.account, r.debit, r.credit, r.receivableCustomerNumber])).toEqual([["1510", 0, gross, "100"]]);
  });

  test("an invoice with a discount line still charges the customer (its sign is not a credit note's)", () => {
    const r = parseEvents({
      id: "inv",
      type: "invoice.finalized",
      data: {
        ...creditData([
          { text: "Konsult", quantity: 2, unitPrice: 100000, vatCode: "25" },
          { text: "Rabatt", quantity: -1, unitPrice: 20000, vatCode: "25" },
        ]),
        number: "5001",
        creditedInvoiceNumber: undefined,
      },
    });
    if (!r.ok) throw new Error(JSON.stringify(r.events));
    const v = voucher(r.events[0]!.data as InvoiceLike);
    expect(v.transactions.map((t) => [String(t.account), t.amountMinor])).toEqual([
      ["1510", 225000],
      ["3041", -180000],
      ["2611", -45000],
    ]);
  });
});
