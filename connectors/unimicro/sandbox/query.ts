// The sandbox's OData-flavoured query support: filter (eq/ne/gt/lt/ge/le, and/or, parentheses,
// startswith/endswith/contains), select, expand, orderby, top, skip. Field names are case-insensitive,
// and null compares like SQL (so `StatusCode ne 1` drops rows whose StatusCode is null, as on the platform).
export type Row = Record<string, any>;
type Pred = (row: Row) => boolean;

export class QueryError extends Error {}

/** Case-insensitive dotted path lookup; arrays are not traversed. */
export function pathValue(row: Row, path: string): unknown {
  let cur: any = row;
  for (const part of path.split(".")) {
    if (cur == null || typeof cur !== "object") return undefined;
    const key = Object.keys(cur).find((k) => k.toLowerCase() === part.toLowerCase());
    cur = key === undefined ? undefined : cur[key];
  }
  return cur;
}

function tokenize(src: string): string[] {
  const out: string[] = [];
  const re = /\s*(?:('(?:[^']|'')*')|(\()|(\))|(,)|([^\s(),']+))/y;
  let m: RegExpExecArray | null;
  re.lastIndex = 0;
  while (re.lastIndex < src.length && (m = re.exec(src))) {
    const tok = m[1] ?? m[2] ?? m[3] ?? m[4] ?? m[5];
    if (tok !== undefined) out.push(tok);
  }
  if (src.slice(re.lastIndex).trim()) throw new QueryError(`Could not parse filter near '${src.slice(re.lastIndex)}'`);
  return out;
}

function literal(tok: string | undefined): unknown {
  if (tok === undefined) throw new QueryError("Filter ends where a value was expected");
  if (tok.startsWith("'")) return tok.slice(1, -1).replace(/''/g, "'");
  if (/^null$/i.test(tok)) return null;
  if (/^(true|false)$/i.test(tok)) return tok.toLowerCase() === "true";
  if (/^-?\d+(\.\d+)?$/.test(tok)) return Number(tok);
  throw new QueryError(`'${tok}' is not a value`);
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === "number" || typeof b === "number") return Number(a) - Number(b);
  return String(a).toLowerCase().localeCompare(String(b).toLowerCase());
}

const OPS: Record<string, (c: number) => boolean> = {
  eq: (c) => c === 0,
  ne: (c) => c !== 0,
  gt: (c) => c > 0,
  lt: (c) => c < 0,
  ge: (c) => c >= 0,
  le: (c) => c <= 0,
};

export function parseFilter(src: string | undefined): Pred {
  if (!src?.trim()) return () => true;
  const toks = tokenize(src);
  let i = 0;
  const peek = () => toks[i]?.toLowerCase();
  const expect = (t: string) => {
    if (toks[i] !== t) throw new QueryError(`Expected '${t}' in filter`);
    i++;
  };

  const term = (): Pred => {
    if (toks[i] === "(") {
      i++;
      const e = orExpr();
      expect(")");
      return e;
    }
    const fn = peek();
    if ((fn === "startswith" || fn === "endswith" || fn === "contains") && toks[i + 1] === "(") {
      i += 2;
      const field = toks[i++]!;
      expect(",");
      const value = String(literal(toks[i++])).toLowerCase();
      expect(")");
      return (r) => {
        const v = pathValue(r, field);
        if (v == null) return false;
        const s = String(v).toLowerCase();
        return fn === "startswith" ? s.startsWith(value) : fn === "endswith" ? s.endsWith(value) : s.includes(value);
      };
    }
    const field = toks[i++];
    const op = toks[i++]?.toLowerCase();
    if (!field || !op || !(op in OPS || op === "like")) throw new QueryError(`Expected a comparison after '${field ?? ""}'`);
    const value = literal(toks[i++]);
    if (op === "like") {
      const re = new RegExp(
        `^${String(value)
          .replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
          .replace(/%/g, ".*")}$`,
        "i",
      );
      return (r) => {
        const v = pathValue(r, field);
        return v != null && re.test(String(v));
      };
    }
    return (r) => {
      const v = pathValue(r, field);
      if (value === null) return op === "eq" ? v == null : op === "ne" ? v != null : false;
      if (v == null) return false; // SQL: null compared with a value is unknown → not selected
      return OPS[op]!(compare(v, value));
    };
  };
  const andExpr = (): Pred => {
    let left = term();
    while (peek() === "and") {
      i++;
      const l = left,
        r = term();
      left = (row) => l(row) && r(row);
    }
    return left;
  };
  const orExpr = (): Pred => {
    let left = andExpr();
    while (peek() === "or") {
      i++;
      const l = left,
        r = andExpr();
      left = (row) => l(row) || r(row);
    }
    return left;
  };
  const pred = orExpr();
  if (i < toks.length) throw new QueryError(`Unexpected '${toks[i]}' in filter`);
  return pred;
}

/** Without expand, nested objects and lists are left out, as the platform does. */
export function shape(row: Row, expand: string[], prefix = ""): Row {
  const out: Row = {};
  for (const [k, v] of Object.entries(row)) {
    const path = (prefix ? `${prefix}.${k}` : k).toLowerCase();
    if (v !== null && typeof v === "object") {
      if (!expand.includes(path)) continue;
      out[k] = Array.isArray(v) ? v.map((x) => (x && typeof x === "object" ? shape(x, expand, path) : x)) : shape(v, expand, path);
    } else out[k] = v;
  }
  return out;
}

/** Every prefix of every expand path counts as expanded ("Info.InvoiceAddress" expands "Info" too). */
export function expandPaths(expand: string | undefined): string[] {
  const out = new Set<string>();
  for (const p of (expand ?? "")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)) {
    const parts = p.split(".");
    parts.forEach((_, n) => out.add(parts.slice(0, n + 1).join(".")));
  }
  return [...out];
}

function select(row: Row, fields: string[]): Row {
  const out: Row = {};
  for (const f of fields) {
    const v = pathValue(row, f);
    if (v === undefined) continue;
    const parts = f.split(".");
    let cur = out;
    parts.slice(0, -1).forEach((p) => {
      cur = cur[p] ??= {};
    });
    cur[parts.at(-1)!] = v;
  }
  return out;
}

export interface Query {
  filter?: string;
  select?: string;
  expand?: string;
  orderby?: string;
  top?: string;
  skip?: string;
}

export function runQuery(rows: Row[], q: Query): Row[] {
  let out = rows.filter(parseFilter(q.filter));
  if (q.orderby) {
    const keys = q.orderby
      .split(",")
      .map((s) => s.trim().split(/\s+/))
      .map(([f, dir]) => ({ f: f!, desc: /^desc$/i.test(dir ?? "") }));
    out = [...out].sort((a, b) => {
      for (const k of keys) {
        const c = compare(pathValue(a, k.f) ?? "", pathValue(b, k.f) ?? "");
        if (c) return k.desc ? -c : c;
      }
      return 0;
    });
  }
  const skip = Number(q.skip ?? 0),
    top = q.top !== undefined ? Number(q.top) : undefined;
  out = out.slice(skip, top !== undefined ? skip + top : undefined);
  const expand = expandPaths(q.expand);
  const fields = q.select
    ?.split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return out.map((r) => (fields?.length ? select(r, fields) : shape(r, expand)));
}
