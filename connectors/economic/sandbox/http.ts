// HTTP shapes the sandbox shares: e-conomic's two error envelopes, the annotated validation error, the
// REST collection with paging and filters, and request-body reading (415 / 400 / null / schema).
import type { Context } from "hono";
import { FilterError, filterFields, matchesFilter, parseFilter, valueAt } from "./filter.ts";
import { isPlainObject, stripToSchema, validateSchema, type JsonSchema, type PathSegment, type SchemaError } from "../schema-validate.ts";
import type { Json } from "./state.ts";

export const PROJECTS_PREFIX = "/projectsapi/v1.1.0";
export const MAX_PAGE_SIZE = 1000;
const DEFAULT_PAGE_SIZE = 20;

export function isOpenApiPath(path: string): boolean {
  return path.toLowerCase().startsWith("/projectsapi/");
}

export function logTime(d = new Date()): string {
  return d.toISOString().slice(0, 19);
}

const JSON_TYPE = "application/json; charset=utf-8";

/** REST responses omit nulls and false booleans. */
export function restJson(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(compact(body, true)), { status, headers: { "content-type": JSON_TYPE, ...headers } });
}

/** OpenAPI responses omit nulls. */
export function openApiJson(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(compact(body, false)), { status, headers: { "content-type": JSON_TYPE, ...headers } });
}

export function compact(value: unknown, dropFalse: boolean): unknown {
  if (Array.isArray(value)) return value.map((v) => compact(v, dropFalse));
  if (!isPlainObject(value)) return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === null || v === undefined || (dropFalse && v === false)) continue;
    out[k] = compact(v, dropFalse);
  }
  return out;
}

export interface RestErrorExtra {
  errorCode?: string;
  developerHint?: string;
  errors?: Json;
}

export function restError(status: number, message: string, extra: RestErrorExtra = {}, headers: Record<string, string> = {}): Response {
  const body = {
    message,
    ...(extra.errorCode ? { errorCode: extra.errorCode } : {}),
    developerHint: extra.developerHint ?? "Inspect the message and correct your request.",
    logId: crypto.randomUUID(),
    httpStatusCode: status,
    logTime: logTime(),
    ...(extra.errors ? { errors: extra.errors } : {}),
  };
  return restJson(status, body, headers);
}

export interface OpenApiErrorExtra {
  code?: string;
  property?: string;
  developerHint?: string;
}

export function openApiError(status: number, message: string, extra: OpenApiErrorExtra = {}): Response {
  return openApiJson(status, {
    message,
    developerHint: extra.developerHint ?? "Inspect the message and correct your request.",
    logId: crypto.randomUUID(),
    logTimeUtc: logTime(),
    code: extra.code,
    property: extra.property,
  });
}

/** An error in the envelope of whichever API family the path belongs to. */
export function familyError(path: string, status: number, message: string, code?: string): Response {
  return isOpenApiPath(path) ? openApiError(status, message, { code }) : restError(status, message, { errorCode: code });
}

export interface FieldError {
  segments: PathSegment[];
  errorCode: string;
  message: string;
  value?: unknown;
  developerHint: string;
}

/** The annotated 400: errors mirror the request, array items carry `arrayIndex`. */
export function validationError(fieldErrors: FieldError[]): Response {
  return restError(400, "Validation error.", {
    developerHint: "Inspect validation errors and correct your request.",
    errors: annotate(fieldErrors),
  });
}

export function annotate(fieldErrors: FieldError[]): Json {
  const root: Json = {};
  for (const e of fieldErrors) {
    const entry = {
      errorCode: e.errorCode,
      message: e.message,
      ...(e.value !== undefined ? { value: e.value } : {}),
      developerHint: e.developerHint,
    };
    let node: any = root;
    e.segments.forEach((seg, i) => {
      if (typeof seg === "number") {
        let item = (node as Json[]).find((x) => x.arrayIndex === seg);
        if (!item) {
          item = { arrayIndex: seg };
          node.push(item);
          node.sort((a: Json, b: Json) => (a.arrayIndex ?? -1) - (b.arrayIndex ?? -1));
        }
        node = item;
      } else if (typeof e.segments[i + 1] === "number") {
        if (!Array.isArray(node[seg])) node[seg] = [];
        node = node[seg];
      } else {
        if (!isPlainObject(node[seg]) && !Array.isArray(node[seg])) node[seg] = {};
        node = node[seg];
      }
    });
    // An array that is itself at fault (e.g. not an array of objects) gets an item without arrayIndex.
    if (Array.isArray(node)) node.push({ errors: [entry] });
    else (node.errors ??= []).push(entry);
  }
  return root;
}

