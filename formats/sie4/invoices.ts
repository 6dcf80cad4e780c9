// Finalized invoices and credit notes (the canonical model) → balanced SIE vouchers. Pure.
// One voucher per document: debit the receivable for the gross, credit revenue per account and output
// VAT per VAT account; a credit note is the mirror image. Unit prices are taken as net (excl. VAT).
// Signs follow the model (agent/model.ts): amounts are what the customer owes (customerQuantity), never
// guessed from the signs of the lines.
import { z } from "zod";
import { lazySchema } from "../../agent/lazy-schema.ts";
import { customerQuantity, lineAmount, type InvoiceLike, type LineKind, type Project } from "../../agent/model.ts";
import { problem, type Problem } from "../../agent/problem.ts";
import type { SieObjectRef, SieTransactionInput, SieVoucherInput, SieWriteInput } from "./writer.ts";

const accountNoSchema = () => z.string().regex(/^\d+$/, { error: "must be an account number (digits only), e.g. 1510" });
const perKindSchema = () => z.object({ hours: accountNoSchema(), expenses: accountNoSchema(), products: accountNoSchema() });

/** Swedish BAS defaults; the keys are the PSA's `vatCode` values. Norwegian users map their own codes. */
export const DEFAULT_VAT_CODES = {
  "25": { rate: 25, account: "2611", revenueAccounts: { hours: "3041", products: "3001" } },
  "12": { rate: 12, account: "2621", revenueAccounts: { hours: "3042", products: "3002" } },
  "6": { rate: 6, account: "2631", revenueAccounts: { hours: "3043", products: "3003" } },
  "0": { rate: 0, revenueAccounts: { hours: "3044", products: "3004" } },
};

/** BAS 2024 names, used for #KONTO when `accountNames` does not name an account. */
export const BAS_ACCOUNT_NAMES: Readonly<Record<string, string>> = {
  "1510": "Kundfordringar",
  "2611": "Utgående moms på försäljning inom Sverige, 25 %",
  "2621": "Utgående moms på försäljning inom Sverige, 12 %",
  "2631": "Utgående moms på försäljning inom Sverige, 6 %",
  "3001": "Försäljning inom Sverige, 25 % moms",
  "3002": "Försäljning inom Sverige, 12 % moms",
  "3003": "Försäljning inom Sverige, 6 % moms",
  "3004": "Försäljning inom Sverige, momsfri",
  "3041": "Försäljning tjänster inom Sverige, 25 % moms",
  "3042": "Försäljning tjänster inom Sverige, 12 % moms",
  "3043": "Försäljning tjänster inom Sverige, 6 % moms",
  "3044": "Försäljning tjänster inom Sverige, momsfri",
  "3590": "Övriga fakturerade kostnader",
  "3740": "Öres- och kronutjämning",
};

export const sieInvoiceConfigSchema = () =>
  z.object({
    /** Debited with the gross amount (BAS 1510; Norway 1500). */
    receivableAccount: accountNoSchema().default("1510"),
    /** Revenue account per line kind when neither the line nor its VAT code names one (BAS; Norway 3000). */
    revenueAccounts: perKindSchema()
      .partial()
      .transform((p) => ({ hours: "3041", expenses: "3590", products: "3001", ...p }))
      .prefault({}),
    /** Per PSA VAT code: rate in percent, output VAT account (needed when rate > 0), optional revenue accounts per kind. */
    vatCodes: z
      .record(
        z.string(),
        z.object({
          rate: z.number().min(0).max(100),
          account: accountNoSchema().optional(),
          revenueAccounts: perKindSchema().partial().optional(),
        }),
      )
      .default(DEFAULT_VAT_CODES),
    /** Used for lines without a vatCode. */
    defaultVatCode: z.string().default("25"),
    /** Takes the difference when the total is rounded to whole kronor (BAS 3740; Norway 7740). */
    roundingAccount: accountNoSchema().default("3740"),
    /** "none": the receivable is the exact gross; "krona": rounded to whole units, difference to roundingAccount. */
    roundTotal: z.enum(["none", "krona"]).default("none"),
    /** Voucher series; empty lets the importer choose (SIE 4I allows it). */
    series: z.string().max(20).default(""),
    /** "none": the importer numbers vouchers (recommended for 4I); "invoice_number": use the PSA's number. */
    voucherNumber: z.enum(["none", "invoice_number"]).default("none"),
    /** One revenue row per account (default) or one per invoice line with its text. */
    revenueDetail: z.enum(["per_account", "per_line"]).default("per_account"),
    /** Put the project on the revenue rows as dimension 6. */
    projectDimension: z.boolean().default(true),
    /** Cost centre (dimension 1) on revenue rows: none, a fixed object, or the project's department. */
    costCentre: z
      .discriminatedUnion("source", [
        z.object({ source: z.literal("none") }),
        z.object({ source: z.literal("fixed"), id: z.string().min(1) }),
        z.object({ source: z.literal("project_department") }),
      ])
      .default({ source: "none" }),
    /** Put the customer on the receivable row as dimension 8 (SIE's customer dimension). */
    customerDimension: z.boolean().default(false),
    /** The file's currency (#VALUTA). Documents in another currency are refused: SIE has no exchange rates. */
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/)
      .default("SEK"),
    /** Account names for #KONTO, over the BAS defaults. */
    accountNames: z.record(z.string(), z.string()).default({}),
  });
