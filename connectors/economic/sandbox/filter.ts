// e-conomic's filter grammar (both API families): `name$eq:Joe$and:(city$like:*port$or:age$lt:40)`.
// Operators $eq $ne $gt $gte $lt $lte $like $in $nin $null; joins $and: / $or: with parentheses;
// escapes `$$ $( $) $* $, $[ $]`. `$and:` binds tighter than `$or:`. Comparisons of strings ignore case.

export type FilterOp = "eq" | "ne" | "gt" | "gte" | "lt" | "lte" | "like" | "in" | "nin" | "null";
const OPS = new Set<string>(["eq", "ne", "gt", "gte", "lt", "lte", "like", "in", "nin", "null"]);

/** A literal piece of a value, or the `*` wildcard (only meaningful for $like). */
type Piece = string | { wildcard: true };

export type FilterNode =
  | { kind: "and" | "or"; nodes: FilterNode[] }
  | { kind: "cond"; field: string; op: FilterOp; pieces: Piece[]; list: string[] };

export class FilterError extends Error {}

export function parseFilter(input: string): FilterNode {
  const p = new Parser(input);
  const node = p.parseOr();
  if (!p.atEnd()) throw new FilterError(`Unexpected text at position ${p.pos} in filter.`);
  return node;
}

/** Every field a filter mentions, for the allow-list check. */
export function filterFields(node: FilterNode): string[] {
  return node.kind === "cond" ? [node.field] : node.nodes.flatMap(filterFields);
}

export function matchesFilter(node: FilterNode, item: unknown): boolean {
  if (node.kind === "cond") return matchCondition(node, valueAt(item, node.field));
  return node.kind === "and" ? node.nodes.every((n) => matchesFilter(n, item)) : node.nodes.some((n) => matchesFilter(n, item));
}

export function valueAt(item: unknown, dotted: string): unknown {
  let v: any = item;
  for (const key of dotted.split(".")) {
    if (v === null || typeof v !== "object") return undefined;
    v = v[key];
  }
  return v;
}

class Parser {
  pos = 0;
  constructor(private readonly s: string) {}

  atEnd(): boolean {
    return this.pos >= this.s.length;
  }

  private startsWith(token: string): boolean {
    return this.s.startsWith(token, this.pos);
  }

  parseOr(): FilterNode {
    const nodes = [this.parseAnd()];
    while (this.startsWith("$or:")) {
      this.pos += 4;
      nodes.push(this.parseAnd());
    }
    return nodes.length === 1 ? nodes[0]! : { kind: "or", nodes };
  }

  private parseAnd(): FilterNode {
    const nodes = [this.parseTerm()];
    while (this.startsWith("$and:")) {
      this.pos += 5;
      nodes.push(this.parseTerm());
    }
    return nodes.length === 1 ? nodes[0]! : { kind: "and", nodes };
  }

  private parseTerm(): FilterNode {
    if (this.s[this.pos] === "(") {
      this.pos++;
      const inner = this.parseOr();
      if (this.s[this.pos] !== ")") throw new FilterError("Missing ')' in filter.");
      this.pos++;
      return inner;
    }
    return this.parseCondition();
  }

  private parseCondition(): FilterNode {
    const field = /^[A-Za-z0-9_.]+/.exec(this.s.slice(this.pos))?.[0];
    if (!field) throw new FilterError(`Expected a property name at position ${this.pos} in filter.`);
    this.pos += field.length;
    const op = /^\$([a-z]+):/i.exec(this.s.slice(this.pos));
    if (!op || !OPS.has(op[1]!.toLowerCase())) throw new FilterError(`Expected an operator such as $eq: after '${field}' in filter.`);
    this.pos += op[0].length;
    const kind = op[1]!.toLowerCase() as FilterOp;
    if (kind === "in" || kind === "nin") return { kind: "cond", field, op: kind, pieces: [], list: this.readList() };
    return { kind: "cond", field, op: kind, pieces: this.readValue(false), list: [] };
  }

  private readList(): string[] {
    if (this.s[this.pos] !== "[") throw new FilterError("$in: and $nin: take a list such as [2,5,7].");
    this.pos++;
    const items: string[] = [];
    for (;;) {
      items.push(piecesText(this.readValue(true)).trim());
      const c = this.s[this.pos++];
      if (c === "]") break;
      if (c !== ",") throw new FilterError("Missing ']' in filter list.");
    }
    if (items.length > 200) throw new FilterError("$in: takes at most 200 values.");
    return items;
  }

  /** Reads up to the next unescaped `)`, `$and:`, `$or:` (and `,` / `]` inside a list). */
  private readValue(inList: boolean): Piece[] {
    const pieces: Piece[] = [];
    let text = "";
    while (!this.atEnd()) {
      const c = this.s[this.pos]!;
      if (c === "$") {
        if (this.startsWith("$and:") || this.startsWith("$or:")) break;
        const next = this.s[this.pos + 1];
        if (next !== undefined && "$()*,[]".includes(next)) {
          text += next;
          this.pos += 2;
          continue;
        }
      }
      if (c === ")" || (inList && (c === "," || c === "]"))) break;
      if (c === "*") {
        if (text) pieces.push(text);
        text = "";
        pieces.push({ wildcard: true });
        this.pos++;
        continue;
      }
      text += c;
      this.pos++;
    }
    if (text) pieces.push(text);
    return pieces;
  }
}

function piecesText(pieces: Piece[]): string {
  return pieces.map((p) => (typeof p === "string" ? p : "*")).join("");
}

function matchCondition(cond: Extract<FilterNode, { kind: "cond" }>, actual: unknown): boolean {
  const text = piecesText(cond.pieces);
  switch (cond.op) {
    case "null":
      return (text.toLowerCase() === "false") !== (actual === null || actual === undefined);
    case "in":
      return cond.list.some((v) => compare(actual, v) === 0);
    case "nin":
      return !cond.list.some((v) => compare(actual, v) === 0);
    case "like":
      return typeof actual === "string" && likeRegExp(cond.pieces).test(actual);
    case "ne":
      return compare(actual, text) !== 0;
    default: {
      const c = compare(actual, text);
      if (c === undefined) return false;
      return cond.op === "eq" ? c === 0 : cond.op === "gt" ? c > 0 : cond.op === "gte" ? c >= 0 : cond.op === "lt" ? c < 0 : c <= 0;
    }
  }
}

/** -1/0/1 comparing the resource's value with the filter text, typed by the resource's value. */
function compare(actual: unknown, text: string): number | undefined {
  if (actual === null || actual === undefined) return undefined;
  if (typeof actual === "number") {
    const n = Number(text);
    return Number.isNaN(n) || text.trim() === "" ? undefined : Math.sign(actual - n);
  }
  if (typeof actual === "boolean") return actual === (text.toLowerCase() === "true") ? 0 : actual ? 1 : -1;
  const a = String(actual).toLowerCase();
  const b = text.toLowerCase();
  return a === b ? 0 : a > b ? 1 : -1;
}

/** `$like:` without `*` means "contains"; with `*` the pattern is anchored. */
function likeRegExp(pieces: Piece[]): RegExp {
  const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const hasWildcard = pieces.some((p) => typeof p !== "string");
  const body = pieces.map((p) => (typeof p === "string" ? escapeRe(p) : ".*")).join("");
  return new RegExp(hasWildcard ? `^${body}$` : body, "is");
}