/** Schema errors → field errors. maxDecimal is E04740 in e-conomic; other codes are the sandbox's own. */
export function schemaFieldErrors(errors: SchemaError[]): FieldError[] {
  return errors.map((e) => ({
    segments: e.segments,
    errorCode: e.keyword === "maxDecimal" ? "E04740" : `SANDBOX_${e.keyword.toUpperCase()}`,
    message: e.message,
    value: e.value,
    developerHint: e.keyword === "required" ? "Please include the property." : "Please check the format of your data.",
  }));
}

export function nullFieldErrors(value: unknown, at: PathSegment[] = []): FieldError[] {
  if (value === null)
    return [
      {
        segments: at,
        errorCode: "SANDBOX_NULL",
        message: "null is not accepted; omit the property instead.",
        developerHint: "e-conomic does not accept null. Leave the property out.",
      },
    ];
  if (Array.isArray(value)) return value.flatMap((v, i) => nullFieldErrors(v, [...at, i]));
  if (isPlainObject(value)) return Object.entries(value).flatMap(([k, v]) => nullFieldErrors(v, [...at, k]));
  return [];
}

/** Reads a JSON body: 415 unless JSON, 400 when it does not parse. */
export async function readJsonBody(c: Context): Promise<unknown | Response> {
  const type = c.req.header("content-type") ?? "";
  if (!/json/i.test(type)) {
    return familyError(c.req.path, 415, `Unsupported media type '${type || "(none)"}'. Send application/json.`);
  }
  const text = await c.req.text();
  try {
    return JSON.parse(text);
  } catch {
    return familyError(c.req.path, 400, "The request body is not valid JSON.");
  }
}

/** A REST write body: JSON object, no nulls, valid against the endpoint's official schema; read-only and unknown properties dropped. */
export async function readRestDocument(c: Context, schema: JsonSchema): Promise<Json | Response> {
  const body = await readJsonBody(c);
  if (body instanceof Response) return body;
  if (!isPlainObject(body)) return restError(400, "The request body must be a JSON object.");
  const problems = [
    ...nullFieldErrors(body),
    ...schemaFieldErrors(validateSchema(schema, body, { caseInsensitiveEnums: true }).filter((e) => e.value !== null)),
  ];
  if (problems.length > 0) return validationError(problems);
  return stripToSchema(schema, body) as Json;
}

/** The number a reference carries, from its number property or the last segment of its self link. */
export function refNumber(ref: unknown, key: string): number | undefined {
  if (!isPlainObject(ref)) return undefined;
  if (typeof ref[key] === "number") return ref[key] as number;
  if (typeof ref.self === "string") {
    const last = ref.self.split("?")[0]!.replace(/\/+$/, "").split("/").pop();
    const n = Number(last);
    if (last && Number.isInteger(n)) return n;
  }
  return undefined;
}

/**
 * Resolves a reference and records E04500 (no identifier) or E06000 (does not exist). Returns the number
 * when it exists.
 */
export function checkRef(
  errors: FieldError[],
  at: PathSegment[],
  ref: unknown,
  key: string,
  exists: (n: number) => boolean,
  listUrl: string,
): number | undefined {
  if (ref === undefined) return undefined;
  const label = String(at[at.length - 1]);
  const n = refNumber(ref, key);
  if (n === undefined) {
    errors.push({
      segments: at,
      errorCode: "E04500",
      message: `No identifiers present on ${label}. Please include either a self link or a ${key}.`,
      developerHint: `Find a list of resources at ${listUrl}.`,
    });
    return undefined;
  }
  if (!exists(n)) {
    errors.push({
      segments: at,
      errorCode: "E06000",
      message: `${label} does not exist.`,
      value: n,
      developerHint: `Find a list of resources at ${listUrl}.`,
    });
    return undefined;
  }
  return n;
}

export function withSelf(ref: Json | undefined, key: string, base: string): Json | undefined {
  if (!ref || ref[key] === undefined) return ref;
  return { ...ref, self: `${base}/${encodeSelfId(String(ref[key]))}` };
}

// e-conomic's own escaping of ids in URLs: `< > * % : & / \ _ space ? . # +` → `_0_` … `_13_`.
const SELF_CHARS = ["<", ">", "*", "%", ":", "&", "/", "\\", "_", " ", "?", ".", "#", "+"];

export function encodeSelfId(id: string): string {
  return [...id]
    .map((ch) => {
      const i = SELF_CHARS.indexOf(ch);
      return i < 0 ? ch : `_${i}_`;
    })
    .join("");
}

export function decodeSelfId(id: string): string {
  return id.replace(/_(\d{1,2})_/g, (m, n) => SELF_CHARS[Number(n)] ?? m);
}

function queryParam(q: URLSearchParams, name: string): string | null {
  for (const [k, v] of q) if (k.toLowerCase() === name) return v;
  return null;
}

