// Canonical model → Uni Micro business API JSON. Pure: every internal ID the platform needs (customer,
// project, product, account, VAT type, currency, existing child rows) is resolved by the caller and passed in.
import { createHash } from "node:crypto";
import {
  customerQuantity,
  type Address,
  type Customer,
  type InvoiceLike,
  type LineKind,
  type Product,
  type Project,
} from "../../agent/model.ts";
import type { z } from "zod";

type Addr = z.infer<typeof Address>;
/** Gives the `_createguid` for a new row at `path` (e.g. "Info.InvoiceAddress", "Items.2"). */
export type GuidFor = (path: string) => string;

/**
 * A stable guid per (seed, path): a replayed request carries the same guids, and the platform does not
 * insert the same guid twice. The seed is the delivery's idempotency key.
 */
export function deterministicGuid(seed: string): GuidFor {
  return (path) => {
    const h = createHash("sha256").update(`${seed}\u0000${path}`).digest("hex");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
  };
}

/** Øre/cent → the platform's decimal amounts. */
export const toAmount = (minor: number) => minor / 100;

/** A new child row gets `_createguid`, an existing one its ID (so a PUT updates instead of inserting). */
function row(id: number | undefined, guid: GuidFor, path: string): Record<string, unknown> {
  return id ? { ID: id } : { _createguid: guid(path) };
}

function addressLines(street: string | undefined): Record<string, string> {
  const parts = (street ?? "")
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter(Boolean);
  const out: Record<string, string> = {};
  parts.slice(0, 2).forEach((p, i) => (out[`AddressLine${i + 1}`] = p));
  if (parts.length > 2) out.AddressLine3 = parts.slice(2).join(", ");
  return out;
}

function mapAddress(a: Addr, id: number | undefined, guid: GuidFor, path: string) {
  return {
    ...row(id, guid, path),
    ...addressLines(a.street),
    ...(a.zip ? { PostalCode: a.zip } : {}),
    ...(a.city ? { City: a.city } : {}),
    ...(a.country ? { CountryCode: a.country } : {}),
  };
}

/** IDs of the customer's existing child rows, read before an update. */
export interface ExistingCustomerRows {
  infoId?: number;
  invoiceAddressId?: number;
  shippingAddressId?: number;
  emailId?: number;
  phoneId?: number;
  faxId?: number;
}

/** The existing rows of a customer read with expand=Info,Info.InvoiceAddress,… */
export function existingCustomerRows(c: any): ExistingCustomerRows {
  const info = c?.Info ?? {};
  const fax = (info.Phones ?? []).find((p: any) => /fax/i.test(`${p?.Description ?? ""} ${p?.Type ?? ""}`));
  return {
    infoId: info.ID ?? c?.BusinessRelationID,
    invoiceAddressId: info.InvoiceAddress?.ID ?? info.InvoiceAddressID,
    shippingAddressId: info.ShippingAddress?.ID ?? info.ShippingAddressID,
    emailId: info.DefaultEmail?.ID ?? info.DefaultEmailID,
    phoneId: info.DefaultPhone?.ID ?? info.DefaultPhoneID,
    faxId: fax?.ID,
  };
}

export function pickAddresses(addresses: Addr[]): { invoice?: Addr; shipping?: Addr } {
  const byKind = (k: Addr["kind"]) => addresses.find((a) => a.kind === k);
  return { invoice: byKind("invoice") ?? byKind("postal") ?? addresses[0], shipping: byKind("delivery") ?? byKind("visit") };
}

