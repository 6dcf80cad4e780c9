// The [[targets]] table for kind = "economic" in kontobro.toml.
import { z } from "zod";
import { lazySchema } from "../../agent/lazy-schema.ts";
import { lineFieldSetting } from "../line-booking.ts";

const lineProductsSchema = () =>
  z.strictObject({
    hours: z.string().min(1).max(25).default("TIME"),
    expenses: z.string().min(1).max(25).default("EXPENSE"),
    products: z.string().min(1).max(25).default("PRODUCT"),
  });

/** A comma list ("2800, 2810") or an array of positive integers; blank or empty means all. */
const numberList = (what: string) =>
  z.union([z.string(), z.array(z.number().int().positive())]).transform((v, ctx) => {
    if (Array.isArray(v)) return v;
    const numbers = v
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean)
      .map(Number);
    if (numbers.some((n) => !Number.isInteger(n) || n <= 0)) {
      ctx.addIssue({ code: "custom", message: `must be a comma-separated list of ${what}, e.g. "2800, 2810" (blank = all)` });
      return z.NEVER;
    }
    return numbers;
  });

/** Posted supplier expenses pulled into the PSA's projects (as Moment's e-conomic integration does). */
const expensesSchema = () =>
  z.strictObject({
    accounts: numberList("account numbers").default([]),
    cost_types: numberList("cost type numbers").default([]),
    lookback_days: z.number().int().min(0).max(366).default(2),
    activity: z.string().trim().min(1).max(100).default("Expenses"),
    billable: z.boolean().default(true),
    attachments: z.boolean().default(true),
    page_size: z.number().int().min(1).max(1000).default(1000),
  });
export const EXPENSE_DEFAULTS = {
  accounts: [],
  cost_types: [],
  lookback_days: 2,
  activity: "Expenses",
  billable: true,
  attachments: true,
  page_size: 1000,
};

/**
 * `vat_zones = { domestic = 1, eu = 2, abroad = 3, GB = 3 }`: zone numbers per category and per country
 * (ISO code, wins over the category). Categories left out are found by name in the agreement's /vat-zones.
 */
const vatZonesSchema = () =>
  z
    .record(z.string(), z.number().int().positive())
    .superRefine((v, ctx) => {
      for (const key of Object.keys(v)) {
        if (!/^(domestic|eu|abroad|[A-Z]{2})$/.test(key)) {
          ctx.addIssue({
            code: "custom",
            message: `unknown key "${key}": use domestic, eu, abroad or a 2-letter country code such as DE`,
            path: [key],
          });
        }
      }
    })
    .transform((v): { domestic?: number; eu?: number; abroad?: number; countries: Record<string, number> } => {
      const { domestic, eu, abroad, ...countries } = v;
      return { domestic, eu, abroad, countries };
    });

/**
 * `product_groups_by_vat_rate = { "25" = 1, "0" = 2 }`: the product group for products at each VAT rate (percent, as the
 * PSA's vatRate; quote a rate with decimals: "12.5"). A rate not named, and a product without a rate, go into product_group.
 */
const groupsByVatRateSchema = () =>
  z
    .record(z.string(), z.number().int().positive())
    .superRefine((v, ctx) => {
      const seen = new Set<number>();
      for (const key of Object.keys(v)) {
        if (seen.has(Number(key))) ctx.addIssue({ code: "custom", message: `the rate "${key}" is named twice`, path: [key] });
        seen.add(Number(key));
        if (!/^\d{1,3}(\.\d{1,2})?$/.test(key.trim()) || Number(key) > 100) {
          ctx.addIssue({
            code: "custom",
            message: `"${key}" is not a VAT rate: use the rate in percent as the PSA sends it, e.g. { "25" = 1, "0" = 2, "12.5" = 3 }`,
            path: [key],
          });
        }
      }
    })
    .transform((v) => Object.entries(v).map(([rate, group]) => ({ rate: Number(rate), group })));

export const economicConfigSchema = () =>
  z.strictObject({
    rest_url: z.url().default("https://restapi.e-conomic.com"),
    projects_url: z.url().default("https://apis.e-conomic.com/projectsapi/v1.1.0"),
    app_secret_token: z.string().min(1, { error: "is required: the app's secret token (use ${ENV_VAR} to read it from the environment)" }),
    agreement_grant_token: z.string().min(1, { error: "is required: the customer's agreement grant token (use ${ENV_VAR})" }),
    customer_group: z.number().int().positive().default(1),
    /** Deprecated: the VAT zone for domestic customers (now `vat_zones.domestic`). */
    vat_zone: z.number().int().positive().optional(),
    vat_zones: vatZonesSchema().default({ countries: {} }),
    /** The agreement's own country (domestic VAT); default: from the agreement (GET /self), else DK. */
    home_country: z
      .string()
      .regex(/^[A-Z]{2}$/, { error: "must be a 2-letter ISO 3166 country code such as DK" })
      .optional(),
    payment_terms: z.number().int().positive().default(1),
    /**
     * Payment terms of type "dueDate" used for invoices, so they keep the PSA's due date. Default: the
     * agreement's first payment terms of that type; without any, e-conomic's payment_terms decide the due date.
     */
    due_date_payment_terms: z.number().int().positive().optional(),
    layout: z.number().int().positive().default(19),
    project_group: z.number().int().positive().default(1),
    /** Product group for new and updated products (and those at a rate product_groups_by_vat_rate does not name). */
    product_group: z.number().int().positive().default(1),
    product_groups_by_vat_rate: groupsByVatRateSchema().default([]),
    journal: z.number().int().positive().default(1),
    /** e-conomic products used for invoice lines by kind (VAT and accounts follow each product's group). */
    line_products: lineProductsSchema().default({ hours: "TIME", expenses: "EXPENSE", products: "PRODUCT" }),
    /** A line's vatCode that is not the VAT code its product group books needs action ("refuse"); "ignore" skips the comparison. */
    line_vat_code: lineFieldSetting(),
    /** A line's account that is not the sales account its product group books needs action ("refuse"); "ignore" skips the comparison. */
    line_account: lineFieldSetting(),
    attach_pdf: z.boolean().default(true),
    request_timeout_ms: z.number().int().min(100).max(600_000).default(30_000),
    /**
     * How long a write may still land at the target after it was sent (ms): a write answered after request_timeout_ms
     * is listened to this long, and a delivery whose push was cut short by a crash, a stop or a worker declared dead is
     * not tried again before this long after (so no second draft is made while the first is still on its way).
     */
    late_answer_wait_ms: z.number().int().min(1000).max(3_600_000).default(600_000),
    /** Client-side token bucket (e-conomic's own numbers are unpublished; fair use is 50,000 calls a day). */
    requests_per_second: z.number().min(0).default(10),
    burst: z.number().int().min(1).default(20),
    expenses: expensesSchema().default(EXPENSE_DEFAULTS),
  });
export const EconomicConfig = lazySchema(economicConfigSchema);
export type EconomicConfig = z.infer<typeof EconomicConfig>;
