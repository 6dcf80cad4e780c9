// A tolerant SIE 1–4 reader and validator, deliberately independent of the writer (its own tokenizer),
// so round-trip tests check one against the other. It reads what real programs write (UTF-8 or Latin-1
// under "#FORMAT PC8", unquoted names with spaces, #TRANS without an object list, CRLF) and reports what
// is wrong as Problems with line numbers instead of throwing.
import type { Problem } from "../../agent/problem.ts";
import { decodeSieBytes, detectEncoding, encodeAs, type SieEncoding } from "./cp437.ts";
import { KsummaAccumulator, parseDeclaredKsumma } from "./ksumma.ts";

export type Token = { kind: "value"; value: string; quoted: boolean } | { kind: "list"; values: string[] };

export interface SieProblem extends Problem {
  severity: "error" | "warning" | "info";
  /** 1-based line of the file. */
  line?: number;
}

export interface SieObjectRef {
  dimension: number;
  id: string;
}
export interface SieTransaction {
  kind: "TRANS" | "RTRANS" | "BTRANS";
  account: string;
  objects: SieObjectRef[];
  amountMinor: number;
  date?: string;
  text?: string;
  quantity?: string;
  sign?: string;
  line: number;
}
export interface SieVoucher {
  series: string;
  number: string;
  /** ISO date; undefined when missing or invalid (reported). */
  date?: string;
  text?: string;
  regDate?: string;
  sign?: string;
  line: number;
  transactions: SieTransaction[];
  /** Σ of the #TRANS rows in minor units; 0 for a balanced voucher. */
  balanceMinor: number;
}
export interface SieBalance {
  label: "IB" | "UB" | "RES" | "OIB" | "OUB" | "PSALDO" | "PBUDGET";
  yearIndex: number;
  account: string;
  period?: string;
  objects: SieObjectRef[];
  amountMinor: number;
  line: number;
}
export interface SieDocument {
  encoding: SieEncoding;
  lineEnding: "crlf" | "lf" | "mixed" | "none";
  flag?: number;
  format?: string;
  sieType?: number;
  program?: { name: string; version?: string };
  generated?: { date?: string; sign?: string };
  companyName?: string;
  orgNumber?: string;
  companyId?: string;
  companyType?: string;
  address?: string[];
  comment?: string;
  taxYear?: string;
  chartType?: string;
  currency?: string;
  fiscalYears: { index: number; start?: string; end?: string }[];
  accounts: { number: string; name: string; type?: string }[];
  dimensions: { id: number; name: string; parent?: number }[];
  objects: { dimension: number; id: string; name: string }[];
  balances: SieBalance[];
  vouchers: SieVoucher[];
  ksumma?: { declared: number; computed: number; matches: boolean };
}
export interface SieReadResult {
  document: SieDocument;
  problems: SieProblem[];
  /** No problem of severity "error". */
  ok: boolean;
}

/** Splits one line into fields. Quoted fields unescape `\"` and `\\`; `{…}` becomes one list token. */
export function tokenizeLine(line: string): { tokens: Token[]; error?: string } {
  const tokens: Token[] = [];
  let error: string | undefined;
  let i = 0;
  const isSpace = (c: string | undefined) => c === " " || c === "\t" || c === "\r";
  const readQuoted = (): string => {
    let value = "";
    i++; // opening quote
    while (i < line.length && line[i] !== '"') {
      if (line[i] === "\\" && (line[i + 1] === '"' || line[i + 1] === "\\")) i++;
      value += line[i++];
    }
    if (i >= line.length) error ??= "a quoted field has no closing quote";
    i++;
    return value;
  };
  const readBare = (): string => {
    const start = i;
    while (i < line.length && !isSpace(line[i]) && line[i] !== "{" && line[i] !== "}") i++;
    return line.slice(start, i);
  };
  while (i < line.length) {
    const c = line[i];
    if (isSpace(c)) i++;
    else if (c === '"') tokens.push({ kind: "value", value: readQuoted(), quoted: true });
    else if (c === "{") {
      const values: string[] = [];
      i++;
      while (i < line.length && line[i] !== "}") {
        if (isSpace(line[i])) i++;
        else if (line[i] === '"') values.push(readQuoted());
        else if (line[i] === "{") {
          error ??= "nested brace in an object list";
          i++;
        } else values.push(readBare());
      }
      if (i >= line.length) error ??= "an object list has no closing brace";
      i++;
      tokens.push({ kind: "list", values });
    } else if (c === "}") {
      error ??= "unexpected closing brace";
      i++;
    } else tokens.push({ kind: "value", value: readBare(), quoted: false });
  }
  return error ? { tokens, error } : { tokens };
}

