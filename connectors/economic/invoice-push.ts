// Invoices and credit notes: draft → PDF → booking with the PSA's number, and the rule that no draft
// carrying the PSA's id outlives the push (README "Orphan drafts").
import { bookedAmountDiffers, customerTotal, type Customer, type InvoiceLike, type Product } from "../../agent/model.ts";
import { capitalise } from "../../agent/problem.ts";
import type { PushContext, PushResult } from "../contract.ts";
import { isTargetError, lateAnswerWaitMs, NOT_SENT, TargetError, type HttpClient, type HttpResponse } from "../http.ts";
import type { AgreementSettings } from "./agreement.ts";
import { checkedLineFields, LINE_FIELDS, sameLineValue, unkeptLineHint } from "../line-booking.ts";
import { targetTotalDiffers } from "../target-total.ts";
import { describeEconomicError, filterValue } from "./client.ts";
import type { EconomicConfig } from "./config.ts";
import { bookBody, draftInvoiceBody, postalAddress, productGroupFor } from "./map.ts";

export class EconomicInvoices {
  /** Late draft answers still being listened to (tests wait for them; a stopped agent drops them). */
  readonly pendingLate = new Set<Promise<void>>();

  constructor(
    private readonly http: HttpClient,
    private readonly rest: string,
    private readonly cfg: EconomicConfig,
    private readonly settings: AgreementSettings,
  ) {}

  async push(inv: InvoiceLike, ctx: PushContext): Promise<PushResult> {
    const attempt: Attempt = { draftSent: false, draft: null };
    try {
      return await this.pushOnce(inv, ctx, attempt);
    } catch (e) {
      // Fenced after its draft was made (its worker declared dead meanwhile, e.g. paused while the draft POST was on its
      // way, or stopping): it books nothing more, and the attempt that took the delivery over may have looked for drafts
      // before this one landed. Its own draft, by the number only it knows, is deleted even so (nothing another attempt
      // books); the delivery stays uncertain, so a later attempt still looks.
      if (isTargetError(e) && e.code === NOT_SENT && attempt.draft !== null)
        await this.discardOwnDraft(attempt.draft, `${ctx.idempotencyKey}-delete-fenced-${attempt.draft}`);
      // A permanent failure has no next attempt to tidy up after it: remove the drafts it (or an earlier
      // attempt) left. If that fails too while a draft of this attempt may be there, the delivery is not
      // left at "needs action" but retried as uncertain: that attempt removes the draft first.
      if (!isTargetError(e) || e.kind === "permanent") {
        let removal: unknown;
        const removed = await this.removeDrafts(inv.psaId, ctx, "failed").then(
          () => true,
          (err) => {
            removal = err;
            return false;
          },
        );
        if (!removed && attempt.draftSent) throw cleanupPending(inv, e, removal);
        throw e;
      }
      // Held back after the draft was sent (a 429, a pause): the draft may be there, so the next attempt is
      // uncertain and looks for it before creating another.
      if (e.kind === "retryable" && attempt.draftSent) throw new TargetError("uncertain", e);
      throw e;
    }
  }

