// The total a target computed for a document it was just given (its answer to creating the draft or order), compared
// with the PSA's before the document is booked. A target that books a line at another price than sent (a product's own
// price, a price list), with fewer quantity decimals, or in another currency would otherwise book a total the PSA never
// invoiced, and nobody would know: a booked invoice cannot be changed.
import { bookedAmountDiffers, customerTotal, type InvoiceLike } from "../agent/model.ts";
import { TargetError } from "./http.ts";

export interface TargetDocument {
  /** The problem code's prefix (the connector's name in codes). */
  codePrefix: string;
  /** The target's name as the user knows it. */
  title: string;
  /**
   * What was not done and what became of the draft, in the target's own terms, for the message: "It was not booked.
   * Its draft was deleted in …" where kontobro books, "Its draft was deleted in …" where a person sends the drafts.
   */
  outcome: string;
}

/**
 * Null when the target's net total (major units, as it answered; the customer's point of view: negative for a credit
 * note) and its currency are the PSA's, up to the model's roundingRoom; else the permanent error that stops the booking.
 * A total or currency the answer does not carry (null or undefined) is not compared: what a target does not say cannot
 * be told from its answer, and the connector's README says so.
 */
export function targetTotalDiffers(
  inv: InvoiceLike,
  answered: { net: unknown; currency?: unknown },
  t: TargetDocument,
): TargetError | null {
  const psa = customerTotal(inv);
  const net = answered.net === undefined || answered.net === null ? psa : Math.round(Number(answered.net) * 100);
  const currency = answered.currency === undefined || answered.currency === null ? inv.currency : String(answered.currency);
  const sameCurrency = currency.toUpperCase() === inv.currency.toUpperCase();
  if (sameCurrency && !bookedAmountDiffers(inv, net)) return null;
  const doc = inv.kind === "credit_note" ? "Credit note" : "Invoice";
  const theirs = Number.isFinite(net) ? `${minor(net)} ${currency}` : `"${String(answered.net)}" ${currency}`;
  return new TargetError("permanent", {
    code: `${t.codePrefix}.total_differs`,
    message: `${doc} ${inv.number}: ${t.title} computed its total excluding VAT as ${theirs}, but the PSA invoiced ${minor(psa)} ${inv.currency}. ${t.outcome}`,
    hint: `Look at what ${t.title} computes otherwise than the PSA: a product's own price or a price list used instead of the line's price, a quantity with more decimals than it keeps, the currency (${inv.currency}). Correct it in ${t.title} or in the PSA and send the ${doc.toLowerCase()} again, or run \`kontobro retry\` (or press retry).`,
  });
}

const minor = (amount: number) => (amount / 100).toFixed(2);
