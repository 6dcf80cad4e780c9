// List answers as eAccounting gives them: the Meta/Data envelope with $page / $pagesize, and an OData-flavoured
// $filter (eaccounting.md §4). The exact filter syntax and date literals are unverified, so the sandbox accepts
// what the options allow: bare ISO dates (OData v4), quoted ones, or both; `filter: false` refuses every $filter
// with 6000 QueryParameterError, as a server without it would.
import { EaError, type Row } from "./validate.ts";

export interface QueryOptions {
  /** Whether $filter is understood at all (unverified: §4, Q7). */
  filter: boolean;
  /** Which date literals a filter may use (unverified). */
  dateLiterals: "bare" | "quoted" | "any";
  /** The largest $pagesize (unverified, Q7); larger asks are cut to it. */
  maxPageSize: number;
  defaultPageSize: number;
  /**
   * The order of a list, which the notes do not document (§4: only $page, $pagesize, $filter): "stored" (as the rows
   * were created; a changed row keeps its place) or "modified" (by ModifiedUtc / ChangedUtc, oldest first: a changed row
   * moves to the end, and those behind it move up a place, across a page boundary too).
   */
  order: "stored" | "modified";
}

type Value = string | number | boolean | null | { date: number };
type Node = { op: "and" | "or"; left: Node; right: Node } | { field: string; cmp: string; value: Value };

const queryError = (msg: string) => new EaError(400, 6000, `Invalid $filter query: ${msg}`);

function tokenize(s: string): string[] {
  const out: string[] = [];
  const re = /\s*('(?:[^']|'')*'|\(|\)|[A-Za-z_][A-Za-z0-9_.]*|\d{4}-\d{2}-\d{2}(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?|-?\d+(?:\.\d+)?)\s*/gy;
  let m: RegExpExecArray | null;
  let at = 0;
  while (at < s.length && (m = re.exec(s))) {
    out.push(m[1]!);
    at = re.lastIndex;
  }
  if (at < s.length) throw queryError(`cannot read "${s.slice(at, at + 20)}"`);
  return out;
}

const DATE = /^\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:\d{2})?)?$/;

function literal(tok: string | undefined, o: QueryOptions): Value {
  if (tok === undefined) throw queryError("a value is missing");
  if (tok.startsWith("'")) {
    const s = tok.slice(1, -1).replace(/''/g, "'");
    if (DATE.test(s) && o.dateLiterals !== "bare") return dateValue(s);
    return s;
  }
  if (DATE.test(tok)) {
    if (o.dateLiterals === "quoted") throw new EaError(400, 6001, `Invalid input: the date ${tok} must be quoted.`);
    return dateValue(tok);
  }
  if (tok === "true" || tok === "false") return tok === "true";
  if (tok === "null") return null;
  if (/^-?\d+(\.\d+)?$/.test(tok)) return Number(tok);
  throw queryError(`"${tok}" is not a value`);
}

function dateValue(s: string): { date: number } {
  const t = Date.parse(/T/.test(s) && !/(Z|[+-]\d{2}:\d{2})$/.test(s) ? `${s}Z` : s);
  if (Number.isNaN(t)) throw new EaError(400, 6001, `Invalid input: ${s} is not a date.`);
  return { date: t };
}

export function parseFilter(text: string, o: QueryOptions): Node {
  const toks = tokenize(text);
  let i = 0;
  const expr = (): Node => {
    let left = term();
    while (toks[i] === "and" || toks[i] === "or") {
      const op = toks[i++] as "and" | "or";
      left = { op, left, right: term() };
    }
    return left;
  };
  const term = (): Node => {
    if (toks[i] === "(") {
      i++;
      const e = expr();
      if (toks[i++] !== ")") throw queryError("a ) is missing");
      return e;
    }
    const field = toks[i++];
    const cmp = toks[i++];
    if (!field || !/^[A-Za-z]/.test(field) || !cmp || !["eq", "ne", "gt", "ge", "lt", "le"].includes(cmp))
      throw queryError(`expected "Field op value" near "${field ?? ""}"`);
    return { field, cmp, value: literal(toks[i++], o) };
  };
  const node = expr();
  if (i < toks.length) throw queryError(`unexpected "${toks[i]}"`);
  return node;
}

function compare(a: unknown, cmp: string, b: Value): boolean {
  let x: any = a,
    y: any = b;
  if (b && typeof b === "object") {
    x = typeof a === "string" ? Date.parse(/T/.test(a) && !/(Z|[+-]\d{2}:\d{2})$/.test(a) ? `${a}Z` : a) : NaN;
    y = b.date;
    if (Number.isNaN(x)) return false;
  } else if (typeof a === "string" && typeof b === "string") {
    x = a.toLowerCase();
    y = b.toLowerCase();
  }
  switch (cmp) {
    case "eq":
      return x === y || (x == null && y == null);
    case "ne":
      return !(x === y || (x == null && y == null));
    case "gt":
      return x > y;
    case "ge":
      return x >= y;
    case "lt":
      return x < y;
    default:
      return x <= y;
  }
}

export function matches(row: Row, node: Node): boolean {
  if ("op" in node)
    return node.op === "and" ? matches(row, node.left) && matches(row, node.right) : matches(row, node.left) || matches(row, node.right);
  return compare(row[node.field], node.cmp, node.value);
}

/** The Meta/Data page of `rows` for the request's $filter, $page and $pagesize. */
export function listPage(rows: Row[], query: Record<string, string>, o: QueryOptions, serverTimeUtc: string) {
  let selected = rows;
  if (query.$filter !== undefined) {
    if (!o.filter) throw queryError("$filter is not supported on this endpoint");
    const node = parseFilter(query.$filter, o);
    selected = rows.filter((r) => matches(r, node));
  }
  if (o.order === "modified") {
    const at = (r: Row) => Date.parse(String(r.ModifiedUtc ?? r.ChangedUtc ?? "")) || 0;
    selected = [...selected].sort((a, b) => at(a) - at(b));
  }
  const page = query.$page === undefined ? 1 : Number(query.$page);
  const size = query.$pagesize === undefined ? o.defaultPageSize : Number(query.$pagesize);
  if (!Number.isInteger(page) || page < 1)
    throw new EaError(400, 6001, `Invalid input: $page must be a whole number from 1, not ${query.$page}.`);
  if (!Number.isInteger(size) || size < 1)
    throw new EaError(400, 6001, `Invalid input: $pagesize must be a whole number from 1, not ${query.$pagesize}.`);
  const pageSize = Math.min(size, o.maxPageSize);
  const total = selected.length;
  return {
    Meta: {
      CurrentPage: page,
      PageSize: pageSize,
      TotalNumberOfPages: Math.max(1, Math.ceil(total / pageSize)),
      TotalNumberOfResults: total,
      ServerTimeUtc: serverTimeUtc,
    },
    Data: selected.slice((page - 1) * pageSize, page * pageSize),
  };
}
