// The sandbox's general ledger: accounting years, accounts, suppliers, VAT accounts and booked entries
// (with voucher receipts), plus legacy "UI" webhooks with merge fields that call a URL when something is
// booked. Supplier invoices reach the ledger through a test hook that books them as e-conomic does:
// a cost entry (net, with project and cost type), a VAT entry and a supplier entry (gross).
import type { Attachment, Json } from "./state.ts";

export interface LedgerEntry {
  entryNumber: number;
  voucherNumber: number;
  date: string;
  account: { accountNumber: number };
  amount: number;
  amountInBaseCurrency: number;
  currency: string;
  text?: string;
  entryType: string;
  dueDate?: string;
  project?: { projectNumber: number };
  costType?: { costTypeNumber: number };
  supplier?: { supplierNumber: number };
  supplierInvoiceNumber?: string;
  vatAccount?: { vatCode: string };
  customer?: { customerNumber: number };
  remainder?: number;
  remainderInBaseCurrency?: number;
}

export interface WebhookSubscription {
  id: number;
  /** invoice: an invoice was booked ([INVOICENO]); daybook: a journal was booked ([DAYBOOKNO], [FROMSERIALNO], [TOSERIALNO]). */
  type: "invoice" | "daybook";
  url: string;
  method: "GET" | "POST";
}

export interface LedgerState {
  years: Map<string, { year: string; fromDate: string; toDate: string; closed?: boolean }>;
  accounts: Map<number, Json>;
  suppliers: Map<number, Json>;
  vatAccounts: Map<string, Json>;
  /** Booked entries by accounting year. */
  entries: Map<string, LedgerEntry[]>;
  /** Receipts by "journal:year-voucher". */
  voucherAttachments: Map<string, Attachment & { contentType: string }>;
  counters: Map<string, { entry: number; voucher: number }>;
  webhooks: WebhookSubscription[];
  webhookCalls: { type: string; url: string; status?: number; error?: string }[];
}

export const SUPPLIER_PAYABLES_ACCOUNT = 6800;
export const BANK_ACCOUNT = 5820;
export const DEBTORS_ACCOUNT = 5600;

/** The sandbox's first accounting year: tests' fixed dates stay in an open year as the calendar moves on. */
export const FIRST_YEAR = 2020;

export function createLedger(today = new Date()): LedgerState {
  const last = today.getUTCFullYear() + 1;
  const calendarYears = Array.from({ length: last - FIRST_YEAR + 1 }, (_, i) => FIRST_YEAR + i);
  const years = new Map(calendarYears.map((n) => [String(n), { year: String(n), fromDate: `${n}-01-01`, toDate: `${n}-12-31` }]));
  const accounts = new Map<number, Json>([
    [1010, { accountNumber: 1010, name: "Salg af ydelser", accountType: "profitAndLoss", vatAccount: { vatCode: "U25" } }],
    [1020, { accountNumber: 1020, name: "Salg uden moms", accountType: "profitAndLoss" }],
    [2800, { accountNumber: 2800, name: "Materialer til projekter", accountType: "profitAndLoss" }],
    [2810, { accountNumber: 2810, name: "Underleverandører", accountType: "profitAndLoss" }],
    [2820, { accountNumber: 2820, name: "Rejser", accountType: "profitAndLoss" }],
    [3600, { accountNumber: 3600, name: "Kontorartikler", accountType: "profitAndLoss" }],
    [DEBTORS_ACCOUNT, { accountNumber: DEBTORS_ACCOUNT, name: "Debitorer", accountType: "status" }],
    [BANK_ACCOUNT, { accountNumber: BANK_ACCOUNT, name: "Bank", accountType: "status" }],
    [SUPPLIER_PAYABLES_ACCOUNT, { accountNumber: SUPPLIER_PAYABLES_ACCOUNT, name: "Leverandører", accountType: "status" }],
    [7300, { accountNumber: 7300, name: "Købsmoms", accountType: "status" }],
    [7310, { accountNumber: 7310, name: "Salgsmoms", accountType: "status" }],
  ]);
  const suppliers = new Map<number, Json>([
    [1, { supplierNumber: 1, name: "Byggmakker A/S", currency: "DKK", supplierGroup: { supplierGroupNumber: 1 } }],
    [2, { supplierNumber: 2, name: "Elektro Grossisten ApS", currency: "DKK", supplierGroup: { supplierGroupNumber: 1 } }],
    [3, { supplierNumber: 3, name: "Kontorland A/S", currency: "DKK", supplierGroup: { supplierGroupNumber: 1 } }],
  ]);
  const vatAccounts = new Map<string, Json>([
    [
      "I25",
      {
        vatCode: "I25",
        name: "Købsmoms 25%",
        ratePercentage: 25,
        account: { accountNumber: 7300 },
        vatType: { vatTypeNumber: 1, name: "Købsmoms" },
      },
    ],
    [
      "U25",
      {
        vatCode: "U25",
        name: "Salgsmoms 25%",
        ratePercentage: 25,
        account: { accountNumber: 7310 },
        vatType: { vatTypeNumber: 2, name: "Salgsmoms" },
      },
    ],
  ]);
  return {
    years,
    accounts,
    suppliers,
    vatAccounts,
    entries: new Map(),
    voucherAttachments: new Map(),
    counters: new Map(),
    webhooks: [],
    webhookCalls: [],
  };
}

