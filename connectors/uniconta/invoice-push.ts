// Invoices and credit notes as Uniconta does them (uniconta.md §6): a sales order (DebtorOrderClient) with its
// lines inserted as one list, which then becomes the invoice: posted by the customer's .NET gateway
// (InvoiceAPI.PostInvoice), or invoiced by a person in Uniconta ("order only"). The PSA id is kept in a
// reference field of the order (copied to the posted invoice) and looked up before anything is created,
// so nothing is ordered or posted twice. Uniconta numbers invoices from its own series; a number that is
// not the PSA's is "needs action", never hidden.
import { bookedAmountDiffers, customerTotal, type InvoiceLike, type Project } from "../../agent/model.ts";
import type { ConnectorDeps, PushContext, PushResult } from "../contract.ts";
import { TargetError } from "../http.ts";
import { targetTotalDiffers } from "../target-total.ts";
import type { Row, UnicontaClient } from "./client.ts";
import type { UnicontaConfig } from "./config.ts";
import {
  dateOf,
  differs,
  invoiceDepartment,
  lineNeeds,
  mergeEntity,
  orderFields,
  orderLines,
  referenceValue,
  sameLines,
  sameNumber,
} from "./map.ts";
import type { ListKind, SetupLists } from "./setup.ts";

type Logger = ConnectorDeps["log"];

export const NUMBER_SERIES_HINT =
  'In Uniconta open General Ledger › Maintenance › Voucher number series and set "next number" of the invoice series to the PSA\'s next invoice number: the PSA is master for invoice numbers, and Uniconta does not take them from an integration.';

export class UnicontaInvoices {
  /**
   * Number mismatches and posted totals reported as "needs action" by this process, by delivery (numberKey, totalKey):
   * a retry of that delivery accepts Uniconta's number or total.
   */
  private readonly reported = new Set<string>();
  /** Pushes under way and their PSA numbers: Uniconta numbers in posting order, so lower numbers post first. */
  private readonly active = new Map<symbol, number>();
  private waiters: (() => void)[] = [];

  constructor(
    private readonly client: UnicontaClient,
    private readonly cfg: UnicontaConfig,
    private readonly setup: SetupLists,
    private readonly log: Logger,
  ) {}

  async push(inv: InvoiceLike, ctx: PushContext): Promise<PushResult> {
    const me = Symbol(inv.number);
    this.active.set(me, Number(inv.number));
    const attempt = { orderSent: false };
    try {
      return await this.pushOne(inv, ctx, me, attempt);
    } catch (e) {
      throw attempt.orderSent ? await this.afterFailedPosting(inv, e) : e;
    } finally {
      this.active.delete(me);
      const w = this.waiters;
      this.waiters = [];
      for (const wake of w) wake();
    }
  }

  /**
   * Waits while a push of a lower-numbered invoice is under way in this process: the number series gives the
   * next number to whichever posts first, so 20004 must not overtake 20003. A failed push leaves at once, so
   * it never holds the others back (it may then get a later number: needs action, see README).
   */
  private async turn(me: symbol, n: number): Promise<void> {
    while ([...this.active].some(([other, m]) => other !== me && m < n)) await new Promise<void>((wake) => this.waiters.push(wake));
  }

