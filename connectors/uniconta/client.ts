// HTTP to Uniconta: the REST-like CRUD routes (/api/Entities/…) and OData queries (/odata/<company>/…) with
// Basic auth as "00<company>/<user>" (uniconta.md §1), and the customer's .NET gateway for posting
// (rmja/unicontarest: POST /Companies/{id}/Invoice/DebtorOrders/{order}). Every call is counted against the
// daily budget before it is sent. Uniconta's ErrorCodes names become Problems with hints.
import type { Problem } from "../../agent/problem.ts";
import { HttpClient, TARGET_PAUSED, TargetError, TokenBucket, type HttpResponse, type RequestOptions } from "../http.ts";
import type { CallBudget } from "./budget.ts";

export type Row = Record<string, any>;

/** Failures that sent nothing. */
const NOT_SENT = new Set(["uniconta.call_budget_spent", TARGET_PAUSED, "unreachable"]);

/** The .NET ErrorCodes names of uniconta.md §10, and what each means for a push. */
const PERMANENT = new Set([
  "CouldNotFind",
  "KeyExists",
  "RecordExists",
  "FieldCannotBeBlank",
  "AccountIsMissing",
  "NoRights",
  "NoLinesFound",
  "ItemIsOnHold",
  "CreditLimitExceeded",
  "ErrorInJournal",
  "InvoiceNumberMissing",
  "CouldNotDeleteRecordThatIsReferred",
  "CannotDeleteRecord",
  "FileIsTooBig",
  "NoSubscription",
]);
const SERVER_SIDE = new Set(["Exception", "SQLException", "CouldNotSave", "CouldNotCreate", "NoSucces"]);
export const ERROR_CODES = [...PERMANENT, ...SERVER_SIDE];

const HINTS: Record<string, string> = {
  KeyExists:
    "A record with this key already exists in Uniconta. kontobro looks records up before creating them, so another system or a person made it; the PSA is master for numbers: renumber it in the PSA or remove the duplicate in Uniconta, then press retry.",
  RecordExists:
    "The record already exists in Uniconta (made by another system or a person). Remove the duplicate in Uniconta or renumber it in the PSA, then press retry.",
  CouldNotFind:
    "Something the record refers to does not exist in Uniconta (customer, project, customer group, project category, VAT code, payment terms or dimension value). Run `kontobro check`, create it in Uniconta or fix the setting in kontobro.toml, then press retry.",
  FieldCannotBeBlank:
    "Uniconta needs a value in the field named in the message. Fill it in the PSA (or set the default in kontobro.toml), then press retry.",
  AccountIsMissing:
    "A customer (debtor) or ledger account does not exist in Uniconta. Customers are sent before their invoices; for a ledger account: account numbers must be the same in the PSA and Uniconta (accounts in kontobro.toml). Fix it, then press retry.",
  NoRights:
    "The Uniconta server user has no rights for this in the company. In Uniconta, give the user access to the company (for a Univisor user the company needs the Integration or Automation package); then press retry.",
  NoLinesFound:
    "The order has no lines in Uniconta; kontobro sends them before posting. Press retry; if it happens again, look at the order in Uniconta (Debtor › Orders).",
  ItemIsOnHold:
    "An inventory item on the order is on hold in Uniconta. Release it there (Inventory › Items) or change items in kontobro.toml, then press retry.",
  CreditLimitExceeded: "The customer's credit limit in Uniconta (CreditMax) is exceeded. Raise it in Uniconta, then press retry.",
  ErrorInJournal: "Uniconta refused the posting journal. Open it in Uniconta to see which line is wrong, then press retry.",
  InvoiceNumberMissing:
    'The invoice number series is missing or used up: General Ledger › Maintenance › Voucher number series. Extend it (last number) and keep "next number" in step with the PSA, then press retry.',
  CouldNotDeleteRecordThatIsReferred: "The record is used by other records in Uniconta and cannot be deleted.",
  CannotDeleteRecord: "Uniconta does not allow this record to be deleted.",
  FileIsTooBig:
    "The PDF is larger than Uniconta accepts. Send a smaller PDF from the PSA, or set attach_pdf = false in kontobro.toml; then press retry.",
  NoSubscription:
    "The Uniconta subscription does not cover this (or the server user's daily call quota is used up). Check the company's packages and the server user's call quota in Uniconta.",
  Exception: "Uniconta had an internal error. kontobro retries by itself and looks the record up first, so nothing is created twice.",
  SQLException: "Uniconta had a database error. kontobro retries by itself and looks the record up first, so nothing is created twice.",
  CouldNotSave: "Uniconta could not save the record. kontobro retries by itself and looks it up first, so nothing is created twice.",
  CouldNotCreate: "Uniconta could not create the record. kontobro retries by itself and looks it up first, so nothing is created twice.",
};

