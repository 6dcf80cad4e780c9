// SQL written once for both engines: the text is SQLite's (numbered ?N parameters, as the outbox writes it
// today); PostgreSQL gets it through toPostgres (pure, cached per text by the caller), and its rows through
// rowsFromPostgres, so a statement reads the same values on both engines.
import { TENANT_COLUMN } from "./tenancy.ts";

/** PostgreSQL type ids whose values Bun returns as strings: int8 (count(*), bigint columns) and numeric (sum). */
const INT8 = 20;
const NUMERIC = 1700;

/**
 * SQLite text → PostgreSQL text: `?N` and `?` become `$N` (a bare `?` takes the next number, as in SQLite);
 * every `ON CONFLICT (cols)` becomes `ON CONFLICT (tenant_id, cols)`, as every unique key on PostgreSQL starts
 * with the tenant (agent/db/pg/mirror.ts); a camelCase alias (`AS eventSeq`) is quoted so it keeps its case;
 * `json_each(?N)` over a JSON array parameter becomes json_array_elements_text (rows of `value` on both);
 * `json_extract(column, '$.field')` becomes `->>` on the column read as json (a field's text: the stored payloads
 * hold strings where SQL reads a field; a number would come back as text here); `json_object(name, value, …)` becomes
 * json_build_object (read it with CAST(… AS TEXT): typed json, Bun would parse it); SQLite's planner hints (INDEXED
 * BY, unary +) are dropped.
 * String literals, quoted names and comments are left as they are.
 */
export function toPostgres(text: string): string {
  let out = "";
  let highest = 0;
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === "'" || ch === '"') {
      const end = closingQuote(text, i, ch);
      out += text.slice(i, end);
      i = end;
    } else if (ch === "-" && text[i + 1] === "-") {
      const end = text.indexOf("\n", i);
      const stop = end === -1 ? text.length : end;
      out += text.slice(i, stop);
      i = stop;
    } else if (ch === "?") {
      const digits = /^\d*/.exec(text.slice(i + 1))![0];
      const n = digits ? Number(digits) : highest + 1;
      highest = Math.max(highest, n);
      out += `$${n}`;
      i += 1 + digits.length;
    } else {
      const atWord = i === 0 || /\W/.test(text[i - 1]!);
      const ahead = text.slice(i, i + 80);
      const conflict = atWord ? /^ON\s+CONFLICT\s*\(/i.exec(ahead) : null;
      const alias = atWord ? /^(?:AS|as)\s+([a-z][a-z0-9_]*[A-Z][A-Za-z0-9_]*)\b/.exec(ahead) : null;
      const jsonEach = atWord ? /^json_each\(\s*\?(\d*)\s*\)/i.exec(ahead) : null;
      const jsonObject = atWord ? /^json_object\(/i.exec(ahead) : null;
      const jsonField = atWord ? /^json_extract\(\s*([A-Za-z_][\w.]*)\s*,\s*'\$\.([A-Za-z_]\w*)'\s*\)/i.exec(ahead) : null;
      // SQLite's planner hints (INDEXED BY name; a unary + that keeps an index from being used) mean nothing here.
      const indexedBy = atWord ? /^INDEXED\s+BY\s+\w+\s*/i.exec(ahead) : null;
      const unaryPlus = ch === "+" && /(^|[(,=]|\b(AND|OR|WHERE|ON|NOT))\s*$/i.test(out) && /^[A-Za-z_]/.test(text[i + 1] ?? "");
      if (unaryPlus) {
        i++;
      } else if (indexedBy) {
        i += indexedBy[0].length;
      } else if (jsonEach) {
        // A JSON array parameter as rows of `value` (set-based reads: WHERE id IN (SELECT value FROM json_each(?1))).
        // The parameter is text (the JSON the caller made); typed json, Bun would encode the string once more.
        const n = jsonEach[1] ? Number(jsonEach[1]) : highest + 1;
        highest = Math.max(highest, n);
        out += `json_array_elements_text(CAST(CAST($${n} AS text) AS json))`;
        i += jsonEach[0].length;
      } else if (jsonObject) {
        // The same arguments (name, value, …); PostgreSQL's json_object takes arrays of names and values.
        out += "json_build_object(";
        i += jsonObject[0].length;
      } else if (jsonField) {
        out += `(CAST(${jsonField[1]} AS json) ->> '${jsonField[2]}')`;
        i += jsonField[0].length;
      } else if (conflict) {
        out += `ON CONFLICT (${TENANT_COLUMN}, `;
        i += conflict[0].length;
      } else if (alias) {
        // PostgreSQL folds an unquoted name to lower case (eventSeq → eventseq); SQLite keeps it.
        out += `AS "${alias[1]}"`;
        i += alias[0].length;
      } else {
        out += ch;
        i++;
      }
    }
  }
  return out;
}

/** Index just past the quote that closes the one at `start` (a doubled quote is an escaped one). */
function closingQuote(text: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < text.length) {
    if (text[i] === quote) {
      if (text[i + 1] === quote) i += 2;
      else return i + 1;
    } else i++;
  }
  throw new Error(`unterminated ${quote === "'" ? "string" : "quoted name"} in SQL: ${text.slice(start, start + 60)}`);
}

interface PgResultColumn {
  name: string;
  type: number;
}

/** Rows as SQLite gives them: int8 and numeric values as numbers (epoch ms, ids and counts are far below 2^53). */
export function rowsFromPostgres<T = Record<string, unknown>>(
  rows: Record<string, unknown>[],
  columns: PgResultColumn[] | null | undefined,
): T[] {
  const numeric = (columns ?? []).filter((c) => c.type === INT8 || c.type === NUMERIC);
  if (numeric.length === 0) return rows as T[];
  for (const row of rows) {
    for (const { name, type } of numeric) {
      const v = row[name];
      if (typeof v !== "string") continue;
      const n = Number(v);
      if (type === INT8 && !Number.isSafeInteger(n)) throw new Error(`${name}: ${v} is beyond what a JavaScript number holds exactly`);
      row[name] = n;
    }
  }
  return rows as T[];
}