export class LedgerInputError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const round2 = (x: number) => (Math.sign(x) * Math.round(Math.abs(x) * 100 + 1e-9)) / 100;

export function yearOf(ledger: LedgerState, date: string): string | undefined {
  for (const y of ledger.years.values()) if (y.fromDate <= date && date <= y.toDate && !y.closed) return y.year;
  return undefined;
}

function counter(ledger: LedgerState, year: string) {
  let c = ledger.counters.get(year);
  if (!c) ledger.counters.set(year, (c = { entry: 0, voucher: 10000 }));
  return c;
}

/** Books an entry in its year with the next entry number. */
export function addEntry(ledger: LedgerState, year: string, e: Omit<LedgerEntry, "entryNumber">): LedgerEntry {
  const entry = { ...e, entryNumber: ++counter(ledger, year).entry };
  const list = ledger.entries.get(year) ?? [];
  list.push(entry);
  ledger.entries.set(year, list);
  return entry;
}

export interface SupplierInvoiceInput {
  date: string;
  supplierNumber: number;
  supplierInvoiceNumber?: string;
  text?: string;
  currency?: string;
  dueDate?: string;
  voucherNumber?: number;
  lines: { account: number; amount: number; vatCode?: string; projectNumber?: number; costTypeNumber?: number; text?: string }[];
  attachment?: { fileName: string; bytes: Uint8Array; contentType?: string };
}

