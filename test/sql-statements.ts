// Every SQL statement the agent writes as text, found in its source: the string and template literals under
// agent/ that start with SELECT, INSERT, UPDATE, DELETE or WITH. A `${NAME}` in a template is filled in from a
// string constant of the same file (`const ROW = "…"`), a `${leaseHeldBy(N)}` with the lease owner's condition
// (agent/db/lease-owner.ts), and a multiRowSql(head, columns, tail) call becomes its statement for one row. What is
// still built from run-time values is reported as such.
// test/pg-dialect.test.ts prepares each statement on a real PostgreSQL server (SQL written once, both engines).
import { Glob } from "bun";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { leaseHeldBy } from "../agent/db/lease-owner.ts";

export interface SqlStatement {
  /** Path from the repository root: "agent/outbox.ts". */
  file: string;
  /** 1-based line of the literal. */
  line: number;
  /** The statement's text, constants filled in. */
  text: string;
  /** The `${…}` expressions left that only run time fills in; empty for a complete statement. */
  builtFrom: string[];
}

interface Literal {
  start: number;
  end: number;
  /** The literal's value; a template's `${expr}` kept as written. */
  value: string;
}

const STATEMENT = /^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\s/;
const CLAUSE = /\b(FROM|INTO|SET|WHERE)\b/;

