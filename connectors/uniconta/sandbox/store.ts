// One Uniconta company in the sandbox: its entities (JSON keys = the *Client property names of the digest),
// keys, the checks Uniconta makes on insert and update, and its error codes (the .NET ErrorCodes enum).
// Nulls are never stored, so a read omits them; an update replaces the whole entity (omitted = null),
// as the OData notes say (uniconta.md §5, §11.3).
import fixtures from "./fixtures.json";

export type Row = Record<string, unknown>;

/** Uniconta's ErrorCodes names (uniconta.md §10), the ones the sandbox answers with. */
export type ErrorCode =
  | "CouldNotFind"
  | "KeyExists"
  | "FieldCannotBeBlank"
  | "AccountIsMissing"
  | "NoRights"
  | "CouldNotDeleteRecordThatIsReferred"
  | "NoLinesFound"
  | "FileIsTooBig"
  | "InvoiceNumberMissing"
  | "Exception"
  | "CouldNotSave"
  | "NoSubscription";

export class UcError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

const list = (s: string) => new Set(s.split(/\s+/).filter(Boolean));
const DIMS = "Dimension1 Dimension2 Dimension3 Dimension4 Dimension5";

/** Properties per entity: the digest's (uniconta-entity-field-digest.md) plus RowId; the notes' Dimension1..5 where §4 lists them. */
const FIELDS: Record<string, Set<string>> = {
  DebtorClient:
    list(`RowId Account Address1 Address2 Address3 BalanceMethod BankAccount Blocked City CompanyRegNo ContactEmail ContactPerson Country Created CreditMax
    Currency DeliveryAddress1 DeliveryAddress2 DeliveryAddress3 DeliveryCity DeliveryCountry DeliveryName DeliveryZipCode EAN EmailDocuments Group InvoiceEmail
    InvoiceInXML LayoutGroup MobilPhone Name Payment Phone PriceList PricesInclVat UserLanguage Vat VatNumber VatZone Www ZipCode ${DIMS}`),
  ProjectClient:
    list(`RowId Account Blocked City Created Currency Description Email EndDate FixedPrice Group InvoicingMethod MasterProject Name Number OurRef
    Payment PersonInCharge Phase PrStandard PrType PriceList Requisition StartDate Vat WorkAddress1 WorkAddress2 WorkAddress3 WorkCountry YourRef ZipCode ${DIMS}`),
  DebtorOrderClient:
    list(`RowId Account ContactName Currency DeleteLines DeleteOrder DeliveryDate DueDate Employee EndDiscountPct Group InvoiceDate LayoutGroup
    Name OrderNumber OurRef Payment PostingAccount PostingText PrCategory PriceList PricesInclVat Project Remark Requisition Task Vat WorkSpace YourRef ${DIMS}`),
  DebtorOrderLineClient:
    list(`RowId OrderNumber LineNumber Item Text Qty Price DiscountPct Discount Vat PostingAccount Project PrCategory Task Employee Date Unit
    Currency Note Storage Warehouse Location ${DIMS}`),
  UserDocsClient: list("RowId TableId TableRowId Text DocumentType Data Created"),
};

interface TypeSpec {
  key: string;
  readOnly?: boolean;
  required?: string[];
}

export const TYPES: Record<string, TypeSpec> = {
  CompanyClient: { key: "CompanyId", readOnly: true },
  DebtorClient: { key: "Account", required: ["Account", "Name"] },
  CreditorClient: { key: "Account", required: ["Account", "Name"] },
  ProjectClient: { key: "Number", required: ["Number", "Name", "Account"] },
  DebtorOrderClient: { key: "OrderNumber", required: ["Account"] },
  DebtorOrderLineClient: { key: "RowId", required: ["OrderNumber"] },
  DebtorInvoiceClient: { key: "InvoiceNumber", readOnly: true },
  DebtorInvoiceLines: { key: "RowId", readOnly: true },
  DebtorTransClient: { key: "RowId", readOnly: true },
  ProjectTransClient: { key: "RowId", readOnly: true },
  GLTransClient: { key: "RowId", readOnly: true },
  CreditorTransClient: { key: "RowId", readOnly: true },
  GLDailyJournalLineClient: { key: "RowId" },
  UserDocsClient: { key: "RowId", required: ["TableId", "TableRowId", "Data"] },
  InvItemClient: { key: "Item", required: ["Item"] },
  DebtorGroupClient: { key: "Group", required: ["Group"] },
  ProjectGroupClient: { key: "Group", required: ["Group"] },
  PrCategoryClient: { key: "Number", required: ["Number"] },
  GLVatClient: { key: "Vat", required: ["Vat"] },
  GLAccountClient: { key: "Account", required: ["Account"] },
  PaymentTermClient: { key: "Payment", required: ["Payment"] },
  GLDimType1Client: { key: "Dimension" },
  GLDimType2Client: { key: "Dimension" },
  GLDimType3Client: { key: "Dimension" },
  GLDimType4Client: { key: "Dimension" },
  GLDimType5Client: { key: "Dimension" },
  NumberSerieClient: { key: "Number", required: ["Number"] },
};

