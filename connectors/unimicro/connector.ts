// The Uni Micro platform connector: customers, projects, products and finalized invoices / credit notes.
// Every create is preceded by a lookup by natural key, so a repeated or uncertain push never duplicates.
import {
  bookedAmountDiffers,
  CreditNote,
  Customer,
  customerTotal,
  Invoice,
  Product,
  Project,
  type Entity,
  type InvoiceLike,
} from "../../agent/model.ts";
import { issuesToProblems, type Problem } from "../../agent/problem.ts";
import type { CheckItem, Connector, ConnectorDeps, ExpiringCredential, Link, PushContext, PushResult } from "../contract.ts";
import { TargetError, TokenBucket } from "../http.ts";
import { targetTotalDiffers } from "../target-total.ts";
import { type CertificateInfo, RENEW_CERTIFICATE, TokenSource } from "./auth.ts";
import { runChecks } from "./check.ts";
import { IdLookups, q, requireId, requireSalesVatType, UniClient } from "./client.ts";
import type { UniMicroSettings } from "./config.ts";
import {
  deterministicGuid,
  existingCustomerRows,
  invoiceMarker,
  lineNeeds,
  mapCustomer,
  mapInvoice,
  mapProduct,
  mapProject,
  markerPsaId,
  paymentIdFor,
  voucherFollows,
  type ResolvedLine,
} from "./map.ts";
import { customerRules, invoiceRules, productRules, projectRules, type RuleOptions } from "./rules.ts";

/** CustomerInvoice.StatusCode: 42001 draft (inferred), 42002 invoiced, 42003 part paid, 42004 paid, 42006 credited. */
const DRAFT = 42001;
const isDraft = (row: { StatusCode?: number | null }) => row.StatusCode == null || row.StatusCode === DRAFT;
const STATUS_NAMES: Record<number, string> = { 42001: "draft", 42002: "invoiced", 42003: "partly paid", 42004: "paid", 42006: "credited" };
const statusName = (row: { StatusCode?: number | null }) =>
  row.StatusCode == null ? "draft" : (STATUS_NAMES[row.StatusCode] ?? `status ${row.StatusCode}`);
/** The invoice's total excluding VAT in the currency its prices were sent in: the twin of the item price field. */
const totalField = (price: InvoiceRefs["priceField"]) =>
  price === "PriceExVatCurrency" ? "TaxExclusiveAmountCurrency" : "TaxExclusiveAmount";
const INVOICE_SELECT = "ID,InvoiceNumber,PaymentID,StatusCode,InternalNote,InvoiceReferenceID,CreatedBy,TaxExclusiveAmount";
const CUSTOMER_EXPAND = "Info,Info.InvoiceAddress,Info.ShippingAddress,Info.DefaultEmail,Info.DefaultPhone,Info.Phones";

type Parsed = { ok: true; data: any } | { ok: false; problems: Problem[] };

function parseCanonical(entity: Entity, payload: any): Parsed {
  const schema =
    entity === "customer"
      ? Customer
      : entity === "project"
        ? Project
        : entity === "product"
          ? Product
          : payload?.kind === "credit_note"
            ? CreditNote
            : Invoice;
  const r = schema.safeParse(payload);
  if (r.success) return { ok: true, data: r.data };
  return {
    ok: false,
    problems: issuesToProblems(r.error.issues, {
      whole: entity,
      code: "payload.invalid",
      hint: "Correct the record in the PSA, then press retry.",
    }),
  };
}

/** Several problems become one permanent error: the first one's code and hint, all the messages. */
function refuse(problems: Problem[]): TargetError {
  const [first, ...rest] = problems;
  const message = rest.length ? `${first!.message} (and ${rest.length} more: ${rest.map((p) => p.message).join(" ")})` : first!.message;
  return new TargetError("permanent", { ...first!, message });
}

/** What an invoice refers to at the target, as internal IDs (mapInvoice's references). */
type InvoiceRefs = Omit<Parameters<typeof mapInvoice>[1], "guid" | "existing">;

export class UniMicroConnector implements Connector {
  readonly kind = "unimicro";
  private readonly tokens: TokenSource;
  private readonly api: UniClient;
  private readonly ids: IdLookups;
  private readonly rules: RuleOptions;
  private filesUrl: string | undefined;

