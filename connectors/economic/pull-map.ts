// e-conomic → PSA for pulls: booked ledger entries → expenses, booked invoices → payment status, the
// expense stream's cursor, and webhook hints → streams. Pure functions; I/O is in pull.ts.
import { z } from "zod";
import { lazySchema, once } from "../../agent/lazy-schema.ts";
import type { PullItem } from "../contract.ts";
import { TargetError } from "../http.ts";
import type { EconomicConfig } from "./config.ts";

function addDays(isoDate: string, days: number): string {
  const d = new Date(`${isoDate}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** Decimal amount → integer minor units. */
export const toMinor = (x: number) => Math.round(x * 100);

/** The parts of a booked entry (GET /accounting-years/{y}/entries) we rely on. */
export const Entry = lazySchema(
  once(() =>
    z.object({
      entryNumber: z.number().int(),
      voucherNumber: z.number().int(),
      date: z.string(),
      account: z.object({ accountNumber: z.number().int() }),
      amount: z.number(),
      currency: z.string().optional(),
      text: z.string().optional(),
      entryType: z.string().optional(),
      dueDate: z.string().optional(),
      project: z.object({ projectNumber: z.number().int() }).optional(),
      costType: z.object({ costTypeNumber: z.number().int() }).optional(),
      supplier: z.object({ supplierNumber: z.number().int() }).optional(),
      supplierInvoiceNumber: z.string().optional(),
      vatAccount: z.object({ vatCode: z.string() }).optional(),
    }),
  ),
);
export type Entry = z.infer<typeof Entry>;

export function parseEntries(body: any): Entry[] {
  const list = Array.isArray(body?.collection) ? body.collection : null;
  if (!list) throw unexpected("a list of entries");
  return list.map((raw: unknown) => {
    const e = Entry.safeParse(raw);
    if (!e.success) throw unexpected(`an entry with ${e.error.issues[0]?.path.join(".") || "its fields"}`);
    return e.data;
  });
}

export function unexpected(what: string): TargetError {
  return new TargetError("permanent", {
    code: "economic.unexpected_answer",
    message: `e-conomic answered without ${what} where kontobro expected it.`,
    hint: "This may be a change in e-conomic's API. The pull stopped without storing that page; send the log to kontobro support.",
  });
}

// ── the expense stream's cursor ────────────────────────────────────────────────────────────────────

/**
 * `done`: the day through which every booked entry has been looked at (the start day of the last
 * complete run). `floors`: per open accounting year, the highest entry number that existed when the last
 * complete run read it: e-conomic numbers entries as they are booked, so an entry above it was booked later,
 * whatever its date (a supplier invoice dated last week and booked today), and the next run reads it too.
 * `run`: a run in progress, resumable: its window start, its day, the accounting years
 * still to read, and the last entry number stored of the first of them (entries are read in
 * entryNumber order, so entryNumber is the stable tie-breaker for resuming between pages); `floors`, the
 * floors it reads with (a year without one: not read before, the window only), and `next`, the floors the next run
 * will read with.
 */
export const ExpenseCursor = lazySchema(
  once(() =>
    z.object({
      v: z.literal(1),
      done: z.iso.date().optional(),
      floors: z.record(z.string(), z.number().int().min(0)).optional(),
      run: z
        .object({
          since: z.iso.date(),
          until: z.iso.date(),
          years: z.array(z.string()).min(1),
          after: z.number().int().min(0),
          floors: z.record(z.string(), z.number().int().min(0)).optional(),
          next: z.record(z.string(), z.number().int().min(0)).optional(),
        })
        .optional(),
    }),
  ),
);
export type ExpenseCursor = z.infer<typeof ExpenseCursor>;

export function parseExpenseCursor(raw: string | null): ExpenseCursor {
  if (!raw) return { v: 1 };
  try {
    return ExpenseCursor.parse(JSON.parse(raw));
  } catch {
    throw new TargetError("permanent", {
      code: "economic.cursor_unreadable",
      message: "The stored position of the expense pull cannot be read.",
      hint: "Reset it with `DELETE FROM cursors WHERE stream = 'expenses'` in the database; the next pull then looks back the configured number of days (nothing is imported twice).",
    });
  }
}

/**
 * First day of a new run's window: the lookback counted back from the last day fully covered (or from
 * today on the first run), so a late booking inside the lookback is still found and an agent that was
 * down for a week catches up the whole week.
 */
export function windowStart(done: string | undefined, today: string, lookbackDays: number): string {
  const from = done && done < today ? done : today;
  return addDays(from, -lookbackDays);
}

/**
 * The server-side filter: posted supplier-invoice and finance entries of the window, or booked after `floor` (the
 * year's highest entry number at the last run, 0 when it had none; undefined: the year was not read before), after
 * the resume point.
 */
export function entriesFilter(since: string, after: number, costTypes: number[], floor?: number): string {
  const parts = [
    floor !== undefined ? `(date$gte:${since}$or:entryNumber$gt:${floor})` : `date$gte:${since}`,
    `entryNumber$gt:${after}`,
    "(entryType$eq:supplierInvoice$or:entryType$eq:financeVoucher)",
  ];
  if (costTypes.length > 0) parts.push(`costType.costTypeNumber$in:[${costTypes.join(",")}]`);
  return parts.join("$and:");
}

/** An expense for the PSA: on a project, on a configured account (none = all), of a configured cost type. */
export function isExpense(e: Entry, cfg: EconomicConfig["expenses"]): boolean {
  if (!e.project) return false;
  if (cfg.accounts.length > 0 && !cfg.accounts.includes(e.account.accountNumber)) return false;
  if (cfg.cost_types.length > 0 && !cfg.cost_types.includes(e.costType?.costTypeNumber ?? -1)) return false;
  return true;
}

export interface VatAccount {
  rate: number;
  accountNumber: number;
}

/**
 * The expense line's amount with and without VAT, in minor units. e-conomic books a supplier invoice
 * as a cost entry (net), VAT entries and a supplier entry (gross). A voucher with one cost line gets
 * the voucher's own VAT (exact); with several, each line gets its VAT code's rate.
 */
export function expenseAmounts(e: Entry, voucher: Entry[], vat: Map<string, VatAccount>): { net: number; vat: number; gross: number } {
  const net = toMinor(e.amount);
  const vatAccounts = new Set([...vat.values()].map((v) => v.accountNumber));
  const costLines = voucher.filter((x) => !x.supplier && !vatAccounts.has(x.account.accountNumber));
  const vatLines = voucher.filter((x) => vatAccounts.has(x.account.accountNumber));
  const vatAmount =
    costLines.length === 1 && costLines[0]!.entryNumber === e.entryNumber
      ? vatLines.reduce((sum, x) => sum + toMinor(x.amount), 0)
      : Math.round(net * (vat.get(e.vatAccount?.vatCode ?? "")?.rate ?? 0));
  return { net, vat: vatAmount, gross: net + vatAmount };
}

export interface ExpenseData {
  projectNumber: string;
  activity: string;
  billable: boolean;
  description: string;
  /** Including VAT, in minor units. */
  amount: number;
  amountExclVat: number;
  vatAmount: number;
  currency?: string;
  invoiceDate: string;
  dueDate?: string;
  supplier?: { number: number; name?: string };
  supplierInvoiceNumber?: string;
  voucherNumber: number;
  accountingYear: string;
  entryNumber: number;
  accountNumber: number;
  costTypeNumber?: number;
}

export function expenseItem(
  year: string,
  e: Entry,
  voucher: Entry[],
  ctx: {
    cfg: EconomicConfig["expenses"];
    vat: Map<string, VatAccount>;
    supplierName?: string;
    attachment?: PullItem["attachment"];
  },
): PullItem<ExpenseData> {
  const supplierEntry = voucher.find((x) => x.supplier) ?? (e.supplier ? e : undefined);
  const amounts = expenseAmounts(e, voucher, ctx.vat);
  const supplierInvoiceNumber = supplierEntry?.supplierInvoiceNumber ?? e.supplierInvoiceNumber;
  const projectNumber = String(e.project!.projectNumber);
  const data: ExpenseData = {
    projectNumber,
    activity: ctx.cfg.activity,
    billable: ctx.cfg.billable,
    description: e.text || supplierEntry?.text || `Supplier invoice ${supplierInvoiceNumber ?? e.voucherNumber}`,
    amount: amounts.gross,
    amountExclVat: amounts.net,
    vatAmount: amounts.vat,
    currency: e.currency,
    invoiceDate: e.date,
    dueDate: supplierEntry?.dueDate,
    supplier: supplierEntry?.supplier ? { number: supplierEntry.supplier.supplierNumber, name: ctx.supplierName } : undefined,
    supplierInvoiceNumber,
    voucherNumber: e.voucherNumber,
    accountingYear: year,
    entryNumber: e.entryNumber,
    accountNumber: e.account.accountNumber,
    costTypeNumber: e.costType?.costTypeNumber,
  };
  return {
    remoteId: `entry:${year}:${e.entryNumber}`,
    type: "expense.posted",
    data,
    requires: { entity: "project", key: projectNumber },
    ...(ctx.attachment ? { attachment: ctx.attachment } : {}),
  };
}

/** e-conomic's id escaping in URLs (`/` → `_6_` etc.), for year keys like "2025/2026". */
export function selfId(id: string): string {
  const chars = ["<", ">", "*", "%", ":", "&", "/", "\\", "_", " ", "?", ".", "#", "+"];
  return [...id]
    .map((ch) => {
      const i = chars.indexOf(ch);
      return i < 0 ? ch : `_${i}_`;
    })
    .join("");
}

// ── payment status ─────────────────────────────────────────────────────────────────────────────────

export type PaymentStatus = "unpaid" | "sent" | "overdue" | "partially_paid" | "paid";

/**
 * paid (nothing left to pay: in /invoices/paid, or remainder 0 or below, overpaid) > partially_paid (paid in part: a
 * remainder above 0 and below the invoice's total) > overdue > sent (e-conomic sent it) > unpaid. `remainder` and
 * `grossAmount` are both in the invoice's currency, whatever currency the customer paid in.
 */
export function paymentStatus(
  booked: { remainder?: number; grossAmount?: number; sent?: unknown },
  inPaid: boolean,
  inOverdue: boolean,
): PaymentStatus {
  const remainder = booked.remainder === undefined ? undefined : toMinor(booked.remainder);
  if (inPaid || (remainder !== undefined && remainder <= 0)) return "paid";
  if (remainder !== undefined && remainder < toMinor(booked.grossAmount ?? 0)) return "partially_paid";
  if (inOverdue) return "overdue";
  if (booked.sent) return "sent";
  return "unpaid";
}

export function paymentItem(key: string, booked: any, status: PaymentStatus, overdue: boolean): PullItem {
  const amount = toMinor(booked.grossAmount ?? 0);
  const remainder = toMinor(booked.remainder ?? 0);
  return {
    remoteId: `invoice:${booked.bookedInvoiceNumber}`,
    type: status === "paid" ? "invoice.paid" : "invoice.status_changed",
    data: {
      invoiceNumber: key,
      bookedInvoiceNumber: booked.bookedInvoiceNumber,
      status,
      amount,
      paidAmount: amount - remainder,
      remainder,
      currency: booked.currency,
      dueDate: booked.dueDate,
      overdue,
    },
    // kontobro booked it and the PSA knows it is unpaid: the first item is sent when that changes. A partly paid invoice
    // paid more (or a payment of it reversed) is a change too: its remainder is the status's detail.
    status: {
      entity: "invoice",
      key,
      value: status,
      final: status === "paid",
      baseline: "unpaid",
      ...(status === "partially_paid" ? { detail: String(remainder) } : {}),
    },
  };
}

// ── webhooks ───────────────────────────────────────────────────────────────────────────────────────

/**
 * Which streams an e-conomic webhook call hints at, from its URL-template parameters (lower-cased):
 * type=invoice&invoice=[INVOICENO] → payments; type=daybook&daybook=[DAYBOOKNO]&from=…&to=… → expenses;
 * customer/product/project updates → nothing (the PSA is master); no or unknown type → both.
 */
export function economicWebhookStreams(params: Record<string, string>): string[] {
  const type = (params.type ?? params.eventtype ?? params.event ?? "").toLowerCase();
  if (/invoice|payment|paid/.test(type)) return ["payments"];
  if (/day ?book|journal|voucher|entr|supplier|expense/.test(type)) return ["expenses"];
  if (/customer|product|project|order|employee|contact/.test(type)) return [];
  if (!type && (params.invoice ?? params.invoiceno) !== undefined) return ["payments"];
  if (!type && ["daybook", "daybookno", "from", "to", "fromserialno", "toserialno"].some((k) => params[k] !== undefined))
    return ["expenses"];
  return ["expenses", "payments"];
}
