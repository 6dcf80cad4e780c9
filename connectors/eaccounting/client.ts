// HTTP for eAccounting API v2: the bearer token from auth.ts (a 401 refreshes once), one token bucket per
// endpoint (the limit is 600 a minute per client and endpoint), a 429's wait read from Retry-After or else from
// "Try again in N seconds" in the message (eaccounting.md §4), the error envelope turned into Problems with
// plain-language hints (§11), and Meta/Data list reads with an optional $filter that falls back to reading the
// list whole when the server refuses the filter (6000: filter support is unverified).
import type { Problem } from "../../agent/problem.ts";
import { HttpClient, PauseGate, TargetError, TokenBucket, type HttpResponse, type RequestOptions } from "../http.ts";
import type { OAuthTokens } from "./auth.ts";

export type Row = Record<string, any>;

/** ErrorCode → name and what a person does about it (eaccounting.md §11). */
export const ERRORS: Record<number, { name: string; hint: string }> = {
  2000: {
    name: "DataModelValidationError",
    hint: "A field is missing, too long or badly formatted (the message names it). Fix the record in the PSA; kontobro sends it again by itself.",
  },
  3000: {
    name: "ResourceNotFound",
    hint: "Something the record refers to (customer, article, cost-centre item, terms of payment) does not exist in eAccounting. Run `kontobro check`; kontobro sends master data first, so a person may have deleted it in eAccounting.",
  },
  3001: { name: "FiscalYearDoesNotExist", hint: "Create the fiscal year in eAccounting (Settings › Fiscal years), then press retry." },
  3002: {
    name: "AccountNotFound",
    hint: "The account does not exist in eAccounting's chart of accounts; create it there, then press retry.",
  },
  4000: {
    name: "Conflict",
    hint: "eAccounting already has a record with this number or name. The PSA's name and number must match the existing record exactly (kontobro then links to it), or be unique; fix it in the PSA or in eAccounting, then press retry.",
  },
  4001: { name: "CanNotBeDeleted", hint: "eAccounting refuses to delete this record." },
  4002: {
    name: "CanNotBeCreatedOrUpdated",
    hint: "The record cannot be created or changed, or the company lacks the module; check the company's eAccounting edition.",
  },
  4003: {
    name: "StartupGuideNotCompleted",
    hint: "Finish the start-up guide in eAccounting (log in to eAccounting as the company's administrator), then run `kontobro check`.",
  },
  4004: {
    name: "CompanyNotActive",
    hint: "The company is not active in eAccounting; activate the subscription, then run `kontobro check`.",
  },
  4005: { name: "NotAuthorized", hint: "kontobro's authorisation was refused; run `kontobro connect` for this target." },
  4006: {
    name: "NoAccessToScopes",
    hint: "The app was not granted the permissions it needs. Run `kontobro connect` and accept every permission asked for (the user must have access to sales, accounting and purchasing in eAccounting).",
  },
  4009: {
    name: "NoAccessDueToProductVariant",
    hint: "The company's eAccounting edition does not include this function; upgrade the edition or switch the function off in kontobro.toml.",
  },
  4010: {
    name: "TooManyRequests",
    hint: "eAccounting allows 600 calls a minute per endpoint; kontobro waits the time it states and goes on.",
  },
  4011: {
    name: "NoAccessForAuthenticatedUser",
    hint: "The user who connected kontobro has no access to this company; run `kontobro connect` as a user of the company.",
  },
  4012: {
    name: "LicenceAgreementNotAccepted",
    hint: "Accept the licence agreement in eAccounting (log in as the company's administrator), then run `kontobro check`.",
  },
  4013: {
    name: "CannotBookkeepInvoice",
    hint: "The invoice date is in a locked period or year in eAccounting; open the period there or date the invoice later.",
  },
  4014: { name: "AutoInvoice", hint: 'AutoInvoice needs a reference or address data (Norway: "your reference"); fill it in the PSA.' },
  4015: { name: "AutoInvoice", hint: 'AutoInvoice needs a reference or address data (Norway: "your reference"); fill it in the PSA.' },
  4017: { name: "AutoInvoice", hint: 'AutoInvoice needs a reference or address data (Norway: "your reference"); fill it in the PSA.' },
  4019: {
    name: "NoPermissionForReadonlyUser",
    hint: "The user who connected kontobro is read-only in eAccounting. Give the user write access, or run `kontobro connect` as another user.",
  },
  4024: {
    name: "SalesAccountNumberMissing",
    hint: "The article's account coding has no sales account. In eAccounting open the article (Sales › Articles) and choose a coding with a sales account, then press retry.",
  },
  4025: {
    name: "InvalidVatNumber",
    hint: "eAccounting checks VAT numbers against VIES (2-letter country code and 8-12 digits). Correct the customer's VAT number in the PSA.",
  },
  4026: { name: "VoucherDateInLockedPeriod", hint: "The date is in a locked period in eAccounting; open the period or change the date." },
  4027: {
    name: "ReversedVatZero",
    hint: "Reverse-charge VAT must be zero on this document; check the customer's VAT settings in eAccounting.",
  },
  4032: { name: "SupplierInvoiceDoesntBalance", hint: "The supplier invoice's rows do not add up." },
  4034: {
    name: "NotAllowedWithSandboxClient",
    hint: "A sandbox app was used against production (or the other way round): set api_url and identity_url to the environment of the app's client_id.",
  },
  4038: { name: "VoucherDateInLockedYear", hint: "The date is in a locked fiscal year in eAccounting." },
  5000: {
    name: "InternalServerError",
    hint: "eAccounting failed internally; kontobro retries by itself and looks the record up first, so nothing is created twice.",
  },
  5001: { name: "DependencyTimeout", hint: "An eAccounting service timed out; kontobro retries by itself." },
  5005: { name: "ProjectEnded", hint: "The project is finished in eAccounting; reopen it there." },
  5006: {
    name: "InactiveCostCenter",
    hint: "The project's cost-centre item is inactive in eAccounting. Reopen the project in the PSA (kontobro then activates the item), or activate it in eAccounting (Settings › Cost centres).",
  },
  5007: { name: "ItemToAttachNotFound", hint: "The file to attach was not found." },
  6000: {
    name: "QueryParameterError",
    hint: 'eAccounting refused a query filter; set filter = "client" in kontobro.toml and report it to kontobro support.',
  },
  6001: {
    name: "InvalidInput",
    hint: 'eAccounting refused a date or value in a query; set filter_date_literal (bare or quoted) in kontobro.toml, or filter = "client".',
  },
};