export const SieInvoiceConfig = lazySchema(sieInvoiceConfigSchema);
export type SieInvoiceConfig = z.infer<typeof SieInvoiceConfig>;

export interface MappingContext {
  projects?: Pick<Project, "number" | "name" | "department">[];
  customers?: { number: string; name: string }[];
}

export type VoucherResult = { ok: true; voucher: SieVoucherInput } | { ok: false; problems: Problem[] };

/** Half away from zero of net × rate%, in integers: rate kept to 0.01 percentage points. */
function vatOf(netMinor: number, ratePercent: number): number {
  const basisPoints = Math.round(ratePercent * 100);
  const scaled = Math.abs(netMinor) * basisPoints;
  return Math.sign(netMinor) * Math.floor((scaled + 5000) / 10000);
}

const roundToWhole = (minor: number) => Math.sign(minor) * Math.round(Math.abs(minor) / 100) * 100;

/** The #VER text of a document's voucher: names the document, so a file found again tells which documents it holds. */
export function voucherText(doc: InvoiceLike): string {
  return doc.kind === "credit_note"
    ? `Kreditnota ${doc.number} avser faktura ${doc.creditedInvoiceNumber}`
    : `Faktura ${doc.number}, kund ${doc.customerNumber}`;
}

/** Maps one finalized invoice or credit note to one balanced voucher, or says why it cannot. */
export function invoiceToVoucher(doc: InvoiceLike, config: SieInvoiceConfig, context: MappingContext = {}): VoucherResult {
  const problems: Problem[] = [];
  const isCredit = doc.kind === "credit_note";
  const what = `${isCredit ? "Credit note" : "Invoice"} ${doc.number}`;
  if (doc.currency !== config.currency) {
    problems.push(
      problem(
        "sie4.currency_mismatch",
        `${what} is in ${doc.currency}, the SIE file in ${config.currency}: SIE 4 files hold one currency and no exchange rates.`,
        `Book it in the accounting system by hand, then mark it "do not transfer" (kontobro export set-status ${doc.number} do_not_transfer) so exports stop leaving it out.`,
        "currency",
      ),
    );
  }

  /** `net`: what the line adds to what the customer owes (negative on a credit note, and for a discount). */
  interface Row {
    account: string;
    net: number;
    vatCode: string;
    text: string;
  }
  const rows: Row[] = [];
  doc.lines.forEach((line, i) => {
    const vatCode = line.vatCode ?? config.defaultVatCode;
    const vat = config.vatCodes[vatCode];
    if (!vat) {
      problems.push(
        problem(
          "sie4.unknown_vat_code",
          `${what}, line ${i + 1}: VAT code "${vatCode}" is not in the SIE export settings.`,
          `Add vatCodes."${vatCode}" (rate and output VAT account) to the SIE export configuration.`,
          `lines[${i}].vatCode`,
        ),
      );
      return;
    }
    if (vat.rate > 0 && !vat.account) {
      problems.push(
        problem(
          "sie4.missing_vat_account",
          `${what}, line ${i + 1}: VAT code "${vatCode}" has no output VAT account.`,
          `Set vatCodes."${vatCode}".account, e.g. 2611 for 25 % in BAS.`,
          `lines[${i}].vatCode`,
        ),
      );
    }
    const kind: LineKind = line.kind;
    const account = line.account ?? vat.revenueAccounts?.[kind] ?? config.revenueAccounts[kind];
    if (!/^\d+$/.test(account)) {
      problems.push(
        problem(
          "sie4.bad_account",
          `${what}, line ${i + 1}: account "${account}" is not numeric.`,
          "SIE account numbers are digits only; fix the line's account in the project system.",
          `lines[${i}].account`,
        ),
      );
    }
    rows.push({ account, net: lineAmount({ quantity: customerQuantity(doc, line), unitPrice: line.unitPrice }), vatCode, text: line.text });
  });
  if (problems.length > 0) return { ok: false, problems };

  const project = doc.projectNumber ? context.projects?.find((p) => p.number === doc.projectNumber) : undefined;
  const objects: SieObjectRef[] = [];
  const cc = config.costCentre;
  if (cc.source === "fixed") objects.push({ dimension: 1, id: cc.id });
  if (cc.source === "project_department" && project?.department) objects.push({ dimension: 1, id: project.department });
  if (config.projectDimension && doc.projectNumber) objects.push({ dimension: 6, id: doc.projectNumber });

  const credits: SieTransactionInput[] = [];
  const revenue = new Map<string, number>();
  const codesOf = new Map<string, Set<string>>();
  for (const r of rows) {
    if (config.revenueDetail === "per_line")
      credits.push({ account: r.account, objects, amountMinor: -r.net, text: r.text, meta: { role: "revenue", vatCode: r.vatCode } });
    else revenue.set(r.account, (revenue.get(r.account) ?? 0) + r.net);
    codesOf.set(r.account, (codesOf.get(r.account) ?? new Set()).add(r.vatCode));
  }
  const soleCode = (codes: Set<string> | undefined) => (codes?.size === 1 ? { vatCode: [...codes][0]! } : {});
  for (const [account, net] of revenue)
    credits.push({ account, objects, amountMinor: -net, meta: { role: "revenue", ...soleCode(codesOf.get(account)) } });

  // VAT on the sum per code (not per line), as an invoice prints it; codes sharing an account are merged.
  const vatByAccount = new Map<string, { amount: number; rates: Set<number>; codes: Set<string> }>();
  const netByCode = new Map<string, number>();
  for (const r of rows) netByCode.set(r.vatCode, (netByCode.get(r.vatCode) ?? 0) + r.net);
  for (const [code, net] of netByCode) {
    const { rate, account } = config.vatCodes[code]!;
    if (rate === 0 || !account) continue;
    const entry = vatByAccount.get(account) ?? { amount: 0, rates: new Set<number>(), codes: new Set<string>() };
    entry.amount += vatOf(net, rate);
    entry.rates.add(rate);
    entry.codes.add(code);
    vatByAccount.set(account, entry);
  }
  for (const [account, { amount, rates, codes }] of vatByAccount) {
    credits.push({ account, amountMinor: -amount, text: `Moms ${[...rates].join("/")} %`, meta: { role: "vat", ...soleCode(codes) } });
  }

  const gross = -credits.reduce((s, t) => s + t.amountMinor, 0);
  const receivable = config.roundTotal === "krona" ? roundToWhole(gross) : gross;
  if (receivable !== gross)
    credits.push({ account: config.roundingAccount, amountMinor: gross - receivable, text: "Öresavrundning", meta: { role: "rounding" } });

  const transactions: SieTransactionInput[] = [
    {
      account: config.receivableAccount,
      amountMinor: receivable,
      text: `${isCredit ? "Kreditnota" : "Faktura"} ${doc.number}`,
      meta: { role: "receivable" },
      ...(config.customerDimension ? { objects: [{ dimension: 8, id: doc.customerNumber }] } : {}),
    },
    ...credits.filter((t) => t.amountMinor !== 0),
  ];
  const balance = transactions.reduce((s, t) => s + t.amountMinor, 0);
  if (balance !== 0) throw new Error(`internal: voucher for ${what} does not balance (${balance})`); // by construction impossible

  return {
    ok: true,
    voucher: {
      series: config.series,
      ...(config.voucherNumber === "invoice_number" ? { number: doc.number } : {}),
      date: doc.date,
      text: voucherText(doc),
      transactions,
    },
  };
}