export interface CollectionOptions {
  /** Properties a filter may use (from the schema's `filterable: true`). */
  filterable: ReadonlySet<string>;
  metaData?: Json;
}

/** A REST collection page: `{collection, pagination, metaData, self}` with filter, sort and paging. */
export function restCollection(c: Context, items: Json[], opts: CollectionOptions): Response {
  const url = new URL(c.req.url);
  const q = url.searchParams;
  const skipPages = intParam(queryParam(q, "skippages"), 0);
  const pageSize = intParam(queryParam(q, "pagesize"), DEFAULT_PAGE_SIZE);
  if (skipPages === undefined || skipPages < 0) return restError(400, "skippages must be a non-negative integer.");
  if (pageSize === undefined || pageSize < 1) return restError(400, "pagesize must be a positive integer.");
  if (pageSize > MAX_PAGE_SIZE) return restError(400, `pagesize cannot be greater than ${MAX_PAGE_SIZE}.`);
  const filter = queryParam(q, "filter");
  const sort = queryParam(q, "sort");
  const filtered = applyFilter(items, filter, opts.filterable);
  if (filtered instanceof Response) return filtered;
  const sorted = sort ? sortItems(filtered, sort) : filtered;
  const page = sorted.slice(skipPages * pageSize, (skipPages + 1) * pageSize);
  const lastSkip = Math.max(0, Math.ceil(sorted.length / pageSize) - 1);
  const link = (skip: number) => {
    const p = new URLSearchParams({ skippages: String(skip), pagesize: String(pageSize) });
    if (filter) p.set("filter", filter);
    if (sort) p.set("sort", sort);
    return `${url.origin}${url.pathname}?${p}`;
  };
  return restJson(200, {
    collection: page,
    metaData: opts.metaData ?? {},
    pagination: {
      maxPageSizeAllowed: MAX_PAGE_SIZE,
      skipPages,
      pageSize,
      results: sorted.length,
      resultsWithoutFilter: items.length,
      firstPage: link(0),
      ...(skipPages > 0 ? { previousPage: link(Math.min(skipPages - 1, lastSkip)) } : {}),
      ...(skipPages < lastSkip ? { nextPage: link(skipPages + 1) } : {}),
      lastPage: link(lastSkip),
    },
    self: link(skipPages),
  });
}

/** Filters with the shared grammar; 400 in the path's family envelope on bad syntax or a non-filterable field. */
export function applyFilter(items: Json[], filter: string | null, filterable: ReadonlySet<string>, openApi = false): Json[] | Response {
  if (!filter) return items;
  const fail = (msg: string) => (openApi ? openApiError(400, msg, { code: "InvalidFilter", property: "filter" }) : restError(400, msg));
  try {
    const node = parseFilter(filter);
    const bad = filterFields(node).find((f) => !filterable.has(f));
    if (bad) return fail(`Filtering on property '${bad}' is not allowed.`);
    return items.filter((i) => matchesFilter(node, i));
  } catch (e) {
    if (e instanceof FilterError) return fail(e.message);
    throw e;
  }
}

/** `sort=name,-age,~number`: `-` descending, `~` alphabetical even for numbers. */
function sortItems(items: Json[], sort: string): Json[] {
  const keys = sort
    .split(",")
    .filter(Boolean)
    .map((k) => ({ desc: k.startsWith("-"), alpha: k.includes("~"), field: k.replace(/^[-~]+/, "") }));
  return [...items].sort((a, b) => {
    for (const k of keys) {
      const [x, y] = [valueAt(a, k.field), valueAt(b, k.field)];
      const c =
        k.alpha || typeof x !== "number" || typeof y !== "number"
          ? String(x ?? "").localeCompare(String(y ?? ""), undefined, { sensitivity: "base" })
          : x - y;
      if (c !== 0) return k.desc ? -c : c;
    }
    return 0;
  });
}

function intParam(v: string | null, fallback: number): number | undefined {
  if (v === null || v === "") return fallback;
  return /^\d+$/.test(v) ? Number(v) : undefined;
}

/** `filterable: true` properties of a REST collection schema, as dotted paths below `collection[]`. */
export function filterableFields(collectionSchema: JsonSchema): Set<string> {
  const out = new Set<string>();
  const walk = (s: JsonSchema | undefined, prefix: string) => {
    for (const [k, v] of Object.entries(s?.properties ?? {})) {
      if (!isPlainObject(v)) continue;
      if (v.filterable === true) out.add(prefix + k);
      walk(v, `${prefix}${k}.`);
    }
  };
  const items = collectionSchema.properties?.collection?.items;
  walk(Array.isArray(items) ? items[0] : items, "");
  return out;
}