  constructor(
    readonly name: string,
    private readonly s: UniMicroSettings,
    private readonly deps: ConnectorDeps,
  ) {
    this.tokens = new TokenSource({
      identityUrl: s.identityUrl,
      clientId: s.clientId,
      privateKey: s.privateKey,
      certificate: s.certificate,
      scope: s.scope,
      timeoutMs: s.timeoutMs,
      targetTitle: s.title,
    });
    const limiter = s.requestsPerSecond > 0 ? new TokenBucket(s.requestsPerSecond, s.burst) : undefined;
    this.api = new UniClient({
      baseUrl: s.baseUrl,
      companyKey: s.companyKey,
      tokens: this.tokens,
      timeoutMs: s.timeoutMs,
      limiter,
      title: s.title,
    });
    this.ids = new IdLookups(this.api);
    this.rules = {
      title: s.title,
      customerNumberRange: s.customerNumberRange,
      lines: s.lines,
      companyCurrency: s.companyCurrency,
      currencyPriceField: s.currencyPriceField,
    };
    this.filesUrl = s.filesUrl;
  }

  /** A late invoice write's answer (lateWrites) comes after its push: its 429 pauses this client, and the round stores it. */
  pausedForMs(): number {
    return this.api.pausedForMs();
  }

  supports(entity: Entity): boolean {
    return entity === "customer" || entity === "project" || entity === "product" || entity === "invoice";
  }

  validate(entity: Entity, payload: any): Problem[] {
    const parsed = parseCanonical(entity, payload);
    if (!parsed.ok) return parsed.problems;
    const d = parsed.data;
    switch (entity) {
      case "customer":
        return customerRules(d, this.rules);
      case "project":
        return projectRules(d, this.rules);
      case "product":
        return productRules(d, this.rules);
      case "invoice":
        return invoiceRules(d, this.rules);
    }
  }

  async push(entity: Entity, payload: any, ctx: PushContext): Promise<PushResult> {
    const problems = this.validate(entity, payload);
    if (problems.length) throw refuse(problems);
    const data = (parseCanonical(entity, payload) as { data: any }).data;
    try {
      switch (entity) {
        case "customer":
          return await this.pushCustomer(data, ctx);
        case "project":
          return await this.pushProject(data, ctx);
        case "product":
          return await this.pushProduct(data, ctx);
        case "invoice":
          return await this.pushInvoice(data, ctx);
      }
    } catch (e) {
      if (e instanceof TargetError && e.code === "unimicro.foreign_key") this.ids.clear();
      throw e;
    }
  }

  async find(entity: Entity, payload: any): Promise<Link | null> {
    const link = (id: number | null | undefined) => (id ? { remoteId: String(id) } : null);
    switch (entity) {
      case "customer":
        return link(await this.ids.customer(String(payload.number)));
      case "project":
        return link(await this.ids.project(String(payload.number)));
      case "product":
        return link(await this.ids.product(String(payload.code)));
      case "invoice": {
        // Only a booked invoice of ours counts as found: a draft left by an earlier attempt is finished by
        // push(); an invoice with the PSA's number that kontobro did not create is never linked (it throws).
        const { own: row } = await this.ownInvoiceRow(String(payload.number), String(payload.psaId ?? ""));
        if (!row || isDraft(row)) return null;
        this.requireSameInvoice(row, payload);
        return link(row.ID);
      }
    }
  }

  // ---- customers, projects, products ------------------------------------------------------------

  /** GET by ID from the link; null when it was deleted in the target (then we look up by number). */
  private async byLink(entity: string, link: Link | null, expand?: string): Promise<any | null> {
    if (!link || !/^\d+$/.test(link.remoteId)) return null;
    return this.api.get(`/api/biz/${entity}/${link.remoteId}${expand ? `?expand=${encodeURIComponent(expand)}` : ""}`, [404]);
  }

  private requireId(kind: string, key: string, id: Promise<number | null>, hint: string, record?: Problem["record"]): Promise<number> {
    return requireId(this.s.title, kind, key, id, hint, record);
  }

  /**
   * The ID of a customer, project or a line's own product kontobro sent before what refers to it (which waits for it; a
   * product: when the PSA sends products): missing, it was deleted (or renumbered) in the target since, and is forgotten
   * as sent (Problem.record.gone), so the PSA's resend creates it again and what waits follows by itself.
   */
  private sentId(entity: "customer" | "project" | "product", number: string): Promise<number> {
    const sent = entity === "product" ? "products (when the PSA sends them)" : `${entity}s`;
    return this.requireId(
      entity,
      number,
      entity === "customer" ? this.ids.customer(number) : entity === "project" ? this.ids.project(number) : this.ids.product(number),
      `kontobro sends ${sent} before what refers to them, so it was probably deleted (or renumbered) in ${this.s.title}. Send ${entity} ${number} again from the PSA (unchanged will do): kontobro creates it again and this follows by itself. Or create ${entity} ${number} in ${this.s.title} and press retry.`,
      { entity, key: number, gone: true },
    );
  }