export function mapCustomer(c: Customer, refs: { guid: GuidFor; currencyCodeId?: number; existing?: ExistingCustomerRows }) {
  const ex = refs.existing ?? {};
  const g = refs.guid;
  const { invoice, shipping } = pickAddresses(c.addresses);
  const info: Record<string, unknown> = { ...row(ex.infoId, g, "Info"), Name: c.name };
  if (invoice) info.InvoiceAddress = mapAddress(invoice, ex.invoiceAddressId, g, "Info.InvoiceAddress");
  if (shipping) info.ShippingAddress = mapAddress(shipping, ex.shippingAddressId, g, "Info.ShippingAddress");
  if (c.email) info.DefaultEmail = { ...row(ex.emailId, g, "Info.DefaultEmail"), EmailAddress: c.email };
  if (c.phone) info.DefaultPhone = { ...row(ex.phoneId, g, "Info.DefaultPhone"), Number: c.phone };
  if (c.fax) info.Phones = [{ ...row(ex.faxId, g, "Info.Phones.fax"), Number: c.fax, Description: "Fax" }];
  return {
    CustomerNumber: Number(c.number),
    Info: info,
    ...(c.orgNumber ? { OrgNumber: c.orgNumber.replace(/\s+/g, "") } : {}),
    ...(c.website ? { WebUrl: c.website } : {}),
    ...(c.paymentTermsDays !== undefined ? { CreditDays: c.paymentTermsDays } : {}),
    ...(refs.currencyCodeId ? { CurrencyCodeID: refs.currencyCodeId } : {}),
    ...(ex.infoId ? {} : { _createguid: g("Customer") }),
  };
}

export function mapProject(p: Project, refs: { guid: GuidFor; customerId?: number; isNew: boolean }) {
  return {
    ProjectNumber: p.number,
    ProjectNumberNumeric: Number(p.number),
    Name: p.name,
    ...(p.description ? { Description: p.description } : {}),
    ...(p.startDate ? { StartDate: p.startDate } : {}),
    ...(p.endDate ? { EndDate: p.endDate } : {}),
    ...(refs.customerId ? { ProjectCustomerID: refs.customerId } : {}),
    ...(refs.isNew ? { _createguid: refs.guid("Project") } : {}),
  };
}

export function mapProduct(p: Product, refs: { guid: GuidFor; accountId?: number; vatTypeId?: number; isNew: boolean }) {
  return {
    PartName: p.code,
    Name: p.name,
    ...(p.unit ? { Unit: p.unit } : {}),
    ...(p.price !== undefined ? { PriceExVat: toAmount(p.price) } : {}),
    ...(p.cost !== undefined ? { CostPrice: toAmount(p.cost) } : {}),
    ...(refs.accountId ? { AccountID: refs.accountId } : {}),
    ...(refs.vatTypeId ? { VatTypeID: refs.vatTypeId } : {}),
    ...(refs.isNew ? { _createguid: refs.guid("Product") } : {}),
  };
}

/** What a line kind posts to, by number/code as configured; resolved to internal IDs by the connector. */
export interface LineSetup {
  accountNumber?: number;
  vatCode?: string;
  productId?: number;
  productNumber?: string;
}

/** The account number, VAT code and product a line needs: the line's own values win over the kind's defaults. */
export function lineNeeds(
  line: { kind: LineKind; account?: string; vatCode?: string; productCode?: string },
  setup: Partial<Record<LineKind, LineSetup>>,
): LineSetup {
  const s = setup[line.kind] ?? {};
  return {
    accountNumber: line.account !== undefined ? Number(line.account) : s.accountNumber,
    vatCode: line.vatCode ?? s.vatCode,
    ...(line.productCode
      ? { productNumber: line.productCode }
      : s.productId
        ? { productId: s.productId }
        : { productNumber: s.productNumber }),
  };
}

/** The payment id the invoice carries: the KID, or the invoice number when there is none (KB-UE). */
export const paymentIdFor = (inv: Pick<InvoiceLike, "paymentId" | "number">) => inv.paymentId ?? inv.number;

/**
 * Written into InternalNote so an invoice can be found by the PSA's id even if its number was changed.
 * The id is URI-encoded, so one with spaces ("INV 2026-1") stays one word in the note.
 */
