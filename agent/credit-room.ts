// Over-crediting: the credit notes of one invoice booked at a target never add up to more than the invoice.
// Checked when a credit note is claimed for a target (agent/outbox.ts), where credit notes of one invoice go one at a
// time, so what is booked there cannot change while this one is pushed. What counts as booked: a credit note of the
// invoice linked at the target (its push was done). Amounts, the invoice's total too, are those of the newest version
// done at the target (agent/outbox.ts BOOKED_VERSION), not of a later one that needs action or is not sent yet. An
// invoice kontobro never held (booked before kontobro) has no total here: its credit notes go unchecked, as before.
// The same claim refuses a credit note of a credit note, of another customer's invoice or in another currency, which
// intake could not tell when the credit note came first (creditedMismatch). The exports (agent/exports/credits.ts)
// leave out the same credit notes, by the same checks, with "booked" meaning transferred (exported or set by hand).
import { canonicalNumber, lineAmount } from "./model.ts";
import type { Problem } from "./problem.ts";
import { showMoney } from "./record-story.ts";

/** A stored document's lines, as intake kept them (any signs: older versions stored credit notes with minus signs). */
type Lines = { quantity: number; unitPrice: number }[];

/** What an invoice's total, or a credit note's credit, is in minor units: its lines' sum, whatever the signs. */
export function documentAmount(lines: Lines): number {
  return Math.abs(lines.reduce((sum, l) => sum + lineAmount(l), 0));
}

/** One invoice as a claim sees it: its total (null: kontobro does not hold it) and its credit notes booked at the target. */
export interface CreditPicture {
  invoiceTotal: number | null;
  currency: string;
  /** The credited document is a credit note itself (the PSA sent it after the credit note crediting it). */
  creditNote: boolean;
  /** The credited document's customer (canonical number), where kontobro holds it. */
  customerNumber?: string;
  /** Credit note number → the amount it credits: booked there, or maybe booked (`inDoubt`). */
  booked: Map<string, number>;
  /** The credit notes among `booked` that need action after a push in doubt: not known to be booked, but they may be. */
  inDoubt: Set<string>;
}

/** Where a credit note goes, as the messages name it: a target (`toTarget`), or the file exports (`TO_EXPORTS`). */
export interface CreditDestination {
  /** What did not happen: "sent to e-conomic", "exported". */
  sent: string;
  /** Where credit notes are booked: "at e-conomic", "in an export file". */
  at: string;
  /** The message's last sentence when the credit note went there before it could be checked (not "It was not {sent}."). */
  gone?: string;
}
export const toTarget = (target: string): CreditDestination => ({ sent: `sent to ${target}`, at: `at ${target}` });
export const TO_EXPORTS: CreditDestination = { sent: "exported", at: "in an export file" };

/** One row of a statement reading credit pictures: the credited document, or one of its credit notes booked or maybe booked. */
export interface PictureRow {
  invoice: string;
  /** 'invoice': the credited document itself (payload null: kontobro does not hold it); 'credit': booked; 'doubt': maybe. */
  role: string;
  key: string;
  payload: string | null;
}

/** The pictures of the invoices `rows` describe, by invoice number. */
export function creditPictures(rows: PictureRow[]): Map<string, CreditPicture> {
  const pictures = new Map<string, CreditPicture>();
  const pictureOf = (invoice: string) => {
    let p = pictures.get(invoice);
    if (!p) pictures.set(invoice, (p = { invoiceTotal: null, currency: "", creditNote: false, booked: new Map(), inDoubt: new Set() }));
    return p;
  };
  for (const r of rows) {
    if (r.payload === null) continue; // an invoice kontobro does not hold: no total, its credit notes go unchecked
    const doc = JSON.parse(r.payload) as {
      kind?: string;
      customerNumber?: string | number;
      lines?: Lines;
      currency?: string;
    };
    const p = pictureOf(String(r.invoice));
    if (r.role === "invoice") {
      p.invoiceTotal = documentAmount(doc.lines ?? []);
      p.currency = doc.currency ?? "";
      p.creditNote = doc.kind === "credit_note";
      if (doc.customerNumber !== undefined) p.customerNumber = canonicalNumber(doc.customerNumber);
      continue;
    }
    p.booked.set(String(r.key), documentAmount(doc.lines ?? []));
    if (r.role === "doubt") p.inDoubt.add(String(r.key));
  }
  return pictures;
}

/**
 * Why credit note `key` (crediting `amount`) must not be pushed: with the credit notes of the invoice booked at the
 * target it would credit more than the invoice's total. Null when it fits, or when the invoice is unknown.
 * `sentBefore`: an earlier push of it ended in doubt, so it may be at the target already although this one sends nothing.
 */
