// SIE files in the output folder that the database does not know. The database can go back in time (a backup
// restored, an old copy reinstalled) while the folder keeps what was written since: the invoices of those files are
// "to transfer" again, and exporting them would hand the accounting system the same vouchers a second time (4I
// vouchers "must neither be forgotten nor imported twice", SIE 4B §7.4). An SIE export reads the folder first
// (outside its transaction: a slow folder must not hold the database) and refuses to export what such a file holds.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { toCp437Text } from "../../formats/sie4/cp437.ts";
import { voucherText } from "../../formats/sie4/invoices.ts";
import { readSie } from "../../formats/sie4/reader.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import type { InvoiceLike } from "../model.ts";
import { problem, type Problem } from "../problem.ts";
import { sieFileNames } from "./store.ts";

/** The names sieFileName() gives with a serial: SIE4I_[org digits_]yyyyMMddHHmmss_serial.SI. */
const SIE_FILE_NAME = /^SIE4I_(?:\d+_)?\d{14}_(\d+)\.SI$/;

export interface FoundSieFile {
  fileName: string;
  serial: number;
  /** The #VER texts of its vouchers (voucherText(), as written in CP437). */
  voucherTexts: Set<string>;
  /** The importer has read it: it sets #FLAGGA to 1 after a successful read (SIE 4B §7.4). */
  read: boolean;
}

/**
 * Our SIE files in `dir` whose names the database does not have. None when the folder does not exist yet or cannot
 * be read (writing the export's file there then fails with its own message); a file that cannot be read is passed over.
 */
export async function unknownSieFiles(db: SqlRunner, dir: string): Promise<FoundSieFile[]> {
  const known = await sieFileNames(db);
  const found: FoundSieFile[] = [];
  for (const fileName of readFolder(dir)) {
    const m = SIE_FILE_NAME.exec(fileName);
    if (!m || known.has(fileName)) continue;
    const bytes = readFile(join(dir, fileName));
    if (!bytes) continue;
    const { document } = readSie(bytes);
    const texts = document.vouchers.map((v) => v.text ?? "");
    found.push({ fileName, serial: Number(m[1]), voucherTexts: new Set(texts), read: document.flag === 1 });
  }
  return found;
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

/** One problem per found file that holds vouchers of documents about to be exported; [] when none does. Pure. */
export function alreadyInFolder(found: FoundSieFile[], docs: InvoiceLike[], dir: string): Problem[] {
  return found.flatMap((f) => {
    const numbers = docs.filter((d) => f.voucherTexts.has(toCp437Text(voucherText(d)).text)).map((d) => d.number);
    if (numbers.length === 0) return [];
    const listed =
      numbers.slice(0, MAX_LISTED).join(", ") + (numbers.length > MAX_LISTED ? ` and ${numbers.length - MAX_LISTED} more` : "");
    return [
      problem(
        "exports.output_dir_has_unknown_file",
        `${f.fileName} in ${dir} is not in kontobro's database (the database is older than the folder: a backup restored?), and it holds ${numbers.length} invoice(s) that are "to transfer" again: ${listed}. Exporting them would give the accounting system the same vouchers twice. Nothing was exported.`,
        f.read
          ? `The accounting system has read ${f.fileName} (its #FLAGGA is 1): mark those invoices transferred (kontobro export set-status ${numbers[0]} transferred, one number or a range at a time), then export again.`
          : `If the accounting system has imported ${f.fileName}, mark those invoices transferred (kontobro export set-status ${numbers[0]} transferred, one number or a range at a time); if it has not, move the file out of the folder. Then export again.`,
        "exports.output_dir",
      ),
    ];
  });
}