  private async currencyId(code: string): Promise<number | undefined> {
    if (code === this.s.companyCurrency) return undefined;
    return this.requireId(
      "currency",
      code,
      this.ids.currency(code),
      `Activate currency ${code} in ${this.s.title}, or invoice in ${this.s.companyCurrency}.`,
    );
  }

  private async pushCustomer(c: Customer, ctx: PushContext): Promise<PushResult> {
    const byNumber = async () =>
      (await this.api.list("customers", { filter: `CustomerNumber eq ${Number(c.number)}`, expand: CUSTOMER_EXPAND, top: 1 }))[0] ?? null;
    const existing = (await this.byLink("customers", ctx.link, CUSTOMER_EXPAND)) ?? (await byNumber());
    const currencyCodeId = await this.currencyId(c.currency);
    const body = (found: any) =>
      mapCustomer(c, {
        guid: deterministicGuid(ctx.idempotencyKey),
        currencyCodeId,
        existing: found ? existingCustomerRows(found) : undefined,
      });
    const id = await this.save("customers", c.number, existing, body, byNumber);
    this.ids.remember("customer", c.number, id);
    return { remoteId: String(id) };
  }

  private async pushProject(p: Project, ctx: PushContext): Promise<PushResult> {
    const customerId = p.customerNumber ? await this.sentId("customer", p.customerNumber) : undefined;
    const byNumber = async () =>
      (await this.api.list("projects", { filter: `ProjectNumber eq ${q(p.number)}`, select: "ID,ProjectNumber", top: 1 }))[0] ?? null;
    const existing = (await this.byLink("projects", ctx.link)) ?? (await byNumber());
    const body = (found: any) => mapProject(p, { guid: deterministicGuid(ctx.idempotencyKey), customerId, isNew: !found });
    const id = await this.save("projects", p.number, existing, body, byNumber);
    this.ids.remember("project", p.number, id);
    return { remoteId: String(id) };
  }

  private async pushProduct(p: Product, ctx: PushContext): Promise<PushResult> {
    const setup = this.s.lines.products ?? {};
    const accountId = setup.accountNumber
      ? await this.requireId(
          "account",
          String(setup.accountNumber),
          this.ids.account(setup.accountNumber),
          `Create account ${setup.accountNumber} in ${this.s.title} or fix accounts.products.`,
        )
      : undefined;
    const vatTypeId = setup.vatCode
      ? await requireSalesVatType(
          this.s.title,
          this.ids,
          setup.vatCode,
          `product ${p.code} (vat_codes.products)`,
          "Fix vat_codes.products in kontobro.toml.",
        )
      : undefined;
    const byNumber = async () =>
      (await this.api.list("products", { filter: `PartName eq ${q(p.code)}`, select: "ID,PartName", top: 1 }))[0] ?? null;
    const existing = (await this.byLink("products", ctx.link)) ?? (await byNumber());
    const body = (found: any) => mapProduct(p, { guid: deterministicGuid(ctx.idempotencyKey), accountId, vatTypeId, isNew: !found });
    const id = await this.save("products", p.code, existing, body, byNumber);
    this.ids.remember("product", p.code, id);
    return { remoteId: String(id) };
  }

  /**
   * Updates the record found (by link or number), or creates it. A create refused by the platform may be a race: another
   * process (a second kontobro installation against this company, or a person) created the same number between the
   * lookup and the POST, and the refused POST made nothing. So the number is looked up once more: found, it is updated
   * (matched by number, as the PSA is master); not found, the refusal stands.
   */
  private async save(
    coll: string,
    number: string,
    existing: any | null,
    body: (found: any | null) => any,
    byNumber: () => Promise<any | null>,
  ): Promise<number> {
    const put = async (found: any) =>
      (await this.api.put(`/api/biz/${coll}/${found.ID}`, { ID: found.ID, ...body(found) }))?.ID ?? found.ID;
    if (existing) return put(existing);
    try {
      return (await this.api.post(`/api/biz/${coll}`, body(null)))?.ID;
    } catch (e) {
      const raced = e instanceof TargetError && e.kind === "permanent" ? await byNumber() : null;
      if (!raced) throw e;
      this.deps.log.warn(`unimicro: ${number} was created by someone else between kontobro's lookup and its create; updated it instead`, {
        target: this.name,
        entity: coll,
        number,
        refused: e instanceof Error ? e.message : String(e),
      });
      return put(raced);
    }
  }

  // ---- invoices and credit notes ------------------------------------------------------------------

