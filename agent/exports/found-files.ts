// Our export files in the output folder that the database does not know. The database can go back in time (a backup
// restored, an old copy reinstalled) while the folder keeps what was written since: the invoices of those files are
// "to transfer" again, and exporting them would hand the accounting system the same invoices a second time (4I
// vouchers "must neither be forgotten nor imported twice", SIE 4B §7.4; a CSV importer books every row it reads). An
// export of invoices reads the folder first (outside its transaction: a slow folder must not hold the database) and
// refuses to export what such a file holds, whichever format wrote it: an SIE file by its vouchers' texts, a template
// file by its invoice number column. A template without that column writes files that cannot be tied to invoices:
// they are not found (README, Exports).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { toCp437Text } from "../../formats/sie4/cp437.ts";
import { voucherText } from "../../formats/sie4/invoices.ts";
import { readSie } from "../../formats/sie4/reader.ts";
import type { Template } from "../../formats/templates/definition.ts";
import { invoiceNumbersIn, namesInvoices, writtenNumber } from "../../formats/templates/read.ts";
import { templateFileNameRegExp } from "../../formats/templates/render.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import type { InvoiceLike } from "../model.ts";
import { problem, type Problem } from "../problem.ts";
import { exportFileNames } from "./store.ts";

/** The names sieFileName() gives with a serial: SIE4I_[org digits_]yyyyMMddHHmmss_serial.SI. */
const SIE_FILE_NAME = /^SIE4I_(?:\d+_)?\d{14}_(\d+)\.SI$/;

export interface FoundFile {
  fileName: string;
  /** An SIE file's serial number (0 for a template's file). */
  serial: number;
  /** Whether it holds this document (an SIE voucher of it, a template row with its number). */
  holds: (doc: InvoiceLike) => boolean;
  /** The importer has read it: it sets #FLAGGA to 1 after a successful read (SIE 4B §7.4). Never known for a template's file. */
  read: boolean;
}

/**
 * Our files in `dir` whose names the database does not have: SIE files, and files of the invoice `templates` that
 * name their invoices. None when the folder does not exist yet or cannot be read (writing the export's file there then
 * fails with its own message); a file that cannot be read is passed over.
 */
export async function unknownFiles(db: SqlRunner, dir: string, templates: Template[]): Promise<FoundFile[]> {
  const known = await exportFileNames(db);
  const invoiceTemplates = templates.filter(namesInvoices).map((t) => ({ t, name: templateFileNameRegExp(t) }));
  const found: FoundFile[] = [];
  for (const fileName of readFolder(dir)) {
    if (known.has(fileName)) continue;
    const sie = SIE_FILE_NAME.exec(fileName);
    const written = invoiceTemplates.filter((x) => x.name.test(fileName)).map((x) => x.t);
    if (!sie && written.length === 0) continue;
    const bytes = readFile(join(dir, fileName));
    if (!bytes) continue;
    found.push(sie ? sieFile(fileName, Number(sie[1]), bytes) : templateFile(fileName, written, bytes));
  }
  return found;
}

function sieFile(fileName: string, serial: number, bytes: Uint8Array): FoundFile {
  const { document } = readSie(bytes);
  const texts = new Set(document.vouchers.map((v) => v.text ?? ""));
  return { fileName, serial, holds: (doc) => texts.has(toCp437Text(voucherText(doc)).text), read: document.flag === 1 };
}

/** A file whose name more than one template gives is read with each: it holds what any of them reads in it. */
function templateFile(fileName: string, templates: Template[], bytes: Uint8Array): FoundFile {
  const numbers = templates.map((t) => ({ t, numbers: invoiceNumbersIn(t, bytes) }));
  return { fileName, serial: 0, holds: (doc) => numbers.some((n) => n.numbers.has(writtenNumber(n.t, doc.number))), read: false };
}

function readFolder(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function readFile(path: string): Uint8Array | null {
  try {
    return new Uint8Array(readFileSync(path));
  } catch {
    return null;
  }
}

const MAX_LISTED = 20;

/** One problem per found file that holds documents about to be exported (an SIE voucher, a template row); [] when none does. Pure. */
export function alreadyInFolder(found: FoundFile[], docs: InvoiceLike[], dir: string): Problem[] {
  return found.flatMap((f) => {
    const numbers = docs.filter(f.holds).map((d) => d.number);
    if (numbers.length === 0) return [];
    const listed =
      numbers.slice(0, MAX_LISTED).join(", ") + (numbers.length > MAX_LISTED ? ` and ${numbers.length - MAX_LISTED} more` : "");
    return [
      problem(
        "exports.output_dir_has_unknown_file",
        `${f.fileName} in ${dir} is not in kontobro's database (the database is older than the folder: a backup restored?), and it holds ${numbers.length} invoice(s) that are "to transfer" again: ${listed}. Exporting them would give the accounting system the same invoices twice. Nothing was exported.`,
        f.read
          ? `The accounting system has read ${f.fileName} (its #FLAGGA is 1): mark those invoices transferred (kontobro export set-status ${numbers[0]} transferred, one number or a range at a time), then export again.`
          : `If the accounting system has imported ${f.fileName}, mark those invoices transferred (kontobro export set-status ${numbers[0]} transferred, one number or a range at a time); if it has not, move the file out of the folder. Then export again.`,
        "exports.output_dir",
      ),
    ];
  });
}