export interface StoreOptions {
  /** Properties a type does not have: dropped (a JSON deserializer ignores them) or refused. */
  unknownProperties: "ignore" | "refuse";
  /** Order lines without an inventory item (text + PostingAccount + Vat) are accepted (Q2, unverified). */
  itemlessLines: boolean;
  /** Lines on a project need a project category (Moment's KB). */
  categoryRequired: boolean;
  /** FileIsTooBig above this many bytes (the real limit is unknown). */
  maxFileBytes: number;
  /**
   * Whether a new order's PricesInclVat comes from its debtor (uniconta.md lists the flag on both; what an API insert
   * does is unverified): "when_unset", as a new order in Uniconta's screens takes it; "always", even over the order's
   * own; "never".
   */
  pricesInclVatFromDebtor: "when_unset" | "always" | "never";
}

export type Company = (typeof fixtures.companies)[number];
const clean = (r: Row): Row => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== null && v !== undefined));

export class CompanyStore {
  readonly rows = new Map<string, Row[]>();
  /** Properties dropped because the type does not have them, per type (state shows them). */
  readonly ignored: Record<string, string[]> = {};
  private rowId = 1000;
  private orderNumber = 100;
  nextJournalPostedId = 88000;
  nextVoucher = 1;

  constructor(
    readonly company: Company,
    private readonly o: StoreOptions,
  ) {
    for (const type of Object.keys(TYPES)) this.rows.set(type, []);
    for (const [type, seed] of Object.entries(fixtures.setup))
      for (const r of seed as Row[]) this.raw(type).push({ RowId: this.rowId++, ...r });
  }

  raw(type: string): Row[] {
    const rows = this.rows.get(type);
    if (!rows) throw new UcError("CouldNotFind", `The entity type ${type} does not exist`);
    return rows;
  }

  /** A copy without nulls, as a read returns it. */
  read(type: string): Row[] {
    return this.raw(type).map((r) => ({ ...r }));
  }

  find(type: string, field: string, value: unknown): Row | undefined {
    return this.raw(type).find((r) => String(r[field]) === String(value));
  }

  byKey(type: string, key: unknown): Row | undefined {
    return this.find(type, TYPES[type]!.key, key);
  }

  newRowId(): number {
    return this.rowId++;
  }

  /** Inserts one entity or a list, all or nothing; answers what was stored (with assigned keys). */
  insert(type: string, body: unknown): Row[] {
    const spec = this.spec(type);
    if (spec.readOnly) throw new UcError("NoRights", `${type} cannot be inserted through the API`);
    const incoming = this.entities(type, body);
    const staged: Row[] = [];
    const lineNumbers = new Map<number, number>();
    for (const e of incoming) {
      const row = this.sanitize(type, e);
      if (type === "DebtorOrderClient" && !row.OrderNumber) row.OrderNumber = ++this.orderNumber;
      if (type === "DebtorOrderClient" && this.o.pricesInclVatFromDebtor !== "never") {
        const debtor = this.byKey("DebtorClient", row.Account);
        if (debtor?.PricesInclVat !== undefined && (row.PricesInclVat === undefined || this.o.pricesInclVatFromDebtor === "always"))
          row.PricesInclVat = debtor.PricesInclVat;
      }
      if (type === "DebtorOrderLineClient" && !row.LineNumber) {
        const order = Number(row.OrderNumber);
        const last =
          lineNumbers.get(order) ??
          Math.max(
            0,
            ...this.raw(type)
              .filter((l) => l.OrderNumber === order)
              .map((l) => Number(l.LineNumber)),
          );
        row.LineNumber = last + 1;
        lineNumbers.set(order, last + 1);
      }
      row.RowId = this.rowId++;
      if (["DebtorClient", "ProjectClient", "UserDocsClient"].includes(type)) row.Created = new Date().toISOString().slice(0, 19);
      this.validate(type, row, [...staged]);
      if (spec.key !== "RowId" && (this.byKey(type, row[spec.key]) || staged.some((s) => String(s[spec.key]) === String(row[spec.key])))) {
        throw new UcError("KeyExists", `${type} with ${spec.key} ${row[spec.key]} already exists`, spec.key);
      }
      staged.push(row);
    }
    if (type === "DebtorOrderClient") this.orderNumber = Math.max(this.orderNumber, ...staged.map((r) => Number(r.OrderNumber)));
    this.raw(type).push(...staged);
    return staged.map((r) => ({ ...r }));
  }

