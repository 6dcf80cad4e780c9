// Invoices as drafts (issue 13, item 5): kontobro creates a customer invoice draft; eAccounting numbers the
// invoice when a person sends it there, and the "invoices" pull reports the number and status back. The PSA id
// is kept in the reference field ("kontobro:<psaId>"); eAccounting has no idempotency key and no number guard, so
// every push without a link looks for a draft (or an invoice made from one) carrying it first.
import { bookedAmountDiffers, customerTotal, type Customer, type InvoiceLike, type Project } from "../../agent/model.ts";
import type { PushContext, PushResult } from "../contract.ts";
import { TargetError } from "../http.ts";
import { targetTotalDiffers } from "../target-total.ts";
import { EaccountingClient, type Row } from "./client.ts";
import type { EaccountingConfig } from "./config.ts";
import { draftFields, draftNeedsRemoteCustomer, referenceValue } from "./map.ts";
import type { SetupLists } from "./setup.ts";

export const draftRemoteId = (draftId: string) => `draft:${draftId}`;
export const draftIdOf = (remoteId: string) => (remoteId.startsWith("draft:") ? remoteId.slice(6) : null);

/** What a lookup found of an invoice at eAccounting: our draft (and further drafts with our reference), or the invoice made from it. */
interface Found {
  draft?: Row;
  copies?: Row[];
  invoice?: Row;
}

export class EaccountingInvoices {
  constructor(
    private readonly client: EaccountingClient,
    private readonly cfg: EaccountingConfig,
    private readonly setup: SetupLists,
  ) {}

  async push(inv: InvoiceLike, ctx: PushContext): Promise<PushResult> {
    const what = inv.kind === "credit_note" ? "credit note" : "invoice";
    // 1. Ours already? By the link, or else by the reference field, on every first push: eAccounting has no number
    // guard, so a PSA resend after kontobro lost its local state (a new data directory, a restore nobody detected)
    // would otherwise make a second draft of an invoice already made or sent. A draft POST of an earlier attempt
    // answered late has landed by now: that attempt ended only once it had answered (connectors/http.ts).
    const existing = ctx.link ? await this.byLink(ctx.link.remoteId) : await this.find(inv);
    if (existing?.invoice) {
      sameAmountsAsSent(inv, existing.invoice);
      return {
        remoteId: draftRemoteId(existing.invoice.CreatedFromDraftId ?? existing.invoice.Id),
        note: `eAccounting has already sent ${what} ${inv.number} as invoice ${existing.invoice.InvoiceNumber} with these amounts; a sent invoice cannot change, so other changes of this version (texts, references) were not sent.`,
      };
    }
    const body = await this.draftBody(inv, ctx);
    if (existing?.draft) {
      if (existing.copies?.length) await this.removeCopies(inv, body, existing.draft, existing.copies);
      await this.refuseOtherTotal(inv, await this.client.put(`/customerinvoicedrafts/${existing.draft.Id}`, body), existing.draft.Id);
      return {
        remoteId: draftRemoteId(existing.draft.Id),
        note: this.withNotes(inv, `Draft for ${what} ${inv.number} updated in eAccounting (Sales › Invoice drafts); send it from there.`),
      };
    }
    const draft = await this.createDraft(inv, ctx, body);
    if (!draft?.Id)
      throw new TargetError("uncertain", {
        code: "eaccounting.unexpected_answer",
        message: `eAccounting accepted the draft for ${what} ${inv.number} without its Id.`,
        hint: "kontobro looks it up by its reference before creating anything.",
      });
    await this.refuseOtherTotal(inv, draft, draft.Id);
    await this.yieldToOlderDraft(inv, draft);
    return {
      remoteId: draftRemoteId(draft.Id),
      note: this.withNotes(
        inv,
        `Draft for ${what} ${inv.number} is in eAccounting (Sales › Invoice drafts): send it from there; eAccounting numbers it, and kontobro reports the number and payment to the PSA.`,
      ),
    };
  }

  /** The draft's note, with what of the PSA's invoice the draft does not carry (its PDF, a reference the marker displaced). */
  private withNotes(inv: InvoiceLike, note: string): string {
    return [note, pdfNote(inv), displacedReferenceNote(inv, this.cfg.reference_field)].filter(Boolean).join(" ");
  }

