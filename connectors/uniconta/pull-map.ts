// Uniconta → PSA for pulls, pure: posted project costs (ProjectTransClient) → expenses, posted invoices and
// their debtor transactions → payment status, the expense stream's cursor and its filters.
import { z } from "zod";
import { lazySchema, once } from "../../agent/lazy-schema.ts";
import type { PullItem } from "../contract.ts";
import { TargetError } from "../http.ts";
import { lit, type Row } from "./client.ts";
import type { UnicontaConfig } from "./config.ts";
import { dateOf, sameNumber, toMinor } from "./map.ts";

export function addDays(isoDate: string, days: number): string {
  const d = new Date(`${isoDate}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

// ---- the expense stream's cursor ---------------------------------------------------------------------------

/**
 * `start`: nothing dated before it is imported (start_date, else the first run's day). `done`: the day of the
 * last complete run (the next window starts overlap_days before it). `floor`: the highest JournalPostedId seen,
 * so a cost posted later with an older date is still found (JournalPostedId rising is inferred, §8).
 * `run`: a run in progress, resumable after its last stored page: its window and the key of that page's last row.
 */
export const ExpenseCursor = lazySchema(
  once(() =>
    z.object({
      v: z.literal(1),
      start: z.iso.date(),
      done: z.iso.date().optional(),
      floor: z.number().int().min(0).default(0),
      run: z
        .object({
          since: z.iso.date(),
          until: z.iso.date(),
          floor: z.number().int().min(0),
          after: z.tuple([z.number(), z.number(), z.number()]).optional(),
          max: z.number().int().min(0),
        })
        .optional(),
    }),
  ),
);
export type ExpenseCursor = z.infer<typeof ExpenseCursor>;

export function parseExpenseCursor(raw: string | null, startDate: string | undefined, today: string): ExpenseCursor {
  if (!raw) return { v: 1, start: startDate ?? today, floor: 0 };
  try {
    const c = ExpenseCursor.parse(JSON.parse(raw));
    // A start_date moved later in kontobro.toml applies from now on.
    return startDate && startDate > c.start ? { ...c, start: startDate } : c;
  } catch {
    throw new TargetError("permanent", {
      code: "uniconta.cursor_unreadable",
      message: "The stored position of the Uniconta expense pull cannot be read.",
      hint: "Reset it with `DELETE FROM cursors WHERE stream = 'expenses'` in the database and set [targets.expenses] start_date; nothing already imported is imported again.",
    });
  }
}

/** The window of a new run: overlap_days before the last complete run's day, never before `start`. */
export function windowStart(c: ExpenseCursor, today: string, overlapDays: number): string {
  const from = c.done ? addDays(c.done < today ? c.done : today, -overlapDays) : c.start;
  return from > c.start ? from : c.start;
}

/** The server-side filter of one page: the window (or a later posting), the number series, after the last row stored. */
export function expenseFilter(c: { start: string }, run: NonNullable<ExpenseCursor["run"]>, numberSeries: string[]): string {
  const parts = [`Date ge ${c.start}`];
  parts.push(run.floor > 0 ? `(Date ge ${run.since} or JournalPostedId gt ${run.floor})` : `Date ge ${run.since}`);
  if (numberSeries.length > 0) parts.push(`(${numberSeries.map((s) => `NumberSerie eq ${lit(s)}`).join(" or ")})`);
  if (run.after) {
    const [jp, v, l] = run.after;
    parts.push(
      `(JournalPostedId gt ${jp} or (JournalPostedId eq ${jp} and (Voucher gt ${v} or (Voucher eq ${v} and LineNumber gt ${l}))))`,
    );
  }
  return parts.join(" and ");
}

export const EXPENSE_ORDER = "JournalPostedId,Voucher,LineNumber";
export const rowKey = (r: Row): [number, number, number] => [
  Number(r.JournalPostedId ?? 0),
  Number(r.Voucher ?? 0),
  Number(r.LineNumber ?? 0),
];

/** A posted cost, not a time registration and not the revenue of an invoiced line. */
export function isExpense(r: Row): boolean {
  return (
    Number(r.CostAmount ?? 0) !== 0 &&
    r.IsTimeJournal !== true &&
    !["Revenue", "OnAccountInvoicing"].includes(String(r.CatType ?? "")) &&
    !!r.Project
  );
}

export interface ExpenseData {
  projectNumber: string;
  activity: string;
  billable: boolean;
  title: string;
  description: string;
  date: string;
  quantity: number;
  /** Cost in minor units, as posted on the project (excluding VAT). */
  amount: number;
  unitCost: number;
  currency: string;
  voucherNumber: number;
  supplier?: { number: string; name?: string };
  category?: string;
  numberSeries?: string;
  journalPostedId: number;
  lineNumber: number;
}

export function expenseItem(r: Row, cfg: UnicontaConfig): PullItem<ExpenseData> {
  const [jp, voucher, line] = rowKey(r);
  const projectNumber = String(r.Project);
  const qty = Number(r.Qty ?? 1) || 1;
  const data: ExpenseData = {
    projectNumber,
    activity: cfg.expenses.activity,
    billable: cfg.expenses.billable,
    title: String(r.Text || r.CategoryName || r.PrCategory || `Voucher ${voucher}`),
    description: [r.CreditorName, r.Text].filter(Boolean).join(": ") || String(r.CategoryName ?? ""),
    date: dateOf(r.Date) ?? "",
    quantity: qty,
    amount: toMinor(r.CostAmount),
    unitCost: toMinor(r.CostPrice ?? Number(r.CostAmount) / qty),
    currency: String(r.Currency ?? cfg.company_currency),
    voucherNumber: voucher,
    ...(r.CreditorAccount
      ? { supplier: { number: String(r.CreditorAccount), ...(r.CreditorName ? { name: String(r.CreditorName) } : {}) } }
      : {}),
    ...(r.PrCategory ? { category: String(r.PrCategory) } : {}),
    ...(r.NumberSerie ? { numberSeries: String(r.NumberSerie) } : {}),
    journalPostedId: jp,
    lineNumber: line,
  };
  return {
    remoteId: `projtrans:${jp}:${voucher}:${line}`,
    type: "expense.posted",
    data,
    requires: { entity: "project", key: projectNumber },
  };
}

// ---- payment status ----------------------------------------------------------------------------------------

export type PaymentStatus = "ordered" | "unpaid" | "overdue" | "paid";

/** paid (settled) > overdue (open past its due date) > unpaid, from the invoice and its debtor transactions. */
export function paymentStatus(invoice: Row, trans: Row[], today: string): { status: PaymentStatus; remainder: number } {
  const remainder = Math.round(trans.reduce((s, t) => s + Number(t.Amount ?? 0), 0) * 100) / 100;
  const own = trans.filter((t) => t.PostType === "Invoice" || t.PostType === undefined);
  const settled =
    (trans.length > 0 && Math.abs(remainder) < 0.005 && Number(invoice.TotalAmount ?? 0) !== 0) ||
    (own.length > 0 && own.every((t) => t.Open === false));
  if (settled) return { status: "paid", remainder: 0 };
  const due = dateOf(invoice.DueDate);
  return { status: due && due < today ? "overdue" : "unpaid", remainder };
}

export function paymentItem(key: string, invoice: Row, trans: Row[], today: string, fromOrder: number | null, hint: string): PullItem {
  const { status, remainder } = paymentStatus(invoice, trans, today);
  const numberMatches = sameNumber(invoice.InvoiceNumber, key);
  return {
    remoteId: `invoice:${key}`,
    type: status === "paid" ? "invoice.paid" : fromOrder !== null && status === "unpaid" ? "invoice.posted" : "invoice.status_changed",
    data: {
      invoiceNumber: key,
      unicontaInvoiceNumber: Number(invoice.InvoiceNumber),
      ...(fromOrder !== null ? { orderNumber: fromOrder } : {}),
      status,
      amount: toMinor(invoice.TotalAmount),
      remainder: toMinor(remainder),
      currency: invoice.Currency,
      dueDate: dateOf(invoice.DueDate),
      numberMatches,
      ...(numberMatches ? {} : { numberMismatch: { message: `Uniconta numbered PSA invoice ${key} as ${invoice.InvoiceNumber}.`, hint } }),
    },
    // Posted by the gateway, the PSA knows it is unpaid; from an order, posting it is the news.
    status: { entity: "invoice", key, value: status, final: status === "paid", baseline: fromOrder !== null ? "ordered" : "unpaid" },
  };
}