  /**
   * Posting through the gateway, an order lives only within the attempt that made it, so a plain attempt (not
   * uncertain, no link) does not look for one: an attempt that fails after sending its order insert leaves
   * nothing a person could invoice by hand, or leaves the delivery uncertain (afterFailedPosting). With
   * "order only" the order is what kontobro delivers and waits for a person: every attempt looks for it.
   */
  private async pushOne(inv: InvoiceLike, ctx: PushContext, me: symbol, attempt: { orderSent: boolean }): Promise<PushResult> {
    const project = inv.projectNumber ? ((ctx.record?.("project", inv.projectNumber) as Project | null) ?? null) : null;
    // 1. Posted already (by an earlier attempt, or by a person from our order)? Then never again. A posting or an
    // order insert of an earlier attempt answered late has landed by now: that attempt ended only once it had
    // answered (connectors/http.ts; whether Uniconta deletes an order once invoiced is not verified, README).
    const posted = await this.findPosted(inv);
    if (posted) {
      await this.removeLeftoverOrders(inv, posted);
      return this.done(posted, inv, false, ctx);
    }
    await this.requireSetup(inv, project);

    // 2. The order: one left by an earlier attempt, else a new one.
    const header = orderFields(inv, { cfg: this.cfg, project });
    const gateway = this.cfg.posting !== "order_only";
    let order = !gateway || ctx.uncertain || ctx.link ? await this.findOrder(inv) : null;
    let found: Row[] | null = order ? await this.client.readBy("DebtorOrderLineClient", "OrderNumber", order.OrderNumber) : null;
    if (order && ctx.uncertain && found!.length === 0) {
      // An order without lines after an uncertain attempt: that attempt's line insert may still be on its way (a
      // hosted worker paused between its fence and the wire, an answer past request_timeout_ms), and lines given to
      // this order now would be doubled when it lands. A fresh order instead: that insert then lands on a deleted
      // order, which Uniconta refuses.
      await this.client.remove("DebtorOrderClient", [{ RowId: order.RowId }]);
      order = null;
      found = null;
    }
    const fresh = !order;
    if (!order) {
      attempt.orderSent = gateway;
      const answer = await this.client.insert("DebtorOrderClient", header).catch(async (e) => {
        throw (await this.goneAtTarget(e, inv)) ?? e;
      });
      order = answer && !Array.isArray(answer) && answer.OrderNumber ? answer : await this.findOrder(inv);
      if (!order) {
        throw new TargetError("uncertain", {
          code: "uniconta.order_not_found",
          message: `Uniconta accepted the order for invoice ${inv.number} but it cannot be found by its reference (${this.cfg.reference_field}).`,
          hint: "kontobro looks again before creating anything; if this repeats, check reference_field in kontobro.toml.",
        });
      }
    } else if (differs(order, header)) {
      await this.client.update("DebtorOrderClient", mergeEntity(order, header));
    }

    // 3. Its lines, as one list (one call, not one per line).
    const wanted = orderLines(inv, Number(order.OrderNumber), { cfg: this.cfg, project });
    const existing = found ?? [];
    if (!sameLines(existing, wanted)) {
      if (existing.length > 0)
        await this.client.remove(
          "DebtorOrderLineClient",
          existing.map((l) => ({ RowId: l.RowId })),
        );
      await this.client.insert("DebtorOrderLineClient", wanted);
    }

    if (this.cfg.posting === "order_only") {
      const pdfNote = await this.attachPdf(inv, "DebtorOrderClient", order.RowId, !fresh);
      const note =
        `Order ${order.OrderNumber} for ${inv.kind === "credit_note" ? "credit note" : "invoice"} ${inv.number} is in Uniconta (Debtor › Orders): invoice it there. ` +
        "kontobro reports Uniconta's invoice number and payment status to the PSA once it is posted.";
      return { remoteId: `order:${order.OrderNumber}`, note: [note, pdfNote].filter(Boolean).join(" ") };
    }

    // 4. Post it through the gateway, after any lower-numbered invoice under way, unless another process posts it.
    await this.turn(me, Number(inv.number));
    const elsewhere = fresh ? await this.postedElsewhere(inv, order) : null;
    if (elsewhere) {
      attempt.orderSent = false; // its order is deleted; the other's orders are not this attempt's to clean up
      throw elsewhere;
    }
    const invoiceNumber = this.cfg.send_invoice_number && /^\d+$/.test(inv.number) ? Number(inv.number) : undefined;
    if (this.cfg.simulate_before_post) {
      const sim = await this.client.postOrder(Number(order.OrderNumber), { simulate: true, invoiceNumber });
      const total = this.simulatedTotalDiffers(inv, sim.Header);
      if (total) {
        attempt.orderSent = true; // its order (fresh or found) is deleted: nobody invoices it as it is
        throw total;
      }
      if (sim.Header?.InvoiceNumber !== undefined && !sameNumber(sim.Header.InvoiceNumber, inv.number))
        throw this.mismatch(inv, sim.Header.InvoiceNumber, false);
    }
    const result = await this.client.postOrder(Number(order.OrderNumber), { simulate: false, invoiceNumber });
    const row = result.Header?.InvoiceNumber !== undefined ? result.Header : await this.findPosted(inv);
    if (!row)
      throw new TargetError("uncertain", {
        code: "uniconta.posted_not_found",
        message: `The gateway posted order ${order.OrderNumber} but the invoice cannot be found.`,
        hint: "kontobro looks it up again before doing anything else.",
      });
    // Posted: a total other than the PSA's is booked now and can only be reported (needs action; retry links it).
    const wrong = this.postedTotalDiffers(inv, row, ctx);
    if (wrong) throw wrong;
    return this.done(row, inv, true, ctx);
  }

