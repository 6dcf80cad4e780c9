// The [[targets]] table for kind = "unimicro" in kontobro.toml, and the settings the connector derives from it
// (brand defaults applied). Key names follow the other connectors for the same ideas (request_timeout_ms,
// requests_per_second, burst, accounts / vat_codes per line kind, attach_pdf); the old names timeout_ms and
// rate_per_second still work (index.ts renames them, with a warning).
import { z } from "zod";
import { lazySchema } from "../../agent/lazy-schema.ts";
import type { LineKind } from "../../agent/model.ts";
import type { LineSetup } from "./map.ts";

/**
 * Default hosts per brand. From unimicro.md §1; which host serves the API for DnB is **unverified**
 * (the app host is listed, a dev proxy points at api.dnbregnskap.dnb.no), and no DnB login host is known,
 * so identity_url must be set for DnB. Uni Economy's API host is assumed to be the Unimicro app host.
 */
export const PLATFORMS = {
  "uni-economy": { title: "Uni Economy", baseUrl: "https://app.unimicro.no", identityUrl: "https://login.unieconomy.no/connect/token" },
  "dnb-regnskap": { title: "DnB Regnskap", baseUrl: "https://dnbregnskap.dnb.no", identityUrl: undefined },
  "sparebank1-regnskap": {
    title: "SpareBank 1 Regnskap",
    baseUrl: "https://regnskap.sb1.no",
    identityUrl: "https://login.regnskap.sparebank1.no/connect/token",
  },
  custom: { title: "Uni Micro", baseUrl: undefined, identityUrl: undefined },
} as const satisfies Record<string, { title: string; baseUrl?: string; identityUrl?: string }>;
export type Platform = keyof typeof PLATFORMS;

/** Moment's KB states 100000–199999 for all three brands; whether the platform enforces it is unverified. */
export const DEFAULT_CUSTOMER_RANGE: [number, number] = [100000, 199999];

const perKind = <T extends z.ZodType>(t: T) =>
  z.strictObject({ hours: t.optional(), expenses: t.optional(), products: t.optional() }).default({});
const vatCodeSchema = () => z.union([z.string().trim().min(1), z.number().int().nonnegative()]).transform(String);

export const uniMicroConfigSchema = () =>
  z
    .strictObject({
      platform: z.enum(["uni-economy", "dnb-regnskap", "sparebank1-regnskap", "custom"]).default("uni-economy"),
      /** API host; required for "custom", overrides the brand default otherwise (test environment, sandbox). */
      base_url: z.url().optional(),
      /** The token endpoint, e.g. https://login.unieconomy.no/connect/token. */
      identity_url: z.url().optional(),
      /** Files service host for PDF upload; read from {base_url}/api/endpoints when absent. */
      files_url: z.url().optional(),
      client_id: z.string().trim().min(1),
      /** Private key of the Unimicro certificate: PEM text or path to a PEM file. */
      private_key: z.string().trim().min(1),
      /** The certificate itself (PEM text or path), sent as x5c in the assertion header. */
      certificate: z.string().trim().min(1).optional(),
      scope: z.string().default("AppFramework"),
      company_key: z.string().trim().min(1),
      /** Sales account number per line kind (the same numbers as in the PSA). */
      accounts: perKind(z.number().int().positive()),
      /** VAT code per line kind, e.g. "3" (25 % output VAT). */
      vat_codes: perKind(vatCodeSchema()),
      /** Product per line kind, by internal ID or by product number (PartName). */
      product_ids: perKind(z.number().int().positive()),
      product_numbers: perKind(z.union([z.string().trim().min(1), z.number().int()]).transform(String)),
      /** [min, max] allowed customer numbers, or false for no range. Default: 100000–199999 except for "custom". */
      customer_number_range: z.union([z.tuple([z.number().int().positive(), z.number().int().positive()]), z.literal(false)]).optional(),
      /** The company's own currency; other currencies get a CurrencyCodeID. */
      company_currency: z
        .string()
        .regex(/^[A-Z]{3}$/)
        .default("NOK"),
      /**
       * Which item field carries a price in an invoice's own currency when it is not company_currency: unverified
       * (the platform has PriceExVat and PriceExVatCurrency), so "unset" sends no such invoice until it is chosen.
       */
      currency_price_field: z.enum(["unset", "PriceExVat", "PriceExVatCurrency"]).default("unset"),
      /** Upload the invoice PDF to the Files service. Off by default: Moment's KB says Uni Economy cannot receive attachments. */
      attach_pdf: z.boolean().default(false),
      /** Milliseconds before a request is given up (was timeout_ms). */
      request_timeout_ms: z.number().int().min(1000).max(300_000).default(30_000),
      /**
       * How long a write may still land at the target after it was sent (ms): a write answered after request_timeout_ms
       * is listened to this long, and a delivery whose push was cut short by a crash, a stop or a worker declared dead is
       * not tried again before this long after (so no second draft is made while the first is still on its way).
       */
      late_answer_wait_ms: z.number().int().min(1000).max(3_600_000).default(600_000),
      /** Client-side token bucket (was rate_per_second): no limits are documented; stay polite. 0 disables it. */
      requests_per_second: z.number().min(0).default(5),
      burst: z.number().int().min(1).default(10),
    })
    .superRefine((c, ctx) => {
      const p = PLATFORMS[c.platform];
      if (!c.base_url && !p.baseUrl)
        ctx.addIssue({
          code: "custom",
          path: ["base_url"],
          message: `base_url is required for platform "${c.platform}" (the API host, e.g. https://test.unimicro.no)`,
        });
      if (!c.identity_url && !p.identityUrl)
        ctx.addIssue({
          code: "custom",
          path: ["identity_url"],
          message: `identity_url is required for platform "${c.platform}" (the token endpoint, …/connect/token)`,
        });
      const r = c.customer_number_range;
      if (r && r[0] > r[1])
        ctx.addIssue({
          code: "custom",
          path: ["customer_number_range"],
          message: "customer_number_range must be [min, max] with min ≤ max",
        });
    });
