// Applies a template to rows: filters, formats every cell, joins the lines and encodes the file. Pure.
// Whatever had to be changed to fit the format (characters the encoding lacks, values cut to maxLength,
// delimiters in unquoted values) is reported as warnings, never changed silently.
import { problem, type Problem } from "../../agent/problem.ts";
import type { Template, TemplateColumn, TemplateFilter } from "./definition.ts";
import { ENCODING_TITLES, encodeText, toEncodable } from "../encoding.ts";
import { CUTTABLE_FIELDS, FIELDS, filterFieldType, filtersRecords, type FieldType } from "./fields.ts";
import { csvCell, formatDate, formatDecimal, formatMoney, neutraliseFormula } from "./format.ts";
import type { Row, Value } from "./rows.ts";

const isEmpty = (v: Value) => v === undefined || v === "";

function typed(value: unknown, type: FieldType): Value {
  if (type === "money") return Math.round(Number(value) * 100);
  if (type === "decimal" || type === "integer") return Number(value);
  if (type === "boolean") return value === true || value === "true";
  return String(value);
}

function compare(a: Value, b: Value, type: FieldType): number {
  if (type === "money" || type === "decimal" || type === "integer") return Number(a) - Number(b);
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

function matches(row: Row, f: TemplateFilter, type: FieldType): boolean {
  const v = row[f.field];
  if (f.op === "empty") return isEmpty(v);
  if (f.op === "not_empty") return !isEmpty(v);
  const values = (Array.isArray(f.value) ? f.value : [f.value]).map((x) => typed(x, type));
  const eq = (x: Value) => !isEmpty(v) && compare(v, x, type) === 0 && (type !== "boolean" || v === x);
  switch (f.op) {
    case "eq":
      return eq(values[0]);
    case "ne":
      return !eq(values[0]);
    case "in":
      return values.some(eq);
    case "not_in":
      return !values.some(eq);
    case "contains":
      return !isEmpty(v) && String(v).toLowerCase().includes(String(values[0]).toLowerCase());
    case "starts_with":
      return !isEmpty(v) && String(v).toLowerCase().startsWith(String(values[0]).toLowerCase());
    default: {
      if (isEmpty(v)) return false;
      const c = compare(v, values[0], type);
      return f.op === "gt" ? c > 0 : f.op === "gte" ? c >= 0 : f.op === "lt" ? c < 0 : c <= 0;
    }
  }
}

/** The rows every filter lets through (filters are combined with AND); see recordFilter for grouped rows. */
export function applyFilters(t: Template, rows: Row[]): Row[] {
  const filters = t.filters.filter((f) => !filtersRecords(t.dataType, f.field));
  return rows.filter((row) => filters.every((f) => matches(row, f, filterFieldType(t.dataType, f.field)!)));
}

/** For grouped time records: the filters that choose the time records before grouping (undefined if none). */
export function recordFilter(t: Template): ((row: Row) => boolean) | undefined {
  const filters = t.filters.filter((f) => filtersRecords(t.dataType, f.field));
  if (filters.length === 0) return undefined;
  return (row) => filters.every((f) => matches(row, f, filterFieldType(t.dataType, f.field)!));
}

/** One value as text, per the column's (or else the template's) format. */
export function formatValue(t: Template, c: TemplateColumn, row: Row): string {
  if (c.value !== undefined) return c.value;
  const v = row[c.field!];
  if (v === undefined || v === null || v === "") return "";
  switch (FIELDS[t.dataType][c.field!]!.type) {
    case "date":
      return formatDate(String(v), c.dateFormat ?? t.dateFormat);
    case "money":
      return formatMoney(Number(v), c.decimals ?? 2, c.decimalSeparator ?? t.decimalSeparator);
    case "decimal":
      return formatDecimal(Number(v), c.decimals ?? 2, c.decimalSeparator ?? t.decimalSeparator);
    case "boolean":
      return v ? (c.trueText ?? t.trueText) : (c.falseText ?? t.falseText);
    default:
      return String(v);
  }
}

export interface Rendered {
  bytes: Uint8Array;
  /** The file as text (what a reader decodes from `bytes`). */
  text: string;
  header: string[] | null;
  /** The formatted cells of each written row. */
  cells: string[][];
  /** The rows written, after filters (to mark invoices as transferred). */
  rows: Row[];
  warnings: Problem[];
  /** Values that cannot be written as the template says (too long and not to be cut): no file may be made. */
  errors: Problem[];
}

interface Tally {
  count: number;
  example: string;
}

/** Writes the file for already-built rows. `limit` cuts the output (previews). */
export function renderTemplate(t: Template, allRows: Row[], options: { limit?: number } = {}): Rendered {
  const filtered = applyFilters(t, allRows);
  const rows = options.limit === undefined ? filtered : filtered.slice(0, options.limit);
  const fields = FIELDS[t.dataType];
  const eol = t.lineEnding === "lf" ? "\n" : "\r\n";
  const substituted = new Map<string, Tally>();
  const truncated = new Map<number, Tally>();
  const tooLong = new Map<number, Tally>();
  const delimiterChanged: Tally = { count: 0, example: "" };
  const formulas: Tally = { count: 0, example: "" };

  /** `fromPsa`: a text field's value (not a header or constant the template's author wrote), guarded against formulas. */
  const cellText = (raw: string, colIndex: number, rowIndex: number, isText: boolean, forceQuote = false, fromPsa = false): string => {
    const c = t.columns[colIndex]!;
    const enc = toEncodable(raw, t.encoding);
    if (fromPsa && t.formulas === "neutralise") {
      const guarded = neutraliseFormula(enc.text);
      if (guarded !== enc.text) {
        formulas.count++;
        formulas.example ||= `row ${rowIndex + 1}, column "${c.header || colIndex + 1}": "${enc.text.slice(0, 60)}"`;
        enc.text = guarded;
      }
    }
    for (const s of enc.substitutions) {
      const key = `${s.char} → ${s.replacement}`;
      const tally = substituted.get(key) ?? { count: 0, example: `row ${rowIndex + 1}, column "${c.header || colIndex + 1}"` };
      tally.count++;
      substituted.set(key, tally);
    }
    // Cut after transliteration (€ → EUR is longer), so the written value really fits.
    let value = enc.text;
    if (c.maxLength !== undefined && [...value].length > c.maxLength) {
      const cuttable = rowIndex < 0 || (c.field !== undefined && CUTTABLE_FIELDS.has(c.field));
      if (cuttable) value = [...value].slice(0, c.maxLength).join("");
      const tallies = cuttable ? truncated : tooLong;
      const tally = tallies.get(colIndex) ?? { count: 0, example: `row ${rowIndex + 1}: "${raw.slice(0, 60)}"` };
      tally.count++;
      tallies.set(colIndex, tally);
    }
    const cell = csvCell(value, t.delimiter, forceQuote ? "all" : t.quote, isText);
    if (cell.changed) {
      delimiterChanged.count++;
      delimiterChanged.example ||= `row ${rowIndex + 1}, column "${c.header || colIndex + 1}"`;
    }
    return cell.cell;
  };

  const header = t.headerRow ? t.columns.map((c, i) => cellText(c.header, i, -1, true, t.quoteHeader)) : null;
  const cells = rows.map((row, r) =>
    t.columns.map((c, i) => {
      const isField = c.value === undefined && fields[c.field!]!.type === "text";
      return cellText(formatValue(t, c, row), i, r, isField || c.value !== undefined, false, isField);
    }),
  );
  const lines = [...(header ? [header] : []), ...cells].map((cs) => cs.join(t.delimiter));
  const text = lines.length > 0 ? lines.join(eol) + eol : "";

  const warnings: Problem[] = [];
  if (substituted.size > 0) {
    const list = [...substituted].map(([k, v]) => `${k} (${v.count}×, first at ${v.example})`).join("; ");
    warnings.push(
      problem(
        "template.characters_replaced",
        `Some characters cannot be written in ${ENCODING_TITLES[t.encoding]} and were replaced: ${list}.`,
        "Check these values in the file; choose UTF-8 (or windows-1252 for €) if the receiving system reads it.",
        "encoding",
      ),
    );
  }
  for (const [i, v] of truncated) {
    warnings.push(
      problem(
        "template.value_truncated",
        `Column ${i + 1} ("${t.columns[i]!.header}"): ${v.count} value(s) were longer than ${t.columns[i]!.maxLength} characters and were cut (${v.example}).`,
        "The receiving format allows no more; shorten the text in the PSA, or raise maxLength if the target accepts longer values.",
        `columns.${i}.maxLength`,
      ),
    );
  }
  if (delimiterChanged.count > 0) {
    warnings.push(
      problem(
        "template.delimiter_in_value",
        `${delimiterChanged.count} value(s) contained the delimiter "${t.delimiter}" or a quote and were changed, because values are never quoted (first at ${delimiterChanged.example}).`,
        'Set quote to "as_needed" if the receiving system reads quoted values.',
        "quote",
      ),
    );
  }
  if (formulas.count > 0) {
    warnings.push(
      problem(
        "template.formula_neutralised",
        `${formulas.count} value(s) would run as a formula in a spreadsheet and were written with a leading ' (first at ${formulas.example}).`,
        'Nothing to do if the file is opened in a spreadsheet; if a system reads it and needs the values as they are, set formulas to "keep" in the template.',
        "formulas",
      ),
    );
  }
  const errors = [...tooLong]
    .sort(([a], [b]) => a - b)
    .map(([i, v]) =>
      problem(
        "template.value_too_long",
        `Column ${i + 1} ("${t.columns[i]!.header}"): ${v.count} value(s) are longer than ${t.columns[i]!.maxLength} characters, first in ${v.example}. Cutting it would write another number, code or amount, so no file was written.`,
        "Raise the column's maxLength if the receiving system takes longer values; otherwise change the value in the PSA (or in exports.posting) to fit.",
        `columns.${i}.maxLength`,
      ),
    );
  return { bytes: encodeText(text, t.encoding), text, header, cells, rows, warnings, errors };
}

const fileNamePattern = (t: Template, withPeriod: boolean): string =>
  t.fileName ?? (withPeriod ? `${t.name}_{from}-{to}_{run}.csv` : `${t.name}_{date}_{run}.csv`);
const safeFileName = (name: string) => name.replace(/[^A-Za-z0-9._-]/g, "_");

/** File name from the template's pattern ({from}, {to}, {date}, {run}) or a default; safe characters only. */
export function templateFileName(t: Template, at: { today: string; from?: string; to?: string; run: number }): string {
  const compact = (d?: string) => (d ?? "").replaceAll("-", "");
  const name = fileNamePattern(t, !!at.from)
    .replaceAll("{from}", compact(at.from))
    .replaceAll("{to}", compact(at.to))
    .replaceAll("{date}", compact(at.today))
    .replaceAll("{run}", String(at.run));
  return safeFileName(name);
}

const PLACEHOLDER_PATTERNS: Record<string, string> = {
  "{from}": "(?:\\d{8})?",
  "{to}": "(?:\\d{8})?",
  "{date}": "\\d{8}",
  "{run}": "\\d+",
};

/** Every name templateFileName() can give `t` (any day, period and run). */
export function templateFileNameRegExp(t: Template): RegExp {
  const one = (pattern: string) =>
    pattern
      .split(/(\{(?:from|to|date|run)\})/)
      .map((part, i) => (i % 2 === 1 ? PLACEHOLDER_PATTERNS[part]! : safeFileName(part).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
      .join("");
  return new RegExp(`^(?:${[fileNamePattern(t, false), fileNamePattern(t, true)].map(one).join("|")})$`);
}
