// Scheduled pulls from eAccounting:
//   customers, products: master data changed since the watermark (ChangedUtc on the server's clock, Meta.ServerTimeUtc,
//             minus overlap_seconds), as master records in the PSA's shape; agent/master/ decides what reaches the PSA.
//   invoices: drafts kontobro made that eAccounting has sent (numbered), paid in part or paid: invoice.sent and
//             invoice.paid with eAccounting's number and the PSA's id, once each, and partially_paid once per remainder
//             (status items; money in the invoice's currency).
//   expenses: supplier invoice rows with a project (cost-centre item or ProjectId) in the invoice-date window
//             (this week and the one before, by default), read again every run, and those changed since the last
//             run whatever their date; each row reaches the PSA once.
import type { MasterEntity, MasterRecord, PullItem, PullOptions, PullResult } from "../contract.ts";
import { TargetError } from "../http.ts";
import type { EaccountingConfig } from "./config.ts";
import { EaccountingClient, type Row } from "./client.ts";
import { draftIdOf } from "./invoice-push.ts";
import { dateOf, psaIdOf, toMinor } from "./map.ts";
import type { SetupLists } from "./setup.ts";

/**
 * A modified-since run: where it started (null: everything), the page it is at, the server time of its first page.
 * `linked` (invoices stream): the drafts the last run knew as linked and not reported yet (see sentBeforeLinked).
 */
interface Cursor {
  v: 1;
  since?: string;
  run?: { from: string | null; page: number; serverTime: string | null };
  linked?: string[];
}
/**
 * The expense window: a run in progress (its window start, next page, the watermark it reads with and the server time
 * of its first page), or the day of the last complete run. `changedSince`: the server time of the last complete run's
 * first page (minus overlap_seconds after the first run); supplier invoices changed (entered, posted) since then are
 * read whatever their invoice date, so one dated before the window (entered late, or while the agent was down) is not
 * missed.
 *
 * The list has no documented order (eaccounting.md §4: only $page, $pagesize, $filter). Where the server orders it so
 * that a row changed during a run moves (by ModifiedUtc, say), every row behind it moves up a place, and one crossing
 * into a page already read would be skipped; for a row dated before the window, read only because it changed, for good.
 * So the pages after the first read only rows modified before the first page's server time (`ModifiedUtc lt`): a row
 * changed since leaves the list instead of moving in it (the next run reads it: it changed after this run's
 * changedSince), and none can join; a row that left shows as a smaller TotalNumberOfResults, and the run begins again
 * at page 1 (with the same bound: the list only shrinks, so it ends). A one-page run asks nothing more.
 */
interface ExpenseCursor {
  v: 1;
  /** `total`: how many rows the list had when the run began (or began again); see expenses(). */
  window?: { since: string; page: number; changedSince?: string; serverTime?: string; total?: number };
  done?: string;
  changedSince?: string;
}

function parseCursor(raw: string | null, stream: string): Cursor & ExpenseCursor {
  if (!raw) return { v: 1 };
  try {
    const c = JSON.parse(raw);
    if (c?.v === 1) return c;
  } catch {}
  throw new TargetError("permanent", {
    code: "eaccounting.cursor_unreadable",
    message: `The stored position of the eAccounting ${stream} pull cannot be read.`,
    hint: `Reset it with \`DELETE FROM cursors WHERE stream = '${stream}'\`; nothing already imported is imported again.`,
  });
}

