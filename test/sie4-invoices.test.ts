import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { CreditNote, Invoice, type InvoiceLike } from "../agent/model.ts";
import { invoicesToSieInput, invoiceToVoucher, SieInvoiceConfig } from "../formats/sie4/invoices.ts";
import { readSie } from "../formats/sie4/reader.ts";
import { writeSie4i, type SieVoucherInput } from "../formats/sie4/writer.ts";

const SE = SieInvoiceConfig.parse({ costCentre: { source: "fixed", id: "200" } });
const HEADER = {
  program: "kontobro",
  programVersion: "0.1.0",
  generatedAt: "2025-02-01",
  companyName: "Exempel Konsult AB",
  orgNumber: "559999-9999",
  fiscalYear: { start: "2025-01-01", end: "2025-12-31" },
};

const invoice = (over: Record<string, unknown> = {}) =>
  Invoice.parse({
    number: "10001",
    psaId: "inv-1",
    customerNumber: "20001",
    projectNumber: "P-100",
    date: "2025-01-31",
    dueDate: "2025-02-28",
    currency: "SEK",
    lines: [{ text: "Konsulttjänster januari", quantity: 10, unitPrice: 115000 }],
    ...over,
  });
const credit = (over: Record<string, unknown> = {}) =>
  CreditNote.parse({
    number: "10003",
    psaId: "cn-1",
    customerNumber: "20001",
    projectNumber: "P-100",
    date: "2025-02-05",
    dueDate: "2025-02-05",
    currency: "SEK",
    creditedInvoiceNumber: "10001",
    lines: [{ text: "Kreditering 1 h", quantity: 1, unitPrice: 115000 }],
    ...over,
  });
const voucherOf = (doc: InvoiceLike, config = SE) => {
  const r = invoiceToVoucher(doc, config);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.voucher;
};
const rows = (v: SieVoucherInput) =>
  v.transactions.map((t) => [String(t.account), t.amountMinor, (t.objects ?? []).map((o) => `${o.dimension}:${o.id}`).join(" ")]);

describe("config", () => {
  test("Swedish BAS defaults", () => {
    const c = SieInvoiceConfig.parse({});
    expect(c).toMatchObject({
      receivableAccount: "1510",
      revenueAccounts: { hours: "3041", expenses: "3590", products: "3001" },
      defaultVatCode: "25",
      roundingAccount: "3740",
      roundTotal: "none",
      series: "",
      voucherNumber: "none",
      currency: "SEK",
      projectDimension: true,
      costCentre: { source: "none" },
      customerDimension: false,
    });
    expect(c.vatCodes["25"]).toEqual({ rate: 25, account: "2611", revenueAccounts: { hours: "3041", products: "3001" } });
  });

  test("rejects a non-numeric account", () => {
    expect(SieInvoiceConfig.safeParse({ receivableAccount: "15x0" }).success).toBe(false);
  });
});

