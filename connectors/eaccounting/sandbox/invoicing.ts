// Sales and purchase documents in the sandbox (eaccounting.md §8, §10): customer invoice drafts, their
// conversion into bookkept invoices numbered from eAccounting's own counter, payments, and supplier invoices
// with project rows (spelled DebetAmount, as the API does).
import { conflict, dayOf, EaError, invalid, notFound, round2, validate, type Row } from "./validate.ts";
import type { CompanyStore } from "./store.ts";

export interface InvoicingOptions {
  /** Drafts of a credit invoice (IsCreditInvoice) allowed through the API (unverified which signs they take). */
  creditDrafts: boolean;
  /**
   * The exchange rate of each invoice currency, in the company's currency (SEK) per unit (invented rates; eAccounting
   * fetches its own). An invoice in another currency keeps its totals and remainder twice: `TotalAmount` and
   * `RemainingAmount` in the company's currency, `…InvoiceCurrency` in the invoice's (field digest, CustomerInvoiceApi).
   */
  currencyRates: Record<string, number>;
}

export const CURRENCY_RATES: Record<string, number> = { EUR: 11.5, NOK: 1, DKK: 1.55, USD: 10.5, GBP: 13.25 };

const clone = <T>(x: T): T => structuredClone(x);
const ROW_FIELDS = [
  "LineNumber",
  "ArticleId",
  "ArticleNumber",
  "IsTextRow",
  "Text",
  "UnitPrice",
  "DiscountPercentage",
  "Quantity",
  "ReversedConstructionServicesVatFree",
  "CostCenterItemId1",
  "CostCenterItemId2",
  "CostCenterItemId3",
  "UnitId",
  "ProjectId",
  "VatRateId",
  "WorkCostType",
  "IsWorkCost",
];

export class Invoicing {
  readonly drafts = new Map<string, Row>();
  readonly invoices = new Map<string, Row>();
  readonly supplierInvoices = new Map<string, Row>();
  nextInvoiceNumber: number;
  private nextVoucher = 1;
  private nextSupplierNumber = 1;
  /** Invoices dated before this day cannot be bookkept (a locked period or year: 4013). */
  lockedBefore: string | null = null;
  /** InvoicingOptions.currencyRates, changeable through POST /__sandbox/settings {currencyRates}. */
  readonly currencyRates: Record<string, number>;
  /**
   * A fault, not eAccounting's documented behaviour: rows of these articles (by number) take this unit price whatever
   * the row's UnitPrice says (a price list applied), so the draft's totals are not the PSA's. PUT /__sandbox/price-list.
   */
  priceList = new Map<string, number>();

  constructor(
    private readonly s: CompanyStore,
    private readonly o: InvoicingOptions,
    firstNumber: number,
  ) {
    this.nextInvoiceNumber = firstNumber;
    this.currencyRates = { ...o.currencyRates };
  }

  // ---- drafts (§8.1) ------------------------------------------------------------------------------------