  /**
   * Our invoice (or credit note) for this PSA id: found by the InternalNote marker or the PSA's number; a booked
   * row wins over a draft. A row with the PSA's number but no marker, or another PSA id's marker, was not made
   * by kontobro for this record and is never taken over: that needs the user (see foreignInvoice). For a credit
   * note, the same request brings the rows of the invoice it credits (`credited`), which its credit draft needs.
   */
  private async ownInvoiceRow(number: string, psaId: string, creditedNumber?: string): Promise<{ own: any | null; credited: any[] }> {
    const filter = [
      `InvoiceNumber eq ${q(number)}`,
      ...(psaId ? [`InternalNote eq ${q(invoiceMarker(psaId))}`] : []),
      ...(creditedNumber ? [`InvoiceNumber eq ${q(creditedNumber)}`] : []),
    ].join(" or ");
    const all = await this.api.list("invoices", { filter, select: INVOICE_SELECT, orderby: "ID" });
    const credited = creditedNumber ? all.filter((r) => String(r.InvoiceNumber ?? "") === creditedNumber) : [];
    const rows = all.filter((r) => !credited.includes(r));
    const ours = rows.filter((r) => psaId !== "" && markerPsaId(r.InternalNote) === psaId);
    const booked = ours.find((r) => !isDraft(r) && String(r.InvoiceNumber ?? "") === number) ?? ours.find((r) => !isDraft(r));
    if (booked) return { own: booked, credited };
    const foreign = rows.find((r) => !ours.includes(r) && String(r.InvoiceNumber ?? "") === number);
    if (foreign) throw this.foreignInvoice(foreign, number);
    return { own: ours[0] ?? null, credited };
  }

  /**
   * Our draft, just before it is booked: another process may be booking the same PSA invoice at this moment (a second
   * kontobro installation against this company, which the PSA sends it too). Its draft carries the same marker (nothing
   * in it tells installations apart), and whether the platform refuses a second booking under the same number is
   * unverified. The lowest draft with our marker is the one booked; a process that finds one of ours booked, or a draft
   * of ours with a lower ID, books nothing: needs action, naming its own draft (the API cannot delete an invoice draft).
   */
  private async bookedElsewhere(inv: InvoiceLike, draftId: number): Promise<TargetError | null> {
    const ours = await this.api.list("invoices", {
      filter: `InternalNote eq ${q(invoiceMarker(inv.psaId))}`,
      select: INVOICE_SELECT,
      orderby: "ID",
    });
    const other = ours.find((r) => r.ID !== draftId && (!isDraft(r) || r.ID < draftId));
    if (!other) return null;
    const what = inv.kind === "credit_note" ? "credit note" : "invoice";
    const theirs = isDraft(other)
      ? `its draft (ID ${other.ID}) is being booked`
      : `it is booked already (ID ${other.ID}, number ${other.InvoiceNumber})`;
    return new TargetError("permanent", {
      code: "unimicro.booked_elsewhere",
      message:
        `PSA ${what} ${inv.psaId} (${inv.number}) was sent to ${this.s.title} by another process while this one made its draft (ID ${draftId}): ${theirs}. ` +
        `Most likely a second kontobro installation runs against this ${this.s.title} company. Draft ${draftId} was not booked.`,
      hint:
        `Run one kontobro installation per ${this.s.title} company, and stop the other. Delete draft ${draftId} in ${this.s.title} (it carries this PSA ${what}'s marker; booked, it would invoice it twice), ` +
        `then press retry: kontobro links the booked ${what} and never books it a second time.`,
    });
  }

  /** An invoice the agent did not create carries the PSA's invoice number: never linked, "needs action". */
  private foreignInvoice(row: any, number: string): TargetError {
    const other = markerPsaId(row.InternalNote);
    const kind = row.InvoiceReferenceID ? "credit note" : "invoice";
    return new TargetError("permanent", {
      code: "unimicro.invoice_number_foreign",
      field: "number",
      message:
        `${this.s.title} already has ${kind} ${row.InvoiceNumber} (ID ${row.ID}, ${statusName(row)}) that kontobro did not create for this PSA invoice` +
        `${other ? ` (kontobro made it for PSA invoice ${other})` : ""}. kontobro never takes over an invoice it did not create, so ${number} was not booked.`,
      hint:
        `Agree separate invoice number ranges for the PSA and ${this.s.title} and renumber the invoice in the PSA, or, if the ${kind} in ${this.s.title} was made by mistake, ` +
        `remove it there (delete the draft, or credit the booked one); then press retry.`,
    });
  }

