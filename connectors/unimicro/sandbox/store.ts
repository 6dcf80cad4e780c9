// The sandbox's data for one company: entities with internal IDs, the platform's child-row rules
// (`_createguid`, `Deleted`, IDs), foreign keys that fail as a 500, and per-entity validation.
import { expandPaths, runQuery, type Query, type Row } from "./query.ts";

export type Profile = "unimicro" | "uni-economy" | "dnb-regnskap" | "sparebank1-regnskap";

export interface StoreOptions {
  profile: Profile;
  /** Whether invoices accept linked files (KB: Uni Economy "is currently not able to receive attachments"). */
  attachments: boolean;
  /** "client": a client-set InvoiceNumber is kept (unverified on the real platform); "series": always renumbered. */
  invoiceNumbers: "client" | "series";
  /** "payment-id": the voucher is numbered from the invoice's PaymentID (KB-UE); "series": next number. */
  voucherNumbers: "payment-id" | "series";
  /**
   * A PUT deleting a child row that an earlier PUT deleted: "gone" refuses it (400, the row no longer belongs to
   * the record); "kept" accepts it and changes nothing, as a platform that keeps deleted rows (every entity has
   * `Deleted`, §4.2) may. Which one the platform does is unverified.
   */
  deletedChildren: "gone" | "kept";
  /**
   * Where a VatType keeps its rate: "percent" in `VatPercent` (the field unimicro.md §8.1 names), its
   * `VatTypePercentages` empty; "dated" in `VatTypePercentages` (ValidFrom, ValidTo, VatPercent: the 2019 swagger's
   * VatTypePercentage), `VatPercent` left at 0. Which one the platform does is unverified.
   */
  vatRates: "percent" | "dated";
}

/** An answer in the platform's error envelope. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: { Message: string; _validationResults?: unknown },
  ) {
    super(body.Message);
  }
}
const invalid = (field: string, message: string) =>
  new ApiError(400, { Message: "Validation failed", _validationResults: { [field]: [{ Message: message, Level: 3 }] } });
const foreignKey = (entity: string, field: string) =>
  new ApiError(500, { Message: `An error occurred (foreign key constraint) when saving ${entity}.${field}` });
export const notFound = (what: string) => new ApiError(404, { Message: `${what} not found` });

/** Collection path → entity name; the first four can be written. */
export const COLLECTIONS: Record<string, string> = {
  customers: "Customer",
  projects: "Project",
  products: "Product",
  invoices: "CustomerInvoice",
  accounts: "Account",
  vattypes: "VatType",
  currencycodes: "CurrencyCode",
  journalentries: "JournalEntry",
  journalentrylines: "JournalEntryLine",
  files: "File",
};
export const WRITABLE = new Set(["customers", "projects", "products", "invoices"]);
/** What a client may delete (customers, projects, products: unimicro.md §4.1, §6); invoices are credited, not deleted. */
export const DELETABLE = new Set(["customers", "projects", "products"]);

export const INVOICE_STATUS = { draft: 42001, invoiced: 42002, partlyPaid: 42003, paid: 42004, credited: 42006 } as const;
const ID_FIELD_OF: Record<string, string> = { Info: "BusinessRelationID" };
const round2 = (n: number) => Math.round(n * 100) / 100;
const isDnbProfile = (p: Profile) => p === "dnb-regnskap" || p === "sparebank1-regnskap";

interface MergeCtx {
  mode: "post" | "put";
  entity: string;
  newGuids: string[];
  /** Child rows this write deletes (kept in `deletedChildIds` once it succeeds). */
  deletedIds: number[];
}

/** Navigation properties the platform expands from a foreign key (2019 swagger: CustomerInvoice.JournalEntry, by JournalEntryID). */
const REFERENCES: Record<string, { name: string; coll: string; key: string }[]> = {
  invoices: [{ name: "JournalEntry", coll: "journalentries", key: "JournalEntryID" }],
};