  /**
   * A draft whose own total (its answer: no extra request) is not the PSA's never stands as the invoice: a person would
   * send it as it is. It is deleted, as a copy is (a 404: gone already), and the invoice needs action naming both totals.
   */
  private async refuseOtherTotal(inv: InvoiceLike, answer: Row, draftId: string): Promise<void> {
    const differs = draftTotalDiffers(inv, answer);
    if (!differs) return;
    await this.client.request("DELETE", `/customerinvoicedrafts/${draftId}`, { accept: [404] });
    throw differs;
  }

  /**
   * Our new draft, looked for again: another process may have made one for the same PSA invoice at this moment (a
   * second kontobro installation against this company, which the PSA sends it too), with the same reference (nothing
   * in it tells installations apart). Sending both would invoice the customer twice. Ours stays only when every other
   * is younger: one made as early as ours (the same CreatedUtc) may have looked before ours existed, so both step
   * back then. A draft stepping back is deleted, and the invoice needs action: retry links the other (or makes one).
   */
  private async yieldToOlderDraft(inv: InvoiceLike, draft: Row): Promise<void> {
    const found = await this.find(inv);
    const drafts = found?.draft ? [found.draft, ...(found.copies ?? [])] : [];
    const created = String(drafts.find((d) => d.Id === draft.Id)?.CreatedUtc ?? draft.CreatedUtc);
    const older = drafts.find((d) => d.Id !== draft.Id && String(d.CreatedUtc) <= created);
    if (!older) return;
    await this.client.request("DELETE", `/customerinvoicedrafts/${draft.Id}`, { accept: [404] });
    const what = inv.kind === "credit_note" ? "credit note" : "invoice";
    throw new TargetError("permanent", {
      code: "eaccounting.draft_made_elsewhere",
      message: `Another process made a draft carrying kontobro's reference for PSA ${what} ${inv.psaId} (${inv.number}) in eAccounting while this one made its own: most likely a second kontobro installation against this eAccounting company. This one's draft was deleted; the other's (${older.Id}) stays.`,
      hint: "Run one kontobro installation per eAccounting company, and stop the other. Press retry: kontobro links the other's draft (and never makes a second one).",
    });
  }

  /**
   * The draft created. Refused with 404 (ResourceNotFound), an id kept from an earlier lookup may name a customer or
   * article deleted in eAccounting since: each is looked up again by number, once, and the draft made with what
   * eAccounting has now (one a person re-created under the same number), or the missing record is named.
   */
  private async createDraft(inv: InvoiceLike, ctx: PushContext, body: Row): Promise<Row> {
    for (let lookedUpAgain = false; ; lookedUpAgain = true) {
      try {
        return (await this.client.request("POST", "/customerinvoicedrafts", { json: body })).body as Row;
      } catch (e) {
        if (lookedUpAgain || !(e instanceof TargetError && e.status === 404)) throw this.explain(e, inv);
      }
      this.setup.forgetIds();
      body = await this.draftBody(inv, ctx);
    }
  }

  /**
   * Our draft, or the invoice eAccounting made from it, by the reference field (drafts, then invoices). `copies`:
   * further drafts with our reference (a create whose answer reached no process landed after a later attempt looked).
   */
  async find(inv: InvoiceLike): Promise<Found | null> {
    const marker = referenceValue(inv.psaId);
    const field = this.cfg.reference_field;
    const q = { filter: `${field} eq ${EaccountingClient.lit(marker)}`, where: (r: Row) => r[field] === marker };
    // The oldest first (then by Id), whatever order eAccounting lists them in: every attempt keeps the same one.
    const [draft, ...copies] = (await this.client.all("customerinvoicedrafts", q)).sort(
      (a, b) => String(a.CreatedUtc).localeCompare(String(b.CreatedUtc)) || String(a.Id).localeCompare(String(b.Id)),
    );
    if (draft) return { draft, ...(copies.length ? { copies } : {}) };
    // An invoice eAccounting made from our draft (a person sent it between our attempts).
    const invoices = await this.client.all("customerinvoices", q);
    return invoices[0] ? { invoice: invoices[0] } : null;
  }