/** "20250131" → "2025-01-31"; undefined unless a real calendar date. */
export function parseSieDate(text: string): string | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(text);
  if (!m) return undefined;
  const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!));
  const ok = d.getUTCFullYear() === +m[1]! && d.getUTCMonth() === +m[2]! - 1 && d.getUTCDate() === +m[3]!;
  return ok ? `${m[1]}-${m[2]}-${m[3]}` : undefined;
}

/** "-1437.5" → -143750 without floating point. Undefined when not an amount or more than 2 decimals. */
export function parseSieAmount(text: string): number | undefined {
  const m = /^([+-]?)(\d+)(?:\.(\d{1,2}))?$/.exec(text);
  if (!m) return undefined;
  const minor = Number(m[2]) * 100 + Number((m[3] ?? "").padEnd(2, "0"));
  return m[1] === "-" ? -minor : minor;
}

const formatMinor = (minor: number) =>
  `${minor < 0 ? "-" : ""}${Math.floor(Math.abs(minor) / 100)}.${String(Math.abs(minor) % 100).padStart(2, "0")}`;

const KNOWN = new Set([
  "FLAGGA",
  "PROGRAM",
  "FORMAT",
  "GEN",
  "SIETYP",
  "PROSA",
  "FTYP",
  "FNR",
  "ORGNR",
  "ADRESS",
  "TAXAR",
  "KPTYP",
  "VALUTA",
  "BKOD",
  "FNAMN",
  "RAR",
  "OMFATTN",
  "KONTO",
  "KTYP",
  "ENHET",
  "SRU",
  "DIM",
  "UNDERDIM",
  "OBJEKT",
  "IB",
  "UB",
  "RES",
  "OIB",
  "OUB",
  "PSALDO",
  "PBUDGET",
  "VER",
  "TRANS",
  "RTRANS",
  "BTRANS",
  "KSUMMA",
]);
const MANDATORY = ["FLAGGA", "FORMAT", "PROGRAM", "GEN", "FNAMN"];

/**
 * Reads a SIE file of any type (bytes as they are on disk) and validates it. Never throws. `progress` hears how
 * many vouchers are read so far (an export checking its own file).
 */