/** A VatType's rate on a date: the dated one (VatTypePercentages) that applies, else VatPercent. */
function vatRateOn(vatType: Row, date: string): number {
  const day = date.slice(0, 10);
  const dated = ((vatType.VatTypePercentages ?? []) as Row[]).find(
    (r) => (!r.ValidFrom || String(r.ValidFrom).slice(0, 10) <= day) && (!r.ValidTo || day <= String(r.ValidTo).slice(0, 10)),
  );
  return Number(dated?.VatPercent ?? vatType.VatPercent ?? 0);
}

export class CompanyStore {
  private seq = 1000;
  readonly rows: Record<string, Row[]> = Object.fromEntries(Object.keys(COLLECTIONS).map((k) => [k, []]));
  private readonly guids = new Set<string>();
  private readonly deletedChildIds = new Set<number>();
  readonly fileLinks: { FileID: number; EntityType: string; EntityID: number }[] = [];
  /**
   * A fault, not the platform's documented behaviour: products (by PartName) whose lines are booked at this PriceExVat
   * whatever an item says (a price list), so the invoice's TaxExclusiveAmount is not the one sent. PUT /__sandbox/price-list.
   */
  priceList = new Map<string, number>();
  private next = { customer: 100000, project: 1, product: 1, invoice: 10001, voucher: 1 };

  constructor(
    readonly company: { ID: number; Name: string; Key: string },
    readonly o: StoreOptions,
  ) {
    this.seed();
  }

  private id(): number {
    return ++this.seq;
  }

  private seed(): void {
    const add = (coll: string, r: Row) => {
      const row = { ID: this.id(), Deleted: false, ...r };
      this.rows[coll]!.push(row);
      return row;
    };
    const acc: Record<number, Row> = {};
    for (const [n, name] of [
      [1500, "Kundefordringer"],
      [1920, "Bankinnskudd"],
      [2700, "Utgående merverdiavgift"],
      [3000, "Salgsinntekt, avgiftspliktig"],
      [3100, "Salgsinntekt, avgiftsfri"],
      [3400, "Viderefakturerte kostnader"],
      [7140, "Reisekostnad"],
    ] as const) {
      acc[n] = add("accounts", { AccountNumber: n, AccountName: name, Visible: true });
    }
    // A VatType's rate: in VatPercent, or dated in VatTypePercentages (vatRates). The low rate was 6 % from 2020-04-01
    // to 2021-09-30 (Norway); a dated answer shows it, VatPercent says today's.
    const rates = (now: number, history: [string, string | null, number][] = [["2005-01-01", null, now]]) =>
      this.o.vatRates === "dated"
        ? {
            VatPercent: 0,
            VatTypePercentages: history.map(([from, to, pct]) => ({ ID: this.id(), ValidFrom: from, ValidTo: to, VatPercent: pct })),
          }
        : { VatPercent: now, VatTypePercentages: [] };
    const low: [string, string | null, number][] = [
      ["2005-01-01", "2020-03-31", 12],
      ["2020-04-01", "2021-09-30", 6],
      ["2021-10-01", null, 12],
    ];
    const vat: Record<string, Row> = {};
    for (const [code, pct, name] of [
      ["3", 25, "Utgående mva, høy sats"],
      ["31", 15, "Utgående mva, middels sats"],
      ["33", 12, "Utgående mva, lav sats"],
      ["5", 0, "Ingen utgående mva innenlands"],
      ["6", 0, "Utenfor mva-loven"],
    ] as const) {
      vat[code] = add("vattypes", {
        VatCode: code,
        ...rates(pct, code === "33" ? low : undefined),
        Name: name,
        OutputVat: true,
        OutgoingAccountID: acc[2700]!.ID,
      });
    }
    for (const code of ["NOK", "EUR", "SEK", "DKK", "USD", "GBP"]) add("currencycodes", { Code: code, Name: code, ShortCode: code });
    add("products", { PartName: "1", Name: "Timer", Unit: "timer", AccountID: acc[3000]!.ID, VatTypeID: vat["3"]!.ID, StatusCode: null });
    add("products", { PartName: "2", Name: "Utlegg", Unit: "stk", AccountID: acc[3400]!.ID, VatTypeID: vat["3"]!.ID, StatusCode: null });
    add("products", { PartName: "3", Name: "Varer", Unit: "stk", AccountID: acc[3000]!.ID, VatTypeID: vat["3"]!.ID, StatusCode: null });
    // Code 0, "no VAT handling", as Norwegian companies have it: neither output nor input VAT (OutputVat false), 0 %,
    // no VAT account; used on sales lines outside VAT (whether the platform's code 0 says OutputVat false is unverified).
    add("vattypes", { VatCode: "0", ...rates(0), Name: "Ingen mva-behandling", OutputVat: false });
    // A purchase (input) VAT code, as every company has: not for sales lines.
    const input = add("accounts", { AccountNumber: 2710, AccountName: "Inngående merverdiavgift", Visible: true });
    add("vattypes", { VatCode: "1", ...rates(25), Name: "Inngående mva, høy sats", OutputVat: false, IncomingAccountID: input.ID });
    this.guids.clear();
  }

