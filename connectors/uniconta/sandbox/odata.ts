// The sandbox's OData query engine: $filter (eq ne gt ge lt le, and, or, not, parentheses; string, number,
// boolean, null and date literals), $orderby, $top, $skip, $select, and Uniconta's server limit of 40 ORs
// per predicate (uniconta.md §10: "The maximum number of OR's in a filter run on the uniconta server is 40").

export class QueryError extends Error {}

type Literal = string | number | boolean | null;
export type FilterNode =
  | { kind: "cmp"; field: string; op: "eq" | "ne" | "gt" | "ge" | "lt" | "le"; value: Literal; isDate: boolean }
  | { kind: "and" | "or"; parts: FilterNode[] }
  | { kind: "not"; part: FilterNode };

/** Uniconta's documented limit; the gateway (rmja/unicontarest) filters client-side above it. */
export const MAX_ORS = 40;
const OPS = new Set(["eq", "ne", "gt", "ge", "lt", "le"]);
const DATE = /^\d{4}-\d{2}-\d{2}(T[\d:.]+Z?)?$/;

function tokenize(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "(" || c === ")") {
      out.push(c);
      i++;
      continue;
    }
    if (c === "'") {
      let j = i + 1,
        text = "";
      for (;;) {
        if (j >= s.length) throw new QueryError(`Unterminated string literal in $filter at ${i}`);
        if (s[j] === "'" && s[j + 1] === "'") {
          text += "'";
          j += 2;
          continue;
        }
        if (s[j] === "'") break;
        text += s[j];
        j++;
      }
      out.push(`'${text}`); // a leading quote marks a string token
      i = j + 1;
      continue;
    }
    let j = i;
    while (j < s.length && !/[\s()]/.test(s[j]!)) j++;
    out.push(s.slice(i, j));
    i = j;
  }
  return out;
}

export function parseFilter(text: string): FilterNode {
  const tokens = tokenize(text);
  let pos = 0;
  const peek = () => tokens[pos];
  const next = () => {
    const t = tokens[pos++];
    if (t === undefined) throw new QueryError("Unexpected end of $filter");
    return t;
  };
  const literal = (t: string): { value: Literal; isDate: boolean } => {
    if (t.startsWith("'")) {
      const v = t.slice(1);
      return { value: v, isDate: DATE.test(v) };
    }
    if (t === "true" || t === "false") return { value: t === "true", isDate: false };
    if (t === "null") return { value: null, isDate: false };
    if (DATE.test(t)) return { value: t, isDate: true };
    const dt = /^datetime'(.+)'$/.exec(t);
    if (dt) return { value: dt[1]!, isDate: true };
    if (/^-?\d+(\.\d+)?$/.test(t)) return { value: Number(t), isDate: false };
    throw new QueryError(`Cannot read the value "${t}" in $filter (strings go in single quotes)`);
  };
  const primary = (): FilterNode => {
    const t = next();
    if (t === "(") {
      const inner = orExpr();
      if (next() !== ")") throw new QueryError("Missing ) in $filter");
      return inner;
    }
    if (t.toLowerCase() === "not") return { kind: "not", part: primary() };
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(t)) throw new QueryError(`Expected a property name in $filter, found "${t}"`);
    const op = next().toLowerCase();
    if (!OPS.has(op)) throw new QueryError(`Unknown operator "${op}" in $filter`);
    return { kind: "cmp", field: t, op: op as "eq", ...literal(next()) };
  };
  const andExpr = (): FilterNode => {
    const parts = [primary()];
    while (peek()?.toLowerCase() === "and") {
      pos++;
      parts.push(primary());
    }
    return parts.length === 1 ? parts[0]! : { kind: "and", parts };
  };
  const orExpr = (): FilterNode => {
    const parts = [andExpr()];
    while (peek()?.toLowerCase() === "or") {
      pos++;
      parts.push(andExpr());
    }
    return parts.length === 1 ? parts[0]! : { kind: "or", parts };
  };
  const node = orExpr();
  if (pos !== tokens.length) throw new QueryError(`Unexpected "${tokens[pos]}" in $filter`);
  checkOrs(node);
  return node;
}