export function readSie(bytes: Uint8Array, options: { progress?: (vouchers: number) => void } = {}): SieReadResult {
  const encoding = detectEncoding(bytes);
  const text = decodeSieBytes(bytes, encoding);
  const problems: SieProblem[] = [];
  const report = (severity: SieProblem["severity"], code: string, line: number | undefined, message: string, hint?: string) =>
    problems.push({
      severity,
      code: `sie4.${code}`,
      message: line ? `Line ${line}: ${message}` : message,
      ...(hint ? { hint } : {}),
      ...(line ? { line } : {}),
    });

  const crlf = (text.match(/\r\n/g) ?? []).length;
  const lf = (text.match(/\n/g) ?? []).length;
  const doc: SieDocument = {
    encoding,
    lineEnding: lf === 0 ? "none" : crlf === lf ? "crlf" : crlf === 0 ? "lf" : "mixed",
    fiscalYears: [],
    accounts: [],
    dimensions: [],
    objects: [],
    balances: [],
    vouchers: [],
  };
  const seen = new Set<string>();
  const encode = encodeAs(encoding);
  const sum = new KsummaAccumulator({ encode });
  const sumNoHash = new KsummaAccumulator({ encode, withoutHash: true });
  let ksumma: "none" | "open" | "closed" = "none";
  let ksummaLine = 0;
  let voucher: SieVoucher | undefined;
  let block: "none" | "expected" | "open" = "none";
  let firstRecord = true;

  const date = (value: string | undefined, line: number, what: string, required = false): string | undefined => {
    if (value === undefined || value === "") {
      if (required) report("error", "bad_date", line, `${what} is missing.`, "Dates are written YYYYMMDD.");
      return undefined;
    }
    const iso = parseSieDate(value);
    if (!iso) report("error", "bad_date", line, `${what} "${value}" is not a valid date.`, "Dates are written YYYYMMDD, e.g. 20250131.");
    return iso;
  };
  const amount = (value: string | undefined, line: number): number => {
    const minor = value === undefined ? undefined : parseSieAmount(value);
    if (minor === undefined) {
      report(
        "error",
        "bad_amount",
        line,
        `amount "${value ?? ""}" is not valid.`,
        "Amounts use '.' as decimal separator and at most 2 decimals, e.g. -1437.50.",
      );
      return 0;
    }
    if (value!.startsWith("+")) report("warning", "bad_amount", line, `amount "${value}" has a '+' sign, which SIE does not allow.`);
    return minor;
  };
  const account = (value: string | undefined, line: number): string => {
    if (!value || !/^\d+$/.test(value))
      report("error", "bad_account", line, `account "${value ?? ""}" is not numeric.`, "SIE account numbers are digits only.");
    return value ?? "";
  };
  const objects = (values: string[], line: number): SieObjectRef[] => {
    const refs: SieObjectRef[] = [];
    if (values.length % 2 !== 0)
      report(
        "error",
        "bad_object_list",
        line,
        "the object list has an odd number of fields.",
        'Write pairs of dimension and object, e.g. {1 "200" 6 "P-100"}.',
      );
    for (let k = 0; k + 1 < values.length; k += 2) {
      const dimension = Number(values[k]);
      if (!Number.isInteger(dimension) || dimension <= 0)
        report("error", "bad_object_list", line, `"${values[k]}" is not a dimension number.`);
      refs.push({ dimension, id: values[k + 1]! });
    }
    return refs;
  };
  const closeVoucher = () => {
    if (!voucher) return;
    const v = voucher;
    v.balanceMinor = v.transactions.filter((t) => t.kind === "TRANS").reduce((s, t) => s + t.amountMinor, 0);
    const name = `voucher ${[v.series, v.number].filter(Boolean).join(" ") || "(unnumbered)"}${v.date ? ` of ${v.date}` : ""}${v.text ? ` "${v.text}"` : ""}`;
    if (v.balanceMinor !== 0) {
      report(
        "error",
        "unbalanced_voucher",
        v.line,
        `${name} does not balance. Difference: ${formatMinor(v.balanceMinor)}`,
        "The #TRANS amounts of a voucher must sum to zero.",
      );
    }
    if (v.transactions.length === 0) report("warning", "empty_voucher", v.line, `${name} has no transactions.`);
    voucher = undefined;
    block = "none";
    options.progress?.(doc.vouchers.length);
  };

  const lines = text.split("\n");
  for (const [index, raw] of lines.entries()) {
    const line = index + 1;
    const trimmed = raw.replace(/^[ \t]+|[ \t\r]+$/g, "");
    if (trimmed === "") continue;
    if (trimmed === "{") {
      if (block === "expected") block = "open";
      else report("warning", "misplaced_brace", line, "an opening brace without a #VER before it.");
      continue;
    }
    if (trimmed === "}") {
      if (block === "open") closeVoucher();
      else report("warning", "misplaced_brace", line, "a closing brace without an open voucher.");
      continue;
    }
    const { tokens, error } = tokenizeLine(trimmed);
    if (error)
      report("error", "malformed_line", line, `${error}.`, 'Quote fields with "…", escape inner quotes as \\", and close every {.');
    const head = tokens[0];
    if (head?.kind !== "value" || !head.value.startsWith("#")) {
      report("warning", "not_a_record", line, "the line does not start with a #LABEL and is ignored.");
      continue;
    }
    const label = head.value.slice(1).toUpperCase();
    const fields = tokens.slice(1);
    const str = (k: number): string | undefined => {
      const t = fields[k];
      return t?.kind === "value" ? t.value : undefined;
    };
    /** Tolerates unquoted names with spaces (`#FNAMN Övningsbolaget AB`): joins the trailing bare fields. */
    const rest = (k: number): string => {
      const t = fields[k];
      if (t?.kind !== "value") return "";
      if (t.quoted) return t.value;
      const tail = fields.slice(k).filter((f): f is Extract<Token, { kind: "value" }> => f.kind === "value" && !f.quoted);
      return tail.map((f) => f.value).join(" ");
    };

    if (firstRecord && label !== "FLAGGA") report("warning", "misplaced_label", line, "#FLAGGA should be the first record.");
    firstRecord = false;
    if (label === "KSUMMA") {
      if (fields.length === 0 && ksumma === "none") {
        ksumma = "open";
        ksummaLine = line;
      } else if (fields.length > 0 && ksumma !== "closed") {
        const declared = parseDeclaredKsumma(str(0) ?? "");
        if (ksumma === "none")
          report("warning", "ksumma_without_start", line, "a closing #KSUMMA without the opening #KSUMMA after #FLAGGA; not verified.");
        else if (declared === undefined) report("error", "ksumma_mismatch", line, `#KSUMMA "${str(0)}" is not a number.`);
        else {
          doc.ksumma = { declared, computed: sum.value, matches: declared === sum.value };
          if (declared === sumNoHash.value && declared !== sum.value) {
            report(
              "warning",
              "ksumma_variant",
              line,
              "#KSUMMA matches only when the labels' '#' is left out of the sum.",
              "The writing program computes #KSUMMA slightly differently from the spec (10.14).",
            );
          } else if (!doc.ksumma.matches) {
            report(
              "error",
              "ksumma_mismatch",
              line,
              `#KSUMMA does not match: the file says ${declared}, its content gives ${sum.value}.`,
              "The file was changed or damaged after it was written; export it again.",
            );
          }
        }
        ksumma = "closed";
      } else report("warning", "misplaced_label", line, "an unexpected #KSUMMA.");
      continue;
    }
    if (ksumma === "open") {
      const values = fields.flatMap((f) => (f.kind === "list" ? f.values : [f.value]));
      sum.add({ label: head.value, values });
      sumNoHash.add({ label: head.value, values });
    } else if (ksumma === "closed") {
      report("warning", "after_ksumma", line, "a record after the closing #KSUMMA is not covered by the checksum.");
    }
    if (!KNOWN.has(label)) {
      report("warning", "unknown_label", line, `unknown label #${label} is ignored.`);
      continue;
    }
    seen.add(label);
    const isTrans = label === "TRANS" || label === "RTRANS" || label === "BTRANS";
    if (block === "open" && label === "VER") {
      report(
        "error",
        "unclosed_voucher",
        voucher!.line,
        "the voucher has no closing brace.",
        "Each #VER block ends with } on its own line.",
      );
      closeVoucher();
    } else if (block === "expected" && !isTrans) closeVoucher();
    if (block === "open" && !isTrans) report("warning", "misplaced_label", line, `#${label} inside a voucher block.`);

    switch (label) {
      case "FLAGGA":
        doc.flag = Number(str(0));
        break;
      case "FORMAT":
        doc.format = str(0);
        break;
      case "SIETYP": {
        doc.sieType = Number(str(0));
        if (![1, 2, 3, 4].includes(doc.sieType)) report("error", "bad_sietyp", line, `#SIETYP "${str(0)}" is not 1, 2, 3 or 4.`);
        break;
      }
      case "PROGRAM":
        doc.program = { name: str(0) ?? "", ...(str(1) !== undefined ? { version: str(1) } : {}) };
        break;
      case "GEN":
        doc.generated = { date: date(str(0), line, "#GEN date", true), ...(str(1) ? { sign: str(1) } : {}) };
        break;
      case "FNAMN":
        doc.companyName = rest(0);
        break;
      case "ORGNR":
        doc.orgNumber = str(0);
        break;
      case "FNR":
        doc.companyId = str(0);
        break;
      case "FTYP":
        doc.companyType = str(0);
        break;
      case "ADRESS":
        doc.address = fields.map((f) => (f.kind === "value" ? f.value : ""));
        break;
      case "PROSA":
        doc.comment = rest(0);
        break;
      case "TAXAR":
        doc.taxYear = str(0);
        break;
      case "KPTYP":
        doc.chartType = str(0);
        break;
      case "VALUTA":
        doc.currency = str(0);
        break;
      case "RAR":
        doc.fiscalYears.push({
          index: Number(str(0)),
          start: date(str(1), line, "#RAR start", true),
          end: date(str(2), line, "#RAR end", true),
        });
        break;
      case "KONTO":
        doc.accounts.push({ number: account(str(0), line), name: rest(1) });
        break;
      case "KTYP": {
        const a = doc.accounts.find((x) => x.number === str(0));
        if (a) a.type = str(1);
        break;
      }
      case "DIM":
      case "UNDERDIM":
        doc.dimensions.push({ id: Number(str(0)), name: str(1) ?? "", ...(label === "UNDERDIM" ? { parent: Number(str(2)) } : {}) });
        break;
      case "OBJEKT":
        doc.objects.push({ dimension: Number(str(0)), id: str(1) ?? "", name: str(2) ?? "" });
        break;
      case "IB":
      case "UB":
      case "RES":
      case "OIB":
      case "OUB":
      case "PSALDO":
      case "PBUDGET": {
        const withPeriod = label === "PSALDO" || label === "PBUDGET";
        const at = withPeriod ? 2 : 1;
        const list = fields[at + 1]?.kind === "list" ? (fields[at + 1] as { values: string[] }).values : undefined;
        const amountAt = list ? at + 2 : at + 1;
        doc.balances.push({
          label,
          yearIndex: Number(str(0)),
          account: account(str(at), line),
          objects: objects(list ?? [], line),
          amountMinor: amount(str(amountAt), line),
          line,
          ...(withPeriod ? { period: str(1) } : {}),
        });
        break;
      }
      case "VER": {
        closeVoucher();
        voucher = {
          series: str(0) ?? "",
          number: str(1) ?? "",
          date: date(str(2), line, "voucher date", true),
          line,
          transactions: [],
          balanceMinor: 0,
          ...(str(3) ? { text: str(3) } : {}),
          ...(str(4) ? { regDate: date(str(4), line, "registration date") } : {}),
          ...(str(5) ? { sign: str(5) } : {}),
        };
        doc.vouchers.push(voucher);
        block = "expected";
        break;
      }
      case "TRANS":
      case "RTRANS":
      case "BTRANS": {
        if (block !== "open") report("warning", "misplaced_label", line, `#${label} outside a voucher's { } block.`);
        // Moment's template omits the object list: then the amount follows the account directly.
        const hasList = fields[1]?.kind === "list";
        const k = hasList ? 2 : 1;
        const t: SieTransaction = {
          kind: label,
          account: account(str(0), line),
          objects: hasList ? objects((fields[1] as { values: string[] }).values, line) : [],
          amountMinor: amount(str(k), line),
          line,
          ...(str(k + 1) ? { date: date(str(k + 1), line, "transaction date") } : {}),
          ...(str(k + 2) ? { text: str(k + 2) } : {}),
          ...(str(k + 3) ? { quantity: str(k + 3) } : {}),
          ...(str(k + 4) ? { sign: str(k + 4) } : {}),
        };
        if (voucher) voucher.transactions.push(t);
        break;
      }
    }
  }

  if (block === "open")
    report(
      "error",
      "truncated",
      voucher!.line,
      "the file ends inside a voucher (no closing brace): it is truncated.",
      "Export the file again.",
    );
  closeVoucher();
  if (ksumma === "open") {
    report(
      "error",
      "truncated",
      ksummaLine,
      "the file opens #KSUMMA but has no closing #KSUMMA: it is truncated and should be refused.",
      "Export the file again; the receiver must not import a partial file.",
    );
  }
  for (const m of MANDATORY) if (!seen.has(m)) report("error", "missing_record", undefined, `The mandatory record #${m} is missing.`);
  if (doc.vouchers.length > 0 && doc.sieType !== 4) {
    report("warning", "missing_record", undefined, "The file has vouchers but does not declare #SIETYP 4.");
  }
  if (doc.format !== undefined && doc.format !== "PC8")
    report("warning", "bad_format", undefined, `#FORMAT is "${doc.format}"; SIE allows only PC8.`);
  if (encoding !== "cp437") {
    report(
      "warning",
      "encoding_mismatch",
      undefined,
      `The file is ${encoding.toUpperCase()}, not CP437 as #FORMAT PC8 declares; read as ${encoding.toUpperCase()}.`,
      "Ask the sending program for a CP437 (PC8) file.",
    );
  }
  const damaged = lines.findIndex((l) => l.includes("\uFFFD"));
  if (damaged >= 0)
    report(
      "warning",
      "replacement_characters",
      damaged + 1,
      "the file contains U+FFFD replacement characters: the original letters were lost before this file was written.",
    );
  return { document: doc, problems, ok: !problems.some((p) => p.severity === "error") };
}