  /**
   * Our fresh order, just before it is posted: another process may be posting the same PSA invoice at this moment (a
   * second kontobro installation against this company, which the PSA sends it too). Its order or invoice carries the
   * same reference (nothing in it tells installations apart), and Uniconta would post both, each under a number of its
   * own. The lowest order with our reference is the one posted; a process whose order is not the lowest, or that finds
   * the invoice posted already, deletes its order and stops: the error (needs action) is returned, and retry links the
   * posted invoice. Null: this order is the one to post.
   */
  private async postedElsewhere(inv: InvoiceLike, order: Row): Promise<TargetError | null> {
    // The orders first: one posted between the two reads is then found posted (it was not yet when its order was gone).
    const orders = await this.client.readBy("DebtorOrderClient", this.cfg.reference_field, referenceValue(inv.psaId));
    const lower = orders.filter((o) => Number(o.OrderNumber) < Number(order.OrderNumber));
    const posted = lower.length === 0 ? await this.findPosted(inv) : null;
    if (!posted && lower.length === 0) return null;
    await this.client.remove("DebtorOrderClient", [{ RowId: order.RowId }]);
    const other = posted ? `invoice ${posted.InvoiceNumber}` : `order ${lower.map((o) => o.OrderNumber).join(", ")}`;
    return new TargetError("permanent", {
      code: "uniconta.posted_elsewhere",
      message:
        `Uniconta has ${other} carrying kontobro's reference for PSA invoice ${inv.psaId} (${inv.number}), made by another process while this one made its order: ` +
        `most likely a second kontobro installation against this Uniconta company. This one's order ${order.OrderNumber} was deleted and nothing was posted.`,
      hint: `Run one kontobro installation per Uniconta company, and stop the other. Press retry: kontobro links the invoice once it is posted (and never posts it a second time).`,
    });
  }

  /**
   * A gateway attempt failed after sending its order insert. Refused (permanent): the order is deleted, so no
   * person invoices it next to the one a later attempt posts. Held back (retryable), or the delete fails too:
   * the delivery is uncertain, and the next attempt finds the order and finishes it.
   */
  private async afterFailedPosting(inv: InvoiceLike, e: unknown): Promise<unknown> {
    if (!(e instanceof TargetError) || e.kind === "uncertain") return e;
    if (e.kind === "retryable") return new TargetError("uncertain", e);
    try {
      const left = await this.client.readBy("DebtorOrderClient", this.cfg.reference_field, referenceValue(inv.psaId));
      if (left.length > 0)
        await this.client.remove(
          "DebtorOrderClient",
          left.map((o) => ({ RowId: o.RowId })),
        );
      return e;
    } catch (cleanup) {
      return new TargetError("uncertain", {
        code: "uniconta.order_cleanup_pending",
        message: `${e.message} Deleting the order this attempt left in Uniconta for invoice ${inv.number} failed too: ${cleanup instanceof Error ? cleanup.message : String(cleanup)}`,
        hint: "kontobro deletes the order and tries again by itself; if Uniconta refuses the invoice again, it then needs action.",
      });
    }
  }

