// Pre-flight rules for e-conomic: what would be refused, caught before any call, with a hint.
import type { Customer, Entity, InvoiceLike, Product, Project } from "../../agent/model.ts";
import { problem, type Problem } from "../../agent/problem.ts";

const MAX_NUMBER = 999_999_999;

function numeric(value: string | undefined, field: string, what: string, min: number): Problem[] {
  if (value === undefined) return [];
  if (!/^\d{1,9}$/.test(value) || Number(value) < min || Number(value) > MAX_NUMBER) {
    return [problem(`economic.${field.replace(/\W/g, "_")}_not_numeric`,
      `${what} "${value}" is not a number e-conomic accepts (whole number ${min}–${MAX_NUMBER}).`,
      `e-conomic keeps the PSA's ${what.toLowerCase()}s only when they are numeric. Renumber it in the PSA with digits only, then send it again.`, field)];
  }
  return [];
}

function maxLength(value: string | undefined, max: number, field: string, what: string): Problem[] {
  if (value === undefined || value.length <= max) return [];
  return [problem("economic.too_long", `${what} is ${value.length} characters; e-conomic allows ${max}.`, `Shorten ${what.toLowerCase()} in the PSA to at most ${max} characters.`, field)];
}

export function customerRules(c: Customer): Problem[] {
  return [
    ...numeric(c.number, "number", "Customer number", 1),
    ...maxLength(c.name, 255, "name", "The customer name"),
    ...maxLength(c.orgNumber, 40, "orgNumber", "The organisation number"),
    ...maxLength(c.vatNumber, 20, "vatNumber", "The VAT number"),
    ...maxLength(c.email, 255, "email", "The e-mail"),
    ...maxLength(c.website, 255, "website", "The website"),
    ...c.addresses.flatMap((a, i) => [
      ...maxLength(a.zip, 30, `addresses.${i}.zip`, "The postcode"),
      ...maxLength(a.city, 50, `addresses.${i}.city`, "The city"),
    ]),
  ];
}

export function projectRules(p: Project): Problem[] {
  return [
    ...numeric(p.number, "number", "Project number", 0),
    ...numeric(p.customerNumber, "customerNumber", "Customer number", 1),
    ...maxLength(p.name, 100, "name", "The project name"),
  ];
}

export function productRules(p: Product): Problem[] {
  const out = [...maxLength(p.code, 25, "code", "The product code"), ...maxLength(p.name, 300, "name", "The product name")];
  // e-conomic puts product numbers in URLs with its own escaping; plain characters avoid that trap.
  if (!/^[A-Za-z0-9-]+$/.test(p.code)) {
    out.push(problem("economic.product_code_characters", `Product code "${p.code}" has characters e-conomic handles badly in product URLs.`, "Use letters, digits and '-' only in product codes sent to e-conomic.", "code"));
  }
  return out;
}

export function invoiceRules(inv: InvoiceLike): Problem[] {
  const what = inv.kind === "credit_note" ? "Credit note number" : "Invoice number";
  const out = [
    ...numeric(inv.number, "number", what, 1),
    ...numeric(inv.customerNumber, "customerNumber", "Customer number", 1),
    ...numeric(inv.projectNumber, "projectNumber", "Project number", 1),
    ...maxLength(inv.psaId, 250, "psaId", "The PSA invoice id"),
    ...maxLength(inv.heading, 250, "heading", "The heading"),
  ];
  inv.lines.forEach((l, i) => {
    out.push(...maxLength(l.text, 2500, `lines.${i}.text`, "The line text"));
    if (l.productCode) out.push(...maxLength(l.productCode, 25, `lines.${i}.productCode`, "The product code"));
  });
  if (inv.pdf && inv.pdf.contentBase64.length > Math.ceil((9 * 1024 * 1024 * 4) / 3)) {
    out.push(problem("economic.pdf_too_large", "The invoice PDF is larger than e-conomic's 9 MB limit.", "Make the PDF smaller in the PSA (fewer or smaller images), or set attach_pdf = false for this target.", "pdf"));
  }
  return out;
}

export function economicRules(entity: Entity, payload: any): Problem[] {
  switch (entity) {
    case "customer": return customerRules(payload);
    case "project": return projectRules(payload);
    case "product": return productRules(payload);
    case "invoice": return invoiceRules(payload);
  }
}
