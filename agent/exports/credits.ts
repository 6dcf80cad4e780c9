// The credit notes an export may carry: the same checks as before a push (agent/credit-room.ts), so a file never
// books what no target would. A credit note credits an invoice of the same customer in the same currency, not a credit
// note, and with the credit notes of that invoice already transferred (by an export, or set so by hand: booked in the
// receiving system) no more than the invoice's total. Intake refuses the first three when the credited document is
// stored first; a credit note sent before it is stored, and is checked here. One left out stays "to transfer", and
// every export (and a template's test) says why, with the codes and messages of intake and the outbox, until it is
// corrected in the PSA or set "do not transfer". Credit notes of one invoice in one export count in turn, oldest first.
import {
  type CreditDestination,
  creditedMismatch,
  creditPictures,
  documentAmount,
  overCredit,
  type PictureRow,
  TO_EXPORTS,
} from "../credit-room.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import { creditedInvoiceOf } from "../model.ts";
import type { Problem } from "../problem.ts";
import type { LeftOut } from "./build-sie.ts";
import { loadInvoicesToTransfer } from "./store.ts";

// The invoices ?1 (a JSON array of numbers) that credit notes to transfer credit: each one's record (payload null:
// kontobro does not hold it), and its credit notes transferred (role 'credit'), by records_credits.
const CREDIT_PICTURE = `WITH credited AS MATERIALIZED (SELECT value AS invoice FROM json_each(?1))
  SELECT invoice, 'invoice' AS role, invoice AS key,
         (SELECT r.payload FROM records r WHERE r.entity = 'invoice' AND r.key = credited.invoice) AS payload FROM credited
  UNION ALL
  SELECT credited.invoice, 'credit' AS role, r.key, r.payload
    FROM credited JOIN records r ON r.credits = credited.invoice AND +r.entity = 'invoice'
    JOIN invoice_export_status s ON s.invoice_key = r.key
   WHERE s.status = 'transferred'`;

type ToTransfer = Awaited<ReturnType<typeof loadInvoicesToTransfer>>;

/** The invoices and credit notes to transfer (dated in `period`) that an export may carry, and those it must leave out. */
export async function invoicesToExport(
  db: SqlRunner,
  period: { from?: string; to?: string } = {},
): Promise<{ invoices: ToTransfer; leftOut: LeftOut[] }> {
  const invoices = await loadInvoicesToTransfer(db, period);
  const notes = invoices
    .map((i) => ({ doc: i.doc, credits: creditedInvoiceOf("invoice", i.doc) }))
    .filter((n): n is typeof n & { credits: string } => n.credits !== null)
    .sort(
      (a, b) => a.doc.date.localeCompare(b.doc.date) || String(a.doc.number).localeCompare(String(b.doc.number), "en", { numeric: true }),
    );
  if (notes.length === 0) return { invoices, leftOut: [] };
  const pictures = creditPictures(await db.all<PictureRow>(CREDIT_PICTURE, JSON.stringify([...new Set(notes.map((n) => n.credits))])));
  const refused = new Map<string, Problem>();
  for (const { doc, credits } of notes) {
    const picture = pictures.get(credits);
    if (!picture) continue; // an invoice kontobro never held: unchecked, as at a target
    const key = String(doc.number);
    const amount = documentAmount(doc.lines);
    const problem = creditedMismatch(key, doc, credits, picture, TO_EXPORTS) ?? overCredit(key, credits, amount, picture, TO_EXPORTS);
    if (problem) refused.set(key, problem);
    else picture.booked.set(key, amount); // in this export: the invoice's next credit note counts it
  }
  return {
    invoices: invoices.filter((i) => !refused.has(String(i.doc.number))),
    leftOut: [...refused].map(([number, problem]) => ({ number, problems: [problem] })),
  };
}

// Credit notes transferred before the document they credit was stored, or changed: it arrived (or changed) after the
// credit note's transfer and since the last export that wrote a file. By records_credits (credit notes only).
const CREDITED_SINCE = `SELECT r.credits AS invoice, r.key, r.payload, c.payload AS credited, s.export_file_id AS fileId
  FROM records r JOIN invoice_export_status s ON s.invoice_key = r.key
  JOIN records c ON c.entity = 'invoice' AND c.key = r.credits
  WHERE r.credits IS NOT NULL AND +r.entity = 'invoice' AND s.status = 'transferred' AND c.updated_at > s.changed_at
    AND c.updated_at > COALESCE((SELECT max(created_at) FROM export_runs WHERE row_count > 0), 0)
  ORDER BY r.key`;

/**
 * A credit note exported (or set transferred) before kontobro held what it credits, which then turned out a credit
 * note, another customer's invoice or one in another currency: the accounting system has it as an ordinary credit, and
 * nothing kontobro does takes it back. Each export says so (the check's code and message), until one writes a file.
 */
export async function exportedCreditsNowWrong(db: SqlRunner): Promise<Problem[]> {
  const rows = await db.all<{ invoice: string; key: string; payload: string; credited: string; fileId: number | null }>(CREDITED_SINCE);
  const warnings: Problem[] = [];
  for (const r of rows) {
    const invoice = String(r.invoice);
    const picture = creditPictures([{ invoice, role: "invoice", key: invoice, payload: r.credited }]).get(invoice)!;
    const where = r.fileId === null ? "set transferred by hand" : `exported (export file ${r.fileId})`;
    const gone: CreditDestination = {
      ...TO_EXPORTS,
      gone: `It was ${where} before kontobro held ${picture.creditNote ? "credit note" : "invoice"} ${invoice}, so the accounting system has it as an ordinary credit.`,
    };
    const wrong = creditedMismatch(String(r.key), JSON.parse(r.payload), invoice, picture, gone);
    if (wrong)
      warnings.push({
        ...wrong,
        hint: `Reverse credit note ${r.key} in the accounting system; kontobro does not take it back by itself. ${wrong.hint ?? ""} Then set it to "to transfer" (kontobro export set-status ${r.key} to_transfer): the next export checks it again.`,
      });
  }
  return warnings;
}