  private buildDraft(body: Row, id: string, created: string): Row {
    validate("draft", body, this.s.o.lengthUnit);
    if (body.IsCreditInvoice && !this.o.creditDrafts)
      throw invalid("IsCreditInvoice: Credit invoice drafts cannot be created through the API.");
    const customer = this.s.customers.get(String(body.CustomerId));
    if (!customer) throw notFound("Customer");
    const rows = Array.isArray(body.Rows) ? body.Rows : [];
    let net = 0,
      vat = 0;
    const outRows = rows.map((r: Row, i: number) => {
      validate("draftRow", r, this.s.o.lengthUnit, `Rows[${i}].`);
      const row: Row = Object.fromEntries(ROW_FIELDS.filter((f) => r[f] !== undefined).map((f) => [f, r[f]]));
      row.Id = crypto.randomUUID();
      row.LineNumber ??= i + 1;
      if (!r.IsTextRow) {
        if (!r.ArticleId) throw invalid(`Rows[${i}].ArticleId: The ArticleId field is required when IsTextRow is false.`);
        const article = this.s.articles.get(String(r.ArticleId));
        if (!article) throw notFound(`Rows[${i}].ArticleId: Article ${r.ArticleId}`);
        // An inactivated article on an invoice line: 409 Conflict (the known error).
        if (!article.IsActive)
          throw conflict(`Conflict: the article ${article.Number} ${article.Name} is inactive and cannot be used on invoices.`, 409);
        const coding = this.s.codings.find((c) => c.Id === article.CodingId);
        if (!coding?.DomesticSalesSubjectToVatAccountNumber)
          throw new EaError(
            400,
            4024,
            `SalesAccountNumberMissing: the account coding ${coding?.Name ?? article.CodingId} of article ${article.Number} has no sales account.`,
          );
        row.ArticleNumber = article.Number;
        row.Text ??= article.Name;
        row.UnitId ??= article.UnitId;
        const unit = this.s.units.find((u) => u.Id === row.UnitId);
        if (!unit) throw notFound(`Rows[${i}].UnitId: Unit ${row.UnitId}`);
        row.UnitAbbreviation = unit.Abbreviation;
        const qty = Number(r.Quantity ?? 1),
          price = this.priceList.get(String(article.Number)) ?? Number(r.UnitPrice ?? article.NetPrice ?? 0);
        if (Math.abs(Math.round(price * 100) - price * 100) > 1e-6)
          throw invalid(`Rows[${i}].UnitPrice: The field UnitPrice allows at most 2 decimals for a domestic customer.`);
        const amount = round2(qty * price * (1 - Number(r.DiscountPercentage ?? 0)));
        row.Quantity = qty;
        row.UnitPrice = price;
        net += amount;
        vat += round2(amount * Number(coding.VatRatePercent ?? 0));
      }
      for (const n of [1, 2, 3]) {
        const itemId = r[`CostCenterItemId${n}`];
        if (!itemId) continue;
        const item = this.s.allItems().find((x) => x.Id === itemId);
        if (!item) throw notFound(`Rows[${i}].CostCenterItemId${n}: Cost center item ${itemId}`);
        if (!item.IsActive)
          throw new EaError(400, 5006, `InactiveCostCenter: the cost center item ${item.ShortName} ${item.Name} is inactive.`);
      }
      if (r.ProjectId && this.s.projects.get(String(r.ProjectId))?.Status === 2)
        throw new EaError(400, 5005, "ProjectEnded: the project is finished and cannot be used.");
      return row;
    });
    const header: Row = Object.fromEntries(
      Object.entries(body).filter(
        ([k, v]) => k !== "Rows" && v !== undefined && !["Id", "TotalAmount", "TotalVatAmount", "CreatedUtc"].includes(k),
      ),
    );
    // An address the draft leaves out is the customer's.
    header.InvoiceCustomerName ??= String(customer.Name).slice(0, 50);
    header.InvoiceAddress1 ??= customer.InvoiceAddress1;
    header.InvoicePostalCode ??= customer.InvoicePostalCode;
    header.InvoiceCity ??= customer.InvoiceCity;
    header.InvoiceCountryCode ??= customer.InvoiceCountryCode;
    header.InvoiceCurrencyCode ??= customer.CurrencyCode;
    return {
      ...header,
      Id: id,
      CreatedUtc: created,
      CustomerNumber: customer.CustomerNumber,
      CustomerName: customer.Name,
      Rows: outRows,
      TotalAmount: round2(net + vat),
      TotalVatAmount: round2(vat),
      TotalRoundings: 0,
      ModifiedUtc: this.s.nowIso(),
    };
  }

  createDraft(body: Row): Row {
    const draft = this.buildDraft(body, crypto.randomUUID(), this.s.nowIso());
    this.drafts.set(draft.Id, draft);
    return clone(draft);
  }

  replaceDraft(id: string, body: Row): Row {
    const old = this.draft(id);
    const draft = this.buildDraft(body, id, old.CreatedUtc);
    this.drafts.set(id, draft);
    return clone(draft);
  }

  draft(id: string): Row {
    const d = this.drafts.get(id);
    if (!d) throw notFound("Customer invoice draft");
    return d;
  }

  deleteDraft(id: string): void {
    this.draft(id);
    this.drafts.delete(id);
  }

  /**
   * POST …/customerinvoicedrafts/{id}/convert: the draft becomes a bookkept invoice with the next number; a past
   * or missing draft date becomes today unless keepOriginalDraftDate (§8.1); the draft is gone afterwards.
   */
  convert(id: string, keepOriginalDraftDate: boolean): Row {
    const d = this.draft(id);
    const today = this.s.today();
    const draftDay = dayOf(d.InvoiceDate);
    const invoiceDay = keepOriginalDraftDate && draftDay ? draftDay : draftDay && draftDay > today ? draftDay : today;
    if (this.lockedBefore && invoiceDay < this.lockedBefore)
      throw new EaError(400, 4013, `CannotBookkeepInvoice: ${invoiceDay} is in a locked period (locked before ${this.lockedBefore}).`);
    const rate = this.rateOf(String(d.InvoiceCurrencyCode ?? this.s.company.CurrencyCode));
    const number = this.nextInvoiceNumber++;
    const now = this.s.nowIso();
    const invoice: Row = {
      ...clone(d),
      Id: crypto.randomUUID(),
      InvoiceNumber: number,
      InvoiceDate: `${invoiceDay}T00:00:00`,
      DueDate: d.DueDate ?? `${invoiceDay}T00:00:00`,
      CurrencyCode: d.InvoiceCurrencyCode,
      CurrencyRate: rate,
      CreatedFromDraftId: d.Id,
      TotalAmount: round2(d.TotalAmount * rate),
      TotalVatAmount: round2(d.TotalVatAmount * rate),
      TotalAmountInvoiceCurrency: d.TotalAmount,
      TotalVatAmountInvoiceCurrency: d.TotalVatAmount,
      RemainingAmount: round2(d.TotalAmount * rate),
      RemainingAmountInvoiceCurrency: d.TotalAmount,
      PaymentStatus: 1,
      VoucherNumber: `F${number}`,
      VoucherId: crypto.randomUUID(),
      CreatedUtc: now,
      ModifiedUtc: now,
      SendType: 0,
      Rows: (d.Rows as Row[]).map((r) => ({
        ...r,
        AmountNoVat: r.IsTextRow ? 0 : round2(Number(r.Quantity) * Number(r.UnitPrice)),
        PercentVat: this.vatOf(r),
      })),
    };
    delete invoice.InvoiceCurrencyCode;
    this.drafts.delete(id);
    this.invoices.set(invoice.Id, invoice);
    return this.read(invoice);
  }

