// The [[targets]] table for kind = "uniconta" in kontobro.toml. Key names follow the other connectors for the
// same ideas (request_timeout_ms, requests_per_second, burst, accounts / vat_codes per line kind, attach_pdf,
// [targets.expenses] accounts / activity / billable / page_size). Unverified behaviour is a named setting.
import { z } from "zod";
import { lazySchema } from "../../agent/lazy-schema.ts";

const codeSchema = () => z.string().trim().min(1).max(40);
const perKindSchema = () =>
  z.strictObject({ hours: codeSchema().optional(), expenses: codeSchema().optional(), products: codeSchema().optional() });
const isoDateSchema = () => z.iso.date({ error: "must be a date like 2026-01-01" });

/** A comma list ("2750, 2800") or an array of codes; blank or empty means all. */
const codeList = (what: string, max = 40) =>
  z.union([z.string(), z.array(z.union([z.string(), z.number()]))]).transform((v, ctx) => {
    const items = (Array.isArray(v) ? v.map(String) : v.split(",")).map((s) => s.trim()).filter(Boolean);
    // One server-side filter may hold at most 40 ORs (uniconta.md §10).
    if (items.length > max) {
      ctx.addIssue({ code: "custom", message: `lists at most ${max} ${what} (Uniconta's filters allow 40 alternatives); blank = all` });
      return z.NEVER;
    }
    return items;
  });

/** Posted project costs pulled into the PSA's projects as expenses (Moment's Uniconta integration, KB-UC). */
const expensesSchema = () =>
  z.strictObject({
    /** Number series of the postings to import (ProjectTransClient.NumberSerie); blank = all. */
    number_series: codeList("number series").default([]),
    /** Ledger accounts of the postings to import (matched through GLTransClient); blank = all. */
    accounts: codeList("accounts").default([]),
    /** Nothing dated before this is imported; default: the day of the first run. */
    start_date: isoDateSchema().optional(),
    /** Each run looks back this many days before the last run's day, for costs posted late with an old date. */
    overlap_days: z.number().int().min(0).max(366).default(7),
    activity: z.string().trim().min(1).max(100).default("Expenses"),
    billable: z.boolean().default(true),
    page_size: z.number().int().min(1).max(1000).default(100),
  });
export const EXPENSE_DEFAULTS = { number_series: [], accounts: [], overlap_days: 7, activity: "Expenses", billable: true, page_size: 100 };

const paymentsSchema = () =>
  z.strictObject({
    /** Only invoices dated on or after this are asked for (the "Uniconta Payments" add-on's start date). */
    start_date: isoDateSchema().optional(),
  });