  /** The full entity replaces the stored one: a property left out becomes null (uniconta.md §5). */
  update(type: string, body: unknown): Row[] {
    const spec = this.spec(type);
    if (spec.readOnly) throw new UcError("NoRights", `${type} cannot be updated through the API`);
    const out: Row[] = [];
    for (const e of this.entities(type, body)) {
      const key = e[spec.key];
      const current = spec.key === "RowId" ? this.find(type, "RowId", key) : this.byKey(type, key);
      if (key === undefined || !current)
        throw new UcError("CouldNotFind", `${type} with ${spec.key} ${key ?? "(none)"} was not found`, spec.key);
      const row = { ...this.sanitize(type, e), RowId: current.RowId, ...(current.Created ? { Created: current.Created } : {}) };
      this.validate(type, row, [], current);
      const rows = this.raw(type);
      rows[rows.indexOf(current)] = row;
      out.push({ ...row });
    }
    return out;
  }

  delete(type: string, body: unknown): number {
    const spec = this.spec(type);
    if (spec.readOnly) throw new UcError("NoRights", `${type} cannot be deleted through the API`);
    let n = 0;
    for (const e of this.entities(type, body)) {
      const key = e[spec.key] ?? e.RowId;
      const current = spec.key === "RowId" || e[spec.key] === undefined ? this.find(type, "RowId", key) : this.byKey(type, key);
      if (!current) throw new UcError("CouldNotFind", `${type} with ${spec.key} ${key ?? "(none)"} was not found`, spec.key);
      this.checkNotReferred(type, current);
      this.rows.set(
        type,
        this.raw(type).filter((r) => r !== current),
      );
      if (type === "DebtorOrderClient")
        this.rows.set(
          "DebtorOrderLineClient",
          this.raw("DebtorOrderLineClient").filter((l) => l.OrderNumber !== current.OrderNumber),
        );
      n++;
    }
    return n;
  }

  private spec(type: string): TypeSpec {
    const spec = TYPES[type];
    if (!spec) throw new UcError("CouldNotFind", `The entity type ${type} does not exist`);
    return spec;
  }

  private entities(type: string, body: unknown): Row[] {
    const items = Array.isArray(body) ? body : [body];
    if (items.length === 0 || items.some((x) => !x || typeof x !== "object" || Array.isArray(x))) {
      throw new UcError("Exception", `The body must be a ${type} object or a list of them`);
    }
    return items as Row[];
  }

  private sanitize(type: string, e: Row): Row {
    const known = FIELDS[type];
    const row = clean(e);
    if (!known) return row;
    for (const k of Object.keys(row)) {
      if (known.has(k)) continue;
      if (this.o.unknownProperties === "refuse") throw new UcError("Exception", `${type} has no property ${k}`, k);
      delete row[k];
      (this.ignored[type] ??= []).includes(k) || this.ignored[type]!.push(k);
    }
    return row;
  }

  private blank(row: Row, field: string): boolean {
    const v = row[field];
    return v === undefined || v === null || (typeof v === "string" && v.trim() === "");
  }

