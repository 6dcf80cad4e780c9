// Test hooks of the sandbox's ledger under /__sandbox/ (no auth, no faults):
//   POST  /__sandbox/book/supplier-invoices  book supplier invoices (project, cost type, receipt) as a booked journal
//   POST  /__sandbox/payments                register a customer payment on a booked invoice (unpaid → paid; a negative amount reverses one)
//   PATCH /__sandbox/invoices/booked/:n      set an invoice's due date or mark it sent
//   POST  /__sandbox/suppliers               add a supplier
//   POST  /__sandbox/webhooks                subscribe a URL (with merge fields) to "invoice" or "daybook" events
//   PUT   /__sandbox/accounting-years/:y  create an accounting year, or close or open one ({ fromDate?, toDate?, closed? })
//   DELETE /__sandbox/accounting-years/:y  remove an accounting year (a date in no year, as before it is created)
//   PUT   /__sandbox/price-list            a fault: book these products at these unit prices whatever a line says ({ "<productNumber>": price })
//   PUT   /__sandbox/line-discounts        a fault: give lines of these products this discount in percent ({ "<productNumber>": 10 })
//   GET   /__sandbox/ledger                  years, entries, receipts and webhook calls as JSON
import type { Context, Hono } from "hono";
import { z } from "zod";
import { addEntry, BANK_ACCOUNT, bookSupplierInvoices, DEBTORS_ACCOUNT, fireWebhooks, LedgerInputError, yearOf } from "./ledger.ts";
import type { SandboxState } from "./state.ts";

