// Sales invoices: drafts (with totals), the draft PDF attachment, and booking with or without a number.
import type { Context, Hono } from "hono";
import bookedGet from "./schemas/invoices.booked.get.schema.json";
import bookedPost from "./schemas/invoices.booked.post.schema.json";
import bookWithNumberPut from "./schemas/invoices.booked.bookWithNumber.put.schema.json";
import draftsGet from "./schemas/invoices.drafts.get.schema.json";
import draftsPost from "./schemas/invoices.drafts.post.schema.json";
import type { JsonSchema } from "../schema-validate.ts";
import {
  checkRef,
  decodeSelfId,
  filterableFields,
  readRestDocument,
  restCollection,
  restJson,
  validationError,
  withSelf,
  type FieldError,
} from "./http.ts";
import { checkCurrency, intSegment, methodNotAllowed, notFound, origin, type SandboxCore } from "./rest.ts";
import { registerAttachmentRoutes } from "./attachments.ts";
import { fireWebhooks, yearOf } from "./ledger.ts";
import type { BookedRecord, Json, SandboxState } from "./state.ts";

const schema = (s: unknown) => s as JsonSchema;
const DRAFT_FILTERS = filterableFields(schema(draftsGet));
const BOOKED_FILTERS = filterableFields(schema(bookedGet));
const DOMESTIC_VAT_ZONE = 1;

export function round2(x: number): number {
  return (Math.sign(x) * Math.round(Math.abs(x) * 100 + 1e-9)) / 100;
}