  private ref(row: Row, field: string, type: string, code: ErrorCode = "CouldNotFind", staged: Row[] = []): void {
    if (this.blank(row, field)) return;
    if (this.byKey(type, row[field]) || staged.some((s) => String(s[TYPES[type]!.key]) === String(row[field]))) return;
    throw new UcError(code, `${field} "${row[field]}" does not exist (${type})`, field);
  }

  private validate(type: string, row: Row, _staged: Row[], _before?: Row): void {
    for (const f of TYPES[type]!.required ?? [])
      if (this.blank(row, f)) throw new UcError("FieldCannotBeBlank", `${type}.${f} cannot be blank`, f);
    for (let d = 1; d <= 5; d++) {
      if (this.blank(row, `Dimension${d}`)) continue;
      if (d > this.company.NumberOfDimensions)
        throw new UcError(
          "CouldNotFind",
          `Dimension${d} is not in use in this company (it has ${this.company.NumberOfDimensions})`,
          `Dimension${d}`,
        );
      this.ref(row, `Dimension${d}`, `GLDimType${d}Client`);
    }
    switch (type) {
      case "DebtorClient":
        this.ref(row, "Group", "DebtorGroupClient");
        this.ref(row, "Payment", "PaymentTermClient");
        this.ref(row, "Vat", "GLVatClient");
        break;
      case "ProjectClient":
        this.ref(row, "Account", "DebtorClient", "AccountIsMissing");
        this.ref(row, "Group", "ProjectGroupClient");
        this.ref(row, "Payment", "PaymentTermClient");
        break;
      case "DebtorOrderClient":
        this.ref(row, "Account", "DebtorClient", "AccountIsMissing");
        this.ref(row, "Project", "ProjectClient");
        this.ref(row, "Payment", "PaymentTermClient");
        this.ref(row, "PrCategory", "PrCategoryClient");
        break;
      case "DebtorOrderLineClient":
        this.ref(row, "OrderNumber", "DebtorOrderClient");
        this.ref(row, "Vat", "GLVatClient");
        this.ref(row, "PostingAccount", "GLAccountClient", "AccountIsMissing");
        this.ref(row, "Project", "ProjectClient");
        this.ref(row, "PrCategory", "PrCategoryClient");
        this.ref(row, "Item", "InvItemClient");
        if (this.blank(row, "Item") && !this.o.itemlessLines)
          throw new UcError("FieldCannotBeBlank", "DebtorOrderLineClient.Item cannot be blank", "Item");
        if (this.blank(row, "Item") && this.blank(row, "PostingAccount"))
          throw new UcError("AccountIsMissing", "A line without an item needs a PostingAccount", "PostingAccount");
        if (this.o.categoryRequired && !this.blank(row, "Project") && this.blank(row, "PrCategory")) {
          throw new UcError("FieldCannotBeBlank", "DebtorOrderLineClient.PrCategory cannot be blank on a project line", "PrCategory");
        }
        break;
      case "UserDocsClient": {
        const data = String(row.Data ?? "");
        if (!/^[A-Za-z0-9+/=\s]+$/.test(data)) throw new UcError("Exception", "UserDocsClient.Data must be base64", "Data");
        if (Math.floor((data.replace(/[\s=]/g, "").length * 3) / 4) > this.o.maxFileBytes)
          throw new UcError("FileIsTooBig", `The file is larger than ${this.o.maxFileBytes} bytes`, "Data");
        if (!this.byKey(String(row.TableId), row.TableRowId) && !this.find(String(row.TableId), "RowId", row.TableRowId)) {
          throw new UcError("CouldNotFind", `${row.TableId} ${row.TableRowId} does not exist`, "TableRowId");
        }
        break;
      }
    }
  }

  private checkNotReferred(type: string, row: Row): void {
    const refs: Record<string, [string, string][]> = {
      DebtorClient: [
        ["ProjectClient", "Account"],
        ["DebtorOrderClient", "Account"],
        ["DebtorInvoiceClient", "Account"],
      ],
      ProjectClient: [
        ["DebtorOrderClient", "Project"],
        ["ProjectTransClient", "Project"],
      ],
    };
    for (const [t, f] of refs[type] ?? []) {
      if (this.raw(t).some((r) => String(r[f]) === String(row[TYPES[type]!.key]))) {
        throw new UcError("CouldNotDeleteRecordThatIsReferred", `${type} ${row[TYPES[type]!.key]} is used by ${t}`);
      }
    }
  }
}
