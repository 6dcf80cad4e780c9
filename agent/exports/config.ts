// The [exports] section of kontobro.toml: company details, posting rules (how an invoice becomes voucher
// rows, shared by SIE 4 and the "Invoices grouped by account" templates), SIE 4 file options, and an
// optional folder every file is also written to.
import { z } from "zod";
import { lazySchema } from "../lazy-schema.ts";
import { DEFAULT_VAT_CODES, sieInvoiceConfigSchema, type SieInvoiceConfig } from "../../formats/sie4/invoices.ts";

const accountNoSchema = () => z.string().regex(/^\d+$/, { error: "must be an account number (digits only), e.g. 1510" });
/** Financial years start on the first of a month. */
const monthDaySchema = () =>
  z.string().regex(/^(0[1-9]|1[0-2])-01$/, { error: 'must be the first day of a month, like "01-01" or "07-01"' });

export const postingConfigSchema = () =>
  z.strictObject({
    receivable_account: accountNoSchema().default("1510"),
    revenue_accounts: z
      .strictObject({ hours: accountNoSchema().optional(), expenses: accountNoSchema().optional(), products: accountNoSchema().optional() })
      .default({}),
    default_vat_code: z.string().min(1).default("25"),
    vat_codes: z
      .record(
        z.string(),
        z.strictObject({
          rate: z.number().min(0).max(100),
          account: accountNoSchema().optional(),
          revenue_accounts: z
            .strictObject({
              hours: accountNoSchema().optional(),
              expenses: accountNoSchema().optional(),
              products: accountNoSchema().optional(),
            })
            .optional(),
        }),
      )
      .optional(),
    rounding_account: accountNoSchema().default("3740"),
    round_total: z.enum(["none", "krona"]).default("none"),
    revenue_detail: z.enum(["per_account", "per_line"]).default("per_account"),
    project_dimension: z.boolean().default(true),
    cost_centre: z.enum(["none", "fixed", "project_department"]).default("none"),
    cost_centre_id: z.string().min(1).optional(),
    customer_dimension: z.boolean().default(false),
    account_names: z.record(z.string(), z.string()).default({}),
  });
export const PostingConfig = lazySchema(postingConfigSchema);

export const sie4FileConfigSchema = () =>
  z.strictObject({
    series: z.string().max(20).default(""),
    voucher_number: z.enum(["none", "invoice_number"]).default("none"),
    line_ending: z.enum(["crlf", "lf"]).default("crlf"),
    ksumma: z.boolean().default(true),
  });
export const Sie4FileConfig = lazySchema(sie4FileConfigSchema);

export const exportsConfigSchema = () =>
  z
    .strictObject({
      /** Also write every file here (for the accounting system to pick up); files stay in the database too. */
      output_dir: z.string().min(1).optional(),
      company_name: z.string().min(1).optional(),
      org_number: z.string().min(1).optional(),
      /** First day of the financial year; SIE files and exports are split at its start. */
      fiscal_year_start: monthDaySchema().default("01-01"),
      currency: z
        .string()
        .regex(/^[A-Z]{3}$/, { error: "must be a 3-letter ISO 4217 code such as SEK or NOK" })
        .default("SEK"),
      posting: postingConfigSchema().prefault({}),
      sie4: sie4FileConfigSchema().prefault({}),
    })
    .superRefine((c, ctx) => {
      if (c.posting.cost_centre === "fixed" && !c.posting.cost_centre_id) {
        ctx.addIssue({
          code: "custom",
          path: ["posting", "cost_centre_id"],
          message: 'is required when cost_centre = "fixed" (the cost centre written on every revenue row)',
        });
      }
    });
export const ExportsConfig = lazySchema(exportsConfigSchema);
export type ExportsConfig = z.infer<typeof ExportsConfig>;

/** The settings the export service works with, in the SIE library's terms. */
export interface ExportSettings {
  outputDir?: string;
  companyName?: string;
  orgNumber?: string;
  fiscalYearStart: string;
  posting: SieInvoiceConfig;
  sie4: { lineEnding: "crlf" | "lf"; ksumma: boolean };
}

/** What the HTTP layer gets: the settings, and whether the status page may hand out files (loopback only). */
export interface ExportsRuntime {
  settings: ExportSettings;
  /** The status page has no login: it offers downloads and changes only when kontobro listens on loopback. */
  uiActions: boolean;
  /** The clock of the output folder's delivery claim: the database's on a hosted worker (Worker.now); Date.now when absent. */
  clock?: () => number;
}

export function exportSettings(c: ExportsConfig = exportsConfigSchema().parse({})): ExportSettings {
  const p = c.posting;
  const posting = sieInvoiceConfigSchema().parse({
    receivableAccount: p.receivable_account,
    revenueAccounts: Object.fromEntries(Object.entries(p.revenue_accounts).filter(([, v]) => v !== undefined)),
    vatCodes: p.vat_codes
      ? Object.fromEntries(
          Object.entries(p.vat_codes).map(([code, v]) => [code, { rate: v.rate, account: v.account, revenueAccounts: v.revenue_accounts }]),
        )
      : DEFAULT_VAT_CODES,
    defaultVatCode: p.default_vat_code,
    roundingAccount: p.rounding_account,
    roundTotal: p.round_total,
    series: c.sie4.series,
    voucherNumber: c.sie4.voucher_number,
    revenueDetail: p.revenue_detail,
    projectDimension: p.project_dimension,
    costCentre: p.cost_centre === "fixed" ? { source: "fixed", id: p.cost_centre_id! } : { source: p.cost_centre },
    customerDimension: p.customer_dimension,
    currency: c.currency,
    accountNames: p.account_names,
  });
  return {
    outputDir: c.output_dir,
    companyName: c.company_name,
    orgNumber: c.org_number,
    fiscalYearStart: c.fiscal_year_start,
    posting,
    sie4: { lineEnding: c.sie4.line_ending, ksumma: c.sie4.ksumma },
  };
}

/** The financial year containing `date` (ISO), for a year starting on `start` ("MM-DD"). */
export function fiscalYearOf(date: string, start: string): { start: string; end: string } {
  const year = Number(date.slice(0, 4));
  const first = date.slice(5) >= start ? year : year - 1;
  const begin = `${first}-${start}`;
  const next = new Date(Date.UTC(first + 1, Number(start.slice(0, 2)) - 1, Number(start.slice(3))));
  const end = new Date(next.getTime() - 86_400_000).toISOString().slice(0, 10);
  return { start: begin, end };
}
