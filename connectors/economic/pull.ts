// Scheduled pulls from e-conomic (Legacy REST):
//   expenses: booked entries of the lookback window, read page by page in entryNumber order
//             (GET /accounting-years/{y}/entries), each expense line with its voucher's supplier,
//             VAT and receipt (/journals/{j}/vouchers/{y}-{v}/attachment).
//   payments: the status of the invoices kontobro booked (/invoices/booked, /paid, /overdue).
import type { PullItem, PullOptions, PullResult } from "../contract.ts";
import { TargetError, type HttpClient } from "../http.ts";
import type { EconomicConfig } from "./config.ts";
import {
  entriesFilter,
  expenseItem,
  isExpense,
  parseEntries,
  parseExpenseCursor,
  paymentItem,
  paymentStatus,
  selfId,
  unexpected,
  windowStart,
  type Entry,
  type ExpenseCursor,
  type VatAccount,
} from "./pull-map.ts";

const IN_LIMIT = 200; // e-conomic's $in: takes at most 200 values

export class EconomicPuller {
  constructor(
    private readonly http: HttpClient,
    private readonly rest: string,
    private readonly cfg: EconomicConfig,
  ) {}

  pull(stream: string, cursor: string | null, options: PullOptions): Promise<PullResult> {
    if (stream === "expenses") return this.expenses(cursor, options.today);
    if (stream === "payments") return this.payments(options.openInvoices);
    throw new TargetError("permanent", {
      code: "unknown_stream",
      message: `e-conomic has no stream "${stream}".`,
      hint: "Use expenses or payments.",
    });
  }

  // ── expenses ─────────────────────────────────────────────────────────────────────────────────────

  private async expenses(raw: string | null, today: string): Promise<PullResult> {
    const cfg = this.cfg.expenses;
    const cursor = parseExpenseCursor(raw);
    const since = cursor.run?.since ?? windowStart(cursor.done, today, cfg.lookback_days);
    const until = cursor.run?.until ?? today;
    const years = await this.accountingYears(since, until, cursor.floors ?? {});
    let run = cursor.run;
    if (!run) {
      // No accounting year covers the window yet: nothing can be booked there; the window stays put.
      if (years.size === 0) return { items: [], cursor: null, more: false };
      // Each year is read with its floor (an entry booked since the last run, whatever its date); a year without one
      // (the first run, a new year) with the window only, and its floor for the next run is its highest entry now: 0
      // when it has none yet, a floor like any other (every entry booked into it later is read).
      const floors: Record<string, number> = {};
      const next: Record<string, number> = {};
      for (const [year, y] of years) {
        const floor = cursor.floors?.[year];
        if (floor !== undefined) floors[year] = next[year] = floor;
        else next[year] = await this.highestEntry(y.entries);
      }
      run = { since, until, years: [...years.keys()], after: 0, floors, next };
    }
    const year = run.years[0]!;
    const link = years.get(year)?.entries ?? `${this.rest}/accounting-years/${selfId(year)}/entries`;
    const page = await this.get(link, {
      filter: entriesFilter(run.since, run.after, cfg.cost_types, run.floors?.[year]),
      sort: "entryNumber",
      pagesize: String(cfg.page_size),
    });
    const entries = parseEntries(page);
    const items = await this.expenseItems(
      year,
      link,
      entries.filter((e) => isExpense(e, cfg)),
    );
    const last = entries.length > 0 ? entries[entries.length - 1]!.entryNumber : run.after;
    // Read with a floor, every entry above it that matches was read: the next run's floor is the highest of them.
    const nextFloors = { ...run.next, ...(run.floors?.[year] !== undefined ? { [year]: Math.max(run.next?.[year] ?? 0, last) } : {}) };
    let next: ExpenseCursor;
    if (page?.pagination?.nextPage)
      next = { v: 1, done: cursor.done, floors: cursor.floors, run: { ...run, after: last, next: nextFloors } };
    else if (run.years.length > 1)
      next = { v: 1, done: cursor.done, floors: cursor.floors, run: { ...run, years: run.years.slice(1), after: 0, next: nextFloors } };
    else next = { v: 1, done: run.until, floors: nextFloors };
    return { items, cursor: JSON.stringify(next), more: next.run !== undefined };
  }

  /**
   * Accounting years to read, oldest first: those overlapping [since, until], and those still open that have a floor
   * (an entry booked late into last year after the window has moved on). Year → its entries link.
   */
  private async accountingYears(since: string, until: string, floors: Record<string, number>): Promise<Map<string, { entries: string }>> {
    const body = await this.get(`${this.rest}/accounting-years`, {
      filter: `fromDate$lte:${until}`,
      sort: "fromDate",
      pagesize: "1000",
    });
    if (!Array.isArray(body?.collection)) throw unexpected("a list of accounting years");
    return new Map(
      body.collection
        .filter(
          (y: any) => (typeof y.toDate === "string" && y.toDate >= since) || (floors[String(y.year)] !== undefined && y.closed !== true),
        )
        .map((y: any) => [
          String(y.year),
          { entries: typeof y.entries === "string" ? y.entries : `${this.rest}/accounting-years/${selfId(String(y.year))}/entries` },
        ]),
    );
  }

  /** The highest entry number booked in a year so far (0: none). */
  private async highestEntry(entriesLink: string): Promise<number> {
    const body = await this.get(entriesLink, { sort: "-entryNumber", pagesize: "1" });
    if (!Array.isArray(body?.collection)) throw unexpected("a list of entries");
    const top = body.collection[0]?.entryNumber;
    if (top !== undefined && !Number.isInteger(top)) throw unexpected("an entry with entryNumber");
    return top ?? 0;
  }