  /** Our posted invoice (by the reference field), or null; a foreign one with the PSA's number stops the push. */
  async findPosted(inv: InvoiceLike): Promise<Row | null> {
    const marker = referenceValue(inv.psaId);
    const field = this.cfg.reference_field;
    const numeric = /^\d+$/.test(inv.number);
    const rows = await this.client.query("DebtorInvoiceClient", {
      filter: `${field} eq '${marker.replace(/'/g, "''")}'${numeric ? ` or InvoiceNumber eq ${inv.number}` : ""}`,
    });
    const ours = rows.filter((r) => r[field] === marker).sort((a, b) => Number(a.InvoiceNumber) - Number(b.InvoiceNumber));
    if (ours.length > 0) {
      if (ours.length > 1)
        this.log.warn("uniconta: more than one posted invoice carries this PSA invoice's reference", {
          invoice: inv.number,
          numbers: ours.map((r) => r.InvoiceNumber),
        });
      return ours[0]!;
    }
    const foreign = rows.find((r) => sameNumber(r.InvoiceNumber, inv.number));
    if (foreign) {
      const other = typeof foreign[field] === "string" && foreign[field].startsWith("kontobro:") ? foreign[field].slice(9) : null;
      throw new TargetError("permanent", {
        code: "uniconta.invoice_number_foreign",
        field: "number",
        message:
          `Uniconta already has invoice ${foreign.InvoiceNumber} (customer ${foreign.Account}, ${dateOf(foreign.Date)})${other ? `, which kontobro posted for PSA invoice ${other}` : ", which kontobro did not post"}. ` +
          `kontobro never takes over an invoice it did not post for this PSA invoice, and posting ${inv.number} now would give it another number, so nothing was sent.`,
        hint: `${NUMBER_SERIES_HINT} If the PSA and Uniconta share a range, agree separate ranges; then press retry.`,
      });
    }
    return null;
  }

  /**
   * Orders of ours next to the posted invoice: a late insert (of a process stopped while it waited) that
   * landed after another attempt posted. They would only invoice the customer twice, so they are deleted.
   */
  private async removeLeftoverOrders(inv: InvoiceLike, posted: Row): Promise<void> {
    const left = await this.client.readBy("DebtorOrderClient", this.cfg.reference_field, referenceValue(inv.psaId));
    if (left.length === 0) return;
    await this.client.remove(
      "DebtorOrderClient",
      left.map((o) => ({ RowId: o.RowId })),
    );
    this.log.warn("uniconta: deleted orders of ours left next to the posted invoice", {
      invoice: inv.number,
      posted: posted.InvoiceNumber,
      orders: left.map((o) => o.OrderNumber),
    });
  }

  /** Our open order (by the reference field), or null. Two orders with our reference are never both posted. */
  async findOrder(inv: InvoiceLike): Promise<Row | null> {
    const rows = await this.client.readBy("DebtorOrderClient", this.cfg.reference_field, referenceValue(inv.psaId));
    if (rows.length > 1) {
      throw new TargetError("permanent", {
        code: "uniconta.order_duplicate",
        message: `Uniconta has ${rows.length} orders for invoice ${inv.number} carrying kontobro's reference (orders ${rows.map((r) => r.OrderNumber).join(", ")}); posting them could invoice the customer twice.`,
        hint: "Delete the extra order(s) in Uniconta (Debtor › Orders), keep one, then press retry.",
      });
    }
    return rows[0] ?? null;
  }