export const UniMicroConfig = lazySchema(uniMicroConfigSchema);
export type UniMicroConfig = z.output<typeof UniMicroConfig>;

/** Everything the connector needs, with the brand defaults applied. */
export interface UniMicroSettings {
  platform: Platform;
  title: string;
  baseUrl: string;
  identityUrl: string;
  filesUrl?: string;
  clientId: string;
  privateKey: string;
  certificate?: string;
  scope: string;
  companyKey: string;
  lines: Partial<Record<LineKind, LineSetup>>;
  customerNumberRange: [number, number] | null;
  companyCurrency: string;
  currencyPriceField: CurrencyPriceField;
  attachPdf: boolean;
  timeoutMs: number;
  requestsPerSecond: number;
  burst: number;
}

export type CurrencyPriceField = UniMicroConfig["currency_price_field"];

export function settingsFrom(c: UniMicroConfig): UniMicroSettings {
  const p = PLATFORMS[c.platform];
  const lines: Partial<Record<LineKind, LineSetup>> = {};
  for (const kind of ["hours", "expenses", "products"] as const) {
    lines[kind] = {
      accountNumber: c.accounts[kind],
      vatCode: c.vat_codes[kind],
      productId: c.product_ids[kind],
      productNumber: c.product_numbers[kind],
    };
  }
  return {
    platform: c.platform,
    title: p.title,
    baseUrl: (c.base_url ?? p.baseUrl!).replace(/\/+$/, ""),
    identityUrl: c.identity_url ?? p.identityUrl!,
    filesUrl: c.files_url?.replace(/\/+$/, ""),
    clientId: c.client_id,
    privateKey: c.private_key,
    certificate: c.certificate,
    scope: c.scope,
    companyKey: c.company_key,
    lines,
    customerNumberRange:
      c.customer_number_range === false ? null : (c.customer_number_range ?? (c.platform === "custom" ? null : DEFAULT_CUSTOMER_RANGE)),
    companyCurrency: c.company_currency,
    currencyPriceField: c.currency_price_field,
    attachPdf: c.attach_pdf,
    timeoutMs: c.request_timeout_ms,
    requestsPerSecond: c.requests_per_second,
    burst: c.burst,
  };
}