  private async resolveLines(inv: InvoiceLike): Promise<ResolvedLine[]> {
    const out: ResolvedLine[] = [];
    for (const [i, line] of inv.lines.entries()) {
      const n = lineNeeds(line, this.s.lines);
      const at = `line ${i + 1} (${line.kind})`;
      const accountId = n.accountNumber
        ? await this.requireId(
            "account",
            String(n.accountNumber),
            this.ids.account(n.accountNumber),
            `Account ${n.accountNumber} (${at}) must exist in ${this.s.title}; account numbers must be the same in both systems.`,
          )
        : undefined;
      const vatTypeId = n.vatCode
        ? await requireSalesVatType(
            this.s.title,
            this.ids,
            n.vatCode,
            `${inv.kind === "credit_note" ? "credit note" : "invoice"} ${inv.number}, ${at}`,
            `VAT code ${n.vatCode} (${at}) must exist in ${this.s.title} as an output VAT code; VAT codes must be the same in both systems: ${line.vatCode ? "correct the line's VAT code in the PSA" : `fix vat_codes.${line.kind} in kontobro.toml`}.`,
            inv.date,
          )
        : undefined;
      const productId =
        n.productId ??
        (line.productCode
          ? await this.sentId("product", line.productCode)
          : await this.requireId(
              "product",
              n.productNumber!,
              this.ids.product(n.productNumber!),
              `Create product ${n.productNumber} in ${this.s.title}, or fix product_numbers.${line.kind} in kontobro.toml (${at}).`,
            ));
      out.push({ productId, accountId, vatTypeId });
    }
    return out;
  }

  private async pushInvoice(inv: InvoiceLike, ctx: PushContext): Promise<PushResult> {
    // What did earlier attempts leave? (A write of one answered late has landed by now: that attempt ended only once
    // it had answered, connectors/http.ts.) A booked invoice is done; a draft is rewritten and booked.
    let row = ctx.link ? await this.byLink("invoices", ctx.link) : null;
    if (row && markerPsaId(row.InternalNote) !== inv.psaId) row = null; // a link to a row that is not ours (any more) is not trusted
    let credited: any[] | undefined;
    if (!row)
      ({ own: row, credited } = await this.ownInvoiceRow(
        inv.number,
        inv.psaId,
        inv.kind === "credit_note" ? inv.creditedInvoiceNumber : undefined,
      ));
    if (row && !isDraft(row)) {
      this.requireSameInvoice(row, inv);
      this.sameAmountsAsBooked(inv, row);
      const notes = [await this.attachPdf(row.ID, inv, true)];
      if (ctx.link)
        notes.push(
          `Invoice ${inv.number} is already booked in ${this.s.title} with these amounts; a booked invoice cannot be changed, so other changes of this version (texts, references) were not sent.`,
        );
      return this.result(row.ID, notes);
    }
    const refs = await this.invoiceRefs(inv);

    let draftId: number | undefined = row?.ID;
    if (draftId)
      this.deps.log.info("unimicro: finishing an invoice draft left by an earlier attempt", {
        target: this.name,
        invoice: inv.number,
        draftId,
      });
    let unmarked = false;
    // A credit note of the same invoice is never pushed beside this one (the outbox's claim keeps them one at a time,
    // agent/outbox.ts creditTurnBlocker): any unmarked credit draft of the invoice is an earlier attempt's or a person's.
    if (!draftId && inv.kind === "credit_note") ({ id: draftId, unmarked } = await this.creditDraft(inv, ctx.uncertain, credited));
    let answer: any;
    if (draftId) answer = await this.rewriteDraft(draftId, inv, refs, ctx, unmarked);
    else ({ id: draftId, answer } = await this.createDraft(inv, refs, ctx));
    // The draft's answer carries the platform's own total: one it computed otherwise is never booked. The draft stays
    // (unbooked, marked): the next attempt rewrites it, as after any refusal.
    const differs = targetTotalDiffers(
      inv,
      { net: answer?.[totalField(refs.priceField)] },
      {
        codePrefix: "unimicro",
        title: this.s.title,
        outcome: `It was not booked. Its draft (ID ${draftId}) stays unbooked in ${this.s.title}; kontobro rewrites it when the invoice is sent again or retried.`,
      },
    );
    if (differs) throw differs;
    const elsewhere = await this.bookedElsewhere(inv, draftId!);
    if (elsewhere) throw elsewhere;
    // The invoice transition books it: it gets its journal entry (voucher) and keeps our payment id (KID).
    await this.api.request("POST", `/api/biz/invoices/${draftId}?action=invoice`);
    // Booked by this very attempt: no file can be linked to it yet, so the PDF goes without a look first.
    const notes = [await this.numberNote(draftId!, inv), await this.attachPdf(draftId!, inv, false)];
    return this.result(draftId!, notes);
  }

  /** The internal IDs an invoice refers to, by the PSA's numbers (kept per connector once looked up). */
  private async invoiceRefs(inv: InvoiceLike): Promise<InvoiceRefs> {
    const customerId = await this.sentId("customer", inv.customerNumber);
    const projectId = inv.projectNumber ? await this.sentId("project", inv.projectNumber) : undefined;
    return {
      customerId,
      projectId,
      currencyCodeId: await this.currencyId(inv.currency),
      priceField: this.priceField(inv.currency),
      lines: await this.resolveLines(inv),
    };
  }