  /**
   * An order refused for a missing reference (AccountIsMissing, CouldNotFind): when its customer or project is the one
   * missing (looked up by number), kontobro sent it before the invoice, so it was deleted (or renumbered) in Uniconta
   * since. Named, and forgotten as sent (Problem.record.gone), so the PSA's resend creates it again and the invoice
   * follows by itself. Null for any other refusal.
   */
  private async goneAtTarget(e: unknown, inv: InvoiceLike): Promise<TargetError | null> {
    if (!(e instanceof TargetError) || !/^uniconta\.(AccountIsMissing|CouldNotFind)$/.test(e.code)) return null;
    const missing = async (type: string, field: string, key: string | undefined) =>
      !!key && (await this.client.readBy(type, field, key)).length === 0;
    const [entity, key] = (await missing("DebtorClient", "Account", inv.customerNumber))
      ? (["customer", inv.customerNumber] as const)
      : (await missing("ProjectClient", "Number", inv.projectNumber))
        ? (["project", inv.projectNumber!] as const)
        : [null, null];
    if (!entity) return null;
    const doc = inv.kind === "credit_note" ? "credit note" : "invoice";
    return new TargetError("permanent", {
      code: `uniconta.${entity}_missing`,
      record: { entity, key, gone: true },
      message: `${entity === "customer" ? "Customer" : "Project"} ${key} of ${doc} ${inv.number} does not exist in Uniconta, though kontobro sends ${entity}s before their invoices: it was probably deleted (or renumbered) there. (${e.message})`,
      hint: `Send ${entity} ${key} again from the PSA (unchanged will do): kontobro creates it in Uniconta again and the ${doc} follows by itself. Or create ${entity} ${key} in Uniconta and press retry.`,
    });
  }

  /** The codes the order names exist in Uniconta; otherwise nothing is sent and the message lists what exists. */
  private async requireSetup(inv: InvoiceLike, project: Project | null): Promise<void> {
    const checked = new Set<string>();
    const need = async (
      kind: ListKind,
      code: string | undefined,
      what: string,
      fix: string,
      record?: { entity: "project"; key: string },
    ) => {
      if (!code || checked.has(`${kind}:${code}`)) return;
      checked.add(`${kind}:${code}`);
      await this.setup.require(kind, code, what, fix, record);
    };
    for (const [i, l] of inv.lines.entries()) {
      const n = lineNeeds(l, project, this.cfg);
      const at = `line ${i + 1} (${l.kind})`;
      await need(
        "vat",
        n.vat,
        `VAT code of ${at}`,
        `VAT codes must be the same in the PSA and Uniconta: create it in Uniconta, or fix the line's VAT code or vat_codes.${l.kind}`,
      );
      await need(
        "account",
        n.account,
        `Posting account of ${at}`,
        `Account numbers must be the same in the PSA and Uniconta: create it in Uniconta, or fix the line's account or accounts.${l.kind}`,
      );
      if (inv.projectNumber) {
        const fromProject = !l.category && this.cfg.project_category_tag_group && project?.tags?.[this.cfg.project_category_tag_group];
        await need(
          "category",
          n.category,
          `Project category of ${at}`,
          "Use one of Uniconta's project categories as the line's category or the project's tag code",
          fromProject ? { entity: "project", key: inv.projectNumber } : undefined,
        );
      }
      await need("item", n.item, `Item of ${at}`, `Create it in Uniconta or fix items.${l.kind} in kontobro.toml`);
    }
    const terms = inv.kind === "credit_note" ? this.cfg.credit_note_payment_terms : this.cfg.payment_terms;
    await need(
      "paymentTerms",
      terms,
      "Payment terms",
      `Fix ${inv.kind === "credit_note" ? "credit_note_payment_terms" : "payment_terms"} in kontobro.toml or create them in Uniconta`,
    );
    const department = invoiceDepartment(inv, project, this.cfg);
    await need(
      `dim${this.cfg.department_dimension}` as ListKind,
      department,
      `Department (dimension ${this.cfg.department_dimension})`,
      "Create the department in Uniconta or fix it in the PSA",
    );
  }

