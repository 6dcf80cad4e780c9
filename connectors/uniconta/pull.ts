// Scheduled pulls from Uniconta:
//   expenses: posted project costs (ProjectTransClient) of the configured number series and accounts, page by
//             page in (JournalPostedId, Voucher, LineNumber) order, with the window and the resume point in the
//             cursor stored with each page.
//   payments: the status of the invoices kontobro posted (DebtorInvoiceClient + DebtorTransClient), and of the
//             orders it created ("order only": posted by a person) — Uniconta's number once posted.
//   invoices: the same for orders only, more often, so the PSA learns Uniconta's number soon after posting.
// While the day's call budget is down to the reserve for pushes, a pull returns nothing and keeps its cursor.
import type { ConnectorDeps, PullItem, PullOptions, PullResult } from "../contract.ts";
import { TargetError } from "../http.ts";
import type { CallBudget } from "./budget.ts";
import { orChunks, type Row, type UnicontaClient } from "./client.ts";
import type { UnicontaConfig } from "./config.ts";
import { NUMBER_SERIES_HINT } from "./invoice-push.ts";
import {
  EXPENSE_ORDER,
  expenseFilter,
  expenseItem,
  isExpense,
  paymentItem,
  parseExpenseCursor,
  rowKey,
  windowStart,
  type ExpenseCursor,
} from "./pull-map.ts";

export class UnicontaPuller {
  constructor(
    private readonly client: UnicontaClient,
    private readonly cfg: UnicontaConfig,
    private readonly budget: CallBudget,
    private readonly log: ConnectorDeps["log"],
  ) {}

  pull(stream: string, cursor: string | null, options: PullOptions): Promise<PullResult> {
    if (stream === "expenses") return this.expenses(cursor, options.today);
    if (stream === "payments") return this.statuses(options, false);
    if (stream === "invoices") return this.statuses(options, true);
    throw new TargetError("permanent", {
      code: "uniconta.unknown_stream",
      message: `Uniconta has no stream "${stream}".`,
      hint: "Use expenses, payments or invoices.",
    });
  }

  /** Nothing when the budget is down to the reserve: the cursor stays, the next run goes on from it. */
  private postponed(stream: string, calls: number): PullResult | null {
    const allowed = this.budget.pullAllowed(calls);
    if (allowed.ok) return null;
    this.log.info("uniconta: pull postponed to keep the day's call budget for pushes", { stream, reason: allowed.reason });
    return { items: [], cursor: null, more: false };
  }

  // ---- expenses ------------------------------------------------------------------------------------------

  private async expenses(raw: string | null, today: string): Promise<PullResult> {
    const cfg = this.cfg.expenses;
    const accountCalls = cfg.accounts.length > 0 ? Math.ceil(cfg.page_size / 40) : 0;
    const wait = this.postponed("expenses", 1 + accountCalls);
    if (wait) return wait;
    const cursor = parseExpenseCursor(raw, cfg.start_date, today);
    const run = cursor.run ?? { since: windowStart(cursor, today, cfg.overlap_days), until: today, floor: cursor.floor, max: cursor.floor };
    const rows = await this.client.query("ProjectTransClient", {
      filter: expenseFilter(cursor, run, cfg.number_series),
      orderby: EXPENSE_ORDER,
      top: cfg.page_size,
    });
    const candidates = rows.filter(isExpense);
    const onAccounts = cfg.accounts.length > 0 ? await this.onAccounts(candidates, cfg.accounts) : null;
    const items = candidates.filter((r) => !onAccounts || onAccounts.has(accountKey(r))).map((r) => expenseItem(r, this.cfg));
    const max = Math.max(run.max, ...rows.map((r) => Number(r.JournalPostedId ?? 0)));
    let next: ExpenseCursor;
    if (rows.length >= cfg.page_size) next = { ...cursor, run: { ...run, after: rowKey(rows[rows.length - 1]!), max } };
    else next = { v: 1, start: cursor.start, done: run.until, floor: max };
    return { items, cursor: JSON.stringify(next), more: next.run !== undefined };
  }

  /** (JournalPostedId, Voucher, amount) of the ledger lines on the configured accounts (§8: matching ProjectTrans to GLTrans is inferred). */
  private async onAccounts(rows: Row[], accounts: string[]): Promise<Set<string>> {
    const ids = [...new Set(rows.map((r) => Number(r.JournalPostedId)))];
    const out = new Set<string>();
    if (ids.length === 0) return out;
    const accountFilter = orChunks("Account", accounts)[0]!;
    for (const gl of await this.client.queryIn("GLTransClient", "JournalPostedId", ids, accountFilter)) {
      out.add(`${gl.JournalPostedId}:${gl.Voucher}:${Math.round(Number(gl.Amount) * 100)}`);
    }
    return out;
  }

