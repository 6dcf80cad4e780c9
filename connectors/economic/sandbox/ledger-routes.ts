// REST resources of the sandbox's ledger: /accounting-years (+ /entries), /accounts, /suppliers,
// /vat-accounts, journal voucher receipts, and the payment-status collections /invoices/paid, /unpaid,
// /overdue and /not-due (derived from each booked invoice's remainder and due date).
import type { Context, Hono } from "hono";
import yearsGet from "./schemas/accounting-years.get.schema.json";
import entriesGet from "./schemas/accounting-years.accountingYear.entries.get.schema.json";
import notDueGet from "./schemas/invoices.not-due.get.schema.json";
import overdueGet from "./schemas/invoices.overdue.get.schema.json";
import paidGet from "./schemas/invoices.paid.get.schema.json";
import unpaidGet from "./schemas/invoices.unpaid.get.schema.json";
import type { JsonSchema } from "../schema-validate.ts";
import { decodeSelfId, encodeSelfId, filterableFields, restCollection, restJson, withSelf } from "./http.ts";
import type { LedgerEntry } from "./ledger.ts";
import { intSegment, methodNotAllowed, notFound, origin, type SandboxCore } from "./rest.ts";
import type { BookedRecord, Json } from "./state.ts";

const schema = (s: unknown) => s as JsonSchema;
const YEAR_FILTERS = filterableFields(schema(yearsGet));
const ENTRY_FILTERS = filterableFields(schema(entriesGet));
const STATUS_FILTERS = {
  paid: filterableFields(schema(paidGet)),
  unpaid: filterableFields(schema(unpaidGet)),
  overdue: filterableFields(schema(overdueGet)),
  "not-due": filterableFields(schema(notDueGet)),
};

const today = () => new Date().toISOString().slice(0, 10);

function renderYear(base: string, y: { year: string; fromDate: string; toDate: string; closed?: boolean }): Json {
  const self = `${base}/accounting-years/${encodeSelfId(y.year)}`;
  return { ...y, periods: `${self}/periods`, entries: `${self}/entries`, totals: `${self}/totals`, vouchers: `${self}/vouchers`, self };
}

function renderEntry(base: string, year: string, e: LedgerEntry): Json {
  return {
    ...e,
    account: withSelf(e.account, "accountNumber", `${base}/accounts`),
    project: withSelf(e.project, "projectNumber", `${base}/projects`),
    supplier: withSelf(e.supplier, "supplierNumber", `${base}/suppliers`),
    customer: withSelf(e.customer, "customerNumber", `${base}/customers`),
    vatAccount: withSelf(e.vatAccount, "vatCode", `${base}/vat-accounts`),
    self: `${base}/accounting-years/${encodeSelfId(year)}/entries/${e.entryNumber}`,
  };
}

/** A booked invoice as the payment-status collections show it. */
function renderStatus(base: string, rec: BookedRecord): Json {
  const i = rec.invoice;
  return {
    bookedInvoiceNumber: i.bookedInvoiceNumber,
    date: i.date,
    currency: i.currency,
    netAmount: i.netAmount,
    netAmountInBaseCurrency: i.netAmountInBaseCurrency,
    grossAmount: i.grossAmount,
    vatAmount: i.vatAmount,
    roundingAmount: i.roundingAmount,
    remainder: i.remainder,
    remainderInBaseCurrency: i.remainderInBaseCurrency,
    dueDate: i.dueDate,
    customer: withSelf(i.customer, "customerNumber", `${base}/customers`),
    references: i.references,
    notes: i.notes,
    project: withSelf(i.project, "projectNumber", `${base}/projects`),
    ...(rec.sendBy && rec.sendBy.toLowerCase() !== "none" ? { sent: `${base}/invoices/sent` } : {}),
    self: `${base}/invoices/booked/${i.bookedInvoiceNumber}`,
  };
}

