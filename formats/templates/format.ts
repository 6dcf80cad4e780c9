// Formatting of single values and CSV cells. Pure. Money is integer minor units and is formatted with
// integer arithmetic, so 0.1 + 0.2 never becomes 0.30000000000000004 in a file.

/** Date pattern tokens: yyyy, yy, MM, M, dd, d; everything else (-, ., /, space) is literal. */
const DATE_TOKEN = /yyyy|yy|MM|M|dd|d/g;

/** Problems with a date pattern, or null when it is usable. */
export function checkDateFormat(pattern: string): string | null {
  if (pattern.length === 0 || pattern.length > 20) return "must be 1 to 20 characters";
  const rest = pattern.replace(DATE_TOKEN, "");
  if (/[A-Za-z]/.test(rest)) return `has letters that are not yyyy, yy, MM, M, dd or d: "${rest.replace(/[^A-Za-z]/g, "")}"`;
  if (!/yy|M|d/.test(pattern)) return "has no year, month or day (use yyyy, MM, dd)";
  return null;
}

/** "2026-03-09" with "dd.MM.yyyy" → "09.03.2026"; "yyyyMMdd" → "20260309". */
export function formatDate(iso: string, pattern: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso);
  if (!m) return iso;
  const [, y, mo, d] = m as unknown as [string, string, string, string];
  return pattern.replace(DATE_TOKEN, (t) => {
    switch (t) {
      case "yyyy":
        return y;
      case "yy":
        return y.slice(2);
      case "MM":
        return mo;
      case "M":
        return String(Number(mo));
      case "dd":
        return d;
      default:
        return String(Number(d));
    }
  });
}

/** Integer minor units → "1234.50" (decimals ≥ 2 pad with zeros; fewer round half away from zero). */
export function formatMoney(minor: number, decimals: number, separator: string): string {
  const negative = minor < 0;
  let abs = Math.abs(minor);
  let digits: string;
  if (decimals >= 2) {
    digits = `${Math.floor(abs / 100)}${separator}${String(abs % 100).padStart(2, "0")}${"0".repeat(decimals - 2)}`;
  } else {
    const unit = 10 ** (2 - decimals);
    abs = Math.floor((abs + unit / 2) / unit); // half away from zero, on integers
    digits = decimals === 0 ? String(abs) : `${Math.floor(abs / 10)}${separator}${abs % 10}`;
  }
  return (negative && /[1-9]/.test(digits) ? "-" : "") + digits;
}

/** A plain number (hours) → fixed decimals, half away from zero, tolerant of binary fractions (7.125). */
export function formatDecimal(value: number, decimals: number, separator: string): string {
  const scale = 10 ** decimals;
  const scaled = Math.round(Math.abs(value) * scale + 1e-9 * scale);
  const whole = Math.floor(scaled / scale);
  const frac = decimals > 0 ? separator + String(scaled % scale).padStart(decimals, "0") : "";
  return (value < 0 && scaled !== 0 ? "-" : "") + whole + frac;
}

/**
 * A text that a spreadsheet would run as a formula when the file is opened (CSV injection: a customer named
 * `=HYPERLINK("http://…")` or `@SUM(…)`, or `+`/`-` followed by more than a number) gets a leading `'`, so Excel and
 * LibreOffice show it as text. A plain signed number or phone number (`-5`, `+46 70 123 45 67`) is left as it is.
 */
export function neutraliseFormula(value: string): string {
  const start = value.trimStart();
  const formula = /^[=@]/.test(start) || (/^[+-]/.test(start) && !/^[+-][\d\s.,()/-]*$/.test(start));
  return formula ? `'${value}` : value;
}

export type QuoteMode = "as_needed" | "all" | "text" | "never";

/**
 * One CSV cell. as_needed: quoted when it holds the delimiter, a quote or starts/ends with a space;
 * all: always; text: text columns always, numbers and dates only when needed; never: the delimiter
 * inside a value becomes a space (reported by the caller). Inner quotes are doubled (RFC 4180).
 */
export function csvCell(value: string, delimiter: string, mode: QuoteMode, isText: boolean): { cell: string; changed: boolean } {
  if (mode === "never") {
    const cell = value.split(delimiter).join(" ").replaceAll('"', "'");
    return { cell, changed: cell !== value };
  }
  const needed = value.includes(delimiter) || value.includes('"') || /^\s|\s$/.test(value);
  const quote = mode === "all" || (mode === "text" && isText) || needed;
  return { cell: quote ? `"${value.replaceAll('"', '""')}"` : value, changed: false };
}