  /** The invoice is posted: attach the PDF once, check its number and date, link it. */
  private async done(row: Row, inv: InvoiceLike, postedNow: boolean, ctx: PushContext): Promise<PushResult> {
    const accepted = !postedNow && !ctx.link ? this.acceptedTotal(inv, row, ctx) : undefined;
    const compared = !postedNow && !accepted && this.sameAmountsAsPosted(inv, row, ctx);
    const notes: (string | undefined)[] = [accepted, await this.attachPdf(inv, "DebtorInvoiceClient", row.RowId, !postedNow)];
    if (!sameNumber(row.InvoiceNumber, inv.number)) {
      const key = numberKey(inv, row, ctx);
      if (postedNow || !this.reported.has(key)) {
        this.reported.add(key);
        throw postedNow ? this.mismatch(inv, row.InvoiceNumber, true) : this.foundUnderOtherNumber(inv, row);
      }
      notes.push(`Uniconta numbered PSA invoice ${inv.number} as ${row.InvoiceNumber} (reported as needs action, then accepted by retry).`);
    }
    if (compared && ctx.link)
      notes.push(
        `Invoice ${row.InvoiceNumber} is posted in Uniconta with these amounts; a posted invoice cannot change, so other changes of this version (texts, references) were not sent.`,
      );
    if (!postedNow && !compared)
      notes.push(
        `Invoice ${row.InvoiceNumber} is posted in Uniconta already; a posted invoice cannot change, so nothing of this version was sent. Its amounts were not compared (the invoice is in ${inv.currency}, company_currency is ${this.cfg.company_currency}): check them in Uniconta.`,
      );
    const date = dateOf(row.Date);
    if (date && date !== inv.date)
      notes.push(`Uniconta dated the invoice ${date}, the PSA ${inv.date} (a gateway that posts with today's date does this).`);
    const note = notes.filter(Boolean).join(" ");
    return { remoteId: String(row.InvoiceNumber), ...(note ? { note } : {}) };
  }

  /**
   * A posted invoice of ours found for this version (a later one, or a resend after a restore) must post what it says:
   * other amounts need the user (a posted invoice cannot change). Compared in the company currency only: whether
   * `NetAmount` is in the invoice's currency or the company's is unverified (README, Unverified). False: not compared.
   */
  private sameAmountsAsPosted(inv: InvoiceLike, row: Row, ctx: PushContext): boolean {
    const linked = !!ctx.link;
    if (inv.currency !== this.cfg.company_currency) return false;
    const posted = Math.round(Number(row.NetAmount) * 100);
    if (!bookedAmountDiffers(inv, posted)) return true;
    // Not linked yet: this posting is the only one of the invoice, and its credit notes wait for it. Reported once;
    // the retry a person presses links it (acceptedTotal), as when the posting itself is found to differ.
    if (!linked) this.reported.add(totalKey(inv, row, ctx));
    const amount = (minor: number) =>
      Number.isFinite(minor) ? `${(minor / 100).toFixed(2)} ${inv.currency}` : "an amount kontobro could not read";
    const what = inv.kind === "credit_note" ? "Credit note" : "Invoice";
    throw new TargetError("permanent", {
      code: "uniconta.invoice_changed_after_posting",
      message: `${what} ${inv.number} is posted in Uniconta (invoice ${row.InvoiceNumber}) with ${amount(posted)} excluding VAT; this version says ${amount(customerTotal(inv))}, and a posted invoice cannot be changed.`,
      hint: linked
        ? "Credit it in the PSA (and send a new invoice if needed) instead of changing a finalized invoice."
        : `Either the PSA changed it after it was posted (credit it in the PSA, and send a new invoice if needed), or Uniconta priced it otherwise when it was posted (see uniconta.posted_total_differs: credit invoice ${row.InvoiceNumber} in Uniconta and post the PSA's amounts there). Then press retry: kontobro links invoice ${row.InvoiceNumber} without posting anything, and the PSA's credit notes of it follow.`,
    });
  }