  /**
   * Lookups only where an earlier attempt may have reached e-conomic (uncertain) or the invoice was pushed
   * before (a link): only then can a booking or a draft with the PSA id exist. Every attempt that fails after
   * sending its draft leaves the delivery uncertain (push), so a plain attempt is the draft, the PDF and the
   * booking; a booking refused because the number is used is looked up on every path.
   */
  private async pushOnce(inv: InvoiceLike, ctx: PushContext, attempt: Attempt): Promise<PushResult> {
    const number = Number(inv.number);
    const reconcile = ctx.link !== null || ctx.uncertain;
    if (reconcile) {
      const booked = await this.findBooked(inv);
      if (booked) {
        await this.sweepAfterBooking(inv, ctx);
        return bookedBefore(inv, booked, ctx);
      }
    }
    const customer = (ctx.record?.("customer", inv.customerNumber) as Customer | null) ?? null;
    const [vatZone, terms] = await Promise.all([
      this.settings.vatZoneFor(customer ? postalAddress(customer)?.country : undefined, !!customer?.vatNumber),
      this.settings.invoiceTerms(),
    ]);
    await this.checkLineBooking(inv, vatZone, ctx);
    // Drafts carrying our PSA id are left over from earlier attempts (whose answer was lost, or that
    // failed after creating one), possibly of an older version of the invoice: remove them, then book a
    // fresh draft of the current version.
    if (reconcile) await this.removeDrafts(inv.psaId, ctx, "before");
    attempt.draftSent = true;
    const draft = await this.createDraft(draftInvoiceBody(inv, customer, this.cfg, { vatZone, terms }), inv, ctx);
    const draftNumber = draft.number;
    attempt.draft = draftNumber;
    // The draft's answer carries e-conomic's own total: one it computed otherwise is never booked (push deletes the draft).
    const differs =
      targetTotalDiffers(inv, { net: draft.answer?.netAmount, currency: draft.answer?.currency }, TOTAL_AT_ECONOMIC) ??
      discountGiven(inv, draft.answer);
    if (differs) throw differs;
    const notes: string[] = [];
    if (inv.pdf && this.cfg.attach_pdf) await this.attachPdf(draftNumber, inv, ctx);
    else if (inv.pdf) notes.push("PDF not attached: attach_pdf is off for this target.");
    const res = await this.http.request("PUT", `${this.rest}/invoices/booked/${number}`, {
      json: bookBody(draftNumber, number),
      headers: { "Idempotency-Key": `${ctx.idempotencyKey}-book-${draftNumber}` },
      accept: [400],
    });
    if (res.status >= 400) {
      // Possibly booked by an attempt whose answer we lost (or by an earlier installation: a PSA resend
      // into an empty data directory); otherwise the number is taken or the data refused.
      const booked = await this.findBooked(inv);
      if (!booked) throw (await this.yearRefusing(inv)) ?? permanent(res);
      await this.sweepAfterBooking(inv, ctx);
      return bookedBefore(inv, booked, ctx);
    }
    if (reconcile) await this.sweepAfterBooking(inv, ctx);
    if (!terms.keepsDueDate && res.body?.dueDate && res.body.dueDate !== inv.dueDate) {
      notes.push(
        `Due date ${res.body.dueDate}, not the PSA's ${inv.dueDate}: ${terms.reason ?? "the payment terms decide it"}. See \`kontobro check\`.`,
      );
    }
    return { remoteId: String(number), ...(notes.length ? { note: notes.join(" ") } : {}) };
  }

  /**
   * A line has no VAT and no account at e-conomic: it is booked on its product group's sales account for the recipient's
   * zone, with that account's VAT code. A line whose vatCode or account is another (or that e-conomic would book without
   * VAT) needs action before anything is sent, unless that field's setting is "ignore" (README "A line's VAT code and
   * account").
   */
  private async checkLineBooking(inv: InvoiceLike, vatZone: number, ctx: PushContext): Promise<void> {
    const doc = inv.kind === "credit_note" ? "Credit note" : "Invoice";
    for (const [i, l] of inv.lines.entries()) {
      const checked = checkedLineFields(l, this.cfg);
      if (checked.length === 0) continue;
      const product = l.productCode ?? this.cfg.line_products[l.kind];
      // The group kontobro puts the PSA's product into (its VAT rate's): a product read before another process moved it
      // there (hosted: another worker's push) is read again, not checked against its old group.
      const psaProduct = l.productCode ? ((ctx.record?.("product", l.productCode) as Product | null) ?? null) : null;
      const booked = await this.settings.lineBooking(
        product,
        vatZone,
        psaProduct ? productGroupFor(psaProduct, this.cfg).group : undefined,
      );
      for (const { field, sent } of checked) {
        if (sameLineValue(field, field === "account" ? booked.account : booked.vatCode, sent)) continue;
        const label = LINE_FIELDS[field].label;
        const what = !booked.product
          ? `e-conomic has no product ${product}, so what it would book cannot be told`
          : booked.account === undefined
            ? `product ${product}'s group ${booked.group} has no sales account for VAT zone ${vatZone}, so what e-conomic would book cannot be told`
            : `e-conomic books it with product ${product}'s group ${booked.group}: sales account ${booked.account} for VAT zone ${vatZone}, ${booked.vatCode ? `VAT code ${booked.vatCode}` : "without VAT"}`;
        throw new TargetError("permanent", {
          code: `economic.${LINE_FIELDS[field].setting}`,
          field: `lines.${i}.${field}`,
          message: `${doc} ${inv.number}, line ${i + 1} ("${l.text.slice(0, 40)}") carries ${label} ${sent}, but a line has no ${label} of its own at e-conomic: ${what}. Nothing was sent.`,
          hint: unkeptLineHint(field, sent, {
            owner: "product group",
            where: "the line's product in the PSA, or line_products in kontobro.toml",
          }),
        });
      }
    }
  }

