// HTTP to the Uni Micro business API: Bearer token + CompanyKey on every call, one forced token refresh
// on a 401, and the platform's error envelope {Message, _validationResults} turned into plain Problems.
import { HttpClient, TargetError, type HttpResponse, type RequestOptions, type TokenBucket } from "../http.ts";
import type { Problem } from "../../agent/problem.ts";
import type { TokenSource } from "./auth.ts";

export interface UniClientOptions {
  baseUrl: string;
  companyKey: string;
  tokens: TokenSource;
  timeoutMs: number;
  limiter?: TokenBucket;
  title: string;
}

/** OData-flavoured list query; the platform answers with a bare JSON array. */
export interface ListQuery {
  filter?: string;
  select?: string;
  expand?: string;
  orderby?: string;
  top?: number;
  skip?: number;
}

/** Quote a value for a filter expression ('O''Brien'). */
export const q = (v: string) => `'${v.replace(/'/g, "''")}'`;

/** %20 for spaces, never '+': the platform's statistics endpoint is known to want proper encoding. */
export function queryString(params: Record<string, string | number | undefined>): string {
  const parts = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== "")
    .map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join("&")}` : "";
}

/** `_validationResults` has no documented inner shape; accept a field map, a list, or a string. */
export function flattenValidation(v: unknown): { field?: string; message: string }[] {
  if (!v) return [];
  if (typeof v === "string") return [{ message: v }];
  const msgOf = (x: any): string => (typeof x === "string" ? x : (x?.Message ?? x?.message ?? JSON.stringify(x)));
  if (Array.isArray(v)) return v.map((x: any) => ({ field: x?.PropertyName ?? x?.Field ?? undefined, message: msgOf(x) }));
  if (typeof v === "object") {
    return Object.entries(v as Record<string, unknown>).flatMap(([field, x]) =>
      (Array.isArray(x) ? x : [x]).map((y) => ({ field, message: msgOf(y) })),
    );
  }
  return [{ message: String(v) }];
}

function hintFor(status: number, text: string, title: string): string | undefined {
  if (/foreign key/i.test(text))
    return `A referenced internal ID does not exist in this ${title} company: usually an account, VAT code or product set in kontobro.toml, or a customer/project deleted in ${title}. Run \`kontobro check\`, fix the setting or the record, then press retry.`;
  if (/_createguid/i.test(text))
    return "kontobro sent a new child row without _createguid; this is a kontobro bug, please report it with this message.";
  if (/already (in use|exists|used)|duplicate/i.test(text))
    return `A record with this number already exists in ${title}. The PSA is master for numbers: renumber it in the PSA, or remove the duplicate in ${title}, then press retry.`;
  if (/transition/i.test(text))
    return `The record is not in a state that allows this step in ${title} (for example the invoice is already invoiced). Look at it in ${title}, then press retry.`;
  if (status === 401)
    return "The access token was refused. Check client_id, the certificate and identity_url in kontobro.toml, then run `kontobro check`.";
  if (status === 403)
    return `The server client may not use this company. Check company_key (in ${title}: "?" → "Systeminformasjon") and that the integration is activated for the company.`;
  if (status === 404)
    return `Not found in ${title}: the record may have been deleted there, or base_url points at the wrong service. Check, then press retry.`;
  return undefined;
}

/** Error response → Problem in the platform's own words plus what to do about it. */
export function describeUniError(status: number, body: unknown, method: string, path: string, title: string): Problem {
  const b: any = body && typeof body === "object" ? body : {};
  const base =
    typeof b.Message === "string" && b.Message ? b.Message : typeof body === "string" && body ? body.slice(0, 300) : `HTTP ${status}`;
  const details = flattenValidation(b._validationResults);
  const detailText = details.map((d) => (d.field ? `${d.field}: ${d.message}` : d.message)).join("; ");
  const text = `${base} ${detailText}`;
  const code = /foreign key/i.test(text) ? "unimicro.foreign_key" : details.length ? "unimicro.validation" : `unimicro.http_${status}`;
  return {
    code,
    message: `${title} refused ${method} ${path}: ${base}${detailText ? ` (${detailText})` : ""}`,
    ...(hintFor(status, text, title) ? { hint: hintFor(status, text, title) } : {}),
    ...(details[0]?.field ? { field: details[0].field } : {}),
  };
}

export class UniClient {
  private readonly http: HttpClient;

  constructor(private readonly o: UniClientOptions) {
    this.http = new HttpClient({
      baseHeaders: () => ({}), // set per request so we know which token a 401 refers to
      timeoutMs: o.timeoutMs,
      limiter: o.limiter,
      targetTitle: o.title,
      describeError: (res: HttpResponse, method, url) => describeUniError(res.status, res.body, method, new URL(url).pathname, o.title),
    });
  }

  /** How long this client still holds requests back because Uni asked it to wait (a 429's Retry-After), 0 if not. */
  pausedForMs(): number {
    return this.http.gate.remainingMs();
  }

  get title(): string {
    return this.o.title;
  }