  private byId(coll: string, id: unknown): Row | undefined {
    return this.rows[coll]!.find((r) => r.ID === Number(id));
  }

  list(coll: string, q: Query): Row[] {
    return runQuery(this.withReferences(coll, this.rows[coll]!, q.expand), q);
  }

  get(coll: string, id: number, expand?: string): Row {
    const row = this.byId(coll, id);
    if (!row) throw notFound(`${COLLECTIONS[coll]} ${id}`);
    return runQuery(this.withReferences(coll, [row], expand), { expand })[0]!;
  }

  /** Navigation properties kept by foreign key, filled in when expanded (`expand=JournalEntry` on an invoice). */
  private withReferences(coll: string, rows: Row[], expand: string | undefined): Row[] {
    const wanted = (REFERENCES[coll] ?? []).filter((r) => expandPaths(expand).includes(r.name.toLowerCase()));
    if (wanted.length === 0) return rows;
    return rows.map((row) => ({ ...row, ...Object.fromEntries(wanted.map((r) => [r.name, this.byId(r.coll, row[r.key]) ?? null])) }));
  }

  // ---- writes with the platform's child-row rules ---------------------------------------------------

  private newChild(v: Row, ctx: MergeCtx, path: string): Row | null {
    const guid = v._createguid as string | undefined;
    if (ctx.mode === "put" && !guid)
      throw new ApiError(400, { Message: "creating new entities in a PUT is not allowed unless _createguid property is specified" });
    // "the same guid cannot be inserted twice": a replayed insert is a no-op.
    if (guid && (this.guids.has(guid) || ctx.newGuids.includes(guid))) return null;
    if (guid) ctx.newGuids.push(guid);
    const child: Row = { ID: this.id(), Deleted: false };
    this.merge(child, v, ctx, path);
    return child;
  }

  private merge(target: Row, body: Row, ctx: MergeCtx, path: string): void {
    for (const [k, v] of Object.entries(body)) {
      if (k === "ID" || k === "_createguid" || k === "Deleted") continue;
      if (Array.isArray(v)) {
        const list: Row[] = (target[k] ??= []);
        for (const el of v) {
          if (!el || typeof el !== "object") continue;
          if (el.ID) {
            const at = list.findIndex((x) => x.ID === el.ID);
            if (at < 0 && el.Deleted && this.o.deletedChildren === "kept" && this.deletedChildIds.has(el.ID)) continue;
            if (at < 0) throw new ApiError(400, { Message: `${k} with ID ${el.ID} does not belong to this ${ctx.entity}` });
            if (el.Deleted) ctx.deletedIds.push(...list.splice(at, 1).map((x) => x.ID));
            else this.merge(list[at]!, el, ctx, `${path}.${k}`);
          } else if (!el.Deleted) {
            const child = this.newChild(el, ctx, `${path}.${k}`);
            if (child) list.push(child);
          }
        }
      } else if (v && typeof v === "object") {
        if (v.ID) {
          if (target[k]?.ID !== v.ID) throw new ApiError(400, { Message: `${k} with ID ${v.ID} does not belong to this ${ctx.entity}` });
          this.merge(target[k], v, ctx, `${path}.${k}`);
        } else {
          const child = this.newChild(v, ctx, `${path}.${k}`);
          if (child) {
            target[k] = child;
            target[ID_FIELD_OF[k] ?? `${k}ID`] = child.ID;
          }
        }
      } else if (!(v === null && target[k] && typeof target[k] === "object")) {
        target[k] = v; // `"Dimensions": null` keeps the row; scalars are set
      }
    }
  }