const minusSeconds = (iso: string, s: number) => new Date(Date.parse(iso) - s * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
const ms = (iso: unknown) =>
  typeof iso === "string" ? Date.parse(/T/.test(iso) && !/(Z|[+-]\d{2}:\d{2})$/.test(iso) ? `${iso}Z` : iso) : NaN;

export function addDays(isoDate: string, days: number): string {
  const d = new Date(`${isoDate}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** The first day of the invoice-date window: the start of this period, `back` periods earlier. */
export function windowStart(today: string, period: "day" | "week" | "month", back: number): string {
  if (period === "day") return addDays(today, -back);
  if (period === "week") {
    const weekday = (new Date(`${today}T00:00:00Z`).getUTCDay() + 6) % 7; // Monday = 0 (ISO week)
    return addDays(today, -weekday - 7 * back);
  }
  const d = new Date(`${today.slice(0, 7)}-01T00:00:00Z`);
  d.setUTCMonth(d.getUTCMonth() - back);
  return d.toISOString().slice(0, 10);
}

export class EaccountingPuller {
  private readonly projectNumbers = new Map<string, string | null>();

  constructor(
    private readonly client: EaccountingClient,
    private readonly cfg: EaccountingConfig,
    private readonly setup: SetupLists,
    private readonly toMaster: (entity: MasterEntity, row: Row) => Promise<MasterRecord>,
  ) {}

  pull(stream: string, cursor: string | null, options: PullOptions): Promise<PullResult> {
    switch (stream) {
      case "customers":
        return this.master("customer", "customers", "ChangedUtc", cursor);
      case "products":
        return this.master("product", "articles", "ChangedUtc", cursor);
      case "invoices":
        return this.statuses(cursor, options);
      case "expenses":
        return this.expenses(cursor, options.today);
      default:
        throw new TargetError("permanent", {
          code: "eaccounting.unknown_stream",
          message: `eAccounting has no stream "${stream}".`,
          hint: "Use customers, products, invoices or expenses.",
        });
    }
  }

  /** One page of a modified-since read; the watermark moves once the last page is stored. */
  private async modifiedPage(
    resource: string,
    field: string,
    raw: string | null,
    stream: string,
    firstFrom: string | null,
  ): Promise<{ rows: Row[]; next: Cursor; more: boolean }> {
    const cursor = parseCursor(raw, stream);
    const run = cursor.run ?? { from: cursor.since ?? firstFrom, page: 1, serverTime: null };
    const from = run.from;
    const q = from ? { filter: `${field} ge ${this.client.date(from)}`, where: (r: Row) => !(ms(r[field]) < ms(from)) } : {};
    const page = await this.client.page(resource, q, run.page);
    const serverTime = run.serverTime ?? page.serverTime ?? new Date().toISOString();
    if (page.page < page.pages)
      return { rows: page.rows, next: { v: 1, since: cursor.since, run: { ...run, page: run.page + 1, serverTime } }, more: true };
    return { rows: page.rows, next: { v: 1, since: minusSeconds(serverTime, this.cfg.overlap_seconds) }, more: false };
  }

  // ---- master data ------------------------------------------------------------------------------------------

  private async master(entity: MasterEntity, resource: string, field: string, raw: string | null): Promise<PullResult> {
    const { rows, next, more } = await this.modifiedPage(resource, field, raw, `${entity}s`, null);
    const items: PullItem[] = [];
    for (const row of rows) {
      const rec = await this.toMaster(entity, row);
      // One item per version: the same version read again (overlap) is the same item.
      items.push({
        remoteId: `${entity}:${rec.remoteId}@${rec.modifiedAt ?? ""}`,
        type: `${entity}.upserted`,
        data: rec.data,
        master: rec,
      });
    }
    return { items, cursor: JSON.stringify(next), more };
  }

  // ---- invoice status and number ----------------------------------------------------------------------------

  private async statuses(raw: string | null, options: PullOptions): Promise<PullResult> {
    const open = new Map<string, string>();
    const lastStatus = new Map<string, string | null>();
    for (const i of options.openInvoices) {
      const d = draftIdOf(i.remoteId);
      if (d) open.set(d, i.key);
      lastStatus.set(i.key, i.status ?? null);
    }
    const first = `${this.cfg.invoices_start_date ?? addDays(options.today, -60)}T00:00:00Z`;
    const { linked, run } = parseCursor(raw, "invoices");
    const unreported = [...open].filter(([, key]) => !lastStatus.get(key)).map(([draftId]) => draftId);
    const early = run ? [] : await this.sentBeforeLinked(unreported, linked);
    const { rows, next, more } = await this.modifiedPage("customerinvoices", "ModifiedUtc", raw, "invoices", first);
    const seen = new Set(rows.map((r) => r.Id));
    const items: PullItem[] = [];
    for (const inv of [...early.filter((r) => !seen.has(r.Id)), ...rows]) {
      const key = inv.CreatedFromDraftId ? open.get(inv.CreatedFromDraftId) : undefined;
      if (key) items.push(...statusItems(key, inv, lastStatus.get(key) ?? null, this.cfg.reference_field));
    }
    return { items, cursor: JSON.stringify({ ...next, linked: run ? (linked ?? []) : unreported }), more };
  }

  /**
   * Invoices made from drafts linked since the last run (not in `linked`) and not reported yet. The modified-since read
   * misses one a person sent before kontobro stored its link (a draft created on an attempt whose answer was lost, linked
   * by a later attempt; a restore): it was read while no link named it, and the watermark moved past it. Looked up by
   * draft, as a push looks up its link (one request per draft, once).
   */
  private async sentBeforeLinked(unreported: string[], linked: string[] | undefined): Promise<Row[]> {
    const known = new Set(linked ?? []);
    const out: Row[] = [];
    for (const id of unreported.filter((d) => !known.has(d))) {
      const made = await this.client.all("customerinvoices", {
        filter: `CreatedFromDraftId eq ${EaccountingClient.lit(id)}`,
        where: (r) => r.CreatedFromDraftId === id,
      });
      if (made[0]) out.push(made[0]);
    }
    return out;
  }

  // ---- supplier costs ----------------------------------------------------------------------------------------

  private async expenses(raw: string | null, today: string): Promise<PullResult> {
    const e = this.cfg.expenses;
    // A run in progress goes on from its page; a new run reads the whole window again.
    const saved = parseCursor(raw, "expenses") as ExpenseCursor;
    let since = saved.window?.since ?? windowStart(today, e.period, e.lookback_periods);
    if (e.start_date && e.start_date > since) since = e.start_date;
    const changedSince = saved.window ? saved.window.changedSince : saved.changedSince;
    const pageNo = saved.window?.page ?? 1;
    // After the first page: only rows modified before it was read (see ExpenseCursor).
    const before = saved.window?.serverTime;
    const page = await this.client.page("supplierinvoices", this.expenseQuery(since, changedSince, before), pageNo, e.page_size);
    const serverTime = before ?? page.serverTime ?? new Date().toISOString();
    const total = saved.window?.total ?? page.total ?? undefined;
    // A row left the list since the run began (changed, deleted): those behind it moved up; read it again from page 1.
    const shrunk = saved.window?.total !== undefined && page.total !== null && page.total !== saved.window.total;
    const items: PullItem[] = [];
    for (const inv of page.rows) {
      // Drafts (0) and deleted ones (2) are not costs: a row the PSA had from it is cancelled there.
      const live = Number(inv.Status ?? 1) === 1;
      for (const [i, row] of ((inv.Rows as Row[]) ?? []).entries()) {
        const remoteId = `supplierinvoice:${inv.Id}:${row.Id ?? row.LineNumber ?? i + 1}`;
        const project = live ? await this.projectOf(row) : null;
        const amount = toMinor(Number(row.DebetAmount ?? 0) - Number(row.CreditAmount ?? 0));
        const date = dateOf(inv.InvoiceDate) ?? today;
        // No longer a cost (deleted, its project or amount taken away): cancelled, if the PSA had it (agent/pulls/inbox.ts).
        if (!project || amount === 0) {
          items.push({ remoteId, type: "expense.posted", version: "", cancelled: true, data: this.cancelledData(inv, row, date) });
          continue;
        }
        items.push({
          remoteId,
          type: "expense.posted",
          requires: { entity: "project", key: project },
          // What the PSA re-invoices: a row changed in any of these after it was pulled reaches it as expense.changed.
          version: [project, amount, date, inv.CurrencyCode ?? ""].join("|"),
          data: {
            projectNumber: project,
            activity: e.activity,
            billable: e.billable,
            description: [date, inv.VoucherNumber, inv.SupplierName].filter(Boolean).join(" "),
            date,
            quantity: 1,
            unitCost: amount,
            unitPrice: amount,
            amount,
            vatRate: this.cfg.vat_rate,
            currency: inv.CurrencyCode,
            supplier: { number: inv.SupplierNumber, name: inv.SupplierName },
            supplierInvoiceNumber: inv.InvoiceNumber,
            voucherNumber: inv.VoucherNumber,
            accountNumber: row.AccountNumber,
            text: row.TransactionText,
          },
        });
      }
    }
    const more = shrunk || page.page < page.pages;
    const next: ExpenseCursor = more
      ? {
          v: 1,
          window: {
            since,
            page: shrunk ? 1 : pageNo + 1,
            ...(changedSince ? { changedSince } : {}),
            serverTime,
            ...(shrunk ? { total: page.total! } : total !== undefined ? { total } : {}),
          },
        }
      : // The first run reads the window only; what changed before it (older than the window) is not asked for later.
        { v: 1, done: today, changedSince: minusSeconds(serverTime, changedSince ? this.cfg.overlap_seconds : 0) };
    return { items, cursor: JSON.stringify(next), more };
  }

  /** What an expense.cancelled item tells besides the cost it names (agent/pulls/inbox.ts). */
  private cancelledData(inv: Row, row: Row, date: string) {
    return {
      date,
      status: Number(inv.Status ?? 1) === 2 ? "deleted" : Number(inv.Status ?? 1) === 0 ? "draft" : "not_a_cost",
      supplier: { number: inv.SupplierNumber, name: inv.SupplierName },
      supplierInvoiceNumber: inv.InvoiceNumber,
      voucherNumber: inv.VoucherNumber,
      accountNumber: row.AccountNumber,
    };
  }

  /**
   * Invoices dated in the window, or changed since the last run (never dated before start_date); `before`: only those
   * modified before then (the pages after a run's first).
   */
  private expenseQuery(
    since: string,
    changedSince: string | undefined,
    before: string | undefined,
  ): { filter: string; where: (r: Row) => boolean } {
    const start = this.cfg.expenses.start_date;
    const dated = `InvoiceDate ge ${this.client.date(since)}`;
    const parts = [changedSince ? `(${dated} or ModifiedUtc ge ${this.client.date(changedSince)})` : dated];
    if (start && changedSince) parts.push(`InvoiceDate ge ${this.client.date(start)}`);
    if (before) parts.push(`ModifiedUtc lt ${this.client.date(before)}`);
    return {
      filter: parts.join(" and "),
      where: (r) => {
        const date = dateOf(r.InvoiceDate) ?? "";
        if (start && date < start) return false;
        if (before && ms(r.ModifiedUtc) >= ms(before)) return false;
        return date >= since || (!!changedSince && !(ms(r.ModifiedUtc) < ms(changedSince)));
      },
    };
  }

  /** The PSA project of a supplier invoice row: the configured cost centre's item (its abbreviation), else the eAccounting project. */
  private async projectOf(row: Row): Promise<string | null> {
    const itemId = row[`CostCenterItemId${this.cfg.cost_center}`];
    if (itemId) {
      const center = await this.setup.costCenter();
      let item = ((center.Items as Row[]) ?? []).find((i) => i.Id === itemId);
      if (!item) item = (((await this.setup.costCenter(true)).Items as Row[]) ?? []).find((i) => i.Id === itemId);
      if (item) return String(item.ShortName);
    }
    if (row.ProjectId) {
      if (!this.projectNumbers.has(row.ProjectId)) {
        const res = await this.client.request("GET", `/projects/${row.ProjectId}`, { accept: [404] });
        this.projectNumbers.set(row.ProjectId, res.status === 404 ? null : String(res.body?.Number ?? "") || null);
      }
      return this.projectNumbers.get(row.ProjectId) ?? null;
    }
    return null;
  }
}

export type PaymentStatus = "sent" | "partially_paid" | "paid";

/**
 * An invoice's money in its own currency: `TotalAmountInvoiceCurrency` and `RemainingAmountInvoiceCurrency`, not
 * `TotalAmount` and `RemainingAmount` (their twins in the company's currency, field digest CustomerInvoiceApi). A twin
 * left out is taken as the same amount (unverified: whether eAccounting leaves them out of an invoice in its own currency).
 */
export function moneyOf(inv: Row): { amount: number; paidAmount: number; remainder: number } {
  const amount = toMinor(inv.TotalAmountInvoiceCurrency ?? inv.TotalAmount);
  const remainder = toMinor(inv.RemainingAmountInvoiceCurrency ?? inv.RemainingAmount);
  return { amount, paidAmount: amount - remainder, remainder };
}

/** paid (PaymentStatus 0) > partially_paid (a remainder above 0 and below the total) > sent; overdue (2) is a flag. */
export function paymentStatus(inv: Row): PaymentStatus {
  if (Number(inv.PaymentStatus) === 0) return "paid";
  const { amount, remainder } = moneyOf(inv);
  return remainder > 0 && remainder < amount ? "partially_paid" : "sent";
}

/**
 * The status items of an invoice made from one of kontobro's drafts. Sent first when the PSA has not heard of it yet
 * (each once, in that order, even when sent and paid between two pulls); then its state now. A partly paid invoice is a
 * new item for each new remainder (the status's detail). A paid one is asked about a while longer (its payment may be
 * reversed): still paid, it gives nothing new; reversed, it is sent or partially_paid again.
 */
export function statusItems(key: string, inv: Row, last: string | null, referenceField: string): PullItem[] {
  const status = paymentStatus(inv);
  const money = moneyOf(inv);
  const data = {
    invoiceNumber: key,
    psaId: psaIdOf(inv[referenceField]),
    eaccountingInvoiceNumber: inv.InvoiceNumber,
    eaccountingInvoiceId: inv.Id,
    invoiceDate: dateOf(inv.InvoiceDate),
    dueDate: dateOf(inv.DueDate),
    ...money,
    currency: inv.CurrencyCode,
    overdue: Number(inv.PaymentStatus) === 2,
    ...(status === "paid" && inv.PaymentDate ? { paymentDate: dateOf(inv.PaymentDate) } : {}),
  };
  const item = (value: PaymentStatus): PullItem => ({
    remoteId: `invoice:${key}`,
    type: value === "paid" ? "invoice.paid" : value === "sent" ? "invoice.sent" : "invoice.status_changed",
    data: { ...data, status: value },
    status: {
      entity: "invoice",
      key,
      value,
      final: value === "paid",
      baseline: "draft",
      ...(value === "partially_paid" ? { detail: String(money.remainder) } : {}),
    },
  });
  return status === "sent" || last ? [item(status)] : [item("sent"), item(status)];
}