  /** `path` is relative to the base URL, e.g. "/api/biz/customers" (query string included). */
  async request(
    method: string,
    path: string,
    options: {
      json?: unknown;
      body?: RequestOptions["body"];
      accept?: number[];
      headers?: Record<string, string>;
    } = {},
  ): Promise<HttpResponse> {
    const url = path.startsWith("http") ? path : this.o.baseUrl.replace(/\/+$/, "") + path;
    for (let attempt = 0; ; attempt++) {
      const token = await this.o.tokens.get();
      const headers = { authorization: `Bearer ${token}`, companykey: this.o.companyKey, ...options.headers };
      try {
        return await this.http.request(method, url, { ...options, headers });
      } catch (e) {
        if (!(e instanceof TargetError)) throw e;
        // A 401 means the token was not accepted, so nothing happened: refresh once and repeat.
        if (e.status === 401 && attempt === 0) {
          this.o.tokens.invalidate(token);
          continue;
        }
        // The platform reports wrong internal IDs as a 500; that is content, not an outage.
        if (e.code === "unimicro.foreign_key") throw new TargetError("permanent", e);
        throw e;
      }
    }
  }

  async get<T = any>(path: string, accept?: number[]): Promise<T | null> {
    const res = await this.request("GET", path, { accept });
    return accept?.includes(res.status) ? null : (res.body as T);
  }

  async list<T = any>(entity: string, query: ListQuery = {}): Promise<T[]> {
    const body = (await this.request("GET", `/api/biz/${entity}${queryString({ ...query })}`)).body;
    if (!Array.isArray(body)) {
      throw new TargetError("retryable", {
        code: "unimicro.unexpected_response",
        message: `${this.o.title} answered GET /api/biz/${entity} with something other than a list.`,
        hint: "Check base_url; it must point at the API host of the platform.",
      });
    }
    return body as T[];
  }

  async post<T = any>(path: string, json?: unknown): Promise<T> {
    return (await this.request("POST", path, json === undefined ? {} : { json })).body as T;
  }

  async put<T = any>(path: string, json?: unknown): Promise<T> {
    return (await this.request("PUT", path, json === undefined ? {} : { json })).body as T;
  }

  /** Companies this client may reach; `Key` is what goes into the CompanyKey header. */
  async companies(): Promise<{ Name: string; Key: string; ID?: number; IsTest?: boolean }[]> {
    const body = (await this.request("GET", "/api/init/companies")).body;
    return Array.isArray(body) ? body : [];
  }
}

/**
 * Internal IDs by human number (customer number, account number, VAT code, …), cached per connector:
 * the platform wants IDs in every foreign key and answers a number in their place with a 500.
 */
export class IdLookups {
  private readonly cache = new Map<string, number>();

  constructor(private readonly api: UniClient) {}

  /** After a foreign-key error a cached ID may be stale (deleted in the target): forget them all. */
  clear(): void {
    this.cache.clear();
    this.vatTypes.clear();
  }

  remember(kind: string, key: string, id: number): void {
    this.cache.set(`${kind}:${key}`, id);
  }
  forget(kind: string, key: string): void {
    this.cache.delete(`${kind}:${key}`);
  }

  private async lookup(
    kind: string,
    key: string,
    entity: string,
    filter: string,
    read: { select?: string; expand?: string; seen?: (row: any) => void } = { select: "ID" },
  ): Promise<number | null> {
    const hit = this.cache.get(`${kind}:${key}`);
    if (hit) return hit;
    const { seen, ...query } = read;
    const rows = await this.api.list<{ ID: number }>(entity, { filter, ...query, top: 1 });
    const id = rows[0]?.ID;
    if (!id) return null;
    seen?.(rows[0]);
    this.remember(kind, key, id);
    return id;
  }

  /** A VAT code as vatType read it (undefined: not said). */
  private readonly vatTypes = new Map<string, VatTypeFacts>();
  vatTypeOf(vatCode: string): VatTypeFacts | undefined {
    return this.vatTypes.get(vatCode);
  }

  customer(number: string) {
    return this.lookup("customer", number, "customers", `CustomerNumber eq ${Number(number)}`);
  }
  project(number: string) {
    return this.lookup("project", number, "projects", `ProjectNumber eq ${q(number)}`);
  }
  product(partName: string) {
    return this.lookup("product", partName, "products", `PartName eq ${q(partName)}`);
  }
  account(accountNumber: number) {
    return this.lookup("account", String(accountNumber), "accounts", `AccountNumber eq ${accountNumber}`);
  }
  /**
   * The VatType with its dated rates (VatTypePercentages, expanded in the same request). The whole row is read, not a
   * select: whether the platform keeps an expanded list under a select is unverified (README, Field mapping).
   */
  vatType(vatCode: string) {
    return this.lookup("vattype", vatCode, "vattypes", `VatCode eq ${q(vatCode)}`, {
      expand: "VatTypePercentages",
      seen: (r) =>
        this.vatTypes.set(vatCode, {
          name: r.Name ?? undefined,
          outputVat: typeof r.OutputVat === "boolean" ? r.OutputVat : undefined,
          percent: typeof r.VatPercent === "number" ? r.VatPercent : undefined,
          rates: Array.isArray(r.VatTypePercentages)
            ? r.VatTypePercentages.filter((p: any) => typeof p?.VatPercent === "number" && !p.Deleted).map((p: any) => ({
                from: p.ValidFrom ? String(p.ValidFrom).slice(0, 10) : undefined,
                to: p.ValidTo ? String(p.ValidTo).slice(0, 10) : undefined,
                percent: p.VatPercent,
              }))
            : undefined,
          incomingAccount: r.IncomingAccountID ? true : r.IncomingAccountID === undefined ? undefined : false,
          outgoingAccount: r.OutgoingAccountID ? true : r.OutgoingAccountID === undefined ? undefined : false,
        }),
    });
  }
  currency(code: string) {
    return this.lookup("currency", code, "currencycodes", `Code eq ${q(code)}`);
  }
}