/** Alternatives of one OR predicate, nested ORs flattened. */
function alternatives(n: FilterNode): number {
  return n.kind === "or" ? n.parts.reduce((s, p) => s + alternatives(p), 0) : 1;
}

function checkOrs(n: FilterNode): void {
  if (n.kind === "or" && alternatives(n) > MAX_ORS) {
    throw new QueryError(
      `The maximum number of OR's in a filter run on the Uniconta server is ${MAX_ORS}; this filter has ${alternatives(n)}.`,
    );
  }
  if (n.kind === "and" || n.kind === "or") n.parts.forEach(checkOrs);
  if (n.kind === "not") checkOrs(n.part);
}

function compare(a: unknown, b: Literal, isDate: boolean): number | null {
  if (a === undefined || a === null || b === null) return null;
  if (isDate && typeof a === "string" && typeof b === "string") {
    const x = a.slice(0, b.length > 10 ? 19 : 10),
      y = b.slice(0, b.length > 10 ? 19 : 10);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "boolean" && typeof b === "boolean") return a === b ? 0 : a ? 1 : -1;
  const x = String(a),
    y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function matches(row: Record<string, unknown>, n: FilterNode): boolean {
  switch (n.kind) {
    case "and":
      return n.parts.every((p) => matches(row, p));
    case "or":
      return n.parts.some((p) => matches(row, p));
    case "not":
      return !matches(row, n.part);
    case "cmp": {
      const v = row[n.field];
      if (n.value === null) return n.op === "eq" ? v === undefined || v === null : n.op === "ne" ? v !== undefined && v !== null : false;
      const c = compare(v, n.value, n.isDate);
      if (c === null) return n.op === "ne";
      return { eq: c === 0, ne: c !== 0, gt: c > 0, ge: c >= 0, lt: c < 0, le: c <= 0 }[n.op];
    }
  }
}

export interface QueryOptions {
  /** `$skip` is listed as "presumably" supported (Q3); the sandbox can refuse it. */
  skipSupported: boolean;
}

/** Applies the OData system query options to rows. */
export function runQuery(rows: Record<string, unknown>[], params: Record<string, string>, o: QueryOptions): Record<string, unknown>[] {
  let out = rows;
  if (params.$filter) {
    const f = parseFilter(params.$filter);
    out = out.filter((r) => matches(r, f));
  }
  if (params.$orderby) {
    const keys = params.$orderby
      .split(",")
      .map((s) => s.trim().split(/\s+/))
      .map(([field, dir]) => ({ field: field!, desc: dir?.toLowerCase() === "desc" }));
    out = [...out].sort((a, b) => {
      for (const k of keys) {
        const c = compare(a[k.field], (b[k.field] ?? null) as Literal, typeof b[k.field] === "string" && DATE.test(String(b[k.field])));
        const d = c === null ? (a[k.field] == null ? (b[k.field] == null ? 0 : -1) : 1) : c;
        if (d !== 0) return k.desc ? -d : d;
      }
      return 0;
    });
  }
  if (params.$skip !== undefined) {
    if (!o.skipSupported) throw new QueryError("$skip is not supported");
    out = out.slice(nonNegative(params.$skip, "$skip"));
  }
  if (params.$top !== undefined) out = out.slice(0, nonNegative(params.$top, "$top"));
  if (params.$select) {
    const fields = params.$select.split(",").map((s) => s.trim());
    out = out.map((r) => Object.fromEntries(fields.filter((f) => r[f] !== undefined).map((f) => [f, r[f]])));
  }
  return out;
}

function nonNegative(v: string, name: string): number {
  if (!/^\d+$/.test(v)) throw new QueryError(`${name} must be a whole number`);
  return Number(v);
}