function addDays(isoDate: string, days: number): string {
  const d = new Date(`${isoDate}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** Checks a draft's references and computes what e-conomic computes (totals, due date, line numbers). */
function buildDraft(core: SandboxCore, base: string, body: Json): { errors: FieldError[]; doc: Json } {
  const s = core.state;
  const errors: FieldError[] = [];
  const customer = checkRef(errors, ["customer"], body.customer, "customerNumber", (n) => s.customers.has(n), `${base}/customers`);
  const layout = checkRef(errors, ["layout"], body.layout, "layoutNumber", (n) => s.layouts.has(n), `${base}/layouts`);
  const terms = checkRef(
    errors,
    ["paymentTerms"],
    body.paymentTerms,
    "paymentTermsNumber",
    (n) => s.paymentTerms.has(n),
    `${base}/payment-terms`,
  );
  const zone = checkRef(
    errors,
    ["recipient", "vatZone"],
    body.recipient?.vatZone,
    "vatZoneNumber",
    (n) => s.vatZones.has(n),
    `${base}/vat-zones`,
  );
  const project = checkRef(errors, ["project"], body.project, "projectNumber", (n) => s.projects.has(n), `${base}/projects`);
  checkRef(errors, ["deliveryLocation"], body.deliveryLocation, "deliveryLocationNumber", () => false, `${base}/customers`);
  checkCurrency(errors, ["currency"], body.currency, base);
  const termsDoc = terms === undefined ? undefined : s.paymentTerms.get(terms)!;
  if (termsDoc?.paymentTermsType === "dueDate" && !body.dueDate) {
    errors.push({
      segments: ["dueDate"],
      errorCode: "SANDBOX_REQUIRED",
      message: "dueDate is required for payment terms of type dueDate.",
      developerHint: "Send dueDate.",
    });
  }
  // No VAT field on lines (economic.md §8.1): a line on a product is booked on its group's sales account for the
  // recipient's zone, with that account's VAT code and the code's rate (none: no VAT). A line without a product (or
  // whose group has no account for the zone) takes the sandbox's flat rate for domestic customers.
  const flatRate = zone === DOMESTIC_VAT_ZONE ? core.vatRate : 0;
  const lines = ((body.lines ?? []) as Json[]).map((line, i) =>
    buildLine(s, base, line, i, (product) => lineVatRate(s, product, zone, flatRate), errors),
  );
  // netAmount and a line's totalNetAmount are "before all taxes and discounts have been applied" (REST schemas); the VAT
  // and the gross amount the customer owes are of the lines after their discounts.
  const net = round2(lines.reduce((sum, l) => sum + l.totalNetAmount, 0));
  const discounted = round2(lines.reduce((sum, l) => sum + afterDiscount(l), 0));
  const cost = round2(lines.reduce((sum, l) => sum + (l.unitCostPrice ?? 0) * l.quantity, 0));
  const vat = round2(lines.reduce((sum, l) => sum + afterDiscount(l) * (l.vatRate / 100), 0));
  const exchangeRate = body.exchangeRate ?? 100;
  const inBase = (x: number) => round2((x * exchangeRate) / 100);
  const doc: Json = {
    ...body,
    exchangeRate,
    customer: customer === undefined ? body.customer : { customerNumber: customer },
    layout: layout === undefined ? body.layout : { layoutNumber: layout },
    paymentTerms: termsDoc ? { ...termsDoc } : body.paymentTerms,
    recipient: { ...body.recipient, ...(zone === undefined ? {} : { vatZone: { ...s.vatZones.get(zone) } }) },
    ...(project === undefined ? {} : { project: { projectNumber: project } }),
    // Only terms of type dueDate take the invoice's own due date; the others compute it (economic.md §8.1).
    dueDate:
      termsDoc?.paymentTermsType === "dueDate"
        ? body.dueDate
        : termsDoc && body.date
          ? addDays(body.date, termsDoc.daysOfCredit ?? 0)
          : body.dueDate,
    lines,
    netAmount: net,
    netAmountInBaseCurrency: inBase(net),
    vatAmount: vat,
    grossAmount: round2(discounted + vat),
    grossAmountInBaseCurrency: inBase(round2(discounted + vat)),
    roundingAmount: 0,
    costPriceInBaseCurrency: inBase(cost),
    marginInBaseCurrency: inBase(round2(net - cost)),
    marginPercentage: net === 0 ? 0 : round2(((net - cost) / net) * 100),
    lastUpdated: new Date().toISOString(),
  };
  return { errors, doc };
}

/** A line's net amount after its discount (what is owed for it before VAT). */
const afterDiscount = (l: Json) => round2(l.quantity * l.unitNetPrice * (1 - (l.discountPercentage ?? 0) / 100));

/** The VAT rate (a fraction) e-conomic books a line on this product with, for a recipient in this zone. */
function lineVatRate(s: SandboxState, product: Json | undefined, zone: number | undefined, flatRate: number): number {
  const group = Number(product?.productGroup?.productGroupNumber);
  const account = zone === undefined ? undefined : s.salesAccounts.get(group)?.[zone];
  const salesAccount = account === undefined ? undefined : s.ledger.accounts.get(account);
  if (!salesAccount) return flatRate;
  const code = salesAccount.vatAccount?.vatCode;
  return code ? Number(s.ledger.vatAccounts.get(code)?.ratePercentage ?? 0) / 100 : 0;
}

function buildLine(
  s: SandboxState,
  base: string,
  line: Json,
  i: number,
  rateOf: (product: Json | undefined) => number,
  errors: FieldError[],
): Json {
  const at = ["lines", i];
  let product: Json | undefined;
  if (line.product !== undefined) {
    const pn =
      line.product.productNumber ??
      (typeof line.product.self === "string" ? decodeSelfId(line.product.self.split("/").pop() ?? "") : undefined);
    if (!pn) {
      errors.push({
        segments: [...at, "product"],
        errorCode: "E04500",
        message: "No identifiers present on product. Please include either a self link or a productNumber.",
        developerHint: `Find a list of resources at ${base}/products.`,
      });
    } else if (!s.products.has(pn)) {
      errors.push({
        segments: [...at, "product"],
        errorCode: "E06000",
        message: "product does not exist.",
        value: pn,
        developerHint: `Find a list of resources at ${base}/products.`,
      });
    } else {
      product = s.products.get(pn);
      if (line.quantity === undefined) {
        errors.push({
          segments: [...at, "quantity"],
          errorCode: "E04730",
          message: "Property quantity must have a value when product is set.",
          developerHint: "Please check your request data.",
        });
      }
      if (line.description === undefined) {
        errors.push({
          segments: [...at, "description"],
          errorCode: "SANDBOX_REQUIRED",
          message: "description is required when an existing product is set.",
          developerHint: "Send a description on every line with a product.",
        });
      }
    }
  }
  const unit = checkRef(errors, [...at, "unit"], line.unit, "unitNumber", (n) => s.units.has(n), `${base}/units`);
  const quantity = line.quantity ?? 1;
  const listed = product ? s.priceList.get(product.productNumber) : undefined;
  const unitNetPrice = listed ?? line.unitNetPrice ?? product?.salesPrice ?? 0;
  // A discount the agreement gives on the product (a fault, PUT /__sandbox/line-discounts) where the line sets none.
  const discountPercentage = line.discountPercentage ?? (product ? s.lineDiscounts.get(product.productNumber) : undefined);
  const total = round2(quantity * unitNetPrice);
  const vatRate = rateOf(product);
  return {
    ...line,
    ...(discountPercentage === undefined ? {} : { discountPercentage }),
    lineNumber: line.lineNumber ?? i + 1,
    sortKey: line.sortKey ?? line.lineNumber ?? i + 1,
    ...(product ? { product: { productNumber: product.productNumber } } : {}),
    ...(unit === undefined ? {} : { unit: { ...s.units.get(unit) } }),
    quantity,
    unitNetPrice,
    totalNetAmount: total,
    vatRate: vatRate * 100,
    vatAmount: round2(afterDiscount({ quantity, unitNetPrice, discountPercentage }) * vatRate),
  };
}

function renderCommon(base: string, doc: Json): Json {
  return {
    ...doc,
    customer: withSelf(doc.customer, "customerNumber", `${base}/customers`),
    layout: withSelf(doc.layout, "layoutNumber", `${base}/layouts`),
    paymentTerms: withSelf(doc.paymentTerms, "paymentTermsNumber", `${base}/payment-terms`),
    recipient: doc.recipient && { ...doc.recipient, vatZone: withSelf(doc.recipient.vatZone, "vatZoneNumber", `${base}/vat-zones`) },
    project: withSelf(doc.project, "projectNumber", `${base}/projects`),
    lines: (doc.lines ?? []).map((l: Json) => ({
      ...l,
      product: withSelf(l.product, "productNumber", `${base}/products`),
      unit: withSelf(l.unit, "unitNumber", `${base}/units`),
    })),
  };
}

function renderDraft(base: string, doc: Json): Json {
  const self = `${base}/invoices/drafts/${doc.draftInvoiceNumber}`;
  return { ...renderCommon(base, doc), pdf: { download: `${self}/pdf` }, attachment: `${self}/attachment`, self };
}

function renderBooked(base: string, rec: BookedRecord): Json {
  const self = `${base}/invoices/booked/${rec.invoice.bookedInvoiceNumber}`;
  const sent = rec.sendBy && rec.sendBy.toLowerCase() !== "none" ? { sent: `${base}/invoices/sent` } : {};
  return { ...renderCommon(base, rec.invoice), pdf: { download: `${self}/pdf` }, ...sent, self };
}

/** A placeholder for the PDF e-conomic renders: enough for a viewer to tell what it is. */
function renderedPdf(title: string): Response {
  return new Response(`%PDF-1.4\n% kontobro sandbox: ${title}\n%%EOF\n`, { headers: { "content-type": "application/pdf" } });
}

export function registerInvoiceRoutes(app: Hono, core: SandboxCore): void {
  const draftOf = (c: Context) => core.state.drafts.get(intSegment(c.req.param("n")) ?? NaN);

  app.get("/invoices/drafts", (c) =>
    restCollection(
      c,
      [...core.state.drafts.values()]
        .sort((a, b) => a.invoice.draftInvoiceNumber - b.invoice.draftInvoiceNumber)
        .map((r) => renderDraft(origin(c), r.invoice)),
      { filterable: DRAFT_FILTERS },
    ),
  );
  app.post("/invoices/drafts", async (c) => {
    const body = await readRestDocument(c, schema(draftsPost));
    if (body instanceof Response) return body;
    const { errors, doc } = buildDraft(core, origin(c), body);
    if (errors.length > 0) return validationError(errors);
    const invoice = { draftInvoiceNumber: core.state.counters.nextDraftNumber++, ...doc };
    core.state.drafts.set(invoice.draftInvoiceNumber, { invoice });
    const out = renderDraft(origin(c), invoice);
    return restJson(201, out, { location: out.self });
  });
  app.all("/invoices/drafts", methodNotAllowed);
  app.get("/invoices/drafts/:n", (c) => {
    const rec = draftOf(c);
    return rec ? restJson(200, renderDraft(origin(c), rec.invoice)) : notFound("Draft invoice");
  });
  app.delete("/invoices/drafts/:n", (c) => {
    const rec = draftOf(c);
    if (!rec) return notFound("Draft invoice");
    core.state.drafts.delete(rec.invoice.draftInvoiceNumber);
    const self = `${origin(c)}/invoices/drafts/${rec.invoice.draftInvoiceNumber}`;
    return restJson(200, {
      message: "Deleted invoice.",
      deletedCount: 1,
      deletedItems: [{ draftInvoiceNumber: rec.invoice.draftInvoiceNumber, self }],
    });
  });
  app.all("/invoices/drafts/:n", methodNotAllowed);
  app.get("/invoices/drafts/:n/pdf", (c) => (draftOf(c) ? renderedPdf(`draft invoice ${c.req.param("n")}`) : notFound("Draft invoice")));
  registerAttachmentRoutes(app, draftOf, core.attachmentMaxBytes);

  app.get("/invoices/booked", (c) =>
    restCollection(
      c,
      [...core.state.booked.values()]
        .sort((a, b) => a.invoice.bookedInvoiceNumber - b.invoice.bookedInvoiceNumber)
        .map((r) => renderBooked(origin(c), r)),
      { filterable: BOOKED_FILTERS },
    ),
  );
  app.post("/invoices/booked", async (c) => {
    const body = await readRestDocument(c, schema(bookedPost));
    if (body instanceof Response) return body;
    return book(core, origin(c), body);
  });
  app.all("/invoices/booked", methodNotAllowed);
  app.get("/invoices/booked/:n", (c) => {
    const rec = core.state.booked.get(intSegment(c.req.param("n")) ?? NaN);
    return rec ? restJson(200, renderBooked(origin(c), rec)) : notFound("Booked invoice");
  });
  app.put("/invoices/booked/:n", async (c) => {
    const n = intSegment(c.req.param("n"));
    if (n === undefined) return notFound("Booked invoice");
    const body = await readRestDocument(c, schema(bookWithNumberPut));
    if (body instanceof Response) return body;
    if (body.bookWithNumber !== undefined && body.bookWithNumber !== n) {
      return validationError([
        {
          segments: ["bookWithNumber"],
          errorCode: "SANDBOX_MISMATCH",
          message: "bookWithNumber must match the number in the URL.",
          value: body.bookWithNumber,
          developerHint: "Send the same number in the URL and the body, or leave it out of the body.",
        },
      ]);
    }
    return book(core, origin(c), { ...body, bookWithNumber: n });
  });
  app.all("/invoices/booked/:n", methodNotAllowed);
  app.get("/invoices/booked/:n/pdf", (c) =>
    core.state.booked.has(intSegment(c.req.param("n")) ?? NaN) ? renderedPdf(`invoice ${c.req.param("n")}`) : notFound("Booked invoice"),
  );
}

/** Books a draft: the draft disappears, the invoice gets the chosen or the next number. */
function book(core: SandboxCore, base: string, body: Json): Response {
  const s = core.state;
  const errors: FieldError[] = [];
  if (body.draftInvoice === undefined) {
    errors.push({
      segments: ["draftInvoice"],
      errorCode: "SANDBOX_REQUIRED",
      message: "draftInvoice is required.",
      developerHint: "Send { draftInvoice: { draftInvoiceNumber } }.",
    });
  }
  const draftNumber = checkRef(
    errors,
    ["draftInvoice"],
    body.draftInvoice,
    "draftInvoiceNumber",
    (n) => s.drafts.has(n),
    `${base}/invoices/drafts`,
  );
  const wanted = body.bookWithNumber as number | undefined;
  if (wanted !== undefined && (wanted < 1 || wanted > 999_999_999)) {
    errors.push({
      segments: ["bookWithNumber"],
      errorCode: "SANDBOX_MINIMUM",
      message: "bookWithNumber must be between 1 and 999999999.",
      value: wanted,
      developerHint: "Use a positive invoice number.",
    });
  } else if (wanted !== undefined && s.booked.has(wanted)) {
    errors.push({
      segments: ["bookWithNumber"],
      errorCode: "SANDBOX_DUPLICATE",
      message: `Invoice number ${wanted} is already used by a booked invoice.`,
      value: wanted,
      developerHint: `See ${base}/invoices/booked/${wanted}.`,
    });
  }
  if (errors.length > 0 || draftNumber === undefined) return validationError(errors);
  const draft = s.drafts.get(draftNumber)!;
  if (!s.customers.has(draft.invoice.customer?.customerNumber)) {
    return validationError([
      {
        segments: ["draftInvoice"],
        errorCode: "E06000",
        message: "customer does not exist.",
        value: draft.invoice.customer?.customerNumber,
        developerHint: `Find a list of resources at ${base}/customers.`,
      },
    ]);
  }
  // Booking needs an open accounting year containing the invoice date. What e-conomic answers then (code and wording)
  // is unverified (economic.md): a 400 with this sandbox's own code; the connector names the year itself.
  if (!yearOf(s.ledger, draft.invoice.date)) {
    return validationError([
      {
        segments: ["draftInvoice", "date"],
        errorCode: "SANDBOX_NO_OPEN_ACCOUNTING_YEAR",
        message: `No open accounting year contains ${draft.invoice.date}.`,
        value: draft.invoice.date,
        developerHint: `See ${base}/accounting-years.`,
      },
    ]);
  }
  const number = wanted ?? Math.max(0, ...s.booked.keys()) + 1;
  const {
    draftInvoiceNumber: _d,
    marginInBaseCurrency: _m,
    marginPercentage: _p,
    costPriceInBaseCurrency: _c,
    lastUpdated: _l,
    ...kept
  } = draft.invoice;
  const invoice = {
    bookedInvoiceNumber: number,
    ...kept,
    remainder: kept.grossAmount,
    remainderInBaseCurrency: kept.grossAmountInBaseCurrency,
  };
  const rec: BookedRecord = {
    invoice,
    ...(draft.attachment ? { attachment: draft.attachment } : {}),
    ...(body.sendBy ? { sendBy: body.sendBy } : {}),
  };
  s.drafts.delete(draftNumber);
  s.booked.set(number, rec);
  fireWebhooks(s.ledger, "invoice", { INVOICENO: number });
  const out = renderBooked(base, rec);
  return restJson(201, out, { location: out.self });
}