const isoDate = z.iso.date();
const SupplierInvoices = z
  .object({
    journal: z.number().int().positive().default(1),
    vouchers: z
      .array(
        z
          .object({
            date: isoDate,
            supplierNumber: z.number().int().positive(),
            supplierInvoiceNumber: z.string().max(30).optional(),
            text: z.string().max(250).optional(),
            currency: z.string().length(3).optional(),
            dueDate: isoDate.optional(),
            voucherNumber: z.number().int().positive().optional(),
            lines: z
              .array(
                z
                  .object({
                    account: z.number().int().positive(),
                    /** Including VAT, as on the supplier's invoice. */
                    amount: z.number(),
                    vatCode: z.string().max(5).optional(),
                    projectNumber: z.number().int().positive().optional(),
                    costTypeNumber: z.number().int().positive().optional(),
                    text: z.string().max(250).optional(),
                  })
                  .strict(),
              )
              .min(1),
            attachment: z
              .object({ fileName: z.string().min(1), contentBase64: z.string().min(1), contentType: z.string().optional() })
              .strict()
              .optional(),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();

const Payment = z
  .object({
    invoice: z.number().int().positive(),
    // Negative: a payment reversed (returned by the bank, or booked against the wrong invoice): the remainder grows again.
    amount: z
      .number()
      .refine((x) => x !== 0, "must not be 0")
      .optional(),
    date: isoDate.optional(),
  })
  .strict();
const InvoicePatch = z.object({ dueDate: isoDate.optional(), sent: z.boolean().optional() }).strict();
const Supplier = z
  .object({ supplierNumber: z.number().int().positive(), name: z.string().min(1).max(255), currency: z.string().length(3).default("DKK") })
  .strict();
const AccountingYear = z.object({ fromDate: isoDate.optional(), toDate: isoDate.optional(), closed: z.boolean().optional() }).strict();
const PriceList = z.record(z.string(), z.number());
const Webhook = z.object({ type: z.enum(["invoice", "daybook"]), url: z.url(), method: z.enum(["GET", "POST"]).default("POST") }).strict();

const round2 = (x: number) => (Math.sign(x) * Math.round(Math.abs(x) * 100 + 1e-9)) / 100;

async function parse<T extends z.ZodType>(c: Context, s: T): Promise<z.infer<T> | Response> {
  const body = await c.req.json().catch(() => undefined);
  const r = s.safeParse(body);
  if (r.success) return r.data;
  return Response.json(
    { message: "Invalid control request.", issues: r.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`) },
    { status: 400 },
  );
}

export function registerLedgerControlRoutes(app: Hono, state: () => SandboxState): void {
  app.post("/__sandbox/book/supplier-invoices", async (c) => {
    const body = await parse(c, SupplierInvoices);
    if (body instanceof Response) return body;
    const s = state();
    try {
      const booked = bookSupplierInvoices(
        s.ledger,
        body.journal,
        body.vouchers.map((v) => ({
          ...v,
          attachment: v.attachment
            ? {
                fileName: v.attachment.fileName,
                contentType: v.attachment.contentType,
                bytes: new Uint8Array(Buffer.from(v.attachment.contentBase64, "base64")),
              }
            : undefined,
        })),
      );
      const numbers = booked.map((b) => b.voucherNumber);
      fireWebhooks(s.ledger, "daybook", { DAYBOOKNO: body.journal, FROMSERIALNO: Math.min(...numbers), TOSERIALNO: Math.max(...numbers) });
      return Response.json({ booked }, { status: 201 });
    } catch (e) {
      if (e instanceof LedgerInputError)
        return Response.json({ message: e.message, issues: [`${e.field}: ${e.message}`] }, { status: 400 });
      throw e;
    }
  });

  app.post("/__sandbox/payments", async (c) => {
    const body = await parse(c, Payment);
    if (body instanceof Response) return body;
    const s = state();
    const rec = s.booked.get(body.invoice);
    if (!rec) return Response.json({ message: `No booked invoice ${body.invoice}.` }, { status: 404 });
    const inv = rec.invoice;
    const amount = body.amount ?? inv.remainder;
    const date = body.date ?? new Date().toISOString().slice(0, 10);
    inv.remainder = round2(inv.remainder - amount);
    inv.remainderInBaseCurrency = round2((inv.remainderInBaseCurrency ?? inv.remainder) - amount);
    const year = yearOf(s.ledger, date);
    if (year) {
      const base = {
        voucherNumber: 90000 + body.invoice,
        date,
        currency: inv.currency ?? "DKK",
        entryType: "customerPayment",
        text: `Payment of invoice ${body.invoice}`,
      };
      addEntry(s.ledger, year, { ...base, account: { accountNumber: BANK_ACCOUNT }, amount, amountInBaseCurrency: amount });
      addEntry(s.ledger, year, {
        ...base,
        account: { accountNumber: DEBTORS_ACCOUNT },
        amount: -amount,
        amountInBaseCurrency: -amount,
        customer: inv.customer && { customerNumber: inv.customer.customerNumber },
      });
    }
    return Response.json({ invoice: body.invoice, remainder: inv.remainder });
  });

  app.patch("/__sandbox/invoices/booked/:n", async (c) => {
    const body = await parse(c, InvoicePatch);
    if (body instanceof Response) return body;
    const rec = state().booked.get(Number(c.req.param("n")));
    if (!rec) return Response.json({ message: `No booked invoice ${c.req.param("n")}.` }, { status: 404 });
    if (body.dueDate) rec.invoice.dueDate = body.dueDate;
    if (body.sent !== undefined) rec.sendBy = body.sent ? "Email" : undefined;
    return Response.json({ invoice: rec.invoice.bookedInvoiceNumber, dueDate: rec.invoice.dueDate, sent: !!rec.sendBy });
  });

  app.post("/__sandbox/suppliers", async (c) => {
    const body = await parse(c, Supplier);
    if (body instanceof Response) return body;
    state().ledger.suppliers.set(body.supplierNumber, { ...body, supplierGroup: { supplierGroupNumber: 1 } });
    return Response.json(body, { status: 201 });
  });

  app.post("/__sandbox/webhooks", async (c) => {
    const body = await parse(c, Webhook);
    if (body instanceof Response) return body;
    const hooks = state().ledger.webhooks;
    const sub = { id: hooks.length + 1, ...body };
    hooks.push(sub);
    return Response.json(sub, { status: 201 });
  });

  app.put("/__sandbox/accounting-years/:year", async (c) => {
    const body = await parse(c, AccountingYear);
    if (body instanceof Response) return body;
    const year = c.req.param("year");
    const years = state().ledger.years;
    const was = years.get(year) ?? { year, fromDate: `${year}-01-01`, toDate: `${year}-12-31` };
    const now = { ...was, ...body };
    years.set(year, now);
    return Response.json(now);
  });

  app.delete("/__sandbox/accounting-years/:year", (c) => {
    const gone = state().ledger.years.delete(c.req.param("year"));
    return gone
      ? new Response(null, { status: 204 })
      : Response.json({ message: `No accounting year ${c.req.param("year")}.` }, { status: 404 });
  });

  app.put("/__sandbox/price-list", async (c) => {
    const body = await parse(c, PriceList);
    if (body instanceof Response) return body;
    state().priceList = new Map(Object.entries(body));
    return Response.json(body);
  });

  app.put("/__sandbox/line-discounts", async (c) => {
    const body = await parse(c, PriceList);
    if (body instanceof Response) return body;
    state().lineDiscounts = new Map(Object.entries(body));
    return Response.json(body);
  });

  app.get("/__sandbox/ledger", () => {
    const l = state().ledger;
    return Response.json({
      years: [...l.years.values()],
      entries: [...l.entries].flatMap(([year, list]) => list.map((e) => ({ year, ...e }))),
      receipts: [...l.voucherAttachments].map(([key, a]) => ({ key, fileName: a.fileName, size: a.size, contentType: a.contentType })),
      webhooks: l.webhooks,
      webhookCalls: l.webhookCalls,
    });
  });
}
