// Reads back a file a template wrote: which invoices it holds. The export service uses it for files in the output
// folder the database does not know (a backup restored), so that their invoices are not exported a second time. Pure.
import { decodeText, toEncodable } from "../encoding.ts";
import type { Template } from "./definition.ts";
import { csvCell, neutraliseFormula } from "./format.ts";

/** Whether a file of `t` tells which invoices it holds: an invoice template with the invoice number in a column. */
export function namesInvoices(t: Template): boolean {
  return (t.dataType === "invoices" || t.dataType === "invoices_by_account") && t.columns.some((c) => c.field === "number");
}

/** The invoice number as `t` writes it in its cells (unquoted): transliterated, guarded against formulas, and with quote never, no delimiter. */
export function writtenNumber(t: Template, number: string): string {
  const encoded = toEncodable(number, t.encoding).text;
  const text = t.formulas === "neutralise" ? neutraliseFormula(encoded) : encoded;
  return t.quote === "never" ? csvCell(text, t.delimiter, "never", true).cell : text;
}

/** The values of `t`'s invoice number column(s) in a file it wrote (as writtenNumber gives them). */
export function invoiceNumbersIn(t: Template, bytes: Uint8Array): Set<string> {
  const columns = t.columns.flatMap((c, i) => (c.field === "number" ? [i] : []));
  const lines = decodeText(bytes, t.encoding)
    .split(/\r?\n/)
    .filter((l) => l !== "");
  const numbers = new Set<string>();
  for (const line of lines.slice(t.headerRow ? 1 : 0)) {
    const cells = splitLine(line, t.delimiter, t.quote !== "never");
    for (const i of columns) if (cells[i] !== undefined) numbers.add(cells[i]);
  }
  return numbers;
}

/** One CSV line into its values: quoted values (RFC 4180, "" inside) when `quoted`; a value never holds a line break. */
function splitLine(line: string, delimiter: string, quoted: boolean): string[] {
  if (!quoted) return line.split(delimiter);
  const cells: string[] = [];
  let i = 0;
  for (;;) {
    let value = "";
    if (line[i] === '"') {
      i++;
      for (; i < line.length; i++) {
        if (line[i] !== '"') value += line[i];
        else if (line[i + 1] === '"') value += line[i++];
        else break;
      }
      i++; // the closing quote
      const next = line.indexOf(delimiter, i);
      i = next < 0 ? line.length : next;
    } else {
      const next = line.indexOf(delimiter, i);
      value = line.slice(i, next < 0 ? line.length : next);
      i = next < 0 ? line.length : next;
    }
    cells.push(value);
    if (i >= line.length) return cells;
    i += delimiter.length;
  }
}