  /** `createdBy`: who made the row (the platform fills CreatedBy with the caller's identity). */
  create(coll: string, body: Row, createdBy: string | null = null): Row {
    const ctx: MergeCtx = { mode: "post", entity: COLLECTIONS[coll]!, newGuids: [], deletedIds: [] };
    const row: Row = {
      ID: this.id(),
      Deleted: false,
      CreatedAt: new Date().toISOString(),
      CreatedBy: createdBy,
      StatusCode: coll === "invoices" ? INVOICE_STATUS.draft : null,
    };
    this.merge(row, body, ctx, "");
    this.finish(coll, row);
    this.rows[coll]!.push(row);
    ctx.newGuids.forEach((g) => this.guids.add(g));
    return row;
  }

  update(coll: string, id: number, body: Row): Row {
    const existing = this.byId(coll, id);
    if (!existing) throw notFound(`${COLLECTIONS[coll]} ${id}`);
    if (coll === "invoices" && existing.StatusCode !== INVOICE_STATUS.draft) {
      throw new ApiError(400, { Message: `CustomerInvoice ${id} has status ${existing.StatusCode} and can no longer be changed` });
    }
    const ctx: MergeCtx = { mode: "put", entity: COLLECTIONS[coll]!, newGuids: [], deletedIds: [] };
    const copy = structuredClone(existing); // all or nothing: validate the copy, then swap it in
    this.merge(copy, body, ctx, "");
    copy.UpdatedAt = new Date().toISOString();
    this.finish(coll, copy);
    this.rows[coll]![this.rows[coll]!.indexOf(existing)] = copy;
    ctx.newGuids.forEach((g) => this.guids.add(g));
    ctx.deletedIds.forEach((id) => this.deletedChildIds.add(id));
    return copy;
  }

  /**
   * `DELETE customers/42` (unimicro.md §4.1): the row is gone, so reads and foreign keys naming it fail. The answer's
   * status (204 here) and whether the platform keeps the row with `Deleted: true` instead are unverified.
   */
  remove(coll: string, id: number): void {
    const at = this.rows[coll]!.findIndex((r) => r.ID === id);
    if (at < 0) throw notFound(`${COLLECTIONS[coll]} ${id}`);
    this.rows[coll]!.splice(at, 1);
  }

  private requireFk(coll: string, id: unknown, entity: string, field: string): void {
    if (id != null && !this.byId(coll, id)) throw foreignKey(entity, field);
  }

  private unique(coll: string, row: Row, field: string): boolean {
    return !this.rows[coll]!.some((r) => r.ID !== row.ID && r[field] != null && String(r[field]) === String(row[field]));
  }

  /** Entity rules and computed fields, run on every create and update. */
  private finish(coll: string, row: Row): void {
    if (coll === "customers") {
      if (!row.Info?.Name) throw invalid("Info.Name", "Name is required");
      if (row.CustomerNumber == null) {
        while (!this.unique(coll, { CustomerNumber: this.next.customer }, "CustomerNumber")) this.next.customer++;
        row.CustomerNumber = this.next.customer++;
      }
      if (!Number.isInteger(row.CustomerNumber)) throw invalid("CustomerNumber", "CustomerNumber must be a whole number");
      if (!this.unique(coll, row, "CustomerNumber")) throw invalid("CustomerNumber", "Customer number already in use");
      if (isDnbProfile(this.o.profile) && (row.CustomerNumber < 100000 || row.CustomerNumber > 199999))
        throw invalid("CustomerNumber", "Customer number must be between 100000 and 199999");
      this.requireFk("currencycodes", row.CurrencyCodeID, "Customer", "CurrencyCodeID");
    } else if (coll === "projects") {
      if (!row.Name) throw invalid("Name", "Name is required");
      if (row.ProjectNumber == null) row.ProjectNumber = String(this.next.project++);
      row.ProjectNumber = String(row.ProjectNumber);
      if (!this.unique(coll, row, "ProjectNumber")) throw invalid("ProjectNumber", "Project number already in use");
      if (isDnbProfile(this.o.profile) && !/^\d+$/.test(row.ProjectNumber))
        throw invalid("ProjectNumber", "Project number must be numeric");
      row.ProjectNumberNumeric = /^\d{1,9}$/.test(row.ProjectNumber) ? Number(row.ProjectNumber) : null;
      this.requireFk("customers", row.ProjectCustomerID, "Project", "ProjectCustomerID");
    } else if (coll === "products") {
      if (row.PartName == null) row.PartName = String(100 + this.next.product++);
      if (!this.unique(coll, row, "PartName")) throw invalid("PartName", "Product number already in use");
      this.requireFk("accounts", row.AccountID, "Product", "AccountID");
      this.requireFk("vattypes", row.VatTypeID, "Product", "VatTypeID");
    } else if (coll === "invoices") {
      this.finishInvoice(row);
    }
  }

