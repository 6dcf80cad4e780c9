// The credit notes an export may carry: the same checks as before a push (agent/credit-room.ts), so a file never
// books what no target would. A credit note credits an invoice of the same customer in the same currency, not a credit
// note, and with the credit notes of that invoice already transferred (by an export, or set so by hand: booked in the
// receiving system) no more than the invoice's total. Intake refuses the first three when the credited document is
// stored first; a credit note sent before it is stored, and is checked here. One left out stays "to transfer", and
// every export (and a template's test) says why, with the codes and messages of intake and the outbox, until it is
// corrected in the PSA or set "do not transfer". Credit notes of one invoice in one export count in turn, oldest first.
import { creditedMismatch, creditPictures, documentAmount, overCredit, type PictureRow, TO_EXPORTS } from "../credit-room.ts";
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