  /**
   * The posting's answer (or the invoice found posted) carries its NetAmount (the posting sample, uniconta.md §6): other
   * than the PSA's (prices read as incl. VAT, a price list, an item's own price), a wrong total is booked, which cannot
   * be refused any more. It needs action once, naming both totals and what to do in Uniconta; the retry a person presses
   * then links the posted invoice (acceptedTotal), so the PSA's credit notes of it are not held back for ever. Compared
   * in company_currency only (README, Unverified 13). Null: the same, or not told.
   */
  private postedTotalDiffers(inv: InvoiceLike, row: Row, ctx: PushContext): TargetError | null {
    if (inv.currency !== this.cfg.company_currency) return null;
    const doc = inv.kind === "credit_note" ? "credit note" : "invoice";
    const differs = targetTotalDiffers(
      inv,
      { net: row.NetAmount },
      {
        ...TOTAL_AT_UNICONTA,
        outcome: `It is posted in Uniconta as invoice ${row.InvoiceNumber} with Uniconta's total, and a posted invoice cannot be changed: the books hold a total the PSA did not ${inv.kind === "credit_note" ? "credit" : "invoice"}.`,
      },
    );
    if (!differs) return null;
    this.reported.add(totalKey(inv, row, ctx));
    return new TargetError("permanent", {
      code: "uniconta.posted_total_differs",
      message: differs.message,
      hint:
        `Find what Uniconta priced otherwise than the PSA (the customer's "prices incl. VAT", a price list, an item's own price) and correct it in Uniconta (or set simulate_before_post = true, which compares before posting). ` +
        `Then credit invoice ${row.InvoiceNumber} in Uniconta (Debtor › Invoices: a credit note of it reverses exactly what was posted) and post the PSA's amounts there by hand, or correct the ${doc} in the PSA if Uniconta's total is the right one. ` +
        `Then press retry: kontobro links invoice ${row.InvoiceNumber} to PSA ${doc} ${inv.number} without posting anything (it never posts it again), and the PSA's credit notes of it follow.`,
    });
  }

  /**
   * A retry of the delivery whose posted total was reported (postedTotalDiffers, or sameAmountsAsPosted for an invoice
   * found posted with no link) by this process: the note that links it, naming both totals. Undefined: not reported. A
   * new version (the PSA sending the invoice again) is another delivery: reported in its turn, its retry links it.
   */
  private acceptedTotal(inv: InvoiceLike, row: Row, ctx: PushContext): string | undefined {
    const posted = Math.round(Number(row.NetAmount) * 100);
    if (!this.reported.has(totalKey(inv, row, ctx)) || !bookedAmountDiffers(inv, posted)) return undefined;
    return `Invoice ${row.InvoiceNumber} is posted in Uniconta with ${(posted / 100).toFixed(2)} ${inv.currency} excluding VAT, not the PSA's ${(customerTotal(inv) / 100).toFixed(2)} ${inv.currency} (reported as needs action, then accepted by retry): kontobro linked it and posted nothing.`;
  }

  /**
   * The simulated posting's header carries the invoice's NetAmount (the posting sample, uniconta.md §6): other than the
   * PSA's (an order posted with prices incl. VAT, a price list, an item's own price), the order is not posted. Compared
   * in company_currency only, like a posted invoice found again: whether NetAmount is in the invoice's currency or the
   * company's is unverified (README, Unverified 13). Null: the same, or not told.
   */
  private simulatedTotalDiffers(inv: InvoiceLike, header: Row | undefined): TargetError | null {
    if (inv.currency !== this.cfg.company_currency) return null;
    return targetTotalDiffers(inv, { net: header?.NetAmount }, TOTAL_AT_UNICONTA);
  }

  private mismatch(inv: InvoiceLike, number: unknown, posted: boolean): TargetError {
    return new TargetError("permanent", {
      code: "uniconta.invoice_number_mismatch",
      field: "number",
      message: posted
        ? `Uniconta posted PSA ${inv.kind === "credit_note" ? "credit note" : "invoice"} ${inv.number} as invoice ${number}: its invoice number series is not in step with the PSA.`
        : `Uniconta would number PSA invoice ${inv.number} as ${number}, so it was not posted.`,
      hint: posted
        ? `${NUMBER_SERIES_HINT} Invoice ${number} stays as it is (a posted invoice cannot be renumbered): press retry to accept Uniconta's number for this one; kontobro never posts it again.`
        : `${NUMBER_SERIES_HINT} Then press retry.`,
    });
  }

