// The [[targets]] table for kind = "eaccounting" in kontobro.toml. Key names follow the other connectors for the
// same ideas (api_url, request_timeout_ms, requests_per_second, burst, reference_field, [targets.expenses]
// activity / billable / page_size, start_date). `masters` (who is master of customers and products) is the core's
// key, read by agent/config.ts. Every point the notes leave unverified is a named setting here (see README).
import { z } from "zod";
import { lazySchema } from "../../agent/lazy-schema.ts";
import { vatPercent } from "../../agent/model.ts";
import { lineFieldSetting } from "../line-booking.ts";

const isoDateSchema = () => z.iso.date({ error: "must be a date like 2026-01-01" });
const codeSchema = () => z.string().trim().min(1).max(40);

const unitsSchema = () =>
  z.strictObject({
    /** eAccounting's unit (codeSchema(), abbreviation or name) for work types and hour-based products. */
    hours: codeSchema().default("h"),
    /** For mileage. */
    kilometres: codeSchema().default("km"),
    /** For everything else, unless the PSA's unit names one eAccounting has. */
    pieces: codeSchema().default("st"),
  });
export const UNIT_DEFAULTS = { hours: "h", kilometres: "km", pieces: "st" };

/** Supplier invoice rows with a project come to the PSA as expenses (issue 13, item 7). */
const expensesSchema = () =>
  z.strictObject({
    activity: z.string().trim().min(1).max(100).default("Expenses"),
    billable: z.boolean().default(true),
    /** The invoice-date window each pull reads: this period and `lookback_periods` before it ("this week" is read again and again). */
    period: z.enum(["day", "week", "month"]).default("week"),
    lookback_periods: z.number().int().min(0).max(52).default(1),
    /** Nothing dated before this is imported. */
    start_date: isoDateSchema().optional(),
    page_size: z.number().int().min(1).max(1000).default(100),
  });
export const EXPENSE_DEFAULTS = { activity: "Expenses", billable: true, period: "week" as const, lookback_periods: 1, page_size: 100 };

export const eaccountingConfigSchema = () =>
  z.strictObject({
    /** The API base with its version: /customers, /articles, … are under it. */
    api_url: z.url().default("https://eaccountingapi.vismaonline.com/v2"),
    /** The Visma Online identity server: /authorize and /token under it (the authorize path is inferred, §1). */
    identity_url: z.url().default("https://identity.vismaonline.com/connect"),
    client_id: z.string().trim().min(1, { error: "is required: the app's client id from the Visma Developer Portal" }),
    client_secret: z.string().min(1, { error: "is required (use ${ENV_VAR} to read it from the environment)" }),
    /** The redirect URI registered for the app; `kontobro connect` listens there when it is a loopback address. */
    redirect_uri: z.url().default("http://localhost:8790/callback"),
    /** ea:api and offline_access are required; ea:sales (customers, articles, invoices), ea:accounting (cost centres), ea:purchase (supplier invoices). */
    scopes: z.string().trim().default("ea:api offline_access ea:sales ea:accounting ea:purchase"),
    /** How the token request names the app: HTTP Basic (inferred, eaccounting.md §2) or client_id/client_secret form fields. */
    token_auth: z.enum(["basic", "form"]).default("basic"),
    /** A refresh token obtained elsewhere: used only while `kontobro connect` has stored none for this identity server. */
    refresh_token: z.string().min(1).optional(),
    /** The article invoice lines without a product use (its number); `kontobro check` verifies it. */
    default_article: codeSchema().optional(),
    /** A line's vatCode: eAccounting books the article's coding VAT, so a line carrying one needs action ("refuse") unless "ignore". */
    line_vat_code: lineFieldSetting(),
    /** A line's account: eAccounting books the article's coding sales account, so a line carrying one needs action ("refuse") unless "ignore". */
    line_account: lineFieldSetting(),
    /** The cost centre (1-3) whose items are the PSA's projects; invoice and supplier rows use CostCenterItemId<n>. */
    cost_center: z.number().int().min(1).max(3).default(1),
    /**
     * The draft field that carries "kontobro:<PSA id>" for lookups. With OurReference or YourReference, the PSA's own
     * reference for that field is not sent (the push's note names it); the other keeps its field.
     */
    reference_field: z
      .enum(["ElectronicReference", "OurReference", "YourReference", "BuyersOrderReference"])
      .default("ElectronicReference"),
    /** Payment terms (days, type Normal) of customers the PSA sends without any. */
    payment_terms_days: z.number().int().min(0).max(365).default(30),
    /** The company's standard VAT rate: articles the PSA sends without a rate, and supplier costs. */
    vat_rate: vatPercent().default(25),
    /** The article account coding of new articles (id or name); default: the services coding at the article's VAT rate. */
    article_coding: z.string().trim().min(1).optional(),
    units: unitsSchema().default(UNIT_DEFAULTS),
    /** Credit notes are not transferred (needs action with a hint) unless "draft": a credit invoice draft. */
    credit_notes: z.enum(["needs_action", "draft"]).default("needs_action"),
    /** Whether the API's $filter is used ("server") or lists are read whole and filtered here ("client"): filter support is unverified. */
    filter: z.enum(["server", "client"]).default("server"),
    /** How a date is written in a $filter: bare (OData v4) or quoted (unverified which eAccounting takes). */
    filter_date_literal: z.enum(["bare", "quoted"]).default("bare"),
    /** $pagesize of list reads (the maximum is unverified). */
    page_size: z.number().int().min(1).max(1000).default(100),
    /** Modified-since pulls start this many seconds before the last watermark (server clock; same-second changes are not lost). */
    overlap_seconds: z.number().int().min(0).max(86_400).default(300),
    /** Invoices older than this are not looked for by the status pull (first run: 60 days back). */
    invoices_start_date: isoDateSchema().optional(),
    request_timeout_ms: z.number().int().min(100).max(600_000).default(30_000),
    /**
     * How long a write may still land at the target after it was sent (ms): a write answered after request_timeout_ms
     * is listened to this long, and a delivery whose push was cut short by a crash, a stop or a worker declared dead is
     * not tried again before this long after (so no second draft is made while the first is still on its way).
     */
    late_answer_wait_ms: z.number().int().min(1000).max(3_600_000).default(600_000),
    /** Client-side token bucket per endpoint; eAccounting allows 600 a minute per client and endpoint (0 = none). */
    requests_per_second: z.number().min(0).default(8),
    burst: z.number().int().min(1).default(20),
    expenses: expensesSchema().default(EXPENSE_DEFAULTS),
  });
export const EaccountingConfig = lazySchema(eaccountingConfigSchema);
export type EaccountingConfig = z.output<typeof EaccountingConfig>;

export const tokenUrl = (cfg: Pick<EaccountingConfig, "identity_url">) => `${cfg.identity_url.replace(/\/+$/, "")}/token`;
export const authorizeUrl = (cfg: Pick<EaccountingConfig, "identity_url">) => `${cfg.identity_url.replace(/\/+$/, "")}/authorize`;
export const REQUIRED_SCOPES = ["ea:api", "offline_access"];