  /**
   * A booking refused because the invoice's date lies in no accounting year, or in a closed one: e-conomic books only
   * into an open year, and what it answers otherwise is unverified, so the year is looked up by the date
   * (`GET /accounting-years`, economic.md). Null when the year is open or cannot be read now (the refusal stands as
   * e-conomic said it).
   */
  private async yearRefusing(inv: InvoiceLike): Promise<TargetError | null> {
    const filter = encodeURIComponent(`fromDate$lte:${inv.date}$and:toDate$gte:${inv.date}`);
    const res = await this.http.request("GET", `${this.rest}/accounting-years?filter=${filter}`).catch(() => null);
    const years: any[] | undefined = res?.body?.collection;
    if (!Array.isArray(years)) return null;
    const year = years[0];
    if (year && year.closed !== true) return null;
    return accountingYearClosed(inv, year ? { year: String(year.year), fromDate: year.fromDate, toDate: year.toDate } : null);
  }

  /**
   * Our booked invoice: the one with this number, if it carries our PSA id. One request asks for both what has the
   * number and what carries the PSA id (`references.other`, filterable on booked invoices): an invoice with the number
   * that is not ours is refused, and so is ours booked under another number (booked before local state was lost, the
   * PSA has renumbered it since): booking it again would book it twice.
   */
  async findBooked(inv: InvoiceLike): Promise<any | null> {
    const number = Number(inv.number);
    const filter = encodeURIComponent(`bookedInvoiceNumber$eq:${number}$or:references.other$eq:${filterValue(inv.psaId)}`);
    const res = await this.http.request("GET", `${this.rest}/invoices/booked?filter=${filter}&pagesize=1000`);
    const rows: any[] = res.body?.collection ?? [];
    const withNumber = rows.find((b) => Number(b.bookedInvoiceNumber) === number);
    if (withNumber && withNumber.references?.other !== inv.psaId) throw numberTaken(inv, withNumber);
    if (withNumber) return withNumber;
    // Filters compare strings ignoring case: only our PSA id exactly is ours.
    const elsewhere = rows.filter((b) => b.references?.other === inv.psaId);
    if (elsewhere.length > 0) throw bookedUnderOtherNumber(inv, elsewhere);
    return null;
  }

  /**
   * The draft POST: at request_timeout_ms the attempt gives up (uncertain), but the request keeps listening
   * (connectors/http.ts, every write of a push), and a draft answered late is deleted when the answer comes.
   */
  private async createDraft(body: object, inv: InvoiceLike, ctx: PushContext): Promise<{ number: number; answer: any }> {
    const first = await this.http
      .request("POST", `${this.rest}/invoices/drafts`, {
        json: body,
        headers: { "Idempotency-Key": `${ctx.idempotencyKey}-draft` },
        onLateAnswer: (late) => this.discardLateDraft(late, inv, ctx),
      })
      .catch((e) => {
        throw goneAtTarget(e, inv) ?? e;
      });
    const draftNumber = Number(first.body?.draftInvoiceNumber);
    if (!Number.isInteger(draftNumber) || draftNumber < 1) {
      throw new TargetError("uncertain", {
        code: "unexpected_answer",
        message: "e-conomic answered the draft invoice without a draftInvoiceNumber.",
        hint: "kontobro checks and retries by itself.",
      });
    }
    return { number: draftNumber, answer: first.body };
  }