  private async expenseItems(year: string, entriesLink: string, expenses: Entry[]): Promise<PullItem[]> {
    if (expenses.length === 0) return [];
    const vat = await this.vatAccounts();
    const vouchers = new Map<number, Entry[]>();
    const suppliers = new Map<number, string | undefined>();
    const receipts = new Map<number, PullItem["attachment"]>();
    const items: PullItem[] = [];
    for (const e of expenses) {
      if (!vouchers.has(e.voucherNumber)) {
        const voucher = parseEntries(await this.get(entriesLink, { filter: `voucherNumber$eq:${e.voucherNumber}`, pagesize: "1000" }));
        vouchers.set(e.voucherNumber, voucher);
        const supplier = voucher.find((x) => x.supplier)?.supplier?.supplierNumber;
        if (supplier !== undefined && !suppliers.has(supplier))
          suppliers.set(supplier, (await this.getOrNull(`${this.rest}/suppliers/${supplier}`))?.name);
        receipts.set(e.voucherNumber, this.cfg.expenses.attachments ? await this.receipt(year, e.voucherNumber) : undefined);
      }
      const voucher = vouchers.get(e.voucherNumber)!;
      const supplier = voucher.find((x) => x.supplier)?.supplier?.supplierNumber;
      items.push(
        expenseItem(year, e, voucher, {
          cfg: this.cfg.expenses,
          vat,
          supplierName: supplier === undefined ? undefined : suppliers.get(supplier),
          attachment: receipts.get(e.voucherNumber),
        }),
      );
    }
    return items;
  }

  private async vatAccounts(): Promise<Map<string, VatAccount>> {
    const body = await this.get(`${this.rest}/vat-accounts`, { pagesize: "1000" });
    const out = new Map<string, VatAccount>();
    for (const v of body?.collection ?? []) {
      if (typeof v?.vatCode === "string")
        out.set(v.vatCode, { rate: Number(v.ratePercentage ?? 0) / 100, accountNumber: Number(v.account?.accountNumber ?? NaN) });
    }
    return out;
  }

  /** The voucher's receipt (PDF or image), if it has one. */
  private async receipt(year: string, voucher: number): Promise<PullItem["attachment"]> {
    const base = `${this.rest}/journals/${this.cfg.journal}/vouchers/${selfId(year)}-${voucher}/attachment`;
    const meta = await this.getOrNull(base);
    if (!meta) return undefined;
    const file = await this.http.request("GET", typeof meta.file === "string" ? meta.file : `${base}/file`, {
      binary: true,
      accept: [404],
    });
    if (file.status === 404 || !(file.body instanceof Uint8Array)) return undefined;
    const contentType = (file.headers.get("content-type") ?? "application/pdf").split(";")[0]!.trim();
    const ext = contentType.includes("pdf") ? "pdf" : contentType.includes("png") ? "png" : contentType.includes("gif") ? "gif" : "jpg";
    return { filename: `voucher-${year.replace("/", "-")}-${voucher}.${ext}`, contentType, bytes: file.body };
  }

  // ── payments ─────────────────────────────────────────────────────────────────────────────────────

  private async payments(open: PullOptions["openInvoices"]): Promise<PullResult> {
    const keyOf = new Map(open.filter((i) => /^\d+$/.test(i.remoteId)).map((i) => [Number(i.remoteId), i.key]));
    const numbers = [...keyOf.keys()];
    const items: PullItem[] = [];
    for (let i = 0; i < numbers.length; i += IN_LIMIT) {
      const filter = `bookedInvoiceNumber$in:[${numbers.slice(i, i + IN_LIMIT).join(",")}]`;
      const params = { filter, pagesize: "1000" };
      const [booked, paid, overdue] = await Promise.all([
        this.get(`${this.rest}/invoices/booked`, params),
        this.get(`${this.rest}/invoices/paid`, params),
        this.get(`${this.rest}/invoices/overdue`, params),
      ]);
      const numbersIn = (body: any) => new Set<number>((body?.collection ?? []).map((x: any) => x.bookedInvoiceNumber));
      const [isPaid, isOverdue] = [numbersIn(paid), numbersIn(overdue)];
      if (!Array.isArray(booked?.collection)) throw unexpected("a list of booked invoices");
      for (const b of booked.collection) {
        const key = keyOf.get(b.bookedInvoiceNumber);
        if (key === undefined) continue;
        const overdue = isOverdue.has(b.bookedInvoiceNumber);
        items.push(paymentItem(key, b, paymentStatus(b, isPaid.has(b.bookedInvoiceNumber), overdue), overdue));
      }
    }
    return { items, cursor: null, more: false };
  }

  // ── helpers ──────────────────────────────────────────────────────────────────────────────────────

  private async get(url: string, params: Record<string, string> = {}): Promise<any> {
    const u = new URL(url);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    return (await this.http.request("GET", u.toString())).body;
  }

  private async getOrNull(url: string): Promise<any | null> {
    const res = await this.http.request("GET", url, { accept: [404] });
    return res.status === 404 ? null : res.body;
  }
}

/** One line about a pulled item for the status page's inbox (ConnectorFactory.describePulled). */
export function describePulled(type: string, d: Record<string, any>): string {
  const money = typeof d.amount === "number" ? `${(d.amount / 100).toFixed(2)} ${d.currency ?? ""}` : "";
  return type.startsWith("expense")
    ? `project ${d.projectNumber ?? "?"} · ${money} · ${d.supplier?.name ?? ""} · ${d.description ?? ""}`
    : `invoice ${d.invoiceNumber ?? "?"} · ${d.previousStatus ?? "?"} → ${d.status ?? "?"}${money ? ` · ${money}` : ""}`;
}