/** Onboarding and access problems: the company or the user, not the record. */
export const ACCESS_CODES = new Set([4003, 4004, 4005, 4006, 4009, 4011, 4012, 4019, 4034]);

export function describeEaccountingError(status: number, body: unknown, method: string, path: string): Problem {
  const b = body && typeof body === "object" ? (body as Row) : {};
  const code = typeof b.ErrorCode === "number" ? b.ErrorCode : Number(b.ErrorCode) || undefined;
  const text = typeof b.DeveloperErrorMessage === "string" ? b.DeveloperErrorMessage : typeof body === "string" ? body.slice(0, 300) : "";
  const known = code ? ERRORS[code] : undefined;
  const field = /^(?:Rows\[\d+\]\.)?([A-Z][A-Za-z0-9]+): /.exec(text)?.[1];
  // eAccounting's own names (CostCenterItemAlreadyExists) lead the message when it has them.
  const named = /^([A-Z][A-Za-z]+(?:AlreadyExists|Missing|Ended|Exists)):/.exec(text)?.[1];
  const hint =
    known?.hint ??
    (status === 401 ? "kontobro's authorisation was refused; run `kontobro connect` for this target." : undefined) ??
    (status === 409
      ? "eAccounting refused this because of the state of a record it uses (e.g. an inactivated article): see the message."
      : undefined);
  return {
    code: `eaccounting.${named ?? known?.name ?? `http_${status}`}`,
    message: `eAccounting refused ${method} ${path}${code ? ` (${code}${known ? ` ${known.name}` : ""})` : ""}: ${text || `HTTP ${status}`}`,
    ...(hint ? { hint } : {}),
    ...(field ? { field } : {}),
  };
}

/** The wait a 429 asks for: Retry-After, else "Try again in N seconds" in the message. */
export function retryAfterOf(e: TargetError): number | undefined {
  return e.retryAfterMs ?? waitInMessage(e.message);
}

/** "Try again in N seconds" in an error message (eaccounting.md §4), in ms. */
export function waitInMessage(message: string): number | undefined {
  const m = /try again in (\d+) seconds?/i.exec(message);
  return m ? Number(m[1]) * 1000 : undefined;
}

export interface ClientOptions {
  apiUrl: string;
  timeoutMs: number;
  requestsPerSecond: number;
  burst: number;
  tokens: OAuthTokens;
  filter: "server" | "client";
  dateLiteral: "bare" | "quoted";
  pageSize: number;
}

export interface ListQuery {
  /** The server-side $filter (used in filter = "server" mode). */
  filter?: string;
  /** The same condition, checked here on every row (always applied, so both modes answer alike). */
  where?: (row: Row) => boolean;
}