/** The ErrorCodes name in an error body: a bare name (a gateway's `StatusCode(500, err)`), or a field of an object. */
export function errorCodeOf(body: unknown): string | undefined {
  if (typeof body === "string") {
    const t = body.trim().replace(/^"|"$/g, "");
    return ERROR_CODES.find((c) => c === t) ?? ERROR_CODES.find((c) => new RegExp(`\\b${c}\\b`).test(t));
  }
  if (body && typeof body === "object") {
    const b = body as Record<string, unknown>;
    for (const k of ["ErrorCode", "Error", "Err", "code", "errorCode"])
      if (typeof b[k] === "string" && ERROR_CODES.includes(b[k] as string)) return b[k] as string;
    return errorCodeOf(typeof b.Message === "string" ? b.Message : "");
  }
  return undefined;
}

export function describeUnicontaError(status: number, body: unknown, method: string, path: string): Problem {
  const code = errorCodeOf(body);
  const b = body && typeof body === "object" ? (body as Record<string, unknown>) : {};
  const text =
    typeof b.Message === "string" ? b.Message : typeof body === "string" && body && body !== code ? body.slice(0, 300) : undefined;
  const said = [code, text].filter(Boolean).join(": ") || `HTTP ${status}`;
  const hint =
    (code && HINTS[code]) ??
    (status === 401
      ? "Uniconta refused the login. Check username, password and company_id in kontobro.toml (the server user, and that it may use this company), then run `kontobro check`."
      : undefined) ??
    (status === 403
      ? "Uniconta (or the gateway) refused the login or the company. Check the server user's rights in the company and the gateway's affiliate key; then run `kontobro check`."
      : undefined);
  return {
    code: code ? `uniconta.${code}` : `uniconta.http_${status}`,
    message: `Uniconta refused ${method} ${path}: ${said}`,
    ...(hint ? { hint } : {}),
    ...(typeof b.Field === "string" ? { field: b.Field } : {}),
  };
}

/** Quote a value for an OData filter ('O''Brien'); numbers go bare. */
export const lit = (v: string | number) => (typeof v === "number" ? String(v) : `'${v.replace(/'/g, "''")}'`);

/** `field eq a or field eq b …` in groups of at most 40 (Uniconta's limit of ORs per predicate). */
export function orChunks(field: string, values: (string | number)[], size = 40): string[] {
  const out: string[] = [];
  for (let i = 0; i < values.length; i += size)
    out.push(
      `(${values
        .slice(i, i + size)
        .map((v) => `${field} eq ${lit(v)}`)
        .join(" or ")})`,
    );
  return out;
}

export interface ClientOptions {
  apiUrl: string;
  gatewayUrl?: string;
  companyId: number;
  username: string;
  password: string;
  timeoutMs: number;
  requestsPerSecond: number;
  burst: number;
  budget: CallBudget;
}

export interface InvoicePostingResult {
  Err: string;
  Header?: Row;
  ledgerRes?: Row;
}

export class UnicontaClient {
  readonly http: HttpClient;
  private readonly api: string;