  /** Company currency per unit of `currency`: 1 for the company's own; a currency without a rate is refused. */
  private rateOf(currency: string): number {
    if (currency === this.s.company.CurrencyCode) return 1;
    const rate = this.currencyRates[currency];
    if (!rate)
      throw invalid(
        `CurrencyCode: the sandbox has no exchange rate for ${currency} (set one with POST /__sandbox/settings {currencyRates}).`,
      );
    return rate;
  }

  private vatOf(r: Row): number {
    if (r.IsTextRow) return 0;
    const a = this.s.articles.get(String(r.ArticleId));
    return Number(this.s.codings.find((c) => c.Id === a?.CodingId)?.VatRatePercent ?? 0);
  }

  /** An invoice as GET answers it: an open invoice past its due date is Overdue (2). */
  read(inv: Row): Row {
    const out = clone(inv);
    if (out.PaymentStatus !== 0 && (dayOf(out.DueDate) ?? "9999") < this.s.today()) out.PaymentStatus = 2;
    return out;
  }

  invoice(id: string): Row {
    const i = this.invoices.get(id);
    if (!i) throw notFound("Customer invoice");
    return this.read(i);
  }

  /**
   * A payment registered in eAccounting, in the invoice's currency (the whole remainder without `amount`; below 0: a
   * payment returned by the bank). Nothing left (or overpaid) is Paid (0); anything left again is Unpaid (1).
   */
  registerPayment(invoiceNumber: number, amount?: number): Row {
    const inv = [...this.invoices.values()].find((i) => i.InvoiceNumber === invoiceNumber);
    if (!inv) throw notFound(`Customer invoice ${invoiceNumber}`);
    const left = round2(Number(inv.RemainingAmountInvoiceCurrency) - (amount ?? inv.RemainingAmountInvoiceCurrency));
    inv.RemainingAmountInvoiceCurrency = Math.abs(left) < 0.005 ? 0 : left;
    inv.RemainingAmount = round2(inv.RemainingAmountInvoiceCurrency * Number(inv.CurrencyRate ?? 1));
    if (inv.RemainingAmountInvoiceCurrency <= 0) {
      inv.PaymentStatus = 0;
      inv.PaymentDate = `${this.s.today()}T00:00:00`;
    } else {
      inv.PaymentStatus = 1;
      delete inv.PaymentDate;
    }
    inv.ModifiedUtc = this.s.nowIso();
    return this.read(inv);
  }

  // ---- supplier invoices (§10) -----------------------------------------------------------------------------

  /** A supplier invoice booked by a person: rows carry DebetAmount/CreditAmount, ProjectId and CostCenterItemId1..3. */
  addSupplierInvoice(body: Row): Row {
    if (!body.SupplierName || !body.InvoiceNumber || !body.InvoiceDate)
      throw invalid("SupplierName, InvoiceNumber and InvoiceDate are required.");
    const rows = (Array.isArray(body.Rows) ? body.Rows : []).map((r: Row, i: number) => ({
      LineNumber: i + 1,
      CreditAmount: 0,
      DebetAmount: 0,
      ...r,
      Id: crypto.randomUUID(),
    }));
    const debit = rows.reduce((s: number, r: Row) => s + Number(r.DebetAmount ?? 0), 0);
    const credit = rows.reduce((s: number, r: Row) => s + Number(r.CreditAmount ?? 0), 0);
    const now = this.s.nowIso();
    const row: Row = {
      SupplierId: body.SupplierId ?? crypto.randomUUID(),
      SupplierNumber: body.SupplierNumber ?? String(this.nextSupplierNumber++),
      CurrencyCode: this.s.company.CurrencyCode,
      Status: 1,
      PaymentStatus: 1,
      IsCreditInvoice: false,
      ...body,
      Rows: rows,
      Id: crypto.randomUUID(),
      TotalAmount: body.TotalAmount ?? round2(Math.max(debit, credit)),
      VoucherNumber: body.VoucherNumber ?? `L${this.nextVoucher++}`,
      VoucherId: crypto.randomUUID(),
      CreatedUtc: now,
      ModifiedUtc: now,
    };
    this.supplierInvoices.set(row.Id, row);
    return clone(row);
  }

  /** Change a booked supplier invoice as a person would (Status 2 = deleted). */
  changeSupplierInvoice(id: string, change: Row): Row {
    const inv = this.supplierInvoices.get(id);
    if (!inv) throw notFound("Supplier invoice");
    Object.assign(inv, change, { ModifiedUtc: this.s.nowIso() });
    return clone(inv);
  }
}