  private discardLateDraft(request: Promise<HttpResponse>, inv: InvoiceLike, ctx: PushContext): void {
    this.listen(
      request.then(
        async (res) => {
          const n = Number(res.body?.draftInvoiceNumber);
          if (Number.isInteger(n) && n >= 1) await this.persist(() => this.deleteDraft(n, `${ctx.idempotencyKey}-late-delete-${n}`, true));
        },
        // The answer broke off after all (reset after the commit, or none within the wait): the draft may exist,
        // its number unknown. Once the invoice is booked, every draft with its PSA id is an orphan; before that,
        // the attempt that books (uncertain, as this one timed out) removes it (sweepAfterBooking).
        async (e) => {
          if (!isTargetError(e) || e.kind !== "uncertain") return;
          await this.persist(async () => {
            if (await this.findBooked(inv)) await this.removeDrafts(inv.psaId, ctx, "late");
          });
        },
      ),
    );
  }

  /** Deletes the draft this attempt made, tried once now and, if refused, in the background as a late draft is (persist). */
  private async discardOwnDraft(n: number, key: string): Promise<void> {
    const remove = () => this.deleteDraft(n, key, true);
    await remove().catch(() => this.listen(this.persist(remove)));
  }

  /** Work that goes on after the push, listened to until it settles. */
  private listen(work: Promise<void>): void {
    const done: Promise<void> = work
      .catch(() => undefined)
      .finally(() => {
        this.pendingLate.delete(done);
      });
    this.pendingLate.add(done);
  }

  /**
   * Nobody else will remove a late draft (its delivery may be done already), so a refusal that may pass
   * (5xx, 429, a pause, a broken connection) is retried with backoff for as long as late answers are heard.
   */
  private async persist(work: () => Promise<void>): Promise<void> {
    const until = Date.now() + lateAnswerWaitMs();
    for (let delay = 250; ; delay = Math.min(delay * 2, 30_000)) {
      try {
        return await work();
      } catch (e) {
        // Jittered, so late drafts waiting out one pause do not all go the moment it ends.
        const wait = Math.max(delay, isTargetError(e) ? (e.retryAfterMs ?? 0) : 0) + Math.round(Math.random() * delay);
        if ((isTargetError(e) && e.kind === "permanent") || Date.now() + wait > until) throw e;
        await Bun.sleep(wait);
      }
    }
  }

  private async attachPdf(draftNumber: number, inv: InvoiceLike, ctx: PushContext): Promise<void> {
    const form = new FormData();
    const bytes = Buffer.from(inv.pdf!.contentBase64, "base64");
    form.append("", new Blob([bytes], { type: "application/pdf" }), inv.pdf!.filename);
    await this.http.request("POST", `${this.rest}/invoices/drafts/${draftNumber}/attachment/file`, {
      body: form,
      headers: { "Idempotency-Key": `${ctx.idempotencyKey}-pdf-${draftNumber}` },
    });
  }

  /**
   * Booked: no draft with its PSA id may remain (one landed by a late or lost request, or one this very
   * attempt made before learning the invoice was booked already). If that cannot be checked now, the
   * delivery is not done: it retries as uncertain, finds the booking, and sweeps again.
   */
  private async sweepAfterBooking(inv: InvoiceLike, ctx: PushContext): Promise<void> {
    try {
      await this.removeDrafts(inv.psaId, ctx, "after");
    } catch (e) {
      throw new TargetError("uncertain", {
        code: "economic.draft_cleanup_pending",
        message: `Invoice ${inv.number} is booked in e-conomic, but removing leftover drafts with its PSA id failed: ${e instanceof Error ? e.message : String(e)}`,
        hint: "kontobro retries by itself; nothing is booked twice.",
        ...targetSaid(e),
      });
    }
  }

