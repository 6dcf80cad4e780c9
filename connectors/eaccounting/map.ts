// Canonical model ↔ eAccounting API v2 (JSON names from eaccounting-v2-field-digest.md). Pure. Going out only
// what the PSA sent is mapped; an update merges it into the entity read from eAccounting (its PUT replaces the
// whole entity). Coming back, eAccounting's records become the PSA's canonical shape (master per entity).
import { customerQuantity, type Customer, type InvoiceLike, type Product, type Project } from "../../agent/model.ts";
import type { EaccountingConfig } from "./config.ts";

export type Row = Record<string, any>;

export const toAmount = (minor: number) => Math.round(minor) / 100;
export const toMinor = (x: unknown) => Math.round(Number(x ?? 0) * 100);
export const dateTime = (d: string) => `${d}T00:00:00`;
export const dateOf = (v: unknown) => (typeof v === "string" && /^\d{4}-\d{2}-\d{2}/.test(v) ? v.slice(0, 10) : undefined);
export const round2 = (x: number) => Math.round(x * 100) / 100;

/** The reference-field value that marks a draft (and the invoice made from it) as kontobro's for this PSA invoice. */
export const referenceValue = (psaId: string) => `kontobro:${psaId}`;
export const psaIdOf = (ref: unknown) => (typeof ref === "string" && ref.startsWith("kontobro:") ? ref.slice(9) : undefined);

const defined = (o: Row): Row => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== ""));

// ---- names --------------------------------------------------------------------------------------------------

/** Coming in: split at the first space; "?" as first name when there is none (issue 13, item 2). */
export function splitName(full: string): { firstName: string; lastName: string } {
  const s = full.trim().replace(/\s+/g, " ");
  const at = s.indexOf(" ");
  return at < 0 ? { firstName: "?", lastName: s } : { firstName: s.slice(0, at), lastName: s.slice(at + 1) };
}

/** Going out: first and last name joined with a space (a "?" first name, our own placeholder, is left out). */
export function joinName(first: string | undefined, last: string | undefined): string {
  return [first === "?" ? undefined : first, last]
    .map((s) => s?.trim())
    .filter(Boolean)
    .join(" ");
}

// ---- customers ----------------------------------------------------------------------------------------------

/** The address eAccounting gets: the first invoice address, else the head office (postal, then visit), else the first. */
export function customerAddress(c: Pick<Customer, "addresses">) {
  return (
    c.addresses.find((a) => a.kind === "invoice") ??
    c.addresses.find((a) => a.kind === "postal") ??
    c.addresses.find((a) => a.kind === "visit") ??
    c.addresses[0]
  );
}

/** "Storgatan 1\nLgh 1102" → two address lines (a third and more joined onto the second). */
export function addressLines(street: string | undefined): [string | undefined, string | undefined] {
  const parts = (street ?? "")
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter(Boolean);
  return [parts[0], parts.length > 1 ? parts.slice(1).join(", ") : undefined];
}

export interface Terms {
  Id: string;
  NumberOfDays: number;
}

/** CustomerApi fields from a PSA customer. `terms`: the terms of payment for the customer's days. */
export function customerFields(c: Customer, terms: Terms): Row {
  const a = customerAddress(c);
  const [line1, line2] = addressLines(a?.street);
  const contact = c.contacts[0] as (Customer["contacts"][number] & { firstName?: string; lastName?: string }) | undefined;
  const contactName = contact
    ? contact.firstName || contact.lastName
      ? joinName(contact.firstName, contact.lastName)
      : contact.name
    : undefined;
  return defined({
    CustomerNumber: c.number,
    Name: c.name,
    // Customer type: always a company (issue 13, item 2).
    IsPrivatePerson: false,
    IsActive: c.active,
    CorporateIdentityNumber: c.orgNumber,
    VatNumber: c.vatNumber?.replace(/\s+/g, ""),
    InvoiceAddress1: line1,
    InvoiceAddress2: line2,
    InvoicePostalCode: a?.zip,
    InvoiceCity: a?.city,
    InvoiceCountryCode: a?.country,
    EmailAddress: c.email,
    Telephone: c.phone,
    WwwAddress: c.website,
    CurrencyCode: c.currency,
    TermsOfPaymentId: terms.Id,
    ContactPersonName: contactName,
    ContactPersonEmail: contact?.email,
    ContactPersonPhone: contact?.phone,
  });
}