  /** PriceExVat in the company's currency; in another, the field currency_price_field names (rules refuse "unset"). */
  private priceField(currency: string): InvoiceRefs["priceField"] {
    const chosen = this.s.currencyPriceField;
    return currency === this.s.companyCurrency || chosen === "unset" ? "PriceExVat" : chosen;
  }

  /**
   * The new draft's ID. Refused for a foreign key, an ID kept from an earlier lookup may name a record deleted in the
   * target since: the IDs are looked up again by number, once (one re-created under the number is used, a missing
   * one named). The refused POST made nothing, so its guid is free.
   */
  private async createDraft(inv: InvoiceLike, refs: InvoiceRefs, ctx: PushContext): Promise<{ id: number; answer: any }> {
    const post = async (r: InvoiceRefs) => {
      const answer = (
        await this.api.request("POST", "/api/biz/invoices", {
          json: mapInvoice(inv, { ...r, guid: deterministicGuid(ctx.idempotencyKey) }),
        })
      ).body;
      return { id: answer?.ID as number, answer };
    };
    try {
      return await post(refs);
    } catch (e) {
      if (!(e instanceof TargetError && e.code === "unimicro.foreign_key")) throw e;
    }
    this.ids.clear();
    return post(await this.invoiceRefs(inv));
  }

  /** Puts the invoice's rows, references and marker on a draft (ours, or the credit draft just made, then unmarked). */
  private async rewriteDraft(draftId: number, inv: InvoiceLike, refs: InvoiceRefs, ctx: PushContext, unmarked: boolean): Promise<any> {
    try {
      const draft = await this.api.get(`/api/biz/invoices/${draftId}?expand=Items,DefaultDimensions`);
      const itemIds: number[] = (draft?.Items ?? []).map((it: any) => it.ID).filter(Boolean);
      // New guids for a rewrite: the old rows are deleted, and a deleted row's guid must not block its successor.
      const guid = deterministicGuid(`${ctx.idempotencyKey}:draft:${draftId}:${itemIds.join(",")}`);
      const body = mapInvoice(inv, {
        ...refs,
        guid,
        existing: { itemIds, defaultDimensionsId: draft?.DefaultDimensions?.ID ?? draft?.DefaultDimensionsID },
      });
      return (await this.api.request("PUT", `/api/biz/invoices/${draftId}`, { json: { ID: draftId, ...body } })).body;
    } catch (e) {
      // Until this PUT marks it, our credit draft is unmarked: only an uncertain attempt adopts it (creditDraft).
      throw unmarked && e instanceof TargetError && e.kind === "retryable" ? new TargetError("uncertain", e) : e;
    }
  }

  /**
   * Our booked invoice under another number than this version's is this invoice only if it keeps the payment id this
   * version sends: the platform's own number series renumbered it when it was booked (the push said so in a note).
   * Otherwise the PSA renumbered the invoice after kontobro lost its local state (a restore, a reinstall: intake's
   * psa_id_taken cannot see the first booking): linking it would name another number than the PSA's, and it is never
   * booked again either, so it needs the user.
   */
  private requireSameInvoice(row: any, inv: Pick<InvoiceLike, "number" | "psaId" | "paymentId" | "kind">): void {
    const number = String(inv.number);
    if (String(row.InvoiceNumber ?? "") === number || String(row.PaymentID ?? "") === String(paymentIdFor(inv))) return;
    const what = inv.kind === "credit_note" ? "credit note" : "invoice";
    throw new TargetError("permanent", {
      code: "unimicro.invoice_booked_under_other_number",
      field: "number",
      message:
        `PSA ${what} ${inv.psaId} is already booked in ${this.s.title} as ${what} ${row.InvoiceNumber} (ID ${row.ID}, payment id ${row.PaymentID ?? "none"}); ` +
        `the PSA now sends it as ${number} (renumbered, and kontobro has no record of the first booking: a reinstall or a restore), so kontobro did not book it again.`,
      hint:
        `${what[0]!.toUpperCase()}${what.slice(1)} ${row.InvoiceNumber} in ${this.s.title} is this PSA ${what}, booked once; nothing more is needed in ${this.s.title}, so note in the PSA that ${number} is booked as ${row.InvoiceNumber}. ` +
        `If ${number} is in fact another ${what}, give it a PSA id of its own in the PSA and send it again.`,
    });
  }

