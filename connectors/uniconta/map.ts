// Canonical model → Uniconta entities (JSON keys = the *Client property names, uniconta-entity-field-digest.md).
// Pure. Only what the PSA sent is mapped: an update merges it into the entity read from Uniconta, so a
// field the PSA did not send is never blanked (Uniconta's update needs the full entity, uniconta.md §5).
import { customerQuantity, type Customer, type InvoiceLike, type InvoiceLine, type LineKind, type Project } from "../../agent/model.ts";
import type { UnicontaConfig } from "./config.ts";

export type Row = Record<string, any>;

/** Uniconta's CountryCode enum names for ISO 3166 codes (the enum is the .NET API's; unverified over OData). */
const COUNTRIES: Record<string, string> = {
  DK: "Denmark",
  NO: "Norway",
  SE: "Sweden",
  FI: "Finland",
  IS: "Iceland",
  FO: "FaroeIslands",
  GL: "Greenland",
  DE: "Germany",
  GB: "UnitedKingdom",
  NL: "Netherlands",
  BE: "Belgium",
  FR: "France",
  ES: "Spain",
  IT: "Italy",
  PL: "Poland",
  EE: "Estonia",
  LV: "Latvia",
  LT: "Lithuania",
  AT: "Austria",
  CH: "Switzerland",
  IE: "Ireland",
  PT: "Portugal",
  LU: "Luxembourg",
  CZ: "CzechRepublic",
  GR: "Greece",
  US: "UnitedStates",
  CA: "Canada",
};
export const countryName = (iso: string | undefined) => (iso ? COUNTRIES[iso] : undefined);

/** Øre/cent → Uniconta's decimal amounts. */
export const toAmount = (minor: number) => minor / 100;
/** Uniconta's amounts → minor units. */
export const toMinor = (x: unknown) => Math.round(Number(x ?? 0) * 100);
export const dateTime = (d: string) => `${d}T00:00:00`;
export const dateOf = (v: unknown) => (typeof v === "string" ? v.slice(0, 10) : undefined);

/** The reference-field value that marks an order or posted invoice as kontobro's for this PSA invoice. */
export const referenceValue = (psaId: string) => `kontobro:${psaId}`;

const defined = (o: Row): Row => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== ""));

function addressLines(street: string | undefined): Row {
  const parts = (street ?? "")
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter(Boolean);
  return { Address1: parts[0], Address2: parts[1], Address3: parts.length > 2 ? parts.slice(2).join(", ") : undefined };
}

/** DebtorClient fields from a PSA customer; `isNew` adds the defaults a new debtor gets (payment terms). */
export function debtorFields(c: Customer, cfg: Pick<UnicontaConfig, "default_customer_group" | "payment_terms">, isNew: boolean): Row {
  const a = c.addresses.find((x) => x.kind === "invoice") ?? c.addresses.find((x) => x.kind === "postal") ?? c.addresses[0];
  const delivery = c.addresses.find((x) => x.kind === "delivery");
  const contact = c.contacts[0];
  return defined({
    Account: c.number,
    Name: c.name,
    CompanyRegNo: c.orgNumber?.replace(/\s+/g, ""),
    VatNumber: c.vatNumber,
    InvoiceEmail: c.email,
    ContactEmail: contact?.email ?? c.email,
    ContactPerson: contact?.name,
    Www: c.website,
    Phone: c.phone,
    // Not in the property digest; a server without it ignores it (unverified, see README).
    Fax: c.fax,
    ...(a ? { ...addressLines(a.street), ZipCode: a.zip, City: a.city, Country: countryName(a.country) } : {}),
    ...(delivery
      ? {
          DeliveryAddress1: addressLines(delivery.street).Address1,
          DeliveryZipCode: delivery.zip,
          DeliveryCity: delivery.city,
          DeliveryCountry: countryName(delivery.country),
        }
      : {}),
    Currency: c.currency,
    Group: c.group ?? cfg.default_customer_group,
    Blocked: !c.active,
    ...(isNew && cfg.payment_terms ? { Payment: cfg.payment_terms } : {}),
  });
}

export type DepartmentSettings = Pick<
  UnicontaConfig,
  "department_dimension" | "project_department" | "project_department_tag_group" | "invoice_department" | "invoice_department_tag_group"
>;

export const dimensionField = (cfg: Pick<UnicontaConfig, "department_dimension">) => `Dimension${cfg.department_dimension}`;

/** The project's department by the configured choice: none, its own department, or a project tag group. */
export function projectDepartment(p: Project | null | undefined, cfg: DepartmentSettings): string | undefined {
  if (!p) return undefined;
  if (cfg.project_department === "project") return p.department;
  if (cfg.project_department === "tag_group") return p.tags?.[cfg.project_department_tag_group!];
  return undefined;
}

/** The invoice's department: none, from the invoice, an invoice tag group, the project, or a project tag group. */
export function invoiceDepartment(inv: InvoiceLike, project: Project | null | undefined, cfg: DepartmentSettings): string | undefined {
  switch (cfg.invoice_department) {
    case "invoice":
      return inv.department;
    case "invoice_tag_group":
      return inv.tags?.[cfg.invoice_department_tag_group!];
    case "project":
      return project?.department;
    case "project_tag_group":
      return project?.tags?.[cfg.invoice_department_tag_group!];
    default:
      return undefined;
  }
}