  constructor(private readonly o: ClientOptions) {
    this.api = o.apiUrl.replace(/\/+$/, "");
    this.http = new HttpClient({
      baseHeaders: () => ({}),
      timeoutMs: o.timeoutMs,
      limiter: o.requestsPerSecond > 0 ? new TokenBucket(o.requestsPerSecond, o.burst) : undefined,
      targetTitle: "Uniconta",
      describeError: (res: HttpResponse, method, url) => describeUnicontaError(res.status, res.body, method, new URL(url).pathname),
    });
  }

  private basic(user: string): string {
    return `Basic ${Buffer.from(`${user}:${this.o.password}`).toString("base64")}`;
  }

  /** One counted call. `login`: "company" = 00<company>/<user> (OData), "user" = the plain user (company list, gateway). */
  async call(
    method: string,
    url: string,
    what: string,
    options: RequestOptions & { login?: "company" | "user"; weight?: number } = {},
  ): Promise<HttpResponse> {
    const { login = "company", weight = 1, ...rest } = options;
    // While the target asked us to wait the request is not sent (HttpClient throws), so it is not counted.
    if (this.http.gate.remainingMs() <= 0) this.o.budget.spend(weight, what);
    const user = login === "company" ? `00${this.o.companyId}/${this.o.username}` : this.o.username;
    try {
      return await this.http.request(method, url, { ...rest, headers: { authorization: this.basic(user), ...rest.headers } });
    } catch (e) {
      if (!(e instanceof TargetError)) throw e;
      // An ErrorCodes name that refuses the content is permanent even in a 500 (the gateway's way to answer).
      const code = e.code.replace(/^uniconta\./, "");
      if (PERMANENT.has(code) && e.kind !== "permanent") throw new TargetError("permanent", e);
      throw e;
    }
  }

  // ---- CRUD (/api/Entities) -------------------------------------------------------------------------------

  /** Every entity of `type` whose `field` equals `value` (an empty list when none). */
  async readBy(type: string, field: string, value: string | number): Promise<Row[]> {
    const res = await this.call(
      "GET",
      `${this.api}/api/Entities/${type}?Name=${encodeURIComponent(field)}&Value=${encodeURIComponent(String(value))}`,
      `reading ${type}`,
    );
    return rows(res.body, `GET /api/Entities/${type}`);
  }

  async readAll(type: string): Promise<Row[]> {
    return rows((await this.call("GET", `${this.api}/api/Entities/${type}`, `reading ${type}`)).body, `GET /api/Entities/${type}`);
  }

  /** Inserts one entity or a list; answers what Uniconta stored when it says (null when the answer is empty). */
  async insert<T extends Row | Row[]>(type: string, body: T): Promise<T | null> {
    const res = await this.call("POST", `${this.api}/api/Entities/Insert/${type}`, `inserting ${type}`, { json: body });
    return res.body && typeof res.body === "object" ? (res.body as T) : null;
  }

  /** The full entity (or list): a property left out becomes null in Uniconta. */
  async update(type: string, body: Row | Row[]): Promise<void> {
    await this.call("PUT", `${this.api}/api/Entities/Update/${type}`, `updating ${type}`, { json: body });
  }

  async remove(type: string, body: Row | Row[]): Promise<void> {
    await this.call("DELETE", `${this.api}/api/Entities/Delete/${type}`, `deleting ${type}`, { json: body });
  }

  /** The companies the server user can reach (the "fetch companies" step); may come back empty (uniconta.md §11). */
  async companies(): Promise<Row[]> {
    return rows(
      (await this.call("GET", `${this.api}/api/Entities/CompanyClient`, "listing companies", { login: "user" })).body,
      "GET /api/Entities/CompanyClient",
    );
  }

  // ---- OData queries (/odata/<company>/<type>) ----------------------------------------------------------

