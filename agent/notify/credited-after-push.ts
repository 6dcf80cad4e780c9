// Credit notes at a target that credit the wrong document: one sent before kontobro held what it credits (its
// dependency on the invoice is "if known", so it does not wait for an invoice kontobro may never see), which then
// arrived, or changed, as a credit note, another customer's invoice or one in another currency (creditedMismatch,
// agent/credit-room.ts). The target has it as an ordinary credit and nothing kontobro does takes it back; the exports
// warn in the same case (agent/exports/credits.ts). Told per target as a problem of the credit note (kind "delivery",
// subject "credit note:<number>"), on the status page and in the notices, until the credit note (a new version of it)
// or the document it credits no longer differ.
//
// Intake refuses a credit note that differs from the document it credits when that one is stored first, so a stored
// credit note can differ only from a document stored or changed after it: only those are read (records_credits, then
// each one's credited record and link by their keys), whatever was pushed since (a new version of a linked credit note
// goes to the target unchecked).
import { creditedMismatch, creditPictures, toTarget } from "../credit-room.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import type { Problem } from "./alerts.ts";

/** The alert subject's prefix: whatOf names it "credit note 1042", apart from the credit note's own deliveries. */
export const CREDIT_NOTE_SUBJECT = "credit note";

// The credit notes linked at the targets ?1 (a JSON array of names) whose credited record was stored or changed after
// the credit note's latest version. The CROSS JOINs keep SQLite's order: the credit notes by records_credits, then each
// one's credited record, then its link at each target, all by key (without them it read every invoice record first).
const CREDITED_AFTER = `WITH t AS MATERIALIZED (SELECT value AS target FROM json_each(?1))
  SELECT t.target, r.key, r.credits AS invoice, r.payload, c.payload AS credited
    FROM records r CROSS JOIN records c CROSS JOIN t JOIN links l ON l.target = t.target AND l.entity = 'invoice' AND l.key = r.key
   WHERE r.credits IS NOT NULL AND +r.entity = 'invoice' AND c.entity = 'invoice' AND c.key = r.credits AND c.updated_at > r.updated_at
   ORDER BY t.target, r.key`;

/** The credit notes at `targets` that credit a credit note, another customer's invoice or one in another currency. */
export async function creditsSentUnchecked(db: SqlRunner, targets: string[]): Promise<Problem[]> {
  if (targets.length === 0) return [];
  const rows = await db.all<{ target: string; key: string; invoice: string; payload: string; credited: string }>(
    CREDITED_AFTER,
    JSON.stringify(targets),
  );
  const problems: Problem[] = [];
  for (const r of rows) {
    const key = String(r.key);
    const invoice = String(r.invoice);
    const picture = creditPictures([{ invoice, role: "invoice", key: invoice, payload: r.credited }]).get(invoice)!;
    const document = `${picture.creditNote ? "credit note" : "invoice"} ${invoice}`;
    const wrong = creditedMismatch(key, JSON.parse(r.payload), invoice, picture, {
      ...toTarget(r.target),
      gone: `It was sent to ${r.target} before kontobro held ${document} as it is now, so ${r.target} has it as an ordinary credit.`,
    });
    if (!wrong) continue;
    problems.push({
      target: r.target,
      kind: "delivery",
      subject: `${CREDIT_NOTE_SUBJECT}:${key}`,
      code: wrong.code,
      message: wrong.message,
      hint: `Reverse credit note ${key} at ${r.target}: kontobro does not take it back by itself. ${wrong.hint ?? ""} This is told until credit note ${key} (a new version of it) and ${document} no longer differ.`,
      detail: { entity: "invoice", key, credits: invoice, sentUnchecked: true },
    });
  }
  return problems;
}