/** Books supplier invoices as e-conomic does when a journal is booked. Returns their voucher and entry numbers. */
export function bookSupplierInvoices(ledger: LedgerState, journal: number, vouchers: SupplierInvoiceInput[]) {
  vouchers.forEach((v, i) => {
    const at = `vouchers[${i}]`;
    const year = yearOf(ledger, v.date);
    if (!year) throw new LedgerInputError(`${at}.date`, `No open accounting year contains ${v.date}.`);
    if (!ledger.suppliers.has(v.supplierNumber))
      throw new LedgerInputError(`${at}.supplierNumber`, `Supplier ${v.supplierNumber} does not exist.`);
    if (v.voucherNumber !== undefined && (ledger.entries.get(year) ?? []).some((e) => e.voucherNumber === v.voucherNumber)) {
      throw new LedgerInputError(`${at}.voucherNumber`, `Voucher ${v.voucherNumber} is already used in ${year}.`);
    }
    v.lines.forEach((l, j) => {
      if (!ledger.accounts.has(l.account)) throw new LedgerInputError(`${at}.lines[${j}].account`, `Account ${l.account} does not exist.`);
      if (l.vatCode && !ledger.vatAccounts.has(l.vatCode))
        throw new LedgerInputError(`${at}.lines[${j}].vatCode`, `VAT code ${l.vatCode} does not exist.`);
    });
  });
  return vouchers.map((v) => {
    const year = yearOf(ledger, v.date)!;
    const c = counter(ledger, year);
    const voucherNumber = v.voucherNumber ?? ++c.voucher;
    const currency = v.currency ?? "DKK";
    const base = { voucherNumber, date: v.date, currency, entryType: "supplierInvoice" };
    const entries: LedgerEntry[] = [];
    let gross = 0;
    for (const l of v.lines) {
      const vat = l.vatCode ? ledger.vatAccounts.get(l.vatCode)! : undefined;
      const net = vat ? round2(l.amount / (1 + vat.ratePercentage / 100)) : round2(l.amount);
      gross = round2(gross + l.amount);
      entries.push(
        addEntry(ledger, year, {
          ...base,
          account: { accountNumber: l.account },
          amount: net,
          amountInBaseCurrency: net,
          text: l.text ?? v.text,
          ...(l.projectNumber !== undefined ? { project: { projectNumber: l.projectNumber } } : {}),
          ...(l.costTypeNumber !== undefined ? { costType: { costTypeNumber: l.costTypeNumber } } : {}),
          ...(vat ? { vatAccount: { vatCode: l.vatCode! } } : {}),
        }),
      );
      if (vat && round2(l.amount - net) !== 0) {
        const vatAmount = round2(l.amount - net);
        entries.push(
          addEntry(ledger, year, {
            ...base,
            account: { accountNumber: vat.account.accountNumber },
            amount: vatAmount,
            amountInBaseCurrency: vatAmount,
            text: l.text ?? v.text,
          }),
        );
      }
    }
    entries.push(
      addEntry(ledger, year, {
        ...base,
        account: { accountNumber: SUPPLIER_PAYABLES_ACCOUNT },
        amount: -gross,
        amountInBaseCurrency: -gross,
        text: v.text,
        supplier: { supplierNumber: v.supplierNumber },
        ...(v.supplierInvoiceNumber ? { supplierInvoiceNumber: v.supplierInvoiceNumber } : {}),
        ...(v.dueDate ? { dueDate: v.dueDate } : {}),
        remainder: -gross,
        remainderInBaseCurrency: -gross,
      }),
    );
    if (v.attachment) {
      const a = v.attachment;
      ledger.voucherAttachments.set(`${journal}:${year}-${voucherNumber}`, {
        fileName: a.fileName,
        size: a.bytes.byteLength,
        pages: 1,
        bytes: a.bytes,
        contentType: a.contentType ?? "application/pdf",
      });
    }
    return { accountingYear: year, voucherNumber, entryNumbers: entries.map((e) => e.entryNumber) };
  });
}

/** Calls the subscribed webhooks of `type`, replacing merge fields such as [INVOICENO] in their URLs. */
export function fireWebhooks(ledger: LedgerState, type: WebhookSubscription["type"], fields: Record<string, string | number>): void {
  for (const sub of ledger.webhooks.filter((w) => w.type === type)) {
    const url = sub.url.replace(/\[([A-Z]+)\]/g, (m, name: string) =>
      fields[name] !== undefined ? encodeURIComponent(String(fields[name])) : m,
    );
    const call: LedgerState["webhookCalls"][number] = { type, url };
    ledger.webhookCalls.push(call);
    // Like e-conomic: after the change is committed, not as part of the request that made it.
    setTimeout(() => {
      fetch(url, { method: sub.method, signal: AbortSignal.timeout(10_000) })
        .then(async (res) => {
          call.status = res.status;
          await res.arrayBuffer().catch(() => undefined);
        })
        .catch((e) => {
          call.error = e instanceof Error ? e.message : String(e);
        });
    }, 0);
  }
}