/** The fields kontobro owns in a CustomerApi: a PUT leaves everything else as eAccounting has it. */
export const CUSTOMER_OWNED = [
  "CustomerNumber",
  "Name",
  "IsPrivatePerson",
  "IsActive",
  "CorporateIdentityNumber",
  "VatNumber",
  "InvoiceAddress1",
  "InvoiceAddress2",
  "InvoicePostalCode",
  "InvoiceCity",
  "InvoiceCountryCode",
  "EmailAddress",
  "Telephone",
  "WwwAddress",
  "CurrencyCode",
  "TermsOfPaymentId",
  "ContactPersonName",
  "ContactPersonEmail",
  "ContactPersonPhone",
];

/** The full entity for a PUT: what eAccounting has, with what the PSA owns on top (an owned field the PSA cleared is cleared). */
export function mergeEntity(existing: Row, mapped: Row, owned: string[]): Row {
  const out: Row = { ...existing };
  for (const k of owned) {
    if (mapped[k] === undefined) delete out[k];
    else out[k] = mapped[k];
  }
  return out;
}

/** Whether a PUT would change anything kontobro owns. */
export function differs(existing: Row, mapped: Row, owned: string[]): boolean {
  return owned.some((k) => JSON.stringify(existing[k] ?? null) !== JSON.stringify(mapped[k] ?? null));
}

/** An eAccounting customer in the PSA's canonical shape. `daysOf`: its terms of payment's days. */
export function customerFromApi(
  r: Row,
  daysOf: (termsId: string) => number | undefined,
): Customer & { contacts: { name: string; firstName?: string; lastName?: string }[] } {
  const street = [r.InvoiceAddress1, r.InvoiceAddress2].filter((s) => typeof s === "string" && s.trim()).join("\n");
  const address = defined({
    kind: "invoice",
    street: street || undefined,
    zip: r.InvoicePostalCode,
    city: r.InvoiceCity,
    country: r.InvoiceCountryCode,
  });
  const contact =
    typeof r.ContactPersonName === "string" && r.ContactPersonName.trim()
      ? [
          defined({
            name: r.ContactPersonName.trim(),
            ...splitName(r.ContactPersonName),
            email: r.ContactPersonEmail,
            phone: r.ContactPersonPhone,
          }) as { name: string },
        ]
      : [];
  return defined({
    number: String(r.CustomerNumber),
    name: r.Name,
    orgNumber: r.CorporateIdentityNumber,
    vatNumber: r.VatNumber,
    email: r.EmailAddress,
    website: r.WwwAddress,
    phone: r.Telephone,
    addresses: Object.keys(address).length > 1 ? [address] : [],
    contacts: contact,
    currency: r.CurrencyCode,
    paymentTermsDays: r.TermsOfPaymentId ? (daysOf(r.TermsOfPaymentId) ?? r.TermsOfPayment?.NumberOfDays) : undefined,
    active: r.IsActive !== false,
  }) as any;
}

// ---- articles -----------------------------------------------------------------------------------------------

export type UnitKind = "hours" | "kilometres" | "pieces";

/** Which eAccounting unit a PSA product gets: hours for work types, kilometres for mileage, pieces otherwise, unless the PSA names one. */
export function unitKindOf(unit: string | undefined): UnitKind | null {
  const u = (unit ?? "").trim().toLowerCase();
  if (!u) return null;
  if (/^(h|hr|hrs|hour|hours|t|tim|time|timer|timmar|timme|tunti|tuntia)$/.test(u)) return "hours";
  if (/^(km|kilometer|kilometre|kilometres|kilometers|kilometrar|mil|mileage)$/.test(u)) return "kilometres";
  return null;
}

export interface ArticleContext {
  unitId: string;
  /** Only for a new article: its coding (an existing article keeps the one it has). */
  codingId?: string;
  vatRate: number;
}

export function articleFields(p: Product, ctx: ArticleContext): Row {
  const net = p.price !== undefined ? toAmount(p.price) : undefined;
  return defined({
    Number: p.code,
    Name: p.name,
    IsActive: p.active,
    UnitId: ctx.unitId,
    CodingId: ctx.codingId,
    NetPrice: net,
    GrossPrice: net !== undefined ? round2(net * (1 + ctx.vatRate / 100)) : undefined,
    IsServiceArticle: true,
  });
}

export const ARTICLE_OWNED = ["Number", "Name", "IsActive", "UnitId", "NetPrice", "GrossPrice"];