/** SIE voucher numbers are digits only: with voucherNumber "invoice_number", a document numbered otherwise cannot be written. */
function badVoucherNumber(doc: InvoiceLike, config: SieInvoiceConfig): Problem | null {
  if (config.voucherNumber !== "invoice_number" || /^\d+$/.test(doc.number)) return null;
  return problem(
    "sie4.bad_voucher_number",
    `${doc.kind === "credit_note" ? "Credit note" : "Invoice"} ${doc.number}: SIE voucher numbers are digits only, so its number cannot number the voucher.`,
    'Set voucher_number = "none" under [exports.sie4] (the accounting system then numbers the vouchers), or number invoices with digits in the PSA.',
    "number",
  );
}

export interface SieHeader {
  program: string;
  programVersion: string;
  generatedAt: Date | string;
  companyName: string;
  orgNumber?: string;
  fiscalYear: { start: string; end: string };
}

/**
 * Builds the writer's input from many documents: one voucher each, plus the #KONTO, #DIM and #OBJEKT
 * declarations the spec recommends for everything used. A document that cannot be mapped is left out and
 * reported; it never blocks the others.
 */
export function invoicesToSieInput(
  docs: InvoiceLike[],
  config: SieInvoiceConfig,
  header: SieHeader,
  context: MappingContext = {},
  /** Hears how many documents are mapped so far (an export's progress). */
  progress?: (mapped: number) => void,
): { input: SieWriteInput; rejected: { number: string; problems: Problem[] }[] } {
  const vouchers: SieVoucherInput[] = [];
  const rejected: { number: string; problems: Problem[] }[] = [];
  // Numbered vouchers must come in increasing order within their series (SIE 4B); unnumbered ones go by date.
  const byNumber = (a: InvoiceLike, b: InvoiceLike) => a.number.localeCompare(b.number, "sv", { numeric: true });
  const sorted = [...docs].sort(
    config.voucherNumber === "invoice_number" ? byNumber : (a, b) => a.date.localeCompare(b.date) || byNumber(a, b),
  );
  for (const doc of sorted) {
    const bad = badVoucherNumber(doc, config);
    const r: VoucherResult = bad ? { ok: false, problems: [bad] } : invoiceToVoucher(doc, config, context);
    if (r.ok) vouchers.push(r.voucher);
    else rejected.push({ number: doc.number, problems: r.problems });
    progress?.(vouchers.length + rejected.length);
  }

  const accounts = new Set<string>();
  const objectIds = new Map<number, Set<string>>();
  for (const t of vouchers.flatMap((v) => v.transactions)) {
    accounts.add(String(t.account));
    for (const o of t.objects ?? []) objectIds.set(o.dimension, (objectIds.get(o.dimension) ?? new Set()).add(o.id));
  }
  const names = { ...BAS_ACCOUNT_NAMES, ...config.accountNames };
  const dimensionNames: Record<number, string> = { 1: "Kostnadsställe", 6: "Projekt", 8: "Kund" };
  const objectName = (dimension: number, id: string): string =>
    (dimension === 6
      ? context.projects?.find((p) => p.number === id)?.name
      : dimension === 8
        ? context.customers?.find((c) => c.number === id)?.name
        : undefined) ?? id;

  return {
    input: {
      ...header,
      currency: config.currency,
      chartOfAccountsType: "EUBAS97",
      accounts: [...accounts]
        .sort((a, b) => a.localeCompare(b, "sv", { numeric: true }))
        .map((number) => ({ number, name: names[number] ?? `Konto ${number}` })),
      dimensions: [...objectIds.keys()]
        .sort((a, b) => a - b)
        .map((id) => ({
          id,
          name: dimensionNames[id] ?? `Dimension ${id}`,
          objects: [...objectIds.get(id)!].sort().map((oid) => ({ id: oid, name: objectName(id, oid) })),
        })),
      vouchers,
    },
    rejected,
  };
}