  /** Deletes every draft whose references.other is our PSA id. */
  private async removeDrafts(psaId: string, ctx: PushContext, step: string): Promise<void> {
    const filter = encodeURIComponent(`references.other$eq:${filterValue(psaId)}`);
    const res = await this.http.request("GET", `${this.rest}/invoices/drafts?filter=${filter}&pagesize=1000`);
    const numbers: number[] = (res.body?.collection ?? [])
      .map((d: any) => Number(d.draftInvoiceNumber))
      .filter((n: number) => Number.isInteger(n));
    for (const n of numbers) await this.deleteDraft(n, `${ctx.idempotencyKey}-delete-${step}-${n}`);
  }

  /** `own`: the draft this attempt made (its number came in its own answer), deleted even when the push is fenced. */
  private async deleteDraft(n: number, key: string, own = false): Promise<void> {
    await this.http.request("DELETE", `${this.rest}/invoices/drafts/${n}`, {
      accept: [404],
      headers: { "Idempotency-Key": key },
      undoesOwnWrite: own,
    });
  }
}

const TOTAL_AT_ECONOMIC = { codePrefix: "economic", title: "e-conomic", outcome: "It was not booked. Its draft was deleted in e-conomic." };

/**
 * A line e-conomic gave a discount (a customer's or product's own, as its invoice-line templates carry): the PSA sends
 * none, and netAmount is "before all taxes and discounts" (REST schemas), so the total alone does not show it. Null
 * when no line of the draft's answer has a discountPercentage other than 0.
 */
function discountGiven(inv: InvoiceLike, answer: any): TargetError | null {
  const lines: any[] = Array.isArray(answer?.lines) ? answer.lines : [];
  const at = lines.findIndex((l) => Number(l?.discountPercentage ?? 0) !== 0);
  if (at < 0) return null;
  const line = lines[at];
  const n = Number(line.lineNumber ?? at + 1);
  const text = String(inv.lines[n - 1]?.text ?? line.description ?? "").slice(0, 40);
  const doc = inv.kind === "credit_note" ? "Credit note" : "Invoice";
  return new TargetError("permanent", {
    code: "economic.total_differs",
    message: `${doc} ${inv.number}: e-conomic gave line ${n} ("${text}") a discount of ${line.discountPercentage}%, which the PSA did not give, so it would book less than the PSA invoiced (its netAmount, before discounts, does not show it). ${TOTAL_AT_ECONOMIC.outcome}`,
    hint: `Remove the discount e-conomic gives this customer on ${line.product?.productNumber ? `product ${line.product.productNumber}` : "this line's product"} (a PSA discount goes on the invoice as a negative line), then send the ${doc.toLowerCase()} again or run \`kontobro retry\` (or press retry).`,
  });
}

/** What one attempt has done so far: whether it sent its draft POST, and the draft's number once it was answered. */
interface Attempt {
  draftSent: boolean;
  draft: number | null;
}

/**
 * A draft refused because its customer, project or a line's product does not exist (E06000 on `customer`, `project`,
 * `lines.N.product`): kontobro sent it before the invoice (a product: when the PSA sends products), so it was deleted
 * (or renumbered) in e-conomic since. Named, and forgotten as sent (Problem.record.gone), so the PSA's resend creates it
 * again and the invoice follows by itself. A product from line_products (not the line's own) is the set-up's, not a
 * record of the PSA: left to the refusal as it is.
 */
