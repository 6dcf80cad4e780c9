// The [[targets]] table for kind = "economic" in kontobro.toml.
import { z } from "zod";

const LineProducts = z.strictObject({
  hours: z.string().min(1).max(25).default("TIME"),
  expenses: z.string().min(1).max(25).default("EXPENSE"),
  products: z.string().min(1).max(25).default("PRODUCT"),
});

export const EconomicConfig = z.strictObject({
  rest_url: z.url().default("https://restapi.e-conomic.com"),
  projects_url: z.url().default("https://apis.e-conomic.com/projectsapi/v1.1.0"),
  app_secret_token: z.string().min(1, { error: "is required: the app's secret token (use ${ENV_VAR} to read it from the environment)" }),
  agreement_grant_token: z.string().min(1, { error: "is required: the customer's agreement grant token (use ${ENV_VAR})" }),
  customer_group: z.number().int().positive().default(1),
  vat_zone: z.number().int().positive().default(1),
  payment_terms: z.number().int().positive().default(1),
  /** Optional payment terms of type "dueDate": when set, invoices keep the PSA's due date. */
  due_date_payment_terms: z.number().int().positive().optional(),
  layout: z.number().int().positive().default(19),
  project_group: z.number().int().positive().default(1),
  product_group: z.number().int().positive().default(1),
  journal: z.number().int().positive().default(1),
  /** e-conomic products used for invoice lines by kind (VAT and accounts follow each product's group). */
  line_products: LineProducts.default({ hours: "TIME", expenses: "EXPENSE", products: "PRODUCT" }),
  attach_pdf: z.boolean().default(true),
  request_timeout_ms: z.number().int().min(100).max(600_000).default(30_000),
  /** Client-side token bucket (e-conomic's own numbers are unpublished; fair use is 50,000 calls a day). */
  requests_per_second: z.number().min(0).default(10),
  burst: z.number().int().min(1).default(20),
});
export type EconomicConfig = z.infer<typeof EconomicConfig>;
