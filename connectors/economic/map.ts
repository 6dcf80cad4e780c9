// Canonical model → e-conomic JSON. Pure functions; amounts leave minor units here.
import { customerQuantity, type Customer, type InvoiceLike, type Product, type Project } from "../../agent/model.ts";
import type { InvoiceTerms } from "./agreement.ts";
import type { EconomicConfig } from "./config.ts";

/** Minor units → e-conomic's decimal with at most two decimals. */
export const toDecimal = (minor: number) => Math.round(minor) / 100;

const COUNTRY_NAMES: Record<string, string> = {
  NO: "Norway",
  DK: "Denmark",
  SE: "Sweden",
  FI: "Finland",
  IS: "Iceland",
  DE: "Germany",
  GB: "United Kingdom",
  NL: "Netherlands",
  US: "United States",
};
/** e-conomic's country is free text (≤ 50), not an ISO code. */
export const countryName = (iso?: string) => (iso ? (COUNTRY_NAMES[iso] ?? iso) : undefined);

/** Drops undefined, null and false (e-conomic omits false booleans and rejects nulls). */
export function compact<T extends Record<string, unknown>>(o: T): Partial<T> {
  const out: Record<string, unknown> = {};
  // for…in over the object literals given here: the keys of Object.entries, in its order, without its pairs (issue 16).
  for (const k in o) {
    const v = o[k];
    if (v !== undefined && v !== null && v !== false && v !== "") out[k] = v;
  }
  return out as Partial<T>;
}

/** The address e-conomic gets for the customer and the invoice recipient, with its index in the PSA's list. */
export function billingAddressIndex(c: Pick<Customer, "addresses">): number {
  const i = c.addresses.findIndex((a) => a.kind === "invoice");
  if (i >= 0) return i;
  const p = c.addresses.findIndex((a) => a.kind === "postal");
  return p >= 0 ? p : c.addresses.length > 0 ? 0 : -1;
}

export function postalAddress(c: Pick<Customer, "addresses">) {
  const i = billingAddressIndex(c);
  return i >= 0 ? c.addresses[i] : undefined;
}

/** The zone used when the connector did not choose one (pure tests): the configured domestic zone, else 1. */
const defaultZone = (cfg: EconomicConfig) => cfg.vat_zones.domestic ?? cfg.vat_zone ?? 1;

/** `vatZone`: chosen from the customer's country by agreement.ts (vat.ts). */
export function customerBody(c: Customer, cfg: EconomicConfig, vatZone = defaultZone(cfg)) {
  const a = postalAddress(c);
  return compact({
    customerNumber: Number(c.number),
    name: c.name,
    currency: c.currency,
    customerGroup: { customerGroupNumber: cfg.customer_group },
    vatZone: { vatZoneNumber: vatZone },
    paymentTerms: { paymentTermsNumber: cfg.payment_terms },
    corporateIdentificationNumber: c.orgNumber,
    vatNumber: c.vatNumber,
    email: c.email,
    website: c.website,
    telephoneAndFaxNumber: c.phone,
    address: a?.street,
    zip: a?.zip,
    city: a?.city,
    country: countryName(a?.country),
    barred: !c.active,
  });
}

export function projectBody(p: Project, cfg: EconomicConfig) {
  return compact({
    number: Number(p.number),
    name: p.name,
    projectGroupNumber: cfg.project_group,
    customerNumber: p.customerNumber ? Number(p.customerNumber) : undefined,
    description: p.description,
    isBarred: p.status === "closed",
  });
}

/**
 * The product group a product goes into: product_groups_by_vat_rate's group for its VAT rate, else product_group (also for
 * a product without a rate). `named`: the rate is in product_groups_by_vat_rate.
 */
export function productGroupFor(p: Pick<Product, "vatRate">, cfg: EconomicConfig): { group: number; named: boolean } {
  const entry = p.vatRate === undefined ? undefined : cfg.product_groups_by_vat_rate.find((e) => Math.abs(e.rate - p.vatRate!) < 0.001);
  return entry ? { group: entry.group, named: true } : { group: cfg.product_group, named: false };
}

export function productBody(p: Product, cfg: EconomicConfig) {
  return compact({
    productNumber: p.code,
    name: p.name,
    productGroup: { productGroupNumber: productGroupFor(p, cfg).group },
    salesPrice: p.price === undefined ? undefined : toDecimal(p.price),
    costPrice: p.cost === undefined ? undefined : toDecimal(p.cost),
    barred: !p.active,
  });
}

export interface DraftOptions {
  /** The recipient's VAT zone (chosen from the customer's country). */
  vatZone?: number;
  /** Payment terms; with `keepsDueDate` (terms of type dueDate) the PSA's due date is sent. */
  terms?: InvoiceTerms;
}

/**
 * The draft invoice. e-conomic books a credit note as an invoice with negative lines: each quantity is the
 * model's customerQuantity (negated for a credit note, whose lines list what is credited), so a credit
 * note's total is always negative. The sign is never read from the lines.
 */
export function draftInvoiceBody(inv: InvoiceLike, customer: Customer | null, cfg: EconomicConfig, opts: DraftOptions = {}) {
  const a = customer ? postalAddress(customer) : undefined;
  const terms =
    opts.terms ??
    (cfg.due_date_payment_terms
      ? { paymentTerms: cfg.due_date_payment_terms, keepsDueDate: true }
      : { paymentTerms: cfg.payment_terms, keepsDueDate: false });
  return compact({
    date: inv.date,
    dueDate: terms.keepsDueDate ? inv.dueDate : undefined,
    currency: inv.currency,
    customer: { customerNumber: Number(inv.customerNumber) },
    paymentTerms: { paymentTermsNumber: terms.paymentTerms },
    layout: { layoutNumber: cfg.layout },
    recipient: compact({
      name: customer?.name ?? `Customer ${inv.customerNumber}`,
      address: a?.street,
      zip: a?.zip,
      city: a?.city,
      country: countryName(a?.country),
      vatZone: { vatZoneNumber: opts.vatZone ?? defaultZone(cfg) },
    }),
    references: { other: inv.psaId },
    notes: compact({ heading: invoiceHeading(inv), textLine1: invoiceTextLine1(inv) }),
    project: inv.projectNumber ? { projectNumber: Number(inv.projectNumber) } : undefined,
    lines: inv.lines.map((l, i) => ({
      lineNumber: i + 1,
      sortKey: i + 1,
      product: { productNumber: l.productCode ?? cfg.line_products[l.kind] },
      description: l.text,
      quantity: customerQuantity(inv, l),
      unitNetPrice: toDecimal(l.unitPrice),
    })),
  });
}

export function invoiceHeading(inv: InvoiceLike): string {
  return (
    inv.heading ??
    (inv.kind === "credit_note" ? `Credit note ${inv.number} for invoice ${inv.creditedInvoiceNumber}` : `Invoice ${inv.number}`)
  );
}

export function invoiceTextLine1(inv: InvoiceLike): string | undefined {
  return (
    [
      inv.ourReference && `Our reference: ${inv.ourReference}`,
      inv.yourReference && `Your reference: ${inv.yourReference}`,
      inv.paymentId && `KID: ${inv.paymentId}`,
    ]
      .filter(Boolean)
      .join("\n") || undefined
  );
}

export function bookBody(draftInvoiceNumber: number, invoiceNumber: number) {
  return { draftInvoice: { draftInvoiceNumber }, bookWithNumber: invoiceNumber };
}