  /**
   * Several drafts with our reference: sending each would invoice the customer again. Copies of what kontobro writes
   * now (every field it sends, every row) are its own, unchanged, and deleted; if one differs, a person has worked on
   * it and chooses which to keep.
   */
  private async removeCopies(inv: InvoiceLike, body: Row, draft: Row, copies: Row[]): Promise<void> {
    if (![draft, ...copies].every((d) => holdsAllOf(d, body))) {
      throw new TargetError("permanent", {
        code: "eaccounting.draft_duplicate",
        message: `eAccounting has ${copies.length + 1} drafts carrying kontobro's reference for ${inv.kind === "credit_note" ? "credit note" : "invoice"} ${inv.number}, and one was changed there; sending more than one would invoice the customer twice.`,
        hint: "Delete the extra draft(s) in eAccounting (Sales › Invoice drafts), keep one, then press retry.",
      });
    }
    for (const copy of copies) await this.client.request("DELETE", `/customerinvoicedrafts/${copy.Id}`, { accept: [404] });
  }

  private async byLink(remoteId: string): Promise<Found | null> {
    const id = draftIdOf(remoteId);
    if (!id) return null;
    const res = await this.client.request("GET", `/customerinvoicedrafts/${id}`, { accept: [404] });
    if (res.status !== 404) return { draft: res.body };
    const invoices = await this.client.all("customerinvoices", {
      filter: `CreatedFromDraftId eq ${EaccountingClient.lit(id)}`,
      where: (r) => r.CreatedFromDraftId === id,
    });
    return invoices[0] ? { invoice: invoices[0] } : null;
  }

  private async draftBody(inv: InvoiceLike, ctx: PushContext): Promise<Row> {
    const customer = (ctx.record?.("customer", inv.customerNumber) as Customer | null) ?? null;
    let remote = await this.setup.idOf("customer", inv.customerNumber);
    let remoteCustomer: Row | null =
      remote?.row ?? (remote && draftNeedsRemoteCustomer(customer) ? await this.customerOrNull(remote.id) : {});
    if (remote && !remoteCustomer) {
      // The id kept names a customer deleted in eAccounting since: looked up again by number.
      this.setup.forgetIds();
      remote = await this.setup.idOf("customer", inv.customerNumber);
      remoteCustomer = remote?.row ?? {};
    }
    if (!remote) {
      throw new TargetError("permanent", {
        code: "eaccounting.customer_missing",
        record: { entity: "customer", key: inv.customerNumber, gone: true },
        message: `Customer ${inv.customerNumber} of ${inv.kind === "credit_note" ? "credit note" : "invoice"} ${inv.number} does not exist in eAccounting, though kontobro sends customers before their invoices: it was probably deleted (or renumbered) there.`,
        hint: `Send customer ${inv.customerNumber} again from the PSA (unchanged will do): kontobro creates it in eAccounting again and the invoice follows by itself. Or create customer ${inv.customerNumber} in eAccounting (Sales › Customers) and press retry.`,
      });
    }
    const articleIds: string[] = [];
    const unitIds: (string | undefined)[] = [];
    for (const [i, l] of inv.lines.entries()) {
      const number = l.productCode ?? this.cfg.default_article!;
      const article = await this.setup.idOf("article", number);
      if (!article) {
        const fromLine = !!l.productCode;
        throw new TargetError("permanent", {
          code: "eaccounting.article_missing",
          field: `lines.${i}.productCode`,
          // The line's own product: sent before (when the PSA sends products), it was deleted there since; forgotten as
          // sent (Problem.record.gone), so the PSA's resend, unchanged too, creates it again.
          ...(fromLine ? { record: { entity: "product" as const, key: number, gone: true } } : {}),
          message: `${inv.kind === "credit_note" ? "Credit note" : "Invoice"} ${inv.number}, line ${i + 1}: eAccounting has no article ${number}${fromLine ? " (the line's product)" : " (default_article in kontobro.toml)"}.`,
          hint: fromLine
            ? `Send product ${number} again from the PSA (unchanged will do): kontobro creates the article again and the invoice follows by itself. Or create article ${number} in eAccounting (Sales › Articles) and press retry.`
            : "Create the article in eAccounting or fix default_article in kontobro.toml (`kontobro check` verifies it); then press retry.",
        });
      }
      articleIds.push(article.id);
      unitIds.push(l.unit ? (await this.setup.unitFor(l.unit)).Id : undefined);
    }
    let costCenterItemId: string | undefined;
    if (inv.projectNumber) {
      const item = (await this.setup.item(inv.projectNumber)) ?? (await this.setup.item(inv.projectNumber, true));
      if (!item) {
        const project = ctx.record?.("project", inv.projectNumber) as Project | null;
        throw new TargetError("permanent", {
          code: "eaccounting.project_missing",
          record: { entity: "project", key: inv.projectNumber, gone: true },
          message: `Project ${inv.projectNumber}${project ? ` (${project.name})` : ""} of invoice ${inv.number} is not a cost-centre item in eAccounting, though kontobro sends projects before their invoices: it was probably deleted (or renumbered) there.`,
          hint: `Send project ${inv.projectNumber} again from the PSA (unchanged will do): kontobro creates the item again and the invoice follows by itself.`,
        });
      }
      costCenterItemId = item.Id;
    }
    return draftFields(inv, {
      cfg: this.cfg,
      customerId: remote.id,
      customer,
      remoteCustomer: remoteCustomer ?? {},
      articleIds,
      unitIds,
      costCenterItemId,
    });
  }

