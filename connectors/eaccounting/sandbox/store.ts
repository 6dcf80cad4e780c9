// One eAccounting company in the sandbox: master data (customers, articles, cost centres and their items,
// projects) with the checks eAccounting makes, and the set-up lists (terms of payment, units, article account
// codings). JSON keys are the digest's. A PUT replaces the whole entity (eaccounting.md §4: "Replace the data
// in a customer"): a field left out is gone afterwards. Changes stamp ChangedUtc / ModifiedUtc from the
// sandbox's clock, so modified-since filters see them.
import fixtures from "./fixtures.json";
import { checkVatNumber, conflict, EaError, invalid, notFound, validate, type LengthUnit, type Row } from "./validate.ts";

export interface StoreOptions {
  /** A second customer with the same CustomerNumber: 4000 Conflict (Q7: unverified) or accepted. */
  duplicateCustomerNumber: "conflict" | "allow";
  /** Check VatNumber's documented format (VIES itself is out of reach). */
  vatNumberCheck: boolean;
  /** How string lengths are counted against the fields' maxima: UTF-16 code units as .NET does (default), or code points. */
  lengthUnit: LengthUnit;
}

const clone = <T>(x: T): T => structuredClone(x);
const same = (a: unknown, b: unknown) =>
  String(a ?? "")
    .trim()
    .toLowerCase() ===
  String(b ?? "")
    .trim()
    .toLowerCase();

/** Fields of each entity that the server sets: never taken from a request body. */
const SERVER_FIELDS = new Set([
  "Id",
  "ChangedUtc",
  "CreatedUtc",
  "ModifiedUtc",
  "CodingName",
  "UnitName",
  "UnitAbbreviation",
  "CustomerName",
  "TermsOfPayment",
]);
const fromBody = (body: Row): Row => Object.fromEntries(Object.entries(body).filter(([k, v]) => !SERVER_FIELDS.has(k) && v !== undefined));

export class CompanyStore {
  readonly company = clone(fixtures.company);
  readonly terms: Row[] = clone(fixtures.termsOfPayments);
  readonly units: Row[] = clone(fixtures.units);
  readonly codings: Row[] = clone(fixtures.articleAccountCodings);
  readonly costCenters: Row[] = clone(fixtures.costCenters);
  readonly customers = new Map<string, Row>();
  readonly articles = new Map<string, Row>();
  readonly projects = new Map<string, Row>();
  nextCustomerNumber = fixtures.nextCustomerNumber;

  constructor(
    readonly o: StoreOptions,
    readonly clock: () => number,
  ) {
    for (const a of fixtures.articles) this.articles.set(a.Id, clone(a));
  }