  /**
   * A booked invoice of ours found for this version (a later one, or a resend after a restore) must book what it says:
   * other amounts need the user (a booked invoice cannot change). Compared in the company currency only, where
   * `TaxExclusiveAmount` is known to be in the invoice's currency.
   */
  private sameAmountsAsBooked(inv: InvoiceLike, row: any): void {
    if (inv.currency !== this.s.companyCurrency) return;
    const booked = Math.round(Number(row.TaxExclusiveAmount) * 100);
    if (!bookedAmountDiffers(inv, booked)) return;
    const amount = (minor: number) => `${(minor / 100).toFixed(2)} ${inv.currency}`;
    const what = inv.kind === "credit_note" ? "Credit note" : "Invoice";
    throw new TargetError("permanent", {
      code: "unimicro.invoice_changed_after_booking",
      message: `${what} ${inv.number} is booked in ${this.s.title} (ID ${row.ID}) with ${amount(booked)} excluding VAT; this version says ${amount(customerTotal(inv))}, and a booked invoice cannot be changed.`,
      hint: "Credit it in the PSA (and send a new invoice if needed) instead of changing a finalized invoice.",
    });
  }

  private result(id: number, notes: (string | undefined)[]): PushResult {
    const note = notes.filter(Boolean).join(" ");
    return { remoteId: String(id), ...(note ? { note } : {}) };
  }

  /**
   * A credit note starts as the platform's credit draft of the original (linked to it). The action makes an
   * unmarked draft that our PUT then marks; if an attempt was cut off in between (uncertain), an unmarked credit
   * draft made by the same client as the original is that attempt's and is adopted. Any other credit draft of the
   * original without a kontobro marker was made by someone else: never taken over, and "needs action", since
   * booking ours next to it could credit the invoice twice.
   */
  private async creditDraft(inv: CreditNote, uncertain: boolean, credited?: any[]): Promise<{ id: number; unmarked: boolean }> {
    const originals =
      credited ?? (await this.api.list("invoices", { filter: `InvoiceNumber eq ${q(inv.creditedInvoiceNumber)}`, select: INVOICE_SELECT }));
    const original = originals.find((r) => !isDraft(r));
    if (!original) {
      throw new TargetError("permanent", {
        code: "unimicro.credited_invoice_missing",
        field: "creditedInvoiceNumber",
        message: `Credit note ${inv.number} credits invoice ${inv.creditedInvoiceNumber}, which is not booked in ${this.s.title}.`,
        hint: `Push invoice ${inv.creditedInvoiceNumber} first (or credit it by hand in ${this.s.title} if it predates kontobro), then press retry.`,
      });
    }
    const drafts = await this.api.list("invoices", {
      filter: `InvoiceReferenceID eq ${original.ID} and StatusCode eq ${DRAFT}`,
      select: "ID,StatusCode,InternalNote,CreatedBy",
      orderby: "ID",
    });
    const mine = drafts.find((o) => markerPsaId(o.InternalNote) === inv.psaId);
    // The platform fills CreatedBy with the caller; when both rows carry it, an orphan must come from our client.
    const sameClient = (o: any) =>
      !o.CreatedBy || !original.CreatedBy || markerPsaId(original.InternalNote) === null || o.CreatedBy === original.CreatedBy;
    const orphan = mine ? undefined : drafts.find((o) => uncertain && !String(o.InternalNote ?? "").trim() && sameClient(o));
    const foreign = drafts.find((o) => o !== orphan && markerPsaId(o.InternalNote) === null);
    if (foreign) {
      throw new TargetError("permanent", {
        code: "unimicro.credit_draft_foreign",
        field: "creditedInvoiceNumber",
        message: `Invoice ${inv.creditedInvoiceNumber} has a credit draft in ${this.s.title} (ID ${foreign.ID}, draft) that this kontobro did not create (made by hand, or by a second kontobro installation against this company, which marks it as its own once it has made it). kontobro never takes over a credit note it did not create, and booking credit note ${inv.number} next to it could credit the invoice twice.`,
        hint: `In ${this.s.title}, delete that credit draft if credit note ${inv.number} from the PSA is the same credit (or book it there and cancel credit note ${inv.number} in the PSA); then press retry. If a second kontobro installation runs against this company, stop it (one per company) and press retry: kontobro links the credit note that one booked.`,
      });
    }
    const adopt = mine ?? orphan;
    if (adopt) {
      this.deps.log.info("unimicro: adopting a credit draft left by an earlier attempt", {
        target: this.name,
        creditNote: inv.number,
        draftId: adopt.ID,
      });
      return { id: adopt.ID, unmarked: adopt !== mine };
    }
    // Answered late, its draft is adopted by the next attempt (uncertain), which begins only once it has landed.
    const draft = await this.api.request("PUT", `/api/biz/invoices/${original.ID}?action=create-credit-draft-invoice`);
    return { id: draft.body?.ID as number, unmarked: true };
  }

