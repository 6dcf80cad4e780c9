// Pre-flight rules for invoices and credit notes: the limits of e-conomic's draft invoice schema
// (invoices.drafts.post), caught before sending and reported at the record and PSA field the user must
// change. A customer's name or address that fits an e-conomic customer but not an invoice recipient is
// the customer's problem (Problem.record), so fixing the customer sends the invoice again.
import { decodedBase64Length, type Customer, type InvoiceLike } from "../../agent/model.ts";
import type { Problem } from "../../agent/problem.ts";
import type { RelatedRecords } from "../contract.ts";
import type { EconomicConfig } from "./config.ts";
import { billingAddressIndex, countryName, draftInvoiceBody, invoiceHeading, invoiceTextLine1, toDecimal } from "./map.ts";
import { maxLength, numeric } from "./rule-kit.ts";
import draftsPost from "./sandbox/schemas/invoices.drafts.post.schema.json";
import { decimals, formatPath, validateSchema, type JsonSchema, type PathSegment } from "./schema-validate.ts";

/**
 * e-conomic's limit for a draft attachment, counted in decoded bytes. The notes say "9.0 MB", which may be 9 × 1024 × 1024
 * or 9,000,000 bytes (unverified): the smaller is kept, so a PDF in between is refused here, not after the draft is made.
 */
export const MAX_PDF_BYTES = 9_000_000;

/** Limits of the draft's recipient (invoices.drafts.post); the customer itself allows more. */
const RECIPIENT = { name: 250, address: 250, zip: 50, city: 250, country: 50 } as const;
const CUSTOMER_LIMIT = { name: 255, address: 510, zip: 30, city: 50, country: 50 } as const;
const MAX_DECIMALS = 2;

interface Found {
  problem: Problem;
  draftPath: string;
}

export function invoiceRules(inv: InvoiceLike, related?: RelatedRecords, cfg?: EconomicConfig): Problem[] {
  const doc = inv.kind === "credit_note" ? "credit note" : "invoice";
  const found: Found[] = [];
  const add = (draftPath: string, problems: Problem[]) => {
    for (const p of problems) found.push({ problem: p, draftPath });
  };
  add("bookWithNumber", numeric(inv.number, "number", inv.kind === "credit_note" ? "Credit note number" : "Invoice number", 1));
  add("customer", numeric(inv.customerNumber, "customerNumber", "Customer number", 1));
  add("project", numeric(inv.projectNumber, "projectNumber", "Project number", 1));
  add("references.other", maxLength(inv.psaId, 250, "psaId", "The PSA invoice id"));
  add("notes.heading", maxLength(invoiceHeading(inv), 250, "heading", "The heading"));
  const text1 = invoiceTextLine1(inv);
  if (text1 && text1.length > 1000) {
    add("notes.textLine1", [
      {
        code: "economic.too_long",
        field: "ourReference",
        message: `Our reference, your reference and the payment id together take ${text1.length} characters on the ${doc}; e-conomic allows 1000.`,
        hint: "Shorten ourReference or yourReference in the PSA.",
      },
    ]);
  }
  inv.lines.forEach((l, i) => {
    add(`lines[${i}].description`, maxLength(l.text, 2500, `lines.${i}.text`, `The text of line ${i + 1}`));
    if (l.productCode)
      add(`lines[${i}].product`, maxLength(l.productCode, 25, `lines.${i}.productCode`, `The product code of line ${i + 1}`));
    add(`lines[${i}].quantity`, tooManyDecimals(doc, i, l.text, "quantity", l.quantity, "quantity"));
    add(`lines[${i}].unitNetPrice`, tooManyDecimals(doc, i, l.text, "unit price", toDecimal(l.unitPrice), "unitPrice"));
  });
  // The PDF is sent only with attach_pdf on (the default); e-conomic's rules for it are checked before the draft is made.
  if (inv.pdf && cfg?.attach_pdf !== false) add("pdf", pdfRules(inv.pdf as StoredPdf, doc));
  const customer = (related?.("customer", inv.customerNumber) as Customer | null | undefined) ?? null;
  if (customer) add("recipient", recipientRules(inv, customer, doc));
  if (cfg)
    add(
      "",
      backstop(
        inv,
        customer,
        cfg,
        doc,
        found.map((f) => f.draftPath),
      ),
    );
  return found.map((f) => f.problem);
}

/** A PDF as an invoice carries it: its content, or only its size once the content was removed from a stored record. */
interface StoredPdf {
  filename: string;
  contentBase64?: string;
  size?: number;
}

/** e-conomic attaches only a valid PDF of at most 9.0 MB (api-notes economic.md); either refused would come after the draft is made. */
function pdfRules(pdf: StoredPdf, doc: string): Problem[] {
  const out: Problem[] = [];
  // Decoded bytes: line-wrapped base64 counts no line breaks (a payload may carry only the size).
  const bytes = typeof pdf.contentBase64 === "string" ? decodedBase64Length(pdf.contentBase64) : (pdf.size ?? 0);
  if (bytes > MAX_PDF_BYTES) {
    out.push({
      code: "economic.pdf_too_large",
      field: "pdf",
      message: `The ${doc} PDF is ${bytes.toLocaleString("en")} bytes; e-conomic accepts at most ${MAX_PDF_BYTES.toLocaleString("en")} bytes (9.0 MB).`,
      hint: "Make the PDF smaller in the PSA (fewer or smaller images), or set attach_pdf = false for this target.",
    });
  }
  const head = typeof pdf.contentBase64 === "string" ? base64Head(pdf.contentBase64, PDF_MAGIC.length) : PDF_MAGIC;
  if (head !== PDF_MAGIC) {
    out.push({
      code: "economic.pdf_not_pdf",
      field: "pdf",
      message: `The ${doc} PDF ${pdf.filename} is not a PDF file: it begins with "${printable(head)}", not "${PDF_MAGIC}"; e-conomic attaches only PDF files.`,
      hint: "Have the PSA send the invoice as a PDF (not an image, a Word file or an HTML page), or set attach_pdf = false for this target; then press retry.",
    });
  }
  return out;
}