/** What kontobro reads of a VatType (unieconomy-biz-field-digest VatType; undefined: the answer did not say). */
export interface VatTypeFacts {
  name?: string;
  /** OutputVat: an output (sales) VAT code. */
  outputVat?: boolean;
  /** VatPercent: its rate (perhaps 0 where the platform keeps the rates dated). */
  percent?: number;
  /** VatTypePercentages: its dated rates (ValidFrom, ValidTo as YYYY-MM-DD; undefined: open). */
  rates?: { from?: string; to?: string; percent: number }[];
  /** IncomingAccountID / OutgoingAccountID set: it books VAT to an input (deductible) / output account. */
  incomingAccount?: boolean;
  outgoingAccount?: boolean;
}

/**
 * A VAT code's rate on a date (YYYY-MM-DD): the dated rate that applies (VatTypePercentages), else VatPercent. Dated
 * rates none of which applies: the highest of them and VatPercent (which one the platform then uses is unverified, and
 * a rate above 0 is what must not be missed). Undefined: no rate said.
 */
export function vatRateOn(t: VatTypeFacts, date: string): number | undefined {
  const rates = t.rates ?? [];
  const on = rates.filter((r) => (!r.from || r.from <= date) && (!r.to || date <= r.to));
  if (on.length > 0) return Math.max(...on.map((r) => r.percent));
  if (rates.length > 0) return Math.max(...rates.map((r) => r.percent), t.percent ?? 0);
  return t.percent;
}

/**
 * Whether a VAT code would book a sales line's VAT as purchase (input, deductible) VAT: a code that is not an output
 * code (OutputVat false) with a rate above 0 on the date (vatRateOn: the invoice's; today's for a product or the
 * settings), or, its rate not said, with an input VAT account and no output one. A code that is not an output code at
 * 0 % (code 0, "no VAT handling", on sales outside VAT) books no VAT: not refused. Which flags and rates the platform's
 * standard codes carry is unverified (unimicro.md §8.1 names the fields only).
 */
export function booksInputVat(t: VatTypeFacts | undefined, date = today()): boolean {
  if (t?.outputVat !== false) return false;
  const rate = vatRateOn(t, date);
  if (rate !== undefined) return rate > 0;
  return t.incomingAccount === true && t.outgoingAccount !== true;
}

const today = () => new Date().toISOString().slice(0, 10);

/**
 * The ID of the VAT type of a VAT code used on a sales line (an invoice line, a product's). A code that would book the
 * line's VAT as deductible input VAT (booksInputVat, at the rate of `date`: the invoice's; today's if not given) is refused, naming the code and where it came from; any other
 * code, also one that does not say what it is, is used.
 */
export async function requireSalesVatType(
  title: string,
  ids: IdLookups,
  vatCode: string,
  where: string,
  hint: string,
  date?: string,
): Promise<number> {
  const id = await requireId(title, "vat_code", vatCode, ids.vatType(vatCode), hint);
  const type = ids.vatTypeOf(vatCode);
  if (!type || !booksInputVat(type, date)) return id;
  throw new TargetError("permanent", {
    code: "unimicro.vat_code_not_output",
    message: `VAT code ${vatCode}${type.name ? ` ("${type.name}")` : ""} of ${where} is not an output (sales) VAT code in ${title}, so it cannot be used on a sales invoice: ${title} would book the line's VAT as purchase (input) VAT. Nothing was sent.`,
    hint: `Use the output VAT code for the line's rate (e.g. 3 for 25 %, 31 for 15 %, 33 for 12 %, 5 or 6 for no VAT). ${hint}`,
  });
}

/** The ID a lookup found, or a permanent error saying what the target lacks and how to fix it. */
export async function requireId(
  title: string,
  kind: string,
  key: string,
  id: Promise<number | null>,
  hint: string,
  record?: Problem["record"],
): Promise<number> {
  const found = await id;
  if (found) return found;
  throw new TargetError("permanent", {
    code: `unimicro.${kind}_missing`,
    message: `${title} has no ${kind.replace("_", " ")} ${key}.`,
    hint,
    ...(record ? { record } : {}),
  });
}