  private finishInvoice(row: Row): void {
    if (row.CustomerID == null) throw invalid("CustomerID", "Customer is required");
    const customer = this.byId("customers", row.CustomerID);
    if (!customer) throw foreignKey("CustomerInvoice", "CustomerID");
    row.CustomerName = customer.Info?.Name;
    row.InvoiceType ??= 0;
    this.requireFk("projects", row.DefaultDimensions?.ProjectID, "Dimensions", "ProjectID");
    let ex = 0,
      vat = 0;
    for (const item of row.Items ?? []) {
      const product = this.byId("products", item.ProductID);
      if (item.ProductID != null && !product) throw foreignKey("CustomerInvoiceItem", "ProductID");
      this.requireFk("accounts", item.AccountID, "CustomerInvoiceItem", "AccountID");
      this.requireFk("vattypes", item.VatTypeID, "CustomerInvoiceItem", "VatTypeID");
      this.requireFk("projects", item.Dimensions?.ProjectID, "Dimensions", "ProjectID");
      const vatType = this.byId("vattypes", item.VatTypeID ?? product?.VatTypeID);
      item.VatPercent = vatType ? vatRateOn(vatType, String(row.InvoiceDate ?? "")) : 0;
      const listed = product ? this.priceList.get(String(product.PartName)) : undefined;
      if (listed !== undefined) item.PriceExVat = listed;
      item.SumTotalExVat = round2(
        Number(item.NumberOfItems ?? 0) * Number(item.PriceExVat ?? 0) * (1 - Number(item.DiscountPercent ?? 0) / 100),
      );
      item.SumVat = round2((item.SumTotalExVat * item.VatPercent) / 100);
      item.SumTotalIncVat = round2(item.SumTotalExVat + item.SumVat);
      ex += item.SumTotalExVat;
      vat += item.SumVat;
    }
    row.TaxExclusiveAmount = round2(ex);
    row.VatTotalsAmount = round2(vat);
    row.TaxInclusiveAmount = round2(ex + vat);
  }

  // ---- invoice actions ----------------------------------------------------------------------------