function goneAtTarget(e: unknown, inv: InvoiceLike): TargetError | null {
  if (!isTargetError(e) || e.kind !== "permanent" || e.code !== "E06000") return null;
  const missing = missingRecord(e.field, inv);
  if (!missing) return null;
  const { entity, key } = missing;
  const doc = inv.kind === "credit_note" ? "credit note" : "invoice";
  const what = `${capitalise(entity)} ${key}`;
  const sent = entity === "product" ? "products (when the PSA sends them)" : `${entity}s`;
  return new TargetError("permanent", {
    code: `economic.${entity}_missing`,
    field: e.field,
    record: { entity, key, gone: true },
    message: `${what} of ${doc} ${inv.number} does not exist in e-conomic, though kontobro sends ${sent} before their invoices: it was probably deleted (or renumbered) there. (${e.message})`,
    hint: `Send ${entity} ${key} again from the PSA (unchanged will do): kontobro creates it in e-conomic again and the ${doc} follows by itself. Or create ${entity} ${key} in e-conomic and press retry.`,
    status: e.status,
  });
}

/** Booking refused: the invoice's date is in a closed accounting year (`year`) or in none. It is never booked on another date. */
function accountingYearClosed(inv: InvoiceLike, year: { year: string; fromDate: string; toDate: string } | null): TargetError {
  const what = inv.kind === "credit_note" ? "Credit note" : "Invoice";
  const where = year
    ? `in accounting year ${year.year} (${year.fromDate} to ${year.toDate}), which is closed in e-conomic`
    : "in no accounting year in e-conomic (the year is not created yet)";
  const fix = year ? `Open accounting year ${year.year} in e-conomic` : `Create the accounting year containing ${inv.date} in e-conomic`;
  return new TargetError("permanent", {
    code: "economic.accounting_year_closed",
    message: `${what} ${inv.number} is dated ${inv.date}, ${where}, so e-conomic did not book it. It was not booked on another date.`,
    hint: `${fix}, then run \`kontobro retry\` (or press retry): kontobro books it dated ${inv.date}. If the date is wrong, correct it in the PSA and send the invoice again.`,
    field: "date",
  });
}

/** The PSA record an E06000's field names: the invoice's customer or project, or a line's own product. */
function missingRecord(field: string | undefined, inv: InvoiceLike): { entity: "customer" | "project" | "product"; key: string } | null {
  const [head, index, tail] = field?.split(".") ?? [];
  if (head === "customer") return { entity: "customer", key: inv.customerNumber };
  if (head === "project" && inv.projectNumber) return { entity: "project", key: inv.projectNumber };
  const code = head === "lines" && tail === "product" ? inv.lines[Number(index)]?.productCode : undefined;
  return code ? { entity: "product", key: code } : null;
}

function permanent(res: { status: number; body: any }): TargetError {
  const p = describeEconomicError({ status: res.status, headers: new Headers(), body: res.body });
  return new TargetError("permanent", { ...p, status: res.status });
}

/**
 * What a failed removal of drafts said about e-conomic (a 429 and its Retry-After, a 5xx), kept on the error the push
 * ends with: the dispatcher pauses the target (for every worker) or counts the failure from it, as for any request.
 * Without it, a 429 to a DELETE ended the push as a plain uncertain failure and the other workers went on sending.
 */
function targetSaid(e: unknown): { status?: number; retryAfterMs?: number } {
  return isTargetError(e) ? { status: e.status, retryAfterMs: e.retryAfterMs } : {};
}

/** A permanent failure whose draft could not be removed: retried as uncertain, so the next attempt removes it first. */
function cleanupPending(inv: InvoiceLike, e: unknown, removal: unknown): TargetError {
  return new TargetError("uncertain", {
    code: "economic.draft_cleanup_pending",
    message: `${e instanceof Error ? e.message : String(e)} Removing the draft this attempt left for invoice ${inv.number} in e-conomic failed too.`,
    hint: "kontobro removes the draft and tries again by itself; if e-conomic refuses the invoice again, it then needs action.",
    ...targetSaid(removal),
  });
}

/**
 * Our invoice was booked before this attempt (by an earlier version, an attempt whose answer was lost, or before a
 * restore). Done if it books the amounts this version says; a version with other amounts cannot change it.
 */
