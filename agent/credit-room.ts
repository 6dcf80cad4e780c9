// Over-crediting: the credit notes of one invoice booked at a target never add up to more than the invoice.
// Checked when a credit note is claimed for a target (agent/outbox.ts), where credit notes of one invoice go one at a
// time, so what is booked there cannot change while this one is pushed. What counts as booked: a credit note of the
// invoice linked at the target (its push was done). Amounts, the invoice's total too, are those of the newest version
// done at the target (agent/outbox.ts BOOKED_VERSION), not of a later one that needs action or is not sent yet. An
// invoice kontobro never held (booked before kontobro) has no total here: its credit notes go unchecked, as before.
// The same check refuses a credit note whose "invoice" is a credit note (sent after the credit note crediting it).
import { lineAmount } from "./model.ts";
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
  /** Credit note number → the amount it credits: booked there, or maybe booked (`inDoubt`). */
  booked: Map<string, number>;
  /** The credit notes among `booked` that need action after a push in doubt: not known to be booked, but they may be. */
  inDoubt: Set<string>;
}

/**
 * Why credit note `key` (crediting `amount`) must not be pushed: it credits a credit note, or with the credit notes of the invoice booked at the
 * target it would credit more than the invoice's total. Null when it fits, or when the invoice is unknown.
 * `sentBefore`: an earlier push of it ended in doubt, so it may be at the target already although this one sends nothing.
 */
export function overCredit(
  key: string,
  invoice: string,
  amount: number,
  picture: CreditPicture,
  target: string,
  sentBefore = false,
): Problem | null {
  if (picture.invoiceTotal === null) return null;
  if (picture.creditNote) return creditOfCreditNote(key, invoice, target, sentBefore);
  const others = [...picture.booked].filter(([k]) => k !== key);
  const already = others.reduce((sum, [, a]) => sum + a, 0);
  if (already + amount <= picture.invoiceTotal) return null;
  const money = (minor: number) => showMoney(minor, picture.currency);
  const left = Math.max(0, picture.invoiceTotal - already);
  const doubted = others.filter(([k]) => picture.inDoubt.has(k)).map(([k]) => k);
  const booked =
    others.length === 0
      ? ""
      : ` ${others.map(([k, a]) => `credit note ${k} (${money(a)}${picture.inDoubt.has(k) ? ", may be booked: a push of it ended in doubt" : ""})`).join(", ")} already ${others.length === 1 ? "credits" : "credit"} it at ${target}, ${money(left)} is left;`;
  const doubt =
    doubted.length === 0
      ? ""
      : `Credit note ${doubted.join(", ")} needs action after a push whose outcome is unknown and counts as booked until that is known: look at ${target} whether it is booked; put it right (retry it, and its next push looks there first; or correct it in the PSA), then retry this one. `;
  return {
    code: "invoice.credit_exceeds_invoice",
    field: "data.lines",
    message:
      `Credit note ${key} credits ${money(amount)} of invoice ${invoice}, whose total is ${money(picture.invoiceTotal)};${booked} ` +
      `together that is ${money(already + amount)}, more than the invoice. It was not sent to ${target}` +
      (sentBefore ? ` now, but an earlier push of it ended in doubt: it may be booked there already (look at ${target}).` : "."),
    hint:
      doubt +
      (others.length === 0
        ? `Correct credit note ${key} in the PSA to credit at most ${money(picture.invoiceTotal)} and send it again (a new version is checked by itself); what goes beyond the invoice is not a credit of it.`
        : `If credit note ${key} is the same credit as one already booked (sent twice, or again under a new number), cancel it in the PSA: nothing is missing at ${target}. ` +
          `If it is a further credit, correct it in the PSA to credit at most ${money(left)} and send it again (a new version is checked by itself).`),
  };
}

/**
 * Credit note `key` credits credit note `creditNote`: intake refuses that when the credited one is stored first
 * (invoice.credits_credit_note), but one sent before the credit note it credits is stored, as intake cannot yet tell.
 * Booked, it would credit the customer a second time (a credit note always lowers what the customer owes), where the
 * PSA meant the first credit taken back.
 */
function creditOfCreditNote(key: string, creditNote: string, target: string, sentBefore: boolean): Problem {
  return {
    code: "invoice.credits_credit_note",
    field: "data.creditedInvoiceNumber",
    message:
      `Credit note ${key} credits credit note ${creditNote}: a credit note always lowers what the customer owes, so it would credit the customer a second time. ` +
      `It was not sent to ${target}` +
      (sentBefore ? ` now, but an earlier push of it ended in doubt: it may be booked there already (look at ${target}).` : "."),
    hint: `Cancel credit note ${key} in the PSA. If it credits an invoice, correct its creditedInvoiceNumber to that invoice and send it again; to take credit note ${creditNote} back (the customer owes that amount again), send an invoice (invoice.finalized) with its own number.`,
  };
}