describe("invoice → voucher", () => {
  test("invoice: receivable debit, revenue with cost centre and project, VAT credit", () => {
    const v = voucherOf(invoice());
    expect(v).toMatchObject({ series: "", date: "2025-01-31", text: "Faktura 10001, kund 20001" });
    expect(v.number).toBeUndefined();
    expect(rows(v)).toEqual([
      ["1510", 1437500, ""],
      ["3041", -1150000, "1:200 6:P-100"],
      ["2611", -287500, ""],
    ]);
  });

  test("credit note with positive lines is reversed", () => {
    const v = voucherOf(credit());
    expect(v.text).toBe("Kreditnota 10003 avser faktura 10001");
    expect(rows(v)).toEqual([
      ["1510", -143750, ""],
      ["3041", 115000, "1:200 6:P-100"],
      ["2611", 28750, ""],
    ]);
  });

  test("credit note already carrying negative lines gives the same voucher", () => {
    const v = voucherOf(credit({ lines: [{ text: "Kreditering 1 h", quantity: -1, unitPrice: 115000 }] }));
    expect(rows(v)).toEqual(rows(voucherOf(credit())));
  });

  test("several VAT rates and kinds, line account override, VAT rounded on the sum per code", () => {
    const v = voucherOf(
      invoice({
        projectNumber: undefined,
        lines: [
          { text: "a", quantity: 3, unitPrice: 3333 }, // 99.99 @ 25 %
          { text: "b", quantity: 1, unitPrice: 3333, kind: "expenses" }, // 33.33 @ 25 %
          { text: "c", quantity: 1.5, unitPrice: 670, vatCode: "12", kind: "products" }, // 10.05 @ 12 %
          { text: "d", quantity: 1, unitPrice: 10000, vatCode: "0", account: "3105" },
        ],
      }),
      SieInvoiceConfig.parse({}),
    );
    // VAT 25 %: (9999 + 3333) × 0.25 = 3333 exactly; 12 %: 1005 × 0.12 = 120.6 → 121.
    expect(rows(v)).toEqual([
      ["1510", 9999 + 3333 + 1005 + 10000 + 3333 + 121, ""],
      ["3041", -9999, ""],
      ["3590", -3333, ""],
      ["3002", -1005, ""],
      ["3105", -10000, ""],
      ["2611", -3333, ""],
      ["2621", -121, ""],
    ]);
    expect(v.transactions.find((t) => t.account === "2621")!.text).toBe("Moms 12 %");
  });

  test("VAT half-öre rounds away from zero, for invoices and credit notes alike", () => {
    const line = [{ text: "x", quantity: 1, unitPrice: 1 }]; // 0.01 × 25 % = 0.0025 → 0; use 0.02 → 0.005 → 0.01
    expect(
      rows(voucherOf(invoice({ lines: [{ ...line[0], unitPrice: 2 }], projectNumber: undefined }), SieInvoiceConfig.parse({}))),
    ).toEqual([
      ["1510", 3, ""],
      ["3041", -2, ""],
      ["2611", -1, ""],
    ]);
    expect(
      rows(voucherOf(credit({ lines: [{ ...line[0], unitPrice: 2 }], projectNumber: undefined }), SieInvoiceConfig.parse({}))),
    ).toEqual([
      ["1510", -3, ""],
      ["3041", 2, ""],
      ["2611", 1, ""],
    ]);
  });

  test("rounding to whole kronor goes to the rounding account and still balances", () => {
    const config = SieInvoiceConfig.parse({ roundTotal: "krona" });
    const up = voucherOf(invoice({ lines: [{ text: "x", quantity: 1, unitPrice: 10040 }], projectNumber: undefined }), config); // gross 125.50
    expect(rows(up)).toEqual([
      ["1510", 12600, ""],
      ["3041", -10040, ""],
      ["2611", -2510, ""],
      ["3740", -50, ""],
    ]);
    const down = voucherOf(credit({ lines: [{ text: "x", quantity: 1, unitPrice: 10032 }], projectNumber: undefined }), config); // gross 125.40
    expect(rows(down)).toEqual([
      ["1510", -12500, ""],
      ["3041", 10032, ""],
      ["2611", 2508, ""],
      ["3740", -40, ""],
    ]);
  });

  test("customer dimension, department as cost centre, one row per line, invoice number as voucher number", () => {
    const config = SieInvoiceConfig.parse({
      customerDimension: true,
      costCentre: { source: "project_department" },
      revenueDetail: "per_line",
      voucherNumber: "invoice_number",
      series: "F",
    });
    const r = invoiceToVoucher(
      invoice({
        lines: [
          { text: "v1", quantity: 1, unitPrice: 100 },
          { text: "v2", quantity: 2, unitPrice: 100 },
        ],
      }),
      config,
      { projects: [{ number: "P-100", name: "Nybygge Åre", department: "300" }] },
    );
    expect(r.ok && r.voucher).toMatchObject({ series: "F", number: "10001" });
    expect(r.ok && rows(r.voucher)).toEqual([
      ["1510", 375, "8:20001"],
      ["3041", -100, "1:300 6:P-100"],
      ["3041", -200, "1:300 6:P-100"],
      ["2611", -75, ""],
    ]);
    expect(r.ok && r.voucher.transactions[2]!.text).toBe("v2");
  });

  test("unknown VAT code, missing VAT account and foreign currency are refused with hints", () => {
    const config = SieInvoiceConfig.parse({ vatCodes: { "25": { rate: 25 } } });
    const r = invoiceToVoucher(
      invoice({
        currency: "NOK",
        lines: [
          { text: "a", quantity: 1, unitPrice: 100, vatCode: "3" },
          { text: "b", quantity: 1, unitPrice: 100 },
        ],
      }),
      config,
    );
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.problems.map((p) => [p.code, p.field])).toEqual([
        ["sie4.currency_mismatch", "currency"],
        ["sie4.unknown_vat_code", "lines[0].vatCode"],
        ["sie4.missing_vat_account", "lines[1].vatCode"],
      ]);
      expect(r.problems[1]!.hint).toContain('vatCodes."3"');
      // Before: "export this document separately", which no setting allows (one currency per configuration).
      expect(r.problems[0]!.hint).toBe(
        'Book it in the accounting system by hand, then mark it "do not transfer" (kontobro export set-status 10001 do_not_transfer) so exports stop leaving it out.',
      );
    }
  });
});