  private async customerOrNull(id: string): Promise<Row | null> {
    const res = await this.client.request("GET", `/customers/${id}`, { accept: [404] });
    return res.status === 404 ? null : (res.body as Row);
  }

  /** eAccounting's refusals of a draft, said for this invoice and where to fix them. */
  private explain(e: unknown, inv: InvoiceLike): unknown {
    if (!(e instanceof TargetError) || e.kind !== "permanent") return e;
    const what = `${inv.kind === "credit_note" ? "Credit note" : "Invoice"} ${inv.number}`;
    if (e.status === 409) {
      return new TargetError("permanent", {
        ...e,
        code: "eaccounting.article_inactive",
        message: `${what}: ${e.message}`,
        hint: "An article on the invoice is inactivated in eAccounting. Reactivate it there (Sales › Articles › the article › Active), then press retry.",
      });
    }
    if (/InactiveCostCenter/.test(e.code)) {
      return new TargetError("permanent", {
        ...e,
        message: `${what}: ${e.message}`,
        record: inv.projectNumber ? { entity: "project", key: inv.projectNumber } : undefined,
      });
    }
    return new TargetError("permanent", { ...e, message: `${what}: ${e.message}` });
  }
}

/**
 * kontobro sends no PDF to eAccounting (the draft is sent from there, and eAccounting makes the invoice's PDF): a PSA
 * PDF is said in the note, not dropped unseen.
 */
function pdfNote(inv: InvoiceLike): string | undefined {
  if (!inv.pdf) return undefined;
  return `The PSA's PDF ${inv.pdf.filename} was not attached: kontobro does not send PDFs to eAccounting, which makes the invoice's own PDF when it is sent; attach the PSA's by hand to the draft if the customer must get it.`;
}

/**
 * With reference_field = OurReference or YourReference, kontobro's marker takes that field: the PSA's own reference for
 * it cannot go with the draft (the marker is how kontobro finds the draft and its invoice again), so it is said in the
 * note, not dropped unseen; the person who sends the draft can add it as a text row.
 */
function displacedReferenceNote(inv: InvoiceLike, field: EaccountingConfig["reference_field"]): string | undefined {
  const value = field === "OurReference" ? inv.ourReference : field === "YourReference" ? inv.yourReference : undefined;
  if (!value?.trim()) return undefined;
  const label = field === "OurReference" ? "our reference" : "your reference";
  return `The PSA's ${label} "${value}" was not sent: ${field} carries kontobro's marker (reference_field in kontobro.toml). If the customer must see it, add it to the draft as a text row, not in ${field}: kontobro finds the draft and its invoice by the marker.`;
}

/**
 * The invoice eAccounting made from our draft (sent, so booked) must book what this version says (a later version, or
 * a resend after a restore): other amounts need the user, as a sent invoice cannot change. Compared by its rows'
 * `AmountNoVat` (§8.1), which have no base-currency twin as the header totals have (`TotalAmount` beside
 * `TotalAmountInvoiceCurrency`) and hold no öre rounding; by size, as the sign of a credit invoice's rows is
 * unverified. Up to one minor unit for each line that rounds is rounding (the model's `bookedAmountDiffers`).
 */