const isPaid = (r: BookedRecord) => Math.abs(r.invoice.remainder ?? 0) < 0.005;
const STATUS_OF: Record<keyof typeof STATUS_FILTERS, (r: BookedRecord) => boolean> = {
  paid: isPaid,
  unpaid: (r) => !isPaid(r),
  overdue: (r) => !isPaid(r) && !!r.invoice.dueDate && r.invoice.dueDate < today(),
  "not-due": (r) => !isPaid(r) && !(r.invoice.dueDate && r.invoice.dueDate < today()),
};

export function registerLedgerRoutes(app: Hono, core: SandboxCore): void {
  const ledger = () => core.state.ledger;
  const yearOf = (c: Context) => ledger().years.get(decodeSelfId(c.req.param("year") ?? ""));

  app.get("/accounting-years", (c) =>
    restCollection(
      c,
      [...ledger().years.values()].map((y) => renderYear(origin(c), y)),
      { filterable: YEAR_FILTERS },
    ),
  );
  app.all("/accounting-years", methodNotAllowed);
  app.get("/accounting-years/:year", (c) => {
    const y = yearOf(c);
    return y ? restJson(200, renderYear(origin(c), y)) : notFound("Accounting year");
  });
  app.get("/accounting-years/:year/entries", (c) => {
    const y = yearOf(c);
    if (!y) return notFound("Accounting year");
    return restCollection(
      c,
      (ledger().entries.get(y.year) ?? []).map((e) => renderEntry(origin(c), y.year, e)),
      { filterable: ENTRY_FILTERS },
    );
  });
  app.all("/accounting-years/:year/entries", methodNotAllowed);

  const simple = (path: string, label: string, map: () => Map<any, Json>, key: string, parse: (s: string) => unknown) => {
    const render = (c: Context, item: Json) => ({ ...item, self: `${origin(c)}${path}/${encodeSelfId(String(item[key]))}` });
    app.get(path, (c) =>
      restCollection(
        c,
        [...map().values()].map((i) => render(c, i)),
        { filterable: new Set([key, "name"]) },
      ),
    );
    app.get(`${path}/:id`, (c) => {
      const item = map().get(parse(decodeSelfId(c.req.param("id"))));
      return item ? restJson(200, render(c, item)) : notFound(label);
    });
    app.all(path, methodNotAllowed);
    app.all(`${path}/:id`, methodNotAllowed);
  };
  simple(
    "/accounts",
    "Account",
    () => ledger().accounts,
    "accountNumber",
    (s) => intSegment(s),
  );
  simple(
    "/suppliers",
    "Supplier",
    () => ledger().suppliers,
    "supplierNumber",
    (s) => intSegment(s),
  );
  simple(
    "/vat-accounts",
    "VAT account",
    () => ledger().vatAccounts,
    "vatCode",
    (s) => s,
  );

  // Journal voucher receipts: /journals/{j}/vouchers/{accountingYear}-{voucherNumber}/attachment(/file).
  const receipt = (c: Context) => {
    const m = /^(.+)-(\d+)$/.exec(c.req.param("voucher") ?? "");
    return m ? ledger().voucherAttachments.get(`${c.req.param("j")}:${decodeSelfId(m[1]!)}-${m[2]}`) : undefined;
  };
  app.get("/journals/:j/vouchers/:voucher/attachment", (c) => {
    const a = receipt(c);
    if (!a) return notFound("Attachment");
    const self = `${origin(c)}${c.req.path}`;
    return restJson(200, { file: `${self}/file`, pages: a.pages, self });
  });
  app.get("/journals/:j/vouchers/:voucher/attachment/file", (c) => {
    const a = receipt(c);
    return a ? new Response(a.bytes, { headers: { "content-type": a.contentType } }) : notFound("Attachment");
  });

  for (const status of Object.keys(STATUS_FILTERS) as (keyof typeof STATUS_FILTERS)[]) {
    app.get(`/invoices/${status}`, (c) =>
      restCollection(
        c,
        [...core.state.booked.values()]
          .filter(STATUS_OF[status])
          .sort((a, b) => a.invoice.bookedInvoiceNumber - b.invoice.bookedInvoiceNumber)
          .map((r) => renderStatus(origin(c), r)),
        { filterable: STATUS_FILTERS[status] },
      ),
    );
    app.all(`/invoices/${status}`, methodNotAllowed);
  }
}
