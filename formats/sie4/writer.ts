// Writes SIE 4I (vouchers for import into an accounting program) from a small generic input.
// Pure: no clock, no file system. Every text goes through the CP437 policy and every change is reported.
import { problem, type Problem } from "../../agent/problem.ts";
import type { Substitution } from "../encoding.ts";
import { encodeCp437, toCp437Text } from "./cp437.ts";
import { KsummaAccumulator } from "./ksumma.ts";

export interface SieObjectRef {
  /** 1 = cost centre, 6 = project, 7 = employee, 8 = customer (SIE §8). */
  dimension: number;
  id: string;
}

export interface SieTransactionInput {
  account: string | number;
  objects?: SieObjectRef[];
  /** Integer minor units (öre/øre); debit positive, credit negative. */
  amountMinor: number;
  text?: string;
  /** ISO date; defaults to the voucher date (written only when a text follows). */
  date?: string;
  /** Not written to SIE: what the row is, for exports that list voucher rows (invoices grouped by account). */
  meta?: { role: "receivable" | "revenue" | "vat" | "rounding"; vatCode?: string };
}

export interface SieVoucherInput {
  /** Empty (the default) lets the importer choose; SIE 4I allows both series and number to be empty. */
  series?: string;
  number?: string | number;
  date: string;
  text?: string;
  transactions: SieTransactionInput[];
}

export interface SieWriteInput {
  program: string;
  programVersion: string;
  /** A Date (its UTC day is used) or an ISO date / timestamp. */
  generatedAt: Date | string;
  /** Optional #GEN signature (who generated the file). */
  generatedBy?: string;
  companyName: string;
  orgNumber?: string;
  /** ISO 4217; the spec's default is SEK. Written whenever given. */
  currency?: string;
  /** #KPTYP, e.g. "EUBAS97"; omitted when not given. */
  chartOfAccountsType?: string;
  fiscalYear: { start: string; end: string };
  accounts: { number: string | number; name: string }[];
  dimensions: { id: number; name: string; objects: { id: string; name: string }[] }[];
  vouchers: SieVoucherInput[];
}

export interface SieWriteOptions {
  /** CRLF (default) or LF. The spec ends records with LF and allows a CR before it; Windows importers expect CRLF. */
  lineEnding?: "crlf" | "lf";
  /** Write the opening and closing #KSUMMA (default true). */
  ksumma?: boolean;
  /** A serial number switches the file name from FAKT.SI to the unique SIE4I_… form. */
  serial?: number;
  /** Hears how many vouchers are written so far (an export's progress). */
  progress?: (written: number) => void;
}

export interface SieWriteResult {
  /** The file, CP437. */
  bytes: Uint8Array;
  /** The same file as a string (after substitutions): what a reader decodes from `bytes`. */
  text: string;
  /** Every character that could not be written as given; warn the user about these. */
  substitutions: Substitution[];
  fileName: string;
  /** The #KSUMMA written, if any. */
  ksumma?: number;
}

export class SieWriteError extends Error {
  constructor(readonly problems: Problem[]) {
    super(`cannot write SIE file: ${problems.map((p) => p.message).join("; ")}`);
    this.name = "SieWriteError";
  }
}

type Field = { value: string; quoted: boolean } | { objects: SieObjectRef[] };
interface SieRecord {
  label: string;
  fields: Field[];
  substitutions: Substitution[];
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

export function isValidIsoDate(date: string): boolean {
  const m = ISO_DATE.exec(date);
  if (!m) return false;
  const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!));
  return d.getUTCFullYear() === +m[1]! && d.getUTCMonth() === +m[2]! - 1 && d.getUTCDate() === +m[3]!;
}

/** Minor units → "1234.50" / "-0.05": always two decimals, "." separator, no "+" (SIE §5.9). */
export function formatAmount(minor: number): string {
  const sign = minor < 0 ? "-" : "";
  const abs = Math.abs(minor);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}