function bookedBefore(inv: InvoiceLike, booked: any, ctx: PushContext): PushResult {
  const net = Math.round(Number(booked?.netAmount) * 100);
  if (bookedAmountDiffers(inv, net)) throw alreadyBooked(inv, net);
  const note = ctx.link
    ? `Invoice ${inv.number} is already booked in e-conomic with these amounts; a booked invoice cannot change, so other changes of this version (texts, references) were not sent.`
    : undefined;
  return { remoteId: String(Number(inv.number)), ...(note ? { note } : {}) };
}

function alreadyBooked(inv: InvoiceLike, bookedNet: number): TargetError {
  const amount = (minor: number) => `${(minor / 100).toFixed(2)} ${inv.currency}`;
  return new TargetError("permanent", {
    code: "economic.invoice_already_booked",
    message: `${inv.kind === "credit_note" ? "Credit note" : "Invoice"} ${inv.number} is already booked in e-conomic with net ${amount(bookedNet)}, and booked invoices cannot be changed; this version says net ${amount(customerTotal(inv))}.`,
    hint: "Issue a credit note in the PSA (and a new invoice if needed) instead of changing a finalized invoice.",
  });
}

/** Never linked: an invoice with our number that kontobro did not book (another references.other). */
function numberTaken(inv: InvoiceLike, booked: any): TargetError {
  const what = [
    booked?.date && `dated ${booked.date}`,
    booked?.customer?.customerNumber !== undefined &&
      `to customer ${booked.customer.customerNumber}${booked?.recipient?.name ? ` (${booked.recipient.name})` : ""}`,
    booked?.grossAmount !== undefined && `total ${booked.grossAmount}${booked?.currency ? ` ${booked.currency}` : ""}`,
  ]
    .filter(Boolean)
    .join(", ");
  const ref = booked?.references?.other;
  return new TargetError("permanent", {
    code: "economic.invoice_number_taken",
    message: `Invoice number ${inv.number} is already used in e-conomic by booked invoice ${booked?.bookedInvoiceNumber ?? inv.number}${what ? ` (${what})` : ""}, ${ref ? `reference "${ref}"` : "no PSA reference"}; it is not ${inv.psaId}, so kontobro does not link it.`,
    hint: "Invoice numbers must not be made in e-conomic by hand. Agree a separate number range, renumber the invoice in the PSA, and send it again.",
    field: "number",
  });
}

/**
 * Never linked: our PSA invoice booked under another number (the PSA renumbered it after local state was lost). The
 * link would name another number than the PSA's, and booking it again would book it twice.
 */
function bookedUnderOtherNumber(inv: InvoiceLike, booked: any[]): TargetError {
  const what = inv.kind === "credit_note" ? "credit note" : "invoice";
  const numbers = booked.map((b) => b.bookedInvoiceNumber).join(", ");
  const first = booked[0];
  const details = [
    first?.date && `dated ${first.date}`,
    first?.netAmount !== undefined && `net ${first.netAmount}${first?.currency ? ` ${first.currency}` : ""}`,
  ]
    .filter(Boolean)
    .join(", ");
  return new TargetError("permanent", {
    code: "economic.invoice_booked_under_other_number",
    message: `PSA ${what} ${inv.psaId} is already booked in e-conomic as booked invoice ${numbers}${details ? ` (${details})` : ""}; the PSA now sends it as ${inv.number} (renumbered, and kontobro has no record of the first booking: a reinstall or a restore), so kontobro did not book it again.`,
    hint: `Booked invoice ${first?.bookedInvoiceNumber} is this PSA ${what}, booked once; nothing more is needed in e-conomic (a booked invoice keeps its number), so note in the PSA that ${inv.number} is booked as ${first?.bookedInvoiceNumber}. If ${inv.number} is in fact another ${what}, give it a PSA id of its own in the PSA and send it again.`,
    field: "number",
  });
}