export function projectFields(p: Project, cfg: UnicontaConfig, isNew: boolean): Row {
  const department = projectDepartment(p, cfg);
  return defined({
    Number: p.number,
    Name: p.name,
    Account: p.customerNumber,
    Description: p.description,
    StartDate: p.startDate ? dateTime(p.startDate) : undefined,
    EndDate: p.endDate ? dateTime(p.endDate) : undefined,
    // The project's state: Uniconta's Phase values are unverified, so only "closed" is sent, as Blocked.
    Blocked: p.status === "closed",
    ...(department ? { [dimensionField(cfg)]: department } : {}),
    ...(isNew && cfg.project_group ? { Group: cfg.project_group } : {}),
  });
}

/** The full entity for an update: what Uniconta has, with what the PSA sent on top. */
export function mergeEntity(existing: Row, mapped: Row): Row {
  return { ...existing, ...mapped };
}

/** Whether an update would change anything the PSA sent. */
export function differs(existing: Row, mapped: Row): boolean {
  return Object.entries(mapped).some(([k, v]) => JSON.stringify(existing[k]) !== JSON.stringify(v));
}

export type LineSetting = Pick<UnicontaConfig, "accounts" | "vat_codes" | "categories" | "items" | "project_category_tag_group">;

/** What a line posts to: the line's own account, VAT code and category win over the project's and the kind's defaults. */
export function lineNeeds(
  line: Pick<InvoiceLine, "kind" | "account" | "vatCode" | "category">,
  project: Project | null | undefined,
  cfg: LineSetting,
) {
  const kind: LineKind = line.kind;
  const fromProject = cfg.project_category_tag_group ? project?.tags?.[cfg.project_category_tag_group] : undefined;
  return {
    account: line.account ?? cfg.accounts[kind],
    vat: line.vatCode ?? cfg.vat_codes[kind],
    category: line.category ?? fromProject ?? cfg.categories[kind],
    item: cfg.items[kind],
  };
}

export interface OrderContext {
  cfg: UnicontaConfig;
  project: Project | null;
}

/** The DebtorOrderClient header for an invoice or credit note. */
export function orderFields(inv: InvoiceLike, ctx: OrderContext): Row {
  const { cfg } = ctx;
  const ref = cfg.reference_field;
  const department = invoiceDepartment(inv, ctx.project, cfg);
  const credit = inv.kind === "credit_note";
  // The PSA's own references go to OurRef / YourRef unless that field carries kontobro's reference.
  const refs: Row = { OurRef: inv.ourReference, YourRef: inv.yourReference };
  delete refs[ref];
  return defined({
    Account: inv.customerNumber,
    Project: inv.projectNumber,
    InvoiceDate: dateTime(inv.date),
    // Credit notes use payment terms of 0 days (KB-UC): due on their date.
    DueDate: dateTime(credit ? inv.date : inv.dueDate),
    Payment: credit ? cfg.credit_note_payment_terms : cfg.payment_terms,
    Currency: inv.currency,
    // The PSA's prices exclude VAT. Said on every order: one that does not say it may take its customer's "prices incl.
    // VAT" (as a new order in Uniconta's screens does), and the net prices would then be posted as gross (README).
    PricesInclVat: false,
    ...refs,
    [ref]: referenceValue(inv.psaId),
    Remark: inv.heading ?? (credit ? `Kreditnota til faktura ${inv.creditedInvoiceNumber}` : undefined),
    // The payment id (KID, else the invoice number); the order property is unverified (see README).
    PaymentId: inv.paymentId ?? inv.number,
    ...(department ? { [dimensionField(cfg)]: department } : {}),
  });
}

/** The DebtorOrderLineClient rows, in order, inserted as one list. Quantities are the customer's (negative on a credit note). */
export function orderLines(inv: InvoiceLike, orderNumber: number, ctx: OrderContext): Row[] {
  const department = invoiceDepartment(inv, ctx.project, ctx.cfg);
  return inv.lines.map((l) => {
    const n = lineNeeds(l, ctx.project, ctx.cfg);
    return defined({
      OrderNumber: orderNumber,
      Item: n.item,
      Text: l.text,
      Qty: customerQuantity(inv, l),
      Price: toAmount(l.unitPrice),
      Unit: l.unit,
      Vat: n.vat,
      PostingAccount: n.account,
      Project: inv.projectNumber,
      PrCategory: inv.projectNumber ? n.category : undefined,
      ...(department ? { [dimensionField(ctx.cfg)]: department } : {}),
    });
  });
}

const LINE_KEYS = [
  "Item",
  "Text",
  "Qty",
  "Price",
  "Unit",
  "Vat",
  "PostingAccount",
  "Project",
  "PrCategory",
  "Dimension1",
  "Dimension2",
  "Dimension3",
  "Dimension4",
  "Dimension5",
];

/** Whether the order's lines in Uniconta are the ones we would send (same order, same content). */
export function sameLines(existing: Row[], wanted: Row[]): boolean {
  if (existing.length !== wanted.length) return false;
  const sorted = [...existing].sort((a, b) => Number(a.LineNumber ?? 0) - Number(b.LineNumber ?? 0));
  return sorted.every((e, i) =>
    LINE_KEYS.every(
      (k) => (e[k] ?? null) === (wanted[i]![k] ?? null) || (Number(e[k]) === Number(wanted[i]![k]) && typeof wanted[i]![k] === "number"),
    ),
  );
}

/** Same number, allowing "0101" vs 101 (Uniconta's invoice numbers are integers). */
export function sameNumber(a: unknown, b: unknown): boolean {
  const x = String(a ?? ""),
    y = String(b ?? "");
  return x === y || (/^\d+$/.test(x) && /^\d+$/.test(y) && BigInt(x) === BigInt(y));
}
