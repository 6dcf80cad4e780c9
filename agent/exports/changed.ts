// Invoices the PSA changed after an SIE export transferred them. A later version keeps the status "transferred"
// (exporting it again would give the accounting system a second voucher), so the change reaches the books only by
// hand. Each SIE export compares those changed since the last SIE export that wrote a file with the voucher their
// file holds, and warns where the receivable's amount or the date differ (or the voucher is not found: another
// customer or number). A change that leaves the voucher alone (a resend, a new PDF) says nothing.
import { toCp437Text } from "../../formats/sie4/cp437.ts";
import { invoiceToVoucher, voucherText } from "../../formats/sie4/invoices.ts";
import { readSie, type SieVoucher } from "../../formats/sie4/reader.ts";
import { formatAmount } from "../../formats/sie4/writer.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import type { InvoiceLike } from "../model.ts";
import { problem, type Problem } from "../problem.ts";
import type { ExportSettings } from "./config.ts";
import { getFileBytes, loadProjects } from "./store.ts";

const CHANGED_SINCE = `SELECT r.payload, s.export_file_id AS fileId
  FROM invoice_export_status s JOIN records r ON r.entity = 'invoice' AND r.key = s.invoice_key
  JOIN export_files f ON f.id = s.export_file_id
  WHERE s.status = 'transferred' AND f.format = 'sie4i' AND r.updated_at > s.changed_at
    AND r.updated_at > COALESCE((SELECT max(created_at) FROM export_runs WHERE kind = 'sie4' AND row_count > 0), 0)
  ORDER BY s.invoice_key`;

const describe = (v: { amountMinor: number; date: string }) => `${formatAmount(v.amountMinor)} dated ${v.date}`;

/** Warnings for the transferred invoices whose voucher would now differ from the one in their file. */
export async function changedSinceExport(db: SqlRunner, settings: ExportSettings): Promise<Problem[]> {
  const rows = await db.all<{ payload: string; fileId: number }>(CHANGED_SINCE);
  if (rows.length === 0) return [];
  const projects = [...(await loadProjects(db)).values()];
  // vouchers null: retention removed the file's content, so what it holds can no longer be compared.
  const files = new Map<number, { fileName: string; vouchers: SieVoucher[] | null }>();
  const warnings: Problem[] = [];
  for (const { payload, fileId } of rows) {
    const doc = JSON.parse(payload) as InvoiceLike;
    if (!files.has(fileId)) {
      const file = (await getFileBytes(db, fileId))!;
      files.set(fileId, { fileName: file.fileName, vouchers: file.pruned ? null : readSie(file.bytes).document.vouchers });
    }
    const file = files.get(fileId)!;
    if (!file.vouchers) {
      warnings.push(prunedFileChanged(doc, file.fileName, fileId));
      continue;
    }
    const exported = file.vouchers.find((v) => v.text === toCp437Text(voucherText(doc)).text);
    const now = invoiceToVoucher(doc, settings.posting, { projects });
    const was = exported && { amountMinor: exported.transactions[0]?.amountMinor ?? 0, date: exported.date ?? "" };
    const is = now.ok && { amountMinor: now.voucher.transactions[0]!.amountMinor, date: now.voucher.date };
    if (was && is && was.amountMinor === is.amountMinor && was.date === is.date) continue;
    const what = doc.kind === "credit_note" ? "Credit note" : "Invoice";
    warnings.push(
      problem(
        "exports.changed_after_export",
        `${what} ${doc.number} changed after ${file.fileName} (export file ${fileId}) transferred it: ` +
          `${was ? `the file has ${describe(was)}` : "its voucher there names another customer or number"}, ` +
          `${is ? `the ${what.toLowerCase()} is now ${describe(is)}` : "and it can no longer be posted as it is"}. ` +
          "The accounting system still has the old voucher; kontobro does not export it again by itself.",
        `Correct the voucher in the accounting system; or reverse it there and set the ${what.toLowerCase()} to "to transfer" (kontobro export set-status ${doc.number} to_transfer) so the next export carries the new version.`,
        "status",
      ),
    );
  }
  return warnings;
}

/** A transferred invoice changed after its file's content was pruned: it cannot be compared, so it is always said. */
function prunedFileChanged(doc: InvoiceLike, fileName: string, fileId: number): Problem {
  const what = doc.kind === "credit_note" ? "Credit note" : "Invoice";
  return problem(
    "exports.changed_after_export",
    `${what} ${doc.number} changed after ${fileName} (export file ${fileId}) transferred it; that file is older than the retention period and its content was removed, so kontobro cannot tell whether the voucher differs.`,
    `Compare the voucher in the accounting system with the ${what.toLowerCase()} as it is now; if it differs, correct it there, or reverse it there and set the ${what.toLowerCase()} to "to transfer" (kontobro export set-status ${doc.number} to_transfer).`,
    "status",
  );
}