  /** The PSA is master for numbers: say so when the platform booked under another invoice or voucher number. */
  private async numberNote(id: number, inv: InvoiceLike): Promise<string | undefined> {
    const booked = await this.api.get(`/api/biz/invoices/${id}?expand=JournalEntry`);
    const notes: string[] = [];
    if (booked?.InvoiceNumber && String(booked.InvoiceNumber) !== inv.number) {
      notes.push(
        `${this.s.title} booked invoice ${inv.number} under number ${booked.InvoiceNumber}; set the invoice number series in ${this.s.title} so it keeps the PSA's numbers (see the connector README).`,
      );
    }
    let voucher: string | undefined = booked?.JournalEntry?.JournalEntryNumber;
    if (!voucher && booked?.JournalEntryID)
      voucher = (await this.api.get(`/api/biz/journalentries/${booked.JournalEntryID}?select=ID,JournalEntryNumber`, [404]))
        ?.JournalEntryNumber;
    const expected = paymentIdFor(inv);
    if (voucher && !voucherFollows(voucher, expected)) {
      notes.push(
        `The voucher got number ${voucher}, not one following the payment id ${expected}; check the voucher number series for invoices in ${this.s.title}.`,
      );
    }
    return notes.join(" ") || undefined;
  }

  /**
   * Attach the PDF through the Files service, once (`checkFirst`: an earlier attempt may have linked it); or say
   * plainly why it was not sent.
   */
  private async attachPdf(invoiceId: number, inv: InvoiceLike, checkFirst: boolean): Promise<string | undefined> {
    if (!inv.pdf) return undefined;
    if (!this.s.attachPdf) {
      return `The invoice PDF was not sent: ${this.s.title} does not accept attachments from integrations (Uni Economy "is currently not able to receive attachments"). The invoice is booked without it; the customer's copy comes from the PSA.`;
    }
    if (checkFirst) {
      const linked = await this.api.list(`files/CustomerInvoice/${invoiceId}`, { select: "ID,Name" });
      if (linked.some((f) => f.Name === inv.pdf!.filename)) return undefined;
    }
    const form = new FormData();
    form.append("Key", this.s.companyKey);
    // The field must be called "File": any other name uploads nothing and still answers 200.
    form.append("File", new Blob([Buffer.from(inv.pdf.contentBase64, "base64")], { type: "application/pdf" }), inv.pdf.filename);
    const uploaded = (await this.api.request("POST", `${await this.filesHost()}/api/file`, { body: form })).body;
    if (!uploaded?.ID) {
      throw new TargetError("retryable", {
        code: "unimicro.upload_empty",
        message: `The ${this.s.title} Files service stored nothing for ${inv.pdf.filename}.`,
        hint: "Check files_url; kontobro retries by itself.",
      });
    }
    const res = await this.api.request(
      "POST",
      `/api/biz/files/${uploaded.ID}?action=link&entitytype=CustomerInvoice&entityid=${invoiceId}`,
      { accept: [400] },
    );
    if (res.status === 400)
      return `The invoice is booked, but ${this.s.title} refused the PDF: ${res.body?.Message ?? "no reason given"}. Set attach_pdf = false to stop trying.`;
    return undefined;
  }

  /** The Files service lives on its own host, listed in the service map at /api/endpoints. */
  private async filesHost(): Promise<string> {
    if (this.filesUrl) return this.filesUrl;
    const map = await this.api.get("/api/endpoints");
    const entry = Array.isArray(map) ? map.find((e: any) => /files/i.test(e?.Name ?? ""))?.Url : (map?.Files ?? map?.files);
    if (typeof entry !== "string") {
      throw new TargetError("permanent", {
        code: "unimicro.files_host_unknown",
        message: `${this.s.title} did not list a Files service at /api/endpoints.`,
        hint: "Set files_url in kontobro.toml, or set attach_pdf = false.",
      });
    }
    return (this.filesUrl = entry.replace(/\/+$/, ""));
  }

  // ---- check ---------------------------------------------------------------------------------------

  /** The client certificate's notAfter (none without a certificate, or while its PEM is unusable: check says why). */
  expiringCredentials(): ExpiringCredential[] {
    let cert: CertificateInfo | null;
    try {
      cert = this.tokens.certificate();
    } catch {
      return [];
    }
    return cert
      ? [{ id: "certificate", what: `the client certificate (${cert.subject})`, expiresAt: cert.notAfter, renew: RENEW_CERTIFICATE }]
      : [];
  }

  check(): Promise<CheckItem[]> {
    return runChecks(this.s, this.tokens, this.api, this.ids);
  }
}
