// An export template: which data type, which columns (field or constant, header, date and number
// format), delimiter, encoding, header row, quoting and filters. zod for the shape, then checks against
// the data type's fields, so every mistake comes back as a Problem naming the field to fix.
import { z } from "zod";
import { lazySchema, once } from "../../agent/lazy-schema.ts";
import { issuesToProblems, problem, type Problem } from "../../agent/problem.ts";
import { ENCODINGS } from "../encoding.ts";
import {
  AGGREGATE_FIELDS,
  DATA_TYPES,
  DATA_TYPE_TITLES,
  DEFAULT_GROUP_BY,
  FIELDS,
  GROUP_KEYS,
  filterFieldType,
  SELECTION,
  WHOLE_DOCUMENTS,
  type DataType,
  type FieldType,
} from "./fields.ts";
import { checkDateFormat } from "./format.ts";
import { findJsonError } from "./json-error.ts";

export const TEMPLATE_NAME = /^[a-z0-9][a-z0-9_-]{0,59}$/;
export const FILTER_OPS = ["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "starts_with", "empty", "not_empty"] as const;
export type FilterOp = (typeof FILTER_OPS)[number];

const scalar = once(() => z.union([z.string().max(200), z.number(), z.boolean()]));

const templateColumn = once(() =>
  z.strictObject({
    /** The header row's text for this column. */
    header: z.string().max(100).default(""),
    /** A field of the data type … */
    field: z.string().max(60).optional(),
    /** … or a constant written on every row (e.g. "GBAT10"); "" for an empty column. */
    value: z.string().max(500).optional(),
    /** Dates: yyyy, yy, MM, M, dd, d and literal separators. Overrides the template's dateFormat. */
    dateFormat: z.string().optional(),
    /** Money and decimal fields: digits after the separator. Money defaults to 2, decimals to 2. */
    decimals: z.number().int().min(0).max(6).optional(),
    decimalSeparator: z.enum([".", ","]).optional(),
    /** Booleans: what to write for true and false. */
    trueText: z.string().max(20).optional(),
    falseText: z.string().max(20).optional(),
    /** Longer values are cut to this many characters (reported). */
    maxLength: z.number().int().min(1).max(10_000).optional(),
    /** What is known or guessed about this column of the target format. */
    note: z.string().max(500).optional(),
    /** The column's meaning or format in the target system is a guess (shown in lists and previews). */
    guess: z.boolean().optional(),
  }),
);
export const TemplateColumn = lazySchema(templateColumn);
export type TemplateColumn = z.infer<typeof TemplateColumn>;

const templateFilter = once(() =>
  z.strictObject({
    field: z.string().max(60),
    op: z.enum(FILTER_OPS),
    /** Not used by empty / not_empty; a list for in / not_in; money in currency units (1000.50). */
    value: z.union([scalar(), z.array(scalar()).max(500)]).optional(),
  }),
);
export const TemplateFilter = lazySchema(templateFilter);
export type TemplateFilter = z.infer<typeof TemplateFilter>;

const template = once(() =>
  z.strictObject({
    name: z.string().regex(TEMPLATE_NAME, { error: "must be 1–60 lowercase letters, digits, - or _, starting with a letter or digit" }),
    title: z.string().max(200).optional(),
    description: z.string().max(2000).optional(),
    dataType: z.enum(DATA_TYPES),
    delimiter: z.string().length(1, { error: "must be one character, e.g. ; or , or a tab" }).default(";"),
    encoding: z.enum(ENCODINGS).default("utf-8"),
    lineEnding: z.enum(["crlf", "lf"]).default("crlf"),
    headerRow: z.boolean().default(true),
    quote: z.enum(["as_needed", "all", "text", "never"]).default("as_needed"),
    /** Quote every header cell, whatever `quote` says (Visma Document Center wants this). */
    quoteHeader: z.boolean().default(false),
    dateFormat: z.string().default("yyyy-MM-dd"),
    /**
     * Texts from the PSA that a spreadsheet would run as a formula (`=…`, `@…`, `+`/`-` and more than a number):
     * "neutralise" writes them with a leading `'`; "keep" writes them as they are (a system that reads the file itself).
     */
    formulas: z.enum(["neutralise", "keep"]).default("neutralise"),
    decimalSeparator: z.enum([".", ","]).default("."),
    trueText: z.string().max(20).default("1"),
    falseText: z.string().max(20).default("0"),
    /** File name; {from}, {to}, {date} (today, yyyyMMdd) and {run} are replaced. */
    fileName: z.string().min(1).max(120).optional(),
    /** time_records_grouped only: the fields rows are grouped by. */
    groupBy: z.array(z.string()).min(1).max(7).optional(),
    filters: z.array(templateFilter()).max(50).default([]),
    columns: z.array(templateColumn()).min(1, { error: "a template needs at least one column" }).max(200),
  }),
);
export const Template = lazySchema(template);
export type Template = z.infer<typeof Template>;
export type TemplateInput = z.input<typeof Template>;

const NUMERIC: FieldType[] = ["integer", "decimal", "money"];
const ORDERED: FieldType[] = [...NUMERIC, "date", "text"];

const FILE_NAME_PLACEHOLDERS = ["{from}", "{to}", "{date}", "{run}"];

/** What is wrong with a file name pattern's placeholders (render.ts templateFileName replaces them), with positions. */
function fileNameProblems(pattern: string, dataType: DataType, name: string): string[] {
  const problems: string[] = [];
  let open = -1;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "{" && open >= 0) problems.push(`"{" (character ${open + 1}) is not closed before the next "{".`);
    if (c === "{") open = i;
    if (c === "}" && open < 0) problems.push(`"}" (character ${i + 1}) closes no "{".`);
    if (c === "}" && open >= 0) {
      const placeholder = pattern.slice(open, i + 1);
      if (!FILE_NAME_PLACEHOLDERS.includes(placeholder)) problems.push(`"${placeholder}" (character ${open + 1}) is not a placeholder.`);
      else if ((placeholder === "{from}" || placeholder === "{to}") && SELECTION[dataType] !== "period")
        problems.push(
          `${DATA_TYPE_TITLES[dataType]} are not exported by period, so ${placeholder} is always empty in "${name}"'s file names.`,
        );
      open = -1;
    }
  }
  if (open >= 0) problems.push(`"{" (character ${open + 1}) is not closed.`);
  return problems;
}