function toUtcDate(at: Date | string): Date | undefined {
  const d = typeof at === "string" ? new Date(ISO_DATE.test(at) ? `${at}T00:00:00Z` : at) : at;
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** File name per sie4.md §1: FAKT.SI (the spec's name for invoicing files), or with a serial the unique PayEx form. */
export function sieFileName(opts: { generatedAt: Date | string; orgNumber?: string; serial?: number }): string {
  if (opts.serial === undefined) return "FAKT.SI";
  const at = toUtcDate(opts.generatedAt);
  if (!at) throw new Error("sieFileName: generatedAt is not a valid date");
  const stamp = at.toISOString().replace(/[-:T]/g, "").slice(0, 14);
  const company = (opts.orgNumber ?? "").replace(/\D/g, "");
  return ["SIE4I", ...(company ? [company] : []), stamp, String(opts.serial)].join("_") + ".SI";
}

const sieDate = (iso: string) => iso.replaceAll("-", "");

/** Quoting: `\` and `"` escaped with a backslash (the spec defines `\"`; `\\` is the matching guess for backslashes). */
function renderField(field: Field): string {
  if ("objects" in field) return `{${field.objects.map((o) => `${o.dimension} ${quote(o.id)}`).join(" ")}}`;
  return field.quoted ? quote(field.value) : field.value;
}
const quote = (value: string) => `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;

function checkInput(input: SieWriteInput): Problem[] {
  const problems: Problem[] = [];
  const need = (ok: boolean, code: string, message: string, hint: string, field: string) => {
    if (!ok) problems.push(problem(`sie4.${code}`, message, hint, field));
  };
  const isAccount = (a: string | number) => /^\d+$/.test(String(a));
  need(input.program.trim() !== "", "missing_program", "The program name is empty.", "Pass the name of the exporting program.", "program");
  need(
    input.companyName.trim() !== "",
    "missing_company_name",
    "The company name (#FNAMN) is empty.",
    "Set the company's legal name in the export settings.",
    "companyName",
  );
  need(
    toUtcDate(input.generatedAt) !== undefined,
    "bad_date",
    "generatedAt is not a valid date.",
    "Pass a Date or an ISO date.",
    "generatedAt",
  );
  need(
    !input.currency || /^[A-Z]{3}$/.test(input.currency),
    "bad_currency",
    `Currency "${input.currency}" is not an ISO 4217 code.`,
    "Use a code such as SEK or NOK.",
    "currency",
  );
  const { start, end } = input.fiscalYear;
  need(
    isValidIsoDate(start) && isValidIsoDate(end) && start <= end,
    "bad_fiscal_year",
    `The fiscal year ${start}–${end} is not a valid date range.`,
    "Give the fiscal year as two ISO dates, start before end.",
    "fiscalYear",
  );
  input.accounts.forEach((a, i) =>
    need(
      isAccount(a.number),
      "bad_account",
      `Account "${a.number}" is not numeric.`,
      "SIE account numbers must be digits only.",
      `accounts[${i}].number`,
    ),
  );
  input.dimensions.forEach((d, i) => {
    need(
      Number.isInteger(d.id) && d.id > 0,
      "bad_dimension",
      `Dimension "${d.id}" is not a positive integer.`,
      "Use 1 for cost centres, 6 for projects.",
      `dimensions[${i}].id`,
    );
    d.objects.forEach((o, j) =>
      need(o.id.trim() !== "", "bad_object", "An object id is empty.", "Give every object an id.", `dimensions[${i}].objects[${j}].id`),
    );
  });
  input.vouchers.forEach((v, i) => {
    const at = `vouchers[${i}]`;
    const label = `Voucher ${i + 1} (${[v.series, v.number].filter((s) => s !== undefined && s !== "").join(" ") || "unnumbered"}, ${v.date}${v.text ? `, "${v.text}"` : ""})`;
    need(isValidIsoDate(v.date), "bad_date", `${label}: date "${v.date}" is not a valid ISO date.`, "Use YYYY-MM-DD.", `${at}.date`);
    need(
      !isValidIsoDate(v.date) || !isValidIsoDate(start) || (v.date >= start && v.date <= end),
      "voucher_outside_year",
      `${label} is dated outside the fiscal year ${start}–${end}.`,
      "Export each fiscal year to its own file.",
      `${at}.date`,
    );
    need(
      v.transactions.length > 0,
      "empty_voucher",
      `${label} has no transactions.`,
      "Leave the voucher out or add its transactions.",
      `${at}.transactions`,
    );
    let sum = 0;
    v.transactions.forEach((t, j) => {
      const tAt = `${at}.transactions[${j}]`;
      need(
        Number.isSafeInteger(t.amountMinor),
        "bad_amount",
        `${label}: amount ${t.amountMinor} is not an integer number of minor units.`,
        "Amounts are integer öre/øre, e.g. 145000 for 1450.00.",
        `${tAt}.amountMinor`,
      );
      need(
        isAccount(t.account),
        "bad_account",
        `${label}: account "${t.account}" is not numeric.`,
        "SIE account numbers must be digits only.",
        `${tAt}.account`,
      );
      need(
        !t.date || isValidIsoDate(t.date),
        "bad_date",
        `${label}: transaction date "${t.date}" is not valid.`,
        "Use YYYY-MM-DD.",
        `${tAt}.date`,
      );
      (t.objects ?? []).forEach((o, k) =>
        need(
          Number.isInteger(o.dimension) && o.dimension > 0 && o.id.trim() !== "",
          "bad_object",
          `${label}: object ${o.dimension}/"${o.id}" is invalid.`,
          "Give a positive dimension number and a non-empty object id.",
          `${tAt}.objects[${k}]`,
        ),
      );
      if (Number.isSafeInteger(t.amountMinor)) sum += t.amountMinor;
    });
    need(
      sum === 0,
      "unbalanced_voucher",
      `${label} does not balance: its transactions sum to ${formatAmount(sum)} instead of 0.00.`,
      "Every voucher must sum to zero; check the VAT and rounding lines.",
      at,
    );
  });
  return problems;
}

/** Builds the records in the order of SIE §5.12: flag, identification, chart of accounts, vouchers. */
function buildRecords(input: SieWriteInput): SieRecord[] {
  const records: SieRecord[] = [];
  let current: Substitution[] = [];
  const text = (value: string, field: string): Field => {
    const safe = toCp437Text(value, field);
    current.push(...safe.substitutions);
    return { value: safe.text, quoted: true };
  };
  const bare = (value: string | number): Field => ({ value: String(value), quoted: false });
  /** Codes (org number, currency) go bare when safe, so strict importers see them as the spec's examples do. */
  const code = (value: string, field: string): Field => {
    const f = text(value, field) as { value: string; quoted: boolean };
    return /^[^\s"{}\\#]+$/.test(f.value) ? { ...f, quoted: false } : f;
  };
  const add = (label: string, ...fields: Field[]) => {
    records.push({ label, fields, substitutions: current });
    current = [];
  };

  add("#FORMAT", bare("PC8"));
  add("#SIETYP", bare(4));
  add("#PROGRAM", text(input.program, "program"), text(input.programVersion, "programVersion"));
  const generated = toUtcDate(input.generatedAt)!.toISOString().slice(0, 10);
  add("#GEN", bare(sieDate(generated)), ...(input.generatedBy ? [text(input.generatedBy, "generatedBy")] : []));
  add("#FNAMN", text(input.companyName, "companyName"));
  if (input.orgNumber) add("#ORGNR", code(input.orgNumber, "orgNumber"));
  add("#RAR", bare(0), bare(sieDate(input.fiscalYear.start)), bare(sieDate(input.fiscalYear.end)));
  if (input.chartOfAccountsType) add("#KPTYP", code(input.chartOfAccountsType, "chartOfAccountsType"));
  if (input.currency) add("#VALUTA", bare(input.currency));
  input.accounts.forEach((a, i) => add("#KONTO", bare(a.number), text(a.name, `accounts[${i}].name`)));
  input.dimensions.forEach((d, i) => add("#DIM", bare(d.id), text(d.name, `dimensions[${i}].name`)));
  input.dimensions.forEach((d, i) =>
    d.objects.forEach((o, j) =>
      add("#OBJEKT", bare(d.id), text(o.id, `dimensions[${i}].objects[${j}].id`), text(o.name, `dimensions[${i}].objects[${j}].name`)),
    ),
  );
  input.vouchers.forEach((v, i) => {
    const at = `vouchers[${i}]`;
    add(
      "#VER",
      text(v.series ?? "", `${at}.series`),
      text(String(v.number ?? ""), `${at}.number`),
      bare(sieDate(v.date)),
      ...(v.text !== undefined ? [text(v.text, `${at}.text`)] : []),
    );
    add("{");
    v.transactions.forEach((t, j) => {
      const tAt = `${at}.transactions[${j}]`;
      const objects = (t.objects ?? []).map((o, k) => ({
        dimension: o.dimension,
        id: (text(o.id, `${tAt}.objects[${k}].id`) as { value: string }).value,
      }));
      const tail =
        t.text !== undefined ? [bare(sieDate(t.date ?? v.date)), text(t.text, `${tAt}.text`)] : t.date ? [bare(sieDate(t.date))] : [];
      add("#TRANS", bare(t.account), { objects }, bare(formatAmount(t.amountMinor)), ...tail);
    });
    add("}");
  });
  return records;
}

/**
 * Writes a SIE 4I file. Throws SieWriteError (with Problems) on invalid input, notably an unbalanced
 * voucher: an importer would reject it, and a wrong file is worse than none.
 */
export function writeSie4i(input: SieWriteInput, options: SieWriteOptions = {}): SieWriteResult {
  const problems = checkInput(input);
  if (problems.length > 0) throw new SieWriteError(problems);
  const eol = options.lineEnding === "lf" ? "\n" : "\r\n";
  const withKsumma = options.ksumma ?? true;
  const records = buildRecords(input);

  // The checksum covers every record after the opening #KSUMMA; braces and separators do not count.
  const ksumma = new KsummaAccumulator();
  const lines: string[] = ["#FLAGGA 0", ...(withKsumma ? ["#KSUMMA"] : [])];
  const substitutions: Substitution[] = [];
  let inVoucher = false;
  let vouchers = 0;
  for (const r of records) {
    if (r.label === "{" || r.label === "}") {
      lines.push(r.label);
      inVoucher = r.label === "{";
      if (!inVoucher) options.progress?.(++vouchers);
      continue;
    }
    const values = r.fields.flatMap((f) => ("objects" in f ? f.objects.flatMap((o) => [String(o.dimension), o.id]) : [f.value]));
    ksumma.add({ label: r.label, values });
    lines.push((inVoucher ? "\t" : "") + [r.label, ...r.fields.map(renderField)].join(" "));
    for (const s of r.substitutions) substitutions.push({ ...s, line: lines.length });
  }
  if (withKsumma) lines.push(`#KSUMMA ${ksumma.value}`);
  const text = lines.join(eol) + eol;
  return {
    bytes: encodeCp437(text),
    text,
    substitutions,
    fileName: sieFileName({ generatedAt: input.generatedAt, orgNumber: input.orgNumber, serial: options.serial }),
    ...(withKsumma ? { ksumma: ksumma.value } : {}),
  };
}
