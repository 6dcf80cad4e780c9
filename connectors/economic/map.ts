// Canonical model → e-conomic JSON. Pure functions; amounts leave minor units here.
import type { Customer, InvoiceLike, Product, Project } from "../../agent/model.ts";
import type { EconomicConfig } from "./config.ts";

/** Minor units → e-conomic's decimal with at most two decimals. */
export const toDecimal = (minor: number) => Math.round(minor) / 100;

const COUNTRY_NAMES: Record<string, string> = {
  NO: "Norway", DK: "Denmark", SE: "Sweden", FI: "Finland", IS: "Iceland", DE: "Germany", GB: "United Kingdom", NL: "Netherlands", US: "United States",
};
/** e-conomic's country is free text (≤ 50), not an ISO code. */
export const countryName = (iso?: string) => (iso ? COUNTRY_NAMES[iso] ?? iso : undefined);

/** Drops undefined, null and false (e-conomic omits false booleans and rejects nulls). */
export function compact<T extends Record<string, unknown>>(o: T): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null && v !== false && v !== "") out[k] = v;
  return out as Partial<T>;
}

function postalAddress(c: Customer) {
  return c.addresses.find((a) => a.kind === "invoice") ?? c.addresses.find((a) => a.kind === "postal") ?? c.addresses[0];
}

export function customerBody(c: Customer, cfg: EconomicConfig) {
  const a = postalAddress(c);
  return compact({
    customerNumber: Number(c.number),
    name: c.name,
    currency: c.currency,
    customerGroup: { customerGroupNumber: cfg.customer_group },
    vatZone: { vatZoneNumber: cfg.vat_zone },
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

export function productBody(p: Product, cfg: EconomicConfig) {
  return compact({
    productNumber: p.code,
    name: p.name,
    productGroup: { productGroupNumber: cfg.product_group },
    salesPrice: p.price === undefined ? undefined : toDecimal(p.price),
    costPrice: p.cost === undefined ? undefined : toDecimal(p.cost),
    barred: !p.active,
  });
}

/** The draft invoice. A credit note is an invoice with negated quantities. */
export function draftInvoiceBody(inv: InvoiceLike, customer: Customer | null, cfg: EconomicConfig) {
  const sign = inv.kind === "credit_note" ? -1 : 1;
  const a = customer ? postalAddress(customer) : undefined;
  const dueDateTerms = cfg.due_date_payment_terms;
  return compact({
    date: inv.date,
    dueDate: dueDateTerms ? inv.dueDate : undefined,
    currency: inv.currency,
    customer: { customerNumber: Number(inv.customerNumber) },
    paymentTerms: { paymentTermsNumber: dueDateTerms ?? cfg.payment_terms },
    layout: { layoutNumber: cfg.layout },
    recipient: compact({
      name: customer?.name ?? `Customer ${inv.customerNumber}`,
      address: a?.street,
      zip: a?.zip,
      city: a?.city,
      country: countryName(a?.country),
      vatZone: { vatZoneNumber: cfg.vat_zone },
    }),
    references: { other: inv.psaId },
    notes: compact({
      heading: inv.heading ?? (inv.kind === "credit_note" ? `Credit note ${inv.number} for invoice ${inv.creditedInvoiceNumber}` : `Invoice ${inv.number}`),
      textLine1: [inv.ourReference && `Our reference: ${inv.ourReference}`, inv.yourReference && `Your reference: ${inv.yourReference}`, inv.paymentId && `KID: ${inv.paymentId}`].filter(Boolean).join("\n") || undefined,
    }),
    project: inv.projectNumber ? { projectNumber: Number(inv.projectNumber) } : undefined,
    lines: inv.lines.map((l, i) => ({
      lineNumber: i + 1,
      sortKey: i + 1,
      product: { productNumber: l.productCode ?? cfg.line_products[l.kind] },
      description: l.text,
      quantity: sign * l.quantity,
      unitNetPrice: toDecimal(l.unitPrice),
    })),
  });
}

export function bookBody(draftInvoiceNumber: number, invoiceNumber: number) {
  return { draftInvoice: { draftInvoiceNumber }, bookWithNumber: invoiceNumber };
}