  /** `invoices/{id}?action=invoice`: draft → invoiced, with invoice number, KID and a voucher. */
  invoice(id: number): Row {
    const inv = this.byId("invoices", id);
    if (!inv) throw notFound(`CustomerInvoice ${id}`);
    if (inv.StatusCode !== INVOICE_STATUS.draft)
      throw new ApiError(400, { Message: `Transition 'invoice' is not allowed for CustomerInvoice ${id} with status ${inv.StatusCode}` });
    if (!inv.Items?.length) throw new ApiError(400, { Message: "Cannot invoice a CustomerInvoice without items" });
    // Credit notes and credit lines are negative (§4.2); an ordinary invoice with a negative total is refused.
    if (inv.InvoiceReferenceID && !(inv.TaxInclusiveAmount < 0))
      throw invalid("TaxInclusiveAmount", `A credit note must have a negative total; CustomerInvoice ${id} has ${inv.TaxInclusiveAmount}`);
    if (!inv.InvoiceReferenceID && inv.TaxInclusiveAmount < 0)
      throw invalid(
        "TaxInclusiveAmount",
        `An invoice cannot have a negative total (${inv.TaxInclusiveAmount}); credit the invoice instead`,
      );
    const booked = this.rows.invoices!.filter((r) => r.StatusCode !== INVOICE_STATUS.draft);
    if (this.o.invoiceNumbers === "series" || !inv.InvoiceNumber) {
      while (booked.some((r) => r.InvoiceNumber === String(this.next.invoice))) this.next.invoice++;
      inv.InvoiceNumber = String(this.next.invoice++);
    }
    inv.InvoiceNumber = String(inv.InvoiceNumber);
    if (booked.some((r) => r.InvoiceNumber === inv.InvoiceNumber))
      throw invalid("InvoiceNumber", `Invoice number ${inv.InvoiceNumber} is already used`);
    inv.PaymentID ??= kidFor(inv.InvoiceNumber);
    const year = String(inv.InvoiceDate ?? new Date().toISOString()).slice(0, 4);
    const base = this.o.voucherNumbers === "payment-id" ? String(inv.PaymentID) : String(this.next.voucher++);
    const number = `${base}-${year}`;
    if (this.rows.journalentries!.some((j) => j.JournalEntryNumber === number))
      throw invalid("JournalEntryNumber", `Voucher number ${number} is already used`);
    const je = {
      ID: this.id(),
      Deleted: false,
      JournalEntryNumber: number,
      JournalEntryNumberNumeric: /^\d{1,9}$/.test(base) ? Number(base) : null,
      Description: `Faktura ${inv.InvoiceNumber}`,
    };
    this.rows.journalentries!.push(je);
    this.journalLines(inv, je);
    Object.assign(inv, {
      StatusCode: INVOICE_STATUS.invoiced,
      JournalEntryID: je.ID,
      RestAmount: inv.TaxInclusiveAmount,
      UpdatedAt: new Date().toISOString(),
    });
    if (inv.InvoiceReferenceID) this.applyCredit(inv);
    return inv;
  }

  private journalLines(inv: Row, je: Row): void {
    const account = (n: number) => this.rows.accounts!.find((a) => a.AccountNumber === n)!.ID;
    const line = (r: Row) =>
      this.rows.journalentrylines!.push({
        ID: this.id(),
        JournalEntryID: je.ID,
        JournalEntryNumber: je.JournalEntryNumber,
        FinancialDate: inv.InvoiceDate,
        CustomerInvoiceID: inv.ID,
        InvoiceNumber: inv.InvoiceNumber,
        StatusCode: null, // many real lines have null status (the `ne` filter trap)
        ...r,
      });
    line({
      AccountID: account(1500),
      SubAccountID: inv.CustomerID,
      Amount: inv.TaxInclusiveAmount,
      PaymentID: inv.PaymentID,
      DueDate: inv.PaymentDueDate,
      Description: `Faktura ${inv.InvoiceNumber} ${inv.CustomerName}`,
    });
    for (const it of inv.Items ?? []) {
      const acc = it.AccountID ?? this.byId("products", it.ProductID)?.AccountID ?? account(3000);
      line({
        AccountID: acc,
        Amount: -it.SumTotalExVat,
        VatTypeID: it.VatTypeID,
        Description: it.ItemText,
        Dimensions: it.Dimensions ?? inv.DefaultDimensions ?? null,
      });
    }
    if (inv.VatTotalsAmount)
      line({ AccountID: account(2700), Amount: -inv.VatTotalsAmount, Description: `Mva faktura ${inv.InvoiceNumber}` });
  }

  private applyCredit(credit: Row): void {
    const original = this.byId("invoices", credit.InvoiceReferenceID);
    if (!original) return;
    const amount = -(credit.TaxInclusiveAmount ?? 0); // a credit note's total is negative
    original.Credited = true;
    original.CreditedAmount = round2((original.CreditedAmount ?? 0) + amount);
    original.RestAmount = round2((original.RestAmount ?? 0) - amount);
    if (original.CreditedAmount >= Math.abs(original.TaxInclusiveAmount ?? 0)) original.StatusCode = INVOICE_STATUS.credited;
  }