export const invoiceMarker = (psaId: string) => `kontobro:${encodeURIComponent(psaId)}`;

/** The psaId in an InternalNote written by kontobro ("kontobro:<psaId>", possibly with text around it), or null. */
export function markerPsaId(note: unknown): string | null {
  const m = typeof note === "string" ? /(?:^|\s)kontobro:(\S+)/.exec(note) : null;
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return m[1]!; // written by an older version, unencoded, with a stray "%"
  }
}

/** Does the voucher number ("118-2024" style) follow the expected payment id / invoice number? */
export function voucherFollows(journalEntryNumber: string | undefined, expected: string): boolean {
  if (!journalEntryNumber) return false;
  const head = journalEntryNumber.split("-")[0] ?? "";
  return head === expected || (/^\d+$/.test(head) && /^\d+$/.test(expected) && BigInt(head) === BigInt(expected));
}

export interface ResolvedLine {
  productId: number;
  accountId?: number;
  vatTypeId?: number;
}

export interface InvoiceRefs {
  guid: GuidFor;
  customerId: number;
  projectId?: number;
  currencyCodeId?: number;
  /** The item field a line's price goes in: PriceExVat, or PriceExVatCurrency for another currency if so configured. */
  priceField?: "PriceExVat" | "PriceExVatCurrency";
  /** One per canonical line, same order. */
  lines: ResolvedLine[];
  /** When rewriting an existing draft: its item rows (deleted and replaced) and default dimensions row. */
  existing?: { itemIds: number[]; defaultDimensionsId?: number };
}

/** A CustomerInvoice draft (or the rewrite of one): the invoice transition books it afterwards. */
export function mapInvoice(inv: InvoiceLike, refs: InvoiceRefs) {
  const g = refs.guid;
  const dims = (path: string) => (refs.projectId ? { Dimensions: { ProjectID: refs.projectId, _createguid: g(path) } } : {});
  const items = inv.lines.map((l, i) => ({
    _createguid: g(`Items.${i}`),
    ProductID: refs.lines[i]!.productId,
    ItemText: l.text,
    NumberOfItems: customerQuantity(inv, l),
    [refs.priceField ?? "PriceExVat"]: toAmount(l.unitPrice),
    PriceSetByUser: true, // the PSA's price, not the product's list price
    ...(l.unit ? { Unit: l.unit } : {}),
    ...(refs.lines[i]!.accountId ? { AccountID: refs.lines[i]!.accountId } : {}),
    ...(refs.lines[i]!.vatTypeId ? { VatTypeID: refs.lines[i]!.vatTypeId } : {}),
    SortIndex: i + 1,
    ...dims(`Items.${i}.Dimensions`),
  }));
  const oldItems = (refs.existing?.itemIds ?? []).map((ID) => ({ ID, Deleted: true }));
  const ddId = refs.existing?.defaultDimensionsId;
  return {
    CustomerID: refs.customerId,
    InvoiceDate: inv.date,
    PaymentDueDate: inv.dueDate,
    InvoiceNumber: inv.number,
    PaymentID: paymentIdFor(inv),
    InternalNote: invoiceMarker(inv.psaId),
    ...(inv.ourReference ? { OurReference: inv.ourReference } : {}),
    ...(inv.yourReference ? { YourReference: inv.yourReference } : {}),
    ...(inv.heading ? { FreeTxt: inv.heading } : {}),
    ...(refs.currencyCodeId ? { CurrencyCodeID: refs.currencyCodeId } : {}),
    ...(refs.projectId
      ? {
          DefaultDimensions: ddId
            ? { ID: ddId, ProjectID: refs.projectId }
            : { ProjectID: refs.projectId, _createguid: g("DefaultDimensions") },
        }
      : {}),
    Items: [...oldItems, ...items],
    ...(refs.existing ? {} : { _createguid: g("CustomerInvoice") }),
  };
}