export function overCredit(
  key: string,
  invoice: string,
  amount: number,
  picture: CreditPicture,
  to: CreditDestination,
  sentBefore = false,
): Problem | null {
  if (picture.invoiceTotal === null) return null;
  const others = [...picture.booked].filter(([k]) => k !== key);
  const already = others.reduce((sum, [, a]) => sum + a, 0);
  if (already + amount <= picture.invoiceTotal) return null;
  const money = (minor: number) => showMoney(minor, picture.currency);
  const left = Math.max(0, picture.invoiceTotal - already);
  const doubted = others.filter(([k]) => picture.inDoubt.has(k)).map(([k]) => k);
  const booked =
    others.length === 0
      ? ""
      : ` ${others.map(([k, a]) => `credit note ${k} (${money(a)}${picture.inDoubt.has(k) ? ", may be booked: a push of it ended in doubt" : ""})`).join(", ")} already ${others.length === 1 ? "credits" : "credit"} it ${to.at}, ${money(left)} is left;`;
  const doubt =
    doubted.length === 0
      ? ""
      : `Credit note ${doubted.join(", ")} needs action after a push whose outcome is unknown and counts as booked until that is known: look ${to.at} whether it is booked; put it right (retry it, and its next push looks there first; or correct it in the PSA), then retry this one. `;
  return {
    code: "invoice.credit_exceeds_invoice",
    field: "data.lines",
    message:
      `Credit note ${key} credits ${money(amount)} of invoice ${invoice}, whose total is ${money(picture.invoiceTotal)};${booked} ` +
      `together that is ${money(already + amount)}, more than the invoice. It was not ${to.sent}` +
      (sentBefore ? ` now, but an earlier push of it ended in doubt: it may be booked there already (look ${to.at}).` : "."),
    hint:
      doubt +
      (others.length === 0
        ? `Correct credit note ${key} in the PSA to credit at most ${money(picture.invoiceTotal)} and send it again (a new version is checked by itself); what goes beyond the invoice is not a credit of it.`
        : `If credit note ${key} is the same credit as one already booked (sent twice, or again under a new number), cancel it in the PSA: nothing is missing ${to.at}. ` +
          `If it is a further credit, correct it in the PSA to credit at most ${money(left)} and send it again (a new version is checked by itself).`),
  };
}

/**
 * Why credit note `key` must not be pushed though its amount fits: the document it credits is a credit note, or another
 * customer's, or in another currency. Intake refuses these (invoice.credits_*) when the credited document is stored
 * first; a credit note sent before it is stored, as intake cannot yet tell. Booked, a credit of a credit note credits
 * the customer a second time (a credit note always lowers what the customer owes) where the PSA meant the credit taken
 * back; one of another customer's invoice lowers the wrong balance. Null when it matches, or the invoice is unknown.
 */
export function creditedMismatch(
  key: string,
  note: { customerNumber?: unknown; currency?: unknown },
  invoice: string,
  picture: CreditPicture,
  to: CreditDestination,
  sentBefore = false,
): Problem | null {
  if (picture.invoiceTotal === null) return null;
  const refused = (code: string, field: string, what: string, fix: string): Problem => ({
    code,
    field,
    message:
      `Credit note ${key} credits ${what}. ` +
      (to.gone ??
        `It was not ${to.sent}` +
          (sentBefore ? ` now, but an earlier push of it ended in doubt: it may be booked there already (look ${to.at}).` : ".")),
    hint: `${fix}If it credits an invoice, set creditedInvoiceNumber to that invoice, of the same customer and currency, and send it again.`,
  });
  if (picture.creditNote)
    return refused(
      "invoice.credits_credit_note",
      "data.creditedInvoiceNumber",
      `credit note ${invoice}: a credit note always lowers what the customer owes, so it would credit the customer a second time`,
      `To take credit note ${invoice} back (the customer owes that amount again), cancel credit note ${key} and send an invoice (invoice.finalized) with its own number. `,
    );
  const customer = note.customerNumber === undefined ? undefined : canonicalNumber(String(note.customerNumber));
  if (picture.customerNumber !== undefined && customer !== undefined && picture.customerNumber !== customer)
    return refused(
      "invoice.credits_other_customer",
      "data.customerNumber",
      `invoice ${invoice} of customer ${picture.customerNumber}, but is for customer ${customer}`,
      `Credit invoice ${invoice} to customer ${picture.customerNumber} (and invoice customer ${customer} separately if needed). `,
    );
  if (picture.currency !== "" && note.currency !== undefined && picture.currency !== note.currency)
    return refused(
      "invoice.credits_other_currency",
      "data.currency",
      `invoice ${invoice} in ${picture.currency}, but is in ${String(note.currency)}`,
      `Write the credit note in ${picture.currency}, the currency of invoice ${invoice}. `,
    );
  return null;
}