function sameAmountsAsSent(inv: InvoiceLike, invoice: Row): void {
  const rows = Array.isArray(invoice.Rows) ? (invoice.Rows as Row[]).filter((r) => !r.IsTextRow) : null;
  const size = rows ? Math.abs(Math.round(rows.reduce((sum, r) => sum + Number(r.AmountNoVat) * 100, 0))) : Number.NaN;
  const booked = customerTotal(inv) < 0 ? -size : size;
  const currency = typeof invoice.CurrencyCode === "string" ? invoice.CurrencyCode : inv.currency;
  if (currency === inv.currency && !bookedAmountDiffers(inv, booked)) return;
  const amount = (minor: number, cur: string) =>
    Number.isFinite(minor) ? `${(minor / 100).toFixed(2)} ${cur}` : "amounts kontobro could not read (no AmountNoVat on its rows)";
  const what = inv.kind === "credit_note" ? "Credit note" : "Invoice";
  throw new TargetError("permanent", {
    code: "eaccounting.invoice_changed_after_sending",
    message: `${what} ${inv.number} was sent in eAccounting as invoice ${invoice.InvoiceNumber} with ${amount(booked, currency)} excluding VAT; this version says ${amount(customerTotal(inv), inv.currency)}, and a sent invoice cannot be changed.`,
    hint: 'Credit it (in eAccounting, or from the PSA with credit_notes = "draft") and send a new invoice if needed, instead of changing a sent invoice.',
  });
}

/**
 * Null when the total eAccounting computed for a draft (its POST or PUT answer) is the PSA's; else the needs-action
 * error. The draft answers `TotalAmount` and `TotalVatAmount` (§8.1, set by the server) in the draft's currency
 * (`InvoiceCurrencyCode`; the base-currency totals are their `…BaseCurrency` twins); excluding VAT it is
 * `TotalAmount - TotalVatAmount`. Unverified: whether `TotalAmount` holds the öre rounding (`TotalRoundings`), so the net
 * with it taken off counts too (whichever is nearer the PSA's); and the sign of a credit invoice's totals, so a credit
 * note's are compared by size. A draft answered without either total is not compared (README, "The draft's own total").
 */
export function draftTotalDiffers(inv: InvoiceLike, draft: Row): TargetError | null {
  const gross = draft?.TotalAmount,
    vat = draft?.TotalVatAmount;
  const known = (x: unknown) => x !== undefined && x !== null;
  let net: number | string | undefined;
  if (known(gross) && known(vat)) {
    const psa = customerTotal(inv) / 100;
    const plain = Number(gross) - Number(vat);
    const lessRounding = plain - Number(draft.TotalRoundings ?? 0);
    net = Math.abs(lessRounding - psa) < Math.abs(plain - psa) ? lessRounding : plain;
    if (inv.kind === "credit_note") net = psa < 0 ? -Math.abs(net) : Math.abs(net);
    if (!Number.isFinite(net)) net = `${String(gross)} - ${String(vat)}`;
  }
  return targetTotalDiffers(inv, { net, currency: draft?.InvoiceCurrencyCode }, TOTAL_AT_EACCOUNTING);
}

const TOTAL_AT_EACCOUNTING = {
  codePrefix: "eaccounting",
  title: "eAccounting",
  // kontobro books nothing in eAccounting (a person sends the drafts it makes): no "It was not booked" here.
  outcome: "Its draft was deleted in eAccounting, so nobody can send it as it was.",
};

/** Whether `draft` holds every field of `body` as sent (rows in order, each with the fields sent, and no others added). */
export function holdsAllOf(draft: Row, body: Row): boolean {
  const same = (sent: Row, got: Row) => Object.entries(sent).every(([k, v]) => k === "Rows" || got[k] === v);
  const rows = (draft.Rows ?? []) as Row[];
  const sentRows = (body.Rows ?? []) as Row[];
  return same(body, draft) && rows.length === sentRows.length && sentRows.every((r, i) => same(r, rows[i]!));
}