/** The first bytes of every PDF file. */
const PDF_MAGIC = "%PDF-";

/** The first `n` bytes a base64 text decodes to, read from its start only (whitespace in it ignored). */
function base64Head(b64: string, n: number): string {
  const chars = Math.ceil(n / 3) * 4;
  const start = b64
    .slice(0, chars * 4)
    .replace(/\s/g, "")
    .slice(0, chars);
  return Buffer.from(start, "base64").subarray(0, n).toString("latin1");
}

/** Bytes as a person can read them in a message: other than printable ASCII shown as "?". */
const printable = (s: string) => s.replace(/[^\x20-\x7e]/g, "?");

function tooManyDecimals(doc: string, i: number, text: string, what: string, value: number, field: string): Problem[] {
  const n = decimals(value);
  if (n <= MAX_DECIMALS) return [];
  return [
    {
      code: "economic.too_many_decimals",
      field: `lines.${i}.${field}`,
      message: `Line ${i + 1} ("${clip(text)}"): the ${what} ${value} has ${n} decimals; e-conomic accepts at most ${MAX_DECIMALS} on an ${doc} line.`,
      hint: `Round the ${what} of line ${i + 1} to ${MAX_DECIMALS} decimals in the PSA (for example ${round2(value)}), or use a unit that needs fewer decimals, then send the ${doc} again.`,
    },
  ];
}

/** The customer's name and billing address as the invoice recipient: the customer is what must change. */
function recipientRules(inv: InvoiceLike, c: Customer, doc: string): Problem[] {
  const i = billingAddressIndex(c);
  const a = i >= 0 ? c.addresses[i] : undefined;
  const fields: [keyof typeof RECIPIENT, string | undefined, string, string][] = [
    ["name", c.name, "name", "name"],
    ["address", a?.street, `addresses.${i}.street`, "street address"],
    ["zip", a?.zip, `addresses.${i}.zip`, "postcode"],
    ["city", a?.city, `addresses.${i}.city`, "city"],
    ["country", countryName(a?.country), `addresses.${i}.country`, "country"],
  ];
  const out: Problem[] = [];
  for (const [key, value, psaField, label] of fields) {
    const max = RECIPIENT[key];
    if (value === undefined || value.length <= max) continue;
    const message =
      value.length <= CUSTOMER_LIMIT[key]
        ? `The ${label} of customer ${inv.customerNumber} is ${value.length} characters: e-conomic takes that on the customer (up to ${CUSTOMER_LIMIT[key]}) but not on the recipient of an ${doc} (up to ${max}).`
        : `The ${label} of customer ${inv.customerNumber} is ${value.length} characters; the recipient of an e-conomic ${doc} allows ${max}.`;
    out.push({
      code: "economic.recipient_too_long",
      message,
      hint: `Shorten the ${label} of customer ${inv.customerNumber} in the PSA (customer ${inv.customerNumber}: ${psaField}) to at most ${max} characters. When the PSA sends the corrected customer, ${doc} ${inv.number} is sent again by itself.`,
      field: `customer ${inv.customerNumber}: ${psaField}`,
      record: { entity: "customer", key: inv.customerNumber },
    });
  }
  return out;
}

/** Draft paths → the PSA's field, for limits the rules above do not name. */
const LINE_FIELDS: Record<string, string> = {
  description: "text",
  product: "productCode",
  quantity: "quantity",
  unitNetPrice: "unitPrice",
};
const FIELDS: Record<string, string> = {
  "notes.heading": "heading",
  "notes.textLine1": "ourReference",
  "references.other": "psaId",
  customer: "customerNumber",
  project: "projectNumber",
  date: "date",
  dueDate: "dueDate",
  currency: "currency",
};

function psaField(segments: PathSegment[]): string | undefined {
  if (segments[0] === "lines" && typeof segments[1] === "number") {
    const f = LINE_FIELDS[String(segments[2])];
    return `lines.${segments[1]}${f ? `.${f}` : ""}`;
  }
  return (
    FIELDS[
      segments
        .filter((s) => typeof s === "string")
        .slice(0, 2)
        .join(".")
    ] ?? FIELDS[String(segments[0])]
  );
}

/**
 * The mapped draft against e-conomic's own schema: whatever limit the named rules above do not cover
 * is still caught before sending. Zone and terms are placeholders (their numbers are not known offline).
 */
function backstop(inv: InvoiceLike, customer: Customer | null, cfg: EconomicConfig, doc: string, covered: string[]): Problem[] {
  const body = draftInvoiceBody(inv, customer, cfg, { vatZone: 1, terms: { paymentTerms: cfg.payment_terms, keepsDueDate: true } });
  const isCovered = (path: string) => covered.some((c) => c !== "" && (path === c || path.startsWith(`${c}.`) || path.startsWith(`${c}[`)));
  return validateSchema(draftsPost as unknown as JsonSchema, body)
    .filter((e) => !isCovered(formatPath(e.segments)))
    .map((e) => ({
      code: "economic.draft_refused",
      message: `e-conomic would refuse the ${doc}: ${e.message}`,
      hint: `Correct ${psaField(e.segments) ?? formatPath(e.segments)} of ${doc} ${inv.number} in the PSA, then send it again.`,
      field: psaField(e.segments) ?? formatPath(e.segments),
    }));
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 39)}…` : s;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