export const unicontaConfigSchema = () =>
  z
    .strictObject({
      /** The REST-like / OData host: /api/Entities/… (CRUD) and /odata/<company>/… (queries). */
      api_url: z.url().default("https://odata.uniconta.com"),
      company_id: z.number({ error: "is required: the Uniconta company id, a number (Company › Company information)" }).int().positive(),
      /** The server user ("server-login"): one per customer and solution (uniconta.md §2). */
      username: z.string().trim().min(1, { error: "is required: the Uniconta server user" }),
      password: z.string().min(1, { error: "is required (use ${ENV_VAR} to read it from the environment)" }),
      /**
       * How an invoice is posted: "gateway" (a .NET gateway the customer runs, e.g. rmja/unicontarest, posts the
       * order: InvoiceAPI.PostInvoice) or "order_only" (kontobro creates the order; a person invoices it in Uniconta).
       */
      posting: z.enum(["gateway", "order_only"]).default("order_only"),
      gateway_url: z.url().optional(),
      /** Ask the gateway for the PSA's number (`invoiceNumber=`); whether PostInvoice honours it is unverified. */
      send_invoice_number: z.boolean().default(false),
      /** Post with simulate=true first and stop before posting when Uniconta would use another number (unverified that a simulation returns it). */
      simulate_before_post: z.boolean().default(false),
      /** The order field that carries "kontobro:<psaId>" for lookups (uniconta.md §6). */
      reference_field: z.enum(["OurRef", "YourRef", "Requisition"]).default("OurRef"),
      /** Posting account, VAT code and project category per line kind; a line's own account / vatCode / category wins. */
      accounts: perKindSchema().default({}),
      vat_codes: perKindSchema().default({}),
      categories: perKindSchema().default({}),
      /** Inventory item per line kind, when the company wants items on order lines (item-less lines are unverified, Q2). */
      items: perKindSchema().default({}),
      /** The project tag group whose tag is the project category of the project's lines. */
      project_category_tag_group: z.string().trim().min(1).optional(),
      /** Customer group for customers the PSA sends without one; unset = such customers are refused. */
      default_customer_group: codeSchema().optional(),
      /** Payment terms code (PaymentTermClient) for new customers and invoices; unset = the customer's. */
      payment_terms: codeSchema().optional(),
      /** Payment terms of 0 days for credit notes (KB-UC); `kontobro check` verifies the days. */
      credit_note_payment_terms: codeSchema().optional(),
      /** Project group (ProjectClient.Group) for new projects. */
      project_group: codeSchema().optional(),
      /** Which of Uniconta's dimensions (Dimension1..5) is the department. */
      department_dimension: z.number().int().min(1).max(5).default(1),
      project_department: z.enum(["none", "project", "tag_group"]).default("none"),
      project_department_tag_group: z.string().trim().min(1).optional(),
      invoice_department: z.enum(["none", "invoice", "invoice_tag_group", "project", "project_tag_group"]).default("none"),
      invoice_department_tag_group: z.string().trim().min(1).optional(),
      /** The company's currency: expenses are reported in it, and an invoice in it found posted is compared by amount. */
      company_currency: z
        .string()
        .regex(/^[A-Z]{3}$/)
        .default("DKK"),
      /** Attach the PSA's PDF to the posted invoice (order_only: to the order) as a UserDocsClient document. */
      attach_pdf: z.boolean().default(true),
      request_timeout_ms: z.number().int().min(100).max(600_000).default(30_000),
      /**
       * How long a write may still land at the target after it was sent (ms): a write answered after request_timeout_ms
       * is listened to this long, and a delivery whose push was cut short by a crash, a stop or a worker declared dead is
       * not tried again before this long after (so no second draft is made while the first is still on its way).
       */
      late_answer_wait_ms: z.number().int().min(1000).max(3_600_000).default(600_000),
      /** Client-side token bucket; Uniconta's limit is per day (calls_per_day), not per second. */
      requests_per_second: z.number().min(0).default(5),
      burst: z.number().int().min(1).default(10),
      /** The server user's daily call quota (5,000 in the standard packages, uniconta.md §10). kontobro never exceeds it. */
      calls_per_day: z.number().int().min(50).default(5000),
      /** Pulls are postponed while fewer calls than this are left today; pushes may use them. */
      reserve_for_pushes: z.number().int().min(0).default(1000),
      /** The clock the quota resets on at midnight (unverified: Uniconta is Danish). */
      quota_timezone: z.string().min(1).default("Europe/Copenhagen"),
      /** Server calls one gateway posting costs (read order, query lines, PostInvoice; unverified). */
      gateway_post_calls: z.number().int().min(1).default(3),
      /** The gateway logs in again after this long (rmja/unicontarest: 10 minutes); a login costs 2 calls. */
      gateway_session_minutes: z.number().int().min(1).default(10),
      /** Attempts at the company list in `kontobro check` (it "occasionally returns null", uniconta.md §11). */
      login_attempts: z.number().int().min(1).max(10).default(5),
      /** How long lists of VAT codes, accounts, groups, categories, terms and dimensions are kept. */
      setup_cache_minutes: z.number().int().min(1).max(1440).default(60),
      expenses: expensesSchema().default(EXPENSE_DEFAULTS),
      payments: paymentsSchema().default({}),
    })
    .superRefine((c, ctx) => {
      if (c.posting === "gateway" && !c.gateway_url)
        ctx.addIssue({
          code: "custom",
          path: ["gateway_url"],
          message: 'is required with posting = "gateway" (the URL of the .NET gateway that posts invoices)',
        });
      if (c.project_department === "tag_group" && !c.project_department_tag_group)
        ctx.addIssue({
          code: "custom",
          path: ["project_department_tag_group"],
          message: 'is required with project_department = "tag_group"',
        });
      if (/tag_group/.test(c.invoice_department) && !c.invoice_department_tag_group)
        ctx.addIssue({
          code: "custom",
          path: ["invoice_department_tag_group"],
          message: `is required with invoice_department = "${c.invoice_department}"`,
        });
      if (c.reserve_for_pushes >= c.calls_per_day)
        ctx.addIssue({ code: "custom", path: ["reserve_for_pushes"], message: "must be below calls_per_day" });
    });
export const UnicontaConfig = lazySchema(unicontaConfigSchema);
export type UnicontaConfig = z.output<typeof UnicontaConfig>;