  // ---- payment status and posted orders --------------------------------------------------------------------

  private async statuses(options: PullOptions, ordersOnly: boolean): Promise<PullResult> {
    const numbered = ordersOnly ? [] : options.openInvoices.filter((i) => /^\d+$/.test(i.remoteId));
    const orders = options.openInvoices
      .map((i) => ({ key: i.key, order: /^order:(\d+)$/.exec(i.remoteId)?.[1] }))
      .filter((i) => i.order !== undefined)
      .map((i) => ({ key: i.key, order: Number(i.order) }));
    if (numbered.length === 0 && orders.length === 0) return { items: [], cursor: null, more: false };
    const wait = this.postponed(ordersOnly ? "invoices" : "payments", 2 * Math.ceil((numbered.length + orders.length) / 40) + 1);
    if (wait) return wait;
    const since = this.cfg.payments.start_date ? `Date ge ${this.cfg.payments.start_date}` : undefined;
    const byNumber = numbered.length
      ? await this.client.queryIn(
          "DebtorInvoiceClient",
          "InvoiceNumber",
          numbered.map((i) => Number(i.remoteId)),
          since,
        )
      : [];
    const byOrder = orders.length
      ? await this.client.queryIn(
          "DebtorInvoiceClient",
          "OrderNumber",
          orders.map((o) => o.order),
          since,
        )
      : [];
    const found: { key: string; invoice: Row; order: number | null }[] = [];
    for (const i of numbered) {
      const inv = byNumber.find((r) => String(r.InvoiceNumber) === i.remoteId);
      if (inv) found.push({ key: i.key, invoice: inv, order: null });
    }
    for (const o of orders) {
      // An order can be invoiced in parts; the first invoice is the one reported.
      const inv = byOrder
        .filter((r) => Number(r.OrderNumber) === o.order && String(r[this.cfg.reference_field] ?? "").startsWith("kontobro:"))
        .sort((a, b) => Number(a.InvoiceNumber) - Number(b.InvoiceNumber))[0];
      if (inv) found.push({ key: o.key, invoice: inv, order: o.order });
    }
    if (found.length === 0) return { items: [], cursor: null, more: false };
    const trans = await this.client.queryIn(
      "DebtorTransClient",
      "Invoice",
      found.map((f) => Number(f.invoice.InvoiceNumber)),
    );
    const items: PullItem[] = found.map((f) => {
      const item = paymentItem(
        f.key,
        f.invoice,
        trans.filter((t) => String(t.Invoice) === String(f.invoice.InvoiceNumber)),
        options.today,
        f.order,
        NUMBER_SERIES_HINT,
      );
      if (f.order !== null && !(item.data as any).numberMatches) {
        this.log.warn("uniconta: an order kontobro created was invoiced under another number than the PSA's", {
          invoice: f.key,
          uniconta: f.invoice.InvoiceNumber,
          order: f.order,
        });
      }
      return item;
    });
    return { items, cursor: null, more: false };
  }
}

const accountKey = (r: Row) => `${r.JournalPostedId}:${r.Voucher}:${Math.round(Number(r.CostAmount) * 100)}`;

/** One line about a pulled item for the status page's inbox (ConnectorFactory.describePulled). */
export function describePulled(type: string, d: Record<string, any>): string {
  const money = typeof d.amount === "number" ? `${(d.amount / 100).toFixed(2)} ${d.currency ?? ""}` : "";
  if (type.startsWith("expense"))
    return `project ${d.projectNumber ?? "?"} · ${money} · ${d.title ?? ""}${d.supplier?.name ? ` · ${d.supplier.name}` : ""}`;
  const numbers = [
    d.orderNumber !== undefined ? `order ${d.orderNumber}` : "",
    d.numberMatches === false ? `Uniconta's number ${d.unicontaInvoiceNumber}` : "",
  ].filter(Boolean);
  return `invoice ${d.invoiceNumber ?? "?"} · ${d.previousStatus ?? "?"} → ${d.status ?? "?"}${money ? ` · ${money}` : ""}${numbers.map((n) => ` · ${n}`).join("")}`;
}