/** The string and template literals of a TypeScript source, comments and regular expressions aside. */
export function literalsOf(src: string): Literal[] {
  const out: Literal[] = [];
  let i = 0;
  const readTemplate = (from: number): number => {
    // `from` is just past the opening backtick; returns the index just past the closing one.
    let j = from;
    let value = "";
    while (j < src.length && src[j] !== "`") {
      if (src[j] === "\\") {
        value += escapedChar(src[j + 1]!);
        j += 2;
      } else if (src[j] === "$" && src[j + 1] === "{") {
        const close = skipBraces(j + 2);
        value += src.slice(j, close);
        j = close;
      } else value += src[j++];
    }
    out.push({ start: from - 1, end: j + 1, value });
    return j + 1;
  };
  // Index just past the } that closes a ${ (nested braces, strings and templates inside are skipped).
  const skipBraces = (from: number): number => {
    let depth = 1;
    let j = from;
    while (j < src.length && depth > 0) {
      const ch = src[j]!;
      if (ch === "{") depth++;
      else if (ch === "}") depth--;
      else if (ch === '"' || ch === "'") j = skipQuoted(j, ch) - 1;
      else if (ch === "`") j = readTemplate(j + 1) - 1;
      j++;
    }
    return j;
  };
  const skipQuoted = (from: number, quote: string): number => {
    let j = from + 1;
    while (j < src.length && src[j] !== quote && src[j] !== "\n") j += src[j] === "\\" ? 2 : 1;
    return j + 1;
  };
  while (i < src.length) {
    const ch = src[i]!;
    if (ch === "/" && src[i + 1] === "/") i = src.indexOf("\n", i) === -1 ? src.length : src.indexOf("\n", i);
    else if (ch === "/" && src[i + 1] === "*") i = src.indexOf("*/", i + 2) + 2;
    else if (ch === '"' || ch === "'") {
      const end = skipQuoted(i, ch);
      const raw = src.slice(i + 1, end - 1);
      out.push({ start: i, end, value: raw.replace(/\\(.)/g, (_, c: string) => escapedChar(c)) });
      i = end;
    } else if (ch === "`") i = readTemplate(i + 1);
    else if (ch === "/" && /[=(,:!&|?;{}[]\s*$|return\s*$/.test(src.slice(Math.max(0, i - 12), i))) {
      // A regular expression literal: skip it, so its quotes are not taken for strings.
      let j = i + 1;
      let inClass = false;
      while (j < src.length && src[j] !== "\n" && (src[j] !== "/" || inClass)) {
        if (src[j] === "\\") j++;
        else if (src[j] === "[") inClass = true;
        else if (src[j] === "]") inClass = false;
        j++;
      }
      i = j + 1;
    } else i++;
  }
  return out.sort((a, b) => a.start - b.start);
}

function escapedChar(c: string): string {
  return c === "n" ? "\n" : c === "t" ? "\t" : c;
}

/** String constants of a source: const NAME = "…" / `…`, as written (a `${…}` in one is filled where it is used). */
function constantsOf(src: string, literals = literalsOf(src)): Map<string, string> {
  const at = new Map(literals.map((l) => [l.start, l]));
  const constants = new Map<string, string>();
  for (const m of src.matchAll(/\bconst\s+([A-Za-z_$][\w$]*)\s*=\s*/g)) {
    const l = at.get(m.index + m[0].length);
    if (l) constants.set(m[1]!, l.value);
  }
  return constants;
}

/**
 * The statements of one source file (`file` names it in the result). `shared`: constants other files import (those of
 * agent/db/open-deliveries.ts); the file's own of the same name win.
 */
export function statementsOf(file: string, src: string, shared: ReadonlyMap<string, string> = new Map()): SqlStatement[] {
  const literals = literalsOf(src);
  const at = new Map(literals.map((l) => [l.start, l]));
  const constants = new Map([...shared, ...constantsOf(src, literals)]);
  const fill = (text: string, depth = 0): string =>
    depth > 5
      ? text
      : text
          .replace(/\$\{\s*([A-Za-z_$][\w$]*)\s*\}/g, (all, name: string) =>
            constants.has(name) ? fill(constants.get(name)!, depth + 1) : all,
          )
          .replace(/\$\{\s*leaseHeldBy\(\s*(\d+)\s*\)\s*\}/g, (_, n: string) => leaseHeldBy(Number(n)));
  const lineOf = (index: number) => src.slice(0, index).split("\n").length;
  const out: SqlStatement[] = [];
  const consumed = new Set<number>();
  // multiRowSql("INSERT INTO t (a, b)", 2, "RETURNING …") writes "INSERT INTO t (a, b) VALUES (?, ?) RETURNING …".
  for (const m of src.matchAll(/multiRowSql\(\s*/g)) {
    const head = at.get(m.index + m[0].length);
    if (!head) continue;
    const rest = /^\s*,\s*(\d+)\s*(,\s*)?/.exec(src.slice(head.end));
    if (!rest) continue;
    const tail = rest[2] ? at.get(head.end + rest[0].length) : undefined;
    const row = `(${Array.from({ length: Number(rest[1]) }, () => "?").join(", ")})`;
    const text = fill(`${head.value} VALUES ${row} ${tail?.value ?? ""}`);
    consumed.add(head.start);
    out.push({ file, line: lineOf(head.start), text, builtFrom: leftOpen(text) });
  }
  for (const l of literals) {
    if (consumed.has(l.start)) continue;
    const text = fill(l.value);
    if (!STATEMENT.test(text) || !CLAUSE.test(text)) continue;
    out.push({ file, line: lineOf(l.start), text, builtFrom: leftOpen(text) });
  }
  return out.sort((a, b) => a.line - b.line);
}

/** The `${…}` expressions of a text (nested braces and templates inside one included). */
function leftOpen(text: string): string[] {
  const out: string[] = [];
  for (let i = text.indexOf("${"); i !== -1; i = text.indexOf("${", i)) {
    let depth = 0;
    let j = i + 1;
    do {
      if (text[j] === "{") depth++;
      else if (text[j] === "}") depth--;
      j++;
    } while (depth > 0 && j < text.length);
    out.push(text.slice(i + 2, j - 1).trim());
    i = j;
  }
  return out;
}

/** The file whose string constants the agent's statements import (the partial indexes' conditions). */
const SHARED_CONSTANTS = "agent/db/open-deliveries.ts";

/** Every statement under agent/ (the PostgreSQL layer itself and generated files aside). */
export function agentStatements(root = join(import.meta.dir, "..")): SqlStatement[] {
  const files = [...new Glob("agent/**/*.ts").scanSync(root)]
    .filter((f) => !f.startsWith("agent/db/pg/") && !f.endsWith(".generated.ts"))
    .sort();
  const shared = constantsOf(readFileSync(join(root, SHARED_CONSTANTS), "utf8"));
  return files.flatMap((f) => statementsOf(f, readFileSync(join(root, f), "utf8"), shared));
}