/** An eAccounting article in the PSA's canonical shape (unit: eAccounting's unit code; VAT rate: its coding's). */
export function productFromApi(
  r: Row,
  unitCode: (unitId: string) => string | undefined,
  vatRateOf: (codingId: string) => number | undefined,
): Product {
  return defined({
    code: String(r.Number),
    name: r.Name,
    unit: r.UnitId ? unitCode(r.UnitId) : undefined,
    price: typeof r.NetPrice === "number" ? toMinor(r.NetPrice) : undefined,
    vatRate: r.CodingId ? vatRateOf(r.CodingId) : undefined,
    active: r.IsActive !== false,
  }) as Product;
}

// ---- projects as cost-centre items --------------------------------------------------------------------------

/** Abbreviation = project number, name = project name, active = not closed (issue 13, item 4). */
export function itemFields(p: Project, costCenterId: string): Row {
  return { CostCenterId: costCenterId, ShortName: p.number, Name: p.name, IsActive: p.status !== "closed" };
}

// ---- invoice drafts ---------------------------------------------------------------------------------------

export interface DraftContext {
  cfg: Pick<EaccountingConfig, "reference_field" | "cost_center">;
  customerId: string;
  /** The PSA's customer record (address, name), when the PSA sent it. */
  customer: Customer | null;
  /** eAccounting's customer, for what the PSA's lacks. */
  remoteCustomer: Row;
  /** ArticleId per line, in line order. */
  articleIds: string[];
  /** UnitId per line (undefined: the article's). */
  unitIds: (string | undefined)[];
  /** The cost-centre item of the invoice's project, if any. */
  costCenterItemId?: string;
}

/** Texts go as the PSA wrote them: the rules refuse one over eAccounting's limits before sending, nothing is cut here. */
const textRow = (text: string) => ({ IsTextRow: true, Text: text, ReversedConstructionServicesVatFree: false });

/**
 * Whether a draft takes anything from eAccounting's own customer record: only what the PSA's customer lacks
 * (name, street, postcode, city, country; see draftFields). Otherwise that record is not read.
 */
export function draftNeedsRemoteCustomer(c: Customer | null): boolean {
  if (!c) return true;
  const a = customerAddress(c);
  const [line1] = addressLines(a?.street);
  return !(c.name && line1 && a?.zip && a.city && a.country);
}

/** CustomerInvoiceDraftApi for an invoice or credit note. Quantities are the customer's (negative on a credit note). */
export function draftFields(inv: InvoiceLike, ctx: DraftContext): Row {
  const credit = inv.kind === "credit_note";
  const c = ctx.customer;
  const a = c ? customerAddress(c) : undefined;
  const [line1, line2] = addressLines(a?.street);
  const refs: Row = { OurReference: inv.ourReference, YourReference: inv.yourReference };
  delete refs[ctx.cfg.reference_field];
  const rows: Row[] = [];
  if (inv.heading) rows.push(textRow(inv.heading));
  if (credit) rows.push(textRow(`Kreditering av faktura ${(inv as { creditedInvoiceNumber: string }).creditedInvoiceNumber}`));
  inv.lines.forEach((l, i) => {
    rows.push(
      defined({
        ArticleId: ctx.articleIds[i],
        IsTextRow: false,
        Text: l.text,
        Quantity: customerQuantity(inv, l),
        UnitPrice: toAmount(l.unitPrice),
        UnitId: ctx.unitIds[i],
        ReversedConstructionServicesVatFree: false,
        ...(ctx.costCenterItemId ? { [`CostCenterItemId${ctx.cfg.cost_center}`]: ctx.costCenterItemId } : {}),
      }),
    );
  });
  return defined({
    CustomerId: ctx.customerId,
    RotReducedInvoicingType: 0,
    EuThirdParty: false,
    IsCreditInvoice: credit || undefined,
    InvoiceDate: dateTime(inv.date),
    DueDate: dateTime(credit ? inv.date : inv.dueDate),
    InvoiceCustomerName: c?.name ?? ctx.remoteCustomer.Name,
    InvoiceAddress1: line1 ?? ctx.remoteCustomer.InvoiceAddress1,
    InvoiceAddress2: line1 ? line2 : ctx.remoteCustomer.InvoiceAddress2,
    InvoicePostalCode: a?.zip ?? ctx.remoteCustomer.InvoicePostalCode,
    InvoiceCity: a?.city ?? ctx.remoteCustomer.InvoiceCity,
    InvoiceCountryCode: a?.country ?? ctx.remoteCustomer.InvoiceCountryCode,
    InvoiceCurrencyCode: inv.currency,
    ...refs,
    [ctx.cfg.reference_field]: referenceValue(inv.psaId),
    Rows: rows,
  });
}