  async query(type: string, params: { filter?: string; orderby?: string; top?: number; select?: string } = {}): Promise<Row[]> {
    const q = [
      params.filter ? `$filter=${encodeURIComponent(params.filter)}` : "",
      params.orderby ? `$orderby=${encodeURIComponent(params.orderby)}` : "",
      params.top !== undefined ? `$top=${params.top}` : "",
      params.select ? `$select=${encodeURIComponent(params.select)}` : "",
    ]
      .filter(Boolean)
      .join("&");
    const res = await this.call("GET", `${this.api}/odata/${this.o.companyId}/${type}${q ? `?${q}` : ""}`, `querying ${type}`);
    return rows(res.body, `GET /odata/${this.o.companyId}/${type}`);
  }

  /** Rows whose `field` is one of `values`, 40 at a time; `and` is added to every filter. */
  async queryIn(type: string, field: string, values: (string | number)[], and?: string): Promise<Row[]> {
    const out: Row[] = [];
    for (const chunk of orChunks(field, [...new Set(values)]))
      out.push(...(await this.query(type, { filter: and ? `${chunk} and (${and})` : chunk })));
    return out;
  }

  // ---- the gateway ---------------------------------------------------------------------------------------

  get hasGateway(): boolean {
    return !!this.o.gatewayUrl;
  }

  async gatewayIndex(): Promise<unknown> {
    return (await this.call("GET", `${this.gateway()}/`, "reaching the gateway", { login: "user", weight: 0 })).body;
  }

  /** InvoiceAPI.PostInvoice for an order through the gateway. A lost answer is uncertain (the invoice may exist). */
  async postOrder(orderNumber: number, args: { simulate: boolean; invoiceNumber?: number }): Promise<InvoicePostingResult> {
    const weight = this.o.budget.gatewayCost();
    const query = `simulate=${args.simulate}${args.invoiceNumber ? `&invoiceNumber=${args.invoiceNumber}` : ""}`;
    let res: HttpResponse;
    try {
      res = await this.call(
        "POST",
        `${this.gateway()}/Companies/${this.o.companyId}/Invoice/DebtorOrders/${orderNumber}?${query}`,
        args.simulate ? `simulating the posting of order ${orderNumber}` : `posting order ${orderNumber}`,
        // A simulation books nothing: given up at the deadline like a read.
        { login: "user", weight, changesNothing: args.simulate },
      );
    } catch (e) {
      // Sent (whatever the answer): the gateway has logged in. Not sent (budget spent, target paused): it has not.
      if (!(e instanceof TargetError) || !NOT_SENT.has(e.code)) this.o.budget.gatewayUsed(weight);
      throw e;
    }
    this.o.budget.gatewayUsed(weight);
    const body = res.body as InvoicePostingResult;
    if (!body || typeof body !== "object" || typeof body.Err !== "string") {
      throw new TargetError("uncertain", {
        code: "uniconta.unexpected_answer",
        message: `The gateway answered the posting of order ${orderNumber} without an InvoicePostingResult.`,
        hint: "Check gateway_url; kontobro looks the invoice up before trying again.",
      });
    }
    if (body.Err !== "Succes") throw new TargetError("permanent", describeUnicontaError(500, body.Err, "POST", "PostInvoice"));
    return body;
  }

  private gateway(): string {
    if (!this.o.gatewayUrl)
      throw new TargetError("permanent", {
        code: "uniconta.no_gateway",
        message: "No gateway_url is set, so kontobro cannot post invoices.",
        hint: 'Set gateway_url in kontobro.toml, or posting = "order_only".',
      });
    return this.o.gatewayUrl.replace(/\/+$/, "");
  }
}

/** A list answer: a bare array or OData's {"value": […]} (the real shape is unverified, §8). */
function rows(body: unknown, what: string): Row[] {
  if (Array.isArray(body)) return body;
  if (body && typeof body === "object" && Array.isArray((body as Row).value)) return (body as Row).value;
  throw new TargetError("retryable", {
    code: "uniconta.unexpected_answer",
    message: `Uniconta answered ${what} with something other than a list.`,
    hint: "Check api_url in kontobro.toml: it must point at Uniconta's OData host (https://odata.uniconta.com).",
  });
}