  /** `invoices/{id}?action=create-credit-draft-invoice`: a draft copy with negated lines, linked to the original. */
  creditDraft(id: number, createdBy: string | null = null): Row {
    const original = this.byId("invoices", id);
    if (!original) throw notFound(`CustomerInvoice ${id}`);
    if (original.StatusCode === INVOICE_STATUS.draft)
      throw new ApiError(400, { Message: `CustomerInvoice ${id} is a draft and cannot be credited` });
    const copyRow = (r: Row | undefined) => (r ? { ...structuredClone(r), ID: this.id() } : undefined);
    const draft: Row = {
      ID: this.id(),
      Deleted: false,
      CreatedAt: new Date().toISOString(),
      CreatedBy: createdBy,
      StatusCode: INVOICE_STATUS.draft,
      InvoiceType: 1,
      InvoiceReferenceID: original.ID,
      CustomerID: original.CustomerID,
      CurrencyCodeID: original.CurrencyCodeID,
      InvoiceDate: new Date().toISOString().slice(0, 10),
      DefaultDimensions: copyRow(original.DefaultDimensions),
      Items: (original.Items ?? []).map((it: Row) => ({
        ...copyRow(it),
        Dimensions: copyRow(it.Dimensions),
        NumberOfItems: -it.NumberOfItems,
      })),
    };
    draft.DefaultDimensionsID = draft.DefaultDimensions?.ID;
    this.finishInvoice(draft);
    this.rows.invoices!.push(draft);
    return draft;
  }

  /** Test hook: a payment arrives (42002 → 42003 / 42004). */
  registerPayment(id: number, amount: number): Row {
    const inv = this.byId("invoices", id);
    if (!inv || inv.StatusCode === INVOICE_STATUS.draft) throw notFound(`Invoiced CustomerInvoice ${id}`);
    inv.RestAmount = round2(Math.max(0, (inv.RestAmount ?? 0) - amount));
    inv.StatusCode = inv.RestAmount === 0 ? INVOICE_STATUS.paid : INVOICE_STATUS.partlyPaid;
    inv.UpdatedAt = new Date().toISOString();
    return inv;
  }

  // ---- files ---------------------------------------------------------------------------------------

  addFile(name: string, contentType: string, size: number): Row {
    const file = {
      ID: this.id(),
      Deleted: false,
      Name: name,
      ContentType: contentType,
      Size: String(size),
      StorageReference: crypto.randomUUID(),
      StatusCode: null,
    };
    this.rows.files!.push(file);
    return file;
  }

  linkFile(fileId: number, entityType: string, entityId: number): Row {
    const file = this.byId("files", fileId);
    if (!file) throw notFound(`File ${fileId}`);
    if (/^CustomerInvoice$/i.test(entityType)) {
      if (!this.o.attachments) throw new ApiError(400, { Message: "Attachments are not accepted on CustomerInvoice in this company" });
      if (!this.byId("invoices", entityId)) throw notFound(`CustomerInvoice ${entityId}`);
    }
    if (!this.fileLinks.some((l) => l.FileID === fileId && l.EntityType === entityType && l.EntityID === entityId))
      this.fileLinks.push({ FileID: fileId, EntityType: entityType, EntityID: entityId });
    return file;
  }

  filesOf(entityType: string, entityId: number): Row[] {
    const ids = this.fileLinks
      .filter((l) => l.EntityType.toLowerCase() === entityType.toLowerCase() && l.EntityID === entityId)
      .map((l) => l.FileID);
    return this.rows.files!.filter((f) => ids.includes(f.ID));
  }
}

/** A MOD10 (Luhn) KID from the invoice number, zero-padded: what a default KID set-up would produce. */
export function kidFor(invoiceNumber: string): string {
  const digits = invoiceNumber.replace(/\D/g, "").padStart(7, "0");
  let sum = 0;
  [...digits].reverse().forEach((d, i) => {
    let n = Number(d) * (i % 2 === 0 ? 2 : 1);
    if (n > 9) n -= 9;
    sum += n;
  });
  return digits + String((10 - (sum % 10)) % 10);
}