/** Checks a template against its data type's fields. Pure; [] when the template is usable. */
export function checkTemplate(t: Template): Problem[] {
  const problems: Problem[] = [];
  const fields = FIELDS[t.dataType];
  const known = Object.keys(fields);
  const say = (code: string, field: string, message: string, hint: string) =>
    problems.push(problem(`template.${code}`, `${field}: ${message}`, hint, field));
  const grouped = t.dataType === "time_records_grouped";
  const groupBy = grouped ? (t.groupBy ?? DEFAULT_GROUP_BY) : [];
  const carried = new Set(groupBy.flatMap((k) => [k, ...(GROUP_KEYS[k] ?? [])]));
  const groupKeyFields = new Set(Object.entries(GROUP_KEYS).flatMap(([k, v]) => [k, ...v]));

  if (['"', "\r", "\n"].includes(t.delimiter))
    say("bad_delimiter", "delimiter", "a quote or line break cannot separate columns.", "Use ; or , or a tab.");
  if (t.delimiter === t.decimalSeparator && t.quote === "never") {
    say(
      "delimiter_clash",
      "decimalSeparator",
      `the decimal separator "${t.decimalSeparator}" is also the delimiter and values are never quoted.`,
      "Use another delimiter, the other decimal separator, or quote as needed.",
    );
  }
  /** With quote never, a delimiter inside a value becomes a space: in an amount, date or yes/no text that is another value. */
  const clash = (at: string, what: string) =>
    say(
      "delimiter_clash",
      at,
      `${what} the delimiter "${t.delimiter}", and values are never quoted: it would be written as a space, which is another value.`,
      'Use another delimiter, change this format, or set quote to "as_needed".',
    );
  if (t.fileName !== undefined) {
    for (const p of fileNameProblems(t.fileName, t.dataType, t.name))
      say(
        "bad_file_name",
        "fileName",
        p,
        `Use {from}, {to}, {date} (today) or {run} (the export's number), e.g. ${t.name}_{date}_{run}.csv.`,
      );
  }
  const dateProblem = checkDateFormat(t.dateFormat);
  if (dateProblem) say("bad_date_format", "dateFormat", dateProblem, "Write dates with yyyy, MM and dd, e.g. yyyyMMdd or dd.MM.yyyy.");
  if (t.groupBy && !grouped)
    say(
      "group_by_not_allowed",
      "groupBy",
      `only ${DATA_TYPE_TITLES.time_records_grouped} can be grouped.`,
      "Remove groupBy, or use the data type time_records_grouped.",
    );
  groupBy.forEach((k, i) => {
    if (!(k in GROUP_KEYS))
      say("bad_group_by", `groupBy.${i}`, `"${k}" cannot be grouped by.`, `Use some of: ${Object.keys(GROUP_KEYS).join(", ")}.`);
  });

  const fieldProblem = (name: string | undefined, at: string): FieldType | undefined => {
    if (name === undefined) return undefined;
    const spec = fields[name];
    if (!spec) {
      say("unknown_field", at, `"${name}" is not a field of ${DATA_TYPE_TITLES[t.dataType]}.`, `Use one of: ${known.join(", ")}.`);
      return undefined;
    }
    if (grouped && groupKeyFields.has(name) && !carried.has(name)) {
      say(
        "field_not_grouped",
        at,
        `"${name}" is not in groupBy, so a group has no single value for it.`,
        `Add ${Object.entries(GROUP_KEYS).find(([k, v]) => k === name || v.includes(name))![0]} to groupBy, or remove the column.`,
      );
    }
    return spec.type;
  };

  t.columns.forEach((c, i) => {
    const at = `columns.${i}`;
    if ((c.field === undefined) === (c.value === undefined)) {
      say(
        "field_or_value",
        at,
        "set either field (a field of the data type) or value (a constant), not both or neither.",
        'Add "field": "number", or "value": "" for an empty column.',
      );
      return;
    }
    const type = fieldProblem(c.field, `${at}.field`);
    if (c.value !== undefined) {
      for (const k of ["dateFormat", "decimals", "decimalSeparator", "trueText", "falseText"] as const) {
        if (c[k] !== undefined) say("format_not_applicable", `${at}.${k}`, "a constant column is written as it is.", `Remove ${k}.`);
      }
      return;
    }
    if (!type) return;
    if (t.quote === "never") {
      const separator = c.decimalSeparator ?? t.decimalSeparator;
      const digits = /^\d$/.test(t.delimiter);
      if ((type === "money" || type === "decimal") && c.decimalSeparator !== undefined && separator === t.delimiter)
        clash(`${at}.decimalSeparator`, `the decimal separator "${separator}" is`);
      else if ((type === "money" || type === "decimal" || type === "integer") && (t.delimiter === "-" || digits))
        clash(`${at}.field`, `a number can contain`);
      const dateFormat = c.dateFormat ?? t.dateFormat;
      if (type === "date" && (digits || dateFormat.replace(/yyyy|yy|MM|M|dd|d/g, "").includes(t.delimiter)))
        clash(`${at}.${c.dateFormat !== undefined ? "dateFormat" : "field"}`, `the date format "${dateFormat}" writes`);
      for (const k of ["trueText", "falseText"] as const)
        if (type === "boolean" && (c[k] ?? t[k]).includes(t.delimiter))
          clash(`${at}.${c[k] !== undefined ? k : "field"}`, `${k} "${c[k] ?? t[k]}" contains`);
    }
    if (c.dateFormat !== undefined) {
      if (type !== "date")
        say("format_not_applicable", `${at}.dateFormat`, `"${c.field}" is ${type}, not a date.`, "Remove dateFormat from this column.");
      else {
        const p = checkDateFormat(c.dateFormat);
        if (p) say("bad_date_format", `${at}.dateFormat`, p, "Write dates with yyyy, MM and dd, e.g. yyyyMMdd.");
      }
    }
    if ((c.decimals !== undefined || c.decimalSeparator !== undefined) && !(type === "money" || type === "decimal")) {
      say(
        "format_not_applicable",
        `${at}.${c.decimals !== undefined ? "decimals" : "decimalSeparator"}`,
        `"${c.field}" is ${type}, not an amount or a number with decimals.`,
        "Remove the number format from this column.",
      );
    }
    if ((c.trueText !== undefined || c.falseText !== undefined) && type !== "boolean") {
      say(
        "format_not_applicable",
        `${at}.${c.trueText !== undefined ? "trueText" : "falseText"}`,
        `"${c.field}" is ${type}, not yes/no.`,
        "Remove trueText/falseText from this column.",
      );
    }
  });

  t.filters.forEach((flt, i) => {
    const at = `filters.${i}`;
    const type = grouped ? filterFieldType(t.dataType, flt.field) : fieldProblem(flt.field, `${at}.field`);
    if (!type) {
      if (grouped)
        say(
          "unknown_field",
          `${at}.field`,
          `"${flt.field}" is not a field of time records or of their groups.`,
          `Use a time record field (${Object.keys(FIELDS.time_records).join(", ")}, month) or a group total (${[...AGGREGATE_FIELDS].join(", ")}).`,
        );
      return;
    }
    const whole = WHOLE_DOCUMENTS[t.dataType];
    if (whole && !whole.fields.includes(flt.field)) {
      say(
        "row_filter",
        `${at}.field`,
        `"${flt.field}" is a field of one ${whole.row}: a filter on it would write only some rows of an ${whole.document} (an unbalanced voucher at import) and still mark the whole ${whole.document} transferred, so the rest would never be exported.`,
        `Filter on the ${whole.document}'s own fields, which keep or leave out an ${whole.document} whole: ${whole.fields.join(", ")}. To keep ${whole.document}s out of every export, set their export status to "do not transfer".`,
      );
      return;
    }
    const needsValue = flt.op !== "empty" && flt.op !== "not_empty";
    const list = flt.op === "in" || flt.op === "not_in";
    if (needsValue && flt.value === undefined)
      say("filter_value_missing", `${at}.value`, `"${flt.op}" needs a value.`, "Add a value to compare with.");
    if (list && flt.value !== undefined && !Array.isArray(flt.value))
      say("filter_value_not_list", `${at}.value`, `"${flt.op}" needs a list of values.`, 'Write the value as a list, e.g. ["NOK", "SEK"].');
    if (!list && Array.isArray(flt.value))
      say("filter_value_list", `${at}.value`, `"${flt.op}" compares with one value, not a list.`, 'Use "in" for a list.');
    if (["gt", "gte", "lt", "lte"].includes(flt.op) && !ORDERED.includes(type))
      say("filter_op", `${at}.op`, `"${flt.op}" does not apply to a ${type} field.`, "Use eq or ne.");
    if ((flt.op === "contains" || flt.op === "starts_with") && type !== "text")
      say("filter_op", `${at}.op`, `"${flt.op}" applies only to text fields.`, "Use eq, ne, gt or lt.");
    const values = Array.isArray(flt.value) ? flt.value : flt.value === undefined ? [] : [flt.value];
    for (const v of values) {
      if (NUMERIC.includes(type) && !Number.isFinite(Number(v)))
        say(
          "filter_value_type",
          `${at}.value`,
          `"${v}" is not a number.`,
          type === "money" ? "Amounts are in currency units, e.g. 1000.50." : "Give a number.",
        );
      if (type === "date" && !/^\d{4}-\d{2}-\d{2}$/.test(String(v)))
        say("filter_value_type", `${at}.value`, `"${v}" is not a date.`, "Write dates as 2026-03-31.");
      if (type === "boolean" && typeof v !== "boolean")
        say("filter_value_type", `${at}.value`, `"${v}" is not true or false.`, "Write true or false without quotes.");
    }
  });
  return problems;
}