  /**
   * Our posted invoice, found by the reference field under another number than this version's. Uniconta's number
   * series may have given it that number when kontobro posted it, or the PSA renumbered the invoice after kontobro
   * lost its local state (a reinstall, a restore: intake's psa_id_taken cannot see the first posting). Nothing on the
   * posted invoice tells which, so the message names both; either way it is never posted again.
   */
  private foundUnderOtherNumber(inv: InvoiceLike, row: Row): TargetError {
    const what = inv.kind === "credit_note" ? "credit note" : "invoice";
    return new TargetError("permanent", {
      code: "uniconta.invoice_number_mismatch",
      field: "number",
      message:
        `PSA ${what} ${inv.psaId} is already posted in Uniconta as invoice ${row.InvoiceNumber} (customer ${row.Account}, ${dateOf(row.Date)}); the PSA sends it as ${inv.number}, so kontobro did not post it again. ` +
        `Either Uniconta's number series gave it ${row.InvoiceNumber} when kontobro posted it, or the PSA renumbered it after kontobro lost its local state (a reinstall or a restore).`,
      hint:
        `Invoice ${row.InvoiceNumber} in Uniconta is this PSA ${what}, posted once, and stays as it is (a posted invoice cannot be renumbered): note in the PSA that ${inv.number} is posted as ${row.InvoiceNumber}, then press retry to accept it; kontobro never posts it again. ` +
        `If the number series caused it: ${NUMBER_SERIES_HINT} If ${inv.number} is in fact another ${what}, give it a PSA id of its own in the PSA and send it again.`,
    });
  }

  /**
   * Attaches the PSA's PDF (UserDocsClient) once; a refused file (its size limit is unknown: FileIsTooBig) is a note,
   * the invoice stays posted. A PDF not sent (attach_pdf off) is said in the note too, never dropped unseen.
   */
  private async attachPdf(inv: InvoiceLike, table: string, rowId: unknown, checkFirst: boolean): Promise<string | undefined> {
    if (!inv.pdf || rowId === undefined) return undefined;
    const filename = inv.pdf.filename;
    if (!this.cfg.attach_pdf) return `The PSA's PDF ${filename} was not sent: attach_pdf is off for this target.`;
    if (checkFirst) {
      const docs = await this.client.readBy("UserDocsClient", "TableRowId", Number(rowId));
      if (docs.some((d) => d.TableId === table && d.Text === filename)) return undefined;
    }
    try {
      await this.client.insert("UserDocsClient", {
        TableId: table,
        TableRowId: Number(rowId),
        Text: filename,
        DocumentType: "PDF",
        Data: inv.pdf.contentBase64.replace(/\s+/g, ""),
      });
      return undefined;
    } catch (e) {
      if (e instanceof TargetError && e.kind === "permanent")
        return `The invoice is in Uniconta, but it refused the PDF ${filename} (${e.message}). Make the PDF smaller in the PSA and attach it by hand in Uniconta, or set attach_pdf = false to stop sending PDFs.`;
      throw e;
    }
  }
}

/**
 * A posted invoice's number (not the PSA's) reported for this PSA invoice, by the delivery told: only its retry, a
 * person's, accepts it (a version sent meanwhile may replace it before anyone saw it), and the posted invoice.
 */
const numberKey = (inv: InvoiceLike, row: Row, ctx: PushContext) => `number:${ctx.delivery ?? ""}:${inv.psaId}:${row.InvoiceNumber}`;

/**
 * A posted invoice's total reported for this PSA invoice, by the delivery told (only its retry, a person's, accepts it:
 * a version sent meanwhile may replace it before anyone saw it), the posted invoice and the total.
 */
const totalKey = (inv: InvoiceLike, row: Row, ctx: PushContext) =>
  `total:${ctx.delivery ?? ""}:${inv.psaId}:${row.InvoiceNumber}:${Math.round(Number(row.NetAmount) * 100)}`;

const TOTAL_AT_UNICONTA = {
  codePrefix: "uniconta",
  title: "Uniconta",
  outcome: "It was not posted: simulate_before_post asked Uniconta first, and kontobro deleted its order in Uniconta.",
};