describe("invoices → SIE file", () => {
  test("a bad document is left out and reported; the others are written", () => {
    const { input, rejected } = invoicesToSieInput([credit(), invoice({ number: "10002", currency: "EUR" }), invoice()], SE, HEADER, {
      projects: [{ number: "P-100", name: "Nybygge Åre" }],
    });
    expect(rejected.map((r) => [r.number, r.problems[0]!.code])).toEqual([["10002", "sie4.currency_mismatch"]]);
    expect(input.vouchers.map((v) => v.text)).toEqual(["Faktura 10001, kund 20001", "Kreditnota 10003 avser faktura 10001"]);
    expect(input.accounts).toEqual([
      { number: "1510", name: "Kundfordringar" },
      { number: "2611", name: "Utgående moms på försäljning inom Sverige, 25 %" },
      { number: "3041", name: "Försäljning tjänster inom Sverige, 25 % moms" },
    ]);
    expect(input.dimensions).toEqual([
      { id: 1, name: "Kostnadsställe", objects: [{ id: "200", name: "200" }] },
      { id: 6, name: "Projekt", objects: [{ id: "P-100", name: "Nybygge Åre" }] },
    ]);
  });

  const synthetic = path.join(import.meta.dir, "../../shared/reference/sie-synthetic/synthetic-4i-valid.si");
  test.skipIf(!existsSync(synthetic))("the vouchers match the synthetic fixture's invoice and credit note", () => {
    const { input } = invoicesToSieInput([invoice(), credit()], SE, HEADER);
    const mine = readSie(writeSie4i(input).bytes).document.vouchers;
    const fixture = readSie(new Uint8Array(readFileSync(synthetic))).document.vouchers;
    const shape = (v: (typeof mine)[number]) => [v.date, v.text, v.transactions.map((t) => [t.account, t.amountMinor, t.objects])];
    expect(mine.map(shape)).toEqual([fixture[0]!, fixture[2]!].map(shape));
  });

  test("numbered with the invoice number: vouchers in increasing number order whatever their dates; a number with other characters than digits is refused", () => {
    const numbered = SieInvoiceConfig.parse({ voucherNumber: "invoice_number", series: "F" });
    const docs = [
      invoice({ number: "10002", psaId: "a", date: "2025-01-10" }),
      invoice({ number: "10001", psaId: "b", date: "2025-01-20" }),
      credit({ number: "9", psaId: "c", date: "2025-01-05" }),
      invoice({ number: "F-12", psaId: "d", date: "2025-01-15" }),
    ];
    const { input, rejected } = invoicesToSieInput(docs, numbered, HEADER);
    // Before: sorted by date (10002 before 10001: an importer refuses a series out of order), and "F-12" was written as vernr.
    expect(input.vouchers.map((v) => v.number)).toEqual(["9", "10001", "10002"]);
    expect(rejected.map((r) => [r.number, r.problems[0]!.code])).toEqual([["F-12", "sie4.bad_voucher_number"]]);
    expect(rejected[0]!.problems[0]!.hint).toContain("voucher_number");
    // Only the SIE file numbers vouchers: the templates' rows (invoiceToVoucher) take any invoice number.
    expect(invoiceToVoucher(docs[3]!, numbered).ok).toBe(true);
  });

  test("property: random invoices and credit notes always balance and survive write → read", () => {
    let seed = 7;
    const rand = (n: number) => Math.floor(((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * n);
    const codes = ["25", "12", "6", "0"];
    const kinds = ["hours", "expenses", "products"] as const;
    const docs: InvoiceLike[] = Array.from({ length: 200 }, (_, i) => {
      const lines = Array.from({ length: 1 + rand(6) }, (_, j) => ({
        text: `Rad ${j} ø€"{\\}`,
        quantity: ((rand(2000) + 1) / (rand(2) ? 4 : 1)) * (rand(8) === 0 ? -1 : 1),
        unitPrice: rand(2_000_000) - 100_000,
        vatCode: codes[rand(4)],
        kind: kinds[rand(3)],
      }));
      const base = {
        number: String(20000 + i),
        customerNumber: String(rand(50)),
        projectNumber: rand(2) ? `P-${rand(9)}` : undefined,
        date: `2025-0${1 + rand(9)}-1${rand(10)}`,
        dueDate: "2025-12-31",
        lines,
      };
      // An invoice's total is never negative (model sign rules): a negative one is generated as a credit note.
      const stated = lines.reduce((t, l) => t + l.quantity * l.unitPrice, 0);
      return rand(3) === 0 || stated < 0 ? credit(base) : invoice(base);
    });
    for (const roundTotal of ["none", "krona"] as const) {
      const config = SieInvoiceConfig.parse({ roundTotal, customerDimension: true, costCentre: { source: "fixed", id: "1" } });
      const { input, rejected } = invoicesToSieInput(docs, config, HEADER);
      expect(rejected).toEqual([]);
      for (const v of input.vouchers) expect(v.transactions.reduce((s, t) => s + t.amountMinor, 0)).toBe(0);
      const written = writeSie4i(input);
      const read = readSie(written.bytes);
      expect(read.problems).toEqual([]);
      expect(read.document.vouchers).toHaveLength(200);
      expect(read.document.vouchers.flatMap((v) => v.transactions.map((t) => t.amountMinor))).toEqual(
        input.vouchers.flatMap((v) => v.transactions.map((t) => t.amountMinor)),
      );
    }
  });
});