export type ParsedTemplate = { ok: true; template: Template } | { ok: false; problems: Problem[] };

/** Validates anything (a request body, an imported file) as a template: shape, then meaning. */
export function parseTemplate(input: unknown): ParsedTemplate {
  const parsed = Template.safeParse(input);
  if (!parsed.success) return { ok: false, problems: issuesToProblems(parsed.error.issues) };
  const problems = checkTemplate(parsed.data);
  return problems.length > 0 ? { ok: false, problems } : { ok: true, template: parsed.data };
}

/** The file a template is exported as, and imported from: JSON with a format marker. */
export const TEMPLATE_FILE_FORMAT = "kontobro-export-template";

export function templateToFile(t: Template): string {
  return JSON.stringify({ format: TEMPLATE_FILE_FORMAT, version: 1, template: t }, null, 2) + "\n";
}

export function templateFromFile(text: string): ParsedTemplate {
  let json: any;
  try {
    json = JSON.parse(text.replace(/^\ufeff/, ""));
  } catch (e) {
    const at = findJsonError(text.replace(/^\ufeff/, ""));
    return {
      ok: false,
      problems: [
        problem(
          "template.not_json",
          `The file is not valid JSON: ${at ? `line ${at.line}, column ${at.column}: ${at.message}.` : (e as Error).message.slice(0, 200)}`,
          "Fix the file there (a text editor shows line and column), or start again from a file written by `kontobro export template show NAME --out FILE` or the API's template download.",
        ),
      ],
    };
  }
  if (json?.format !== TEMPLATE_FILE_FORMAT || json?.version !== 1 || typeof json?.template !== "object") {
    return {
      ok: false,
      problems: [
        problem(
          "template.not_a_template_file",
          `The file is not a kontobro export template (expected "format": "${TEMPLATE_FILE_FORMAT}", "version": 1 and a "template" object).`,
          "Import a file written by `kontobro export template show NAME --out FILE` or the API's template download.",
          "format",
        ),
      ],
    };
  }
  const r = parseTemplate(json.template);
  return r.ok
    ? r
    : {
        ok: false,
        problems: r.problems.map((p) => ({ ...p, field: p.field ? `template.${p.field}` : "template", message: `template.${p.message}` })),
      };
}

export const templateFileName = (name: string) => `${name}.kontobro-template.json`;