export interface Page {
  rows: Row[];
  page: number;
  pages: number;
  /** Meta.TotalNumberOfResults: how many rows the whole list has (all pages, as the server filtered them). */
  total: number | null;
  serverTime: string | null;
}

export class EaccountingClient {
  readonly http: HttpClient;
  readonly gate = new PauseGate();
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly api: string;
  /** Set when the server refused a $filter (6000): from then on lists are filtered here. */
  private serverFilter: boolean;

  constructor(private readonly o: ClientOptions) {
    this.api = o.apiUrl.replace(/\/+$/, "");
    this.serverFilter = o.filter === "server";
    this.http = new HttpClient({
      baseHeaders: () => ({}),
      timeoutMs: o.timeoutMs,
      targetTitle: "eAccounting",
      gate: this.gate,
      describeError: (res: HttpResponse, method, url) => describeEaccountingError(res.status, res.body, method, new URL(url).pathname),
    });
  }

  /** A date for a $filter, as filter_date_literal says (eAccounting's literal syntax is unverified). */
  date(iso: string): string {
    return this.o.dateLiteral === "quoted" ? `'${iso}'` : iso;
  }

  async request(method: string, path: string, options: RequestOptions = {}): Promise<HttpResponse> {
    const endpoint = path.split(/[/?]/)[1] ?? "";
    if (this.o.requestsPerSecond > 0) {
      let bucket = this.buckets.get(endpoint);
      if (!bucket) this.buckets.set(endpoint, (bucket = new TokenBucket(this.o.requestsPerSecond, this.o.burst)));
      await bucket.take();
    }
    for (let attempt = 1; ; attempt++) {
      const token = await this.o.tokens.get();
      try {
        return await this.http.request(method, `${this.api}${path}`, {
          ...options,
          headers: { authorization: `Bearer ${token}`, ...options.headers },
        });
      } catch (e) {
        if (!(e instanceof TargetError)) throw e;
        // An expired or revoked access token: refresh once (the refresh says "reconnect" if that is refused).
        if (e.status === 401 && attempt === 1) {
          await this.o.tokens.invalidate(token);
          continue;
        }
        if (e.status === 429) {
          const wait = retryAfterOf(e);
          if (wait !== undefined) this.gate.pause(wait);
          throw new TargetError(e.kind, { ...e, message: e.message, code: e.code, retryAfterMs: wait, status: 429 });
        }
        throw e;
      }
    }
  }

  get = (path: string, options?: RequestOptions) => this.request("GET", path, options).then((r) => r.body as Row);
  post = (path: string, json: unknown) => this.request("POST", path, { json }).then((r) => r.body as Row);
  put = (path: string, json: unknown) => this.request("PUT", path, { json }).then((r) => r.body as Row);

  /** One page of a list. */
  async page(resource: string, q: ListQuery, page: number, pageSize = this.o.pageSize): Promise<Page> {
    const useFilter = this.serverFilter && q.filter;
    const params = new URLSearchParams({ $page: String(page), $pagesize: String(pageSize) });
    if (useFilter) params.set("$filter", q.filter!);
    let body: Row;
    try {
      body = await this.get(`/${resource}?${params.toString().replace(/%24/g, "$")}`);
    } catch (e) {
      if (useFilter && e instanceof TargetError && /QueryParameterError|InvalidInput/.test(e.code)) {
        this.serverFilter = false;
        return this.page(resource, q, page, pageSize);
      }
      throw e;
    }
    const meta = body?.Meta,
      data = body?.Data;
    if (!Array.isArray(data) || !meta || typeof meta !== "object") {
      throw new TargetError("retryable", {
        code: "eaccounting.unexpected_answer",
        message: `eAccounting answered GET /${resource} without the Meta/Data list envelope.`,
        hint: "Check api_url in kontobro.toml (it ends in /v2).",
      });
    }
    const rows = q.where ? data.filter(q.where) : data;
    return {
      rows,
      page,
      pages: Number(meta.TotalNumberOfPages ?? 1),
      total: Number.isFinite(Number(meta.TotalNumberOfResults)) ? Number(meta.TotalNumberOfResults) : null,
      serverTime: typeof meta.ServerTimeUtc === "string" ? meta.ServerTimeUtc : null,
    };
  }

  /** Every row of a list (all pages). */
  async all(resource: string, q: ListQuery = {}): Promise<Row[]> {
    const out: Row[] = [];
    for (let p = 1; ; p++) {
      const page = await this.page(resource, q, p);
      out.push(...page.rows);
      if (p >= page.pages) return out;
    }
  }

  /** Quotes a string for a $filter ('O''Brien'). */
  static lit(v: string): string {
    return `'${v.replace(/'/g, "''")}'`;
  }
}