  nowIso(): string {
    return new Date(this.clock()).toISOString().replace(/\.\d{3}Z$/, "Z");
  }
  /** The company's calendar date: eAccounting keeps dates (invoice, due, payment) as Swedish local dates. */
  today(): string {
    return new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/Stockholm", year: "numeric", month: "2-digit", day: "2-digit" }).format(
      new Date(this.clock()),
    );
  }

  // ---- customers (§5) -------------------------------------------------------------------------------------

  private checkCustomer(body: Row, id: string | null): Row {
    validate("customer", body, this.o.lengthUnit);
    checkVatNumber(body.VatNumber);
    const terms = this.terms.find((t) => t.Id === body.TermsOfPaymentId);
    if (!terms) throw notFound(`TermsOfPaymentId: Terms of payment ${body.TermsOfPaymentId}`);
    if (body.CustomerNumber !== undefined && body.CustomerNumber !== null && this.o.duplicateCustomerNumber === "conflict") {
      const other = [...this.customers.values()].find((c) => c.Id !== id && same(c.CustomerNumber, body.CustomerNumber));
      if (other) throw conflict(`Conflict: a customer with customer number ${body.CustomerNumber} already exists.`);
    }
    return terms;
  }

  createCustomer(body: Row): Row {
    const terms = this.checkCustomer(body, null);
    const row: Row = { ...fromBody(body), Id: crypto.randomUUID(), ChangedUtc: this.nowIso(), TermsOfPayment: clone(terms) };
    if (row.CustomerNumber === undefined || row.CustomerNumber === null || row.CustomerNumber === "") {
      // "If not provided, eAccounting will provide one."
      while ([...this.customers.values()].some((c) => c.CustomerNumber === String(this.nextCustomerNumber))) this.nextCustomerNumber++;
      row.CustomerNumber = String(this.nextCustomerNumber++);
    }
    row.CurrencyCode ??= this.company.CurrencyCode;
    this.customers.set(row.Id, row);
    return clone(row);
  }

  /** Full replace: what the body leaves out is gone (Id and the server's fields stay). */
  replaceCustomer(id: string, body: Row): Row {
    const old = this.customers.get(id);
    if (!old) throw notFound("Customer");
    const terms = this.checkCustomer(body, id);
    const row: Row = { ...fromBody(body), Id: id, ChangedUtc: this.nowIso(), TermsOfPayment: clone(terms) };
    row.CustomerNumber ??= old.CustomerNumber;
    row.CurrencyCode ??= this.company.CurrencyCode;
    this.customers.set(id, row);
    return clone(row);
  }

  customer(id: string): Row {
    const c = this.customers.get(id);
    if (!c) throw notFound("Customer");
    return c;
  }

  /** DELETE /v2/customers/{customerId} (§5): gone at once; a second delete, or a read, answers 404 ResourceNotFound. */
  deleteCustomer(id: string): void {
    if (!this.customers.delete(id)) throw notFound("Customer");
  }

  // ---- articles (§7) ----------------------------------------------------------------------------------------

  private checkArticle(body: Row, id: string | null): void {
    validate("article", body, this.o.lengthUnit);
    if (!this.codings.some((c) => c.Id === body.CodingId)) throw notFound(`CodingId: Article account coding ${body.CodingId}`);
    if (!this.units.some((u) => u.Id === body.UnitId)) throw notFound(`UnitId: Unit ${body.UnitId}`);
    const other = [...this.articles.values()].find((a) => a.Id !== id && same(a.Number, body.Number));
    if (other) throw conflict(`Conflict: an article with number ${body.Number} already exists.`);
  }

  private decorateArticle(row: Row): Row {
    const coding = this.codings.find((c) => c.Id === row.CodingId);
    const unit = this.units.find((u) => u.Id === row.UnitId);
    return { ...row, CodingName: coding?.Name, UnitName: unit?.Name, UnitAbbreviation: unit?.Abbreviation };
  }

  createArticle(body: Row): Row {
    this.checkArticle(body, null);
    const now = this.nowIso();
    const row = this.decorateArticle({ ...fromBody(body), Id: crypto.randomUUID(), CreatedUtc: now, ChangedUtc: now });
    this.articles.set(row.Id, row);
    return clone(row);
  }

  replaceArticle(id: string, body: Row): Row {
    const old = this.articles.get(id);
    if (!old) throw notFound("Article");
    this.checkArticle(body, id);
    const row = this.decorateArticle({ ...fromBody(body), Id: id, CreatedUtc: old.CreatedUtc, ChangedUtc: this.nowIso() });
    this.articles.set(id, row);
    return clone(row);
  }

  article(id: string): Row {
    const a = this.articles.get(id);
    if (!a) throw notFound("Article");
    return a;
  }

  // ---- cost centres and their items (§6) ----------------------------------------------------------------

  costCenter(id: string): Row {
    const c = this.costCenters.find((x) => x.Id === id);
    if (!c) throw notFound("Cost center");
    return c;
  }

  /** PUT /v2/costcenters/{id}: its name and whether it is active (items are changed through /costcenteritems). */
  updateCostCenter(id: string, body: Row): Row {
    const c = this.costCenter(id);
    if (typeof body.Name !== "string" || !body.Name.trim()) throw invalid("Name: The Name field is required.");
    c.Name = body.Name;
    if (typeof body.IsActive === "boolean") c.IsActive = body.IsActive;
    return clone(c);
  }

  allItems(): Row[] {
    return this.costCenters.flatMap((c) => c.Items as Row[]);
  }

  costCenterItem(id: string): Row {
    const item = this.allItems().find((i) => i.Id === id);
    if (!item) throw notFound("Cost center item");
    return item;
  }

  private checkItem(body: Row, id: string | null): Row {
    validate("costCenterItem", body, this.o.lengthUnit);
    const center = this.costCenter(String(body.CostCenterId));
    for (const i of center.Items as Row[]) {
      if (i.Id === id) continue;
      if (same(i.ShortName, body.ShortName))
        throw conflict(
          `CostCenterItemAlreadyExists: A cost center item with the short name ${body.ShortName} already exists in ${center.Name}.`,
        );
      if (same(i.Name, body.Name))
        throw conflict(`CostCenterItemAlreadyExists: A cost center item with the name ${body.Name} already exists in ${center.Name}.`);
    }
    return center;
  }

  createCostCenterItem(body: Row): Row {
    const center = this.checkItem(body, null);
    const row: Row = {
      CostCenterId: center.Id,
      Name: body.Name,
      ShortName: body.ShortName,
      IsActive: body.IsActive,
      Id: crypto.randomUUID(),
      CreatedUtc: this.nowIso(),
    };
    (center.Items as Row[]).push(row);
    return clone(row);
  }

  updateCostCenterItem(id: string, body: Row): Row {
    const item = this.costCenterItem(id);
    if (body.CostCenterId !== item.CostCenterId) throw invalid("CostCenterId: An item cannot move to another cost center.");
    this.checkItem(body, id);
    Object.assign(item, { Name: body.Name, ShortName: body.ShortName, IsActive: body.IsActive });
    return clone(item);
  }

  // ---- projects (§6; read by supplier invoice rows) --------------------------------------------------------

  createProject(body: Row): Row {
    validate("project", body, this.o.lengthUnit);
    if ([...this.projects.values()].some((p) => same(p.Number, body.Number)))
      throw conflict(`Conflict: a project with number ${body.Number} already exists.`);
    if (body.CustomerId && !this.customers.has(body.CustomerId)) throw notFound("Customer");
    const row: Row = { ...fromBody(body), Status: body.Status ?? 1, Id: crypto.randomUUID(), ModifiedUtc: this.nowIso() };
    if (row.CustomerId) row.CustomerName = this.customers.get(row.CustomerId)!.Name;
    this.projects.set(row.Id, row);
    return clone(row);
  }

  project(id: string): Row {
    const p = this.projects.get(id);
    if (!p) throw notFound("Project");
    return p;
  }
}

export { EaError };
