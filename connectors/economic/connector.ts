// The e-conomic connector: customers, products (REST), projects (OpenAPI Projects), invoices and credit
// notes (REST draft → PDF → booking with the PSA's number). Every write carries an Idempotency-Key;
// after an uncertain attempt we look the record up before creating anything.
import type { Customer, Entity, InvoiceLike, Product, Project } from "../../agent/model.ts";
import type { Problem } from "../../agent/problem.ts";
import type { CheckItem, Connector, ConnectorDeps, Link, PullOptions, PullResult, PushContext, PushResult } from "../contract.ts";
import { TargetError, type HttpClient } from "../http.ts";
import { runChecks } from "./check.ts";
import { createEconomicHttp, describeEconomicError, filterValue } from "./client.ts";
import type { EconomicConfig } from "./config.ts";
import { bookBody, customerBody, draftInvoiceBody, productBody, projectBody } from "./map.ts";
import { EconomicPuller } from "./pull.ts";
import { economicRules } from "./rules.ts";

const SUPPORTED: Entity[] = ["customer", "project", "product", "invoice"];

export class EconomicConnector implements Connector {
  readonly kind = "economic";
  private readonly http: HttpClient;
  private readonly rest: string;
  private readonly projects: string;
  private readonly puller: EconomicPuller;

  constructor(readonly name: string, private readonly cfg: EconomicConfig, _deps: ConnectorDeps) {
    this.http = createEconomicHttp(cfg);
    this.rest = cfg.rest_url.replace(/\/$/, "");
    this.projects = cfg.projects_url.replace(/\/$/, "");
    this.puller = new EconomicPuller(this.http, this.rest, cfg);
  }

  /** Posted supplier expenses and invoice payment status (pull.ts). */
  pull(stream: string, cursor: string | null, options: PullOptions): Promise<PullResult> {
    return this.puller.pull(stream, cursor, options);
  }

  supports(entity: Entity): boolean {
    return SUPPORTED.includes(entity);
  }

  validate(entity: Entity, payload: any): Problem[] {
    return economicRules(entity, payload);
  }

  async push(entity: Entity, payload: any, ctx: PushContext): Promise<PushResult> {
    switch (entity) {
      case "customer": return this.pushCustomer(payload, ctx);
      case "project": return this.pushProject(payload, ctx);
      case "product": return this.pushProduct(payload, ctx);
      case "invoice": return this.pushInvoice(payload, ctx);
    }
  }

  async find(entity: Entity, payload: any): Promise<Link | null> {
    switch (entity) {
      case "customer": return (await this.get(`${this.rest}/customers/${Number(payload.number)}`)) ? { remoteId: String(payload.number) } : null;
      case "project": return (await this.get(`${this.projects}/Projects/${Number(payload.number)}`)) ? { remoteId: String(payload.number) } : null;
      case "product": return (await this.get(`${this.rest}/products/${encodeURIComponent(payload.code)}`)) ? { remoteId: payload.code } : null;
      case "invoice": {
        const booked = await this.findBooked(payload);
        return booked ? { remoteId: String(booked.bookedInvoiceNumber) } : null;
      }
    }
  }

  // ── customers and products: REST, keyed by the PSA's number ──────────────────────────────────────

  private async pushCustomer(c: Customer, ctx: PushContext): Promise<PushResult> {
    const body = customerBody(c, this.cfg);
    const url = `${this.rest}/customers/${body.customerNumber}`;
    return this.upsertRest(url, `${this.rest}/customers`, body, ctx, String(body.customerNumber));
  }

  private async pushProduct(p: Product, ctx: PushContext): Promise<PushResult> {
    const body = productBody(p, this.cfg);
    return this.upsertRest(`${this.rest}/products/${encodeURIComponent(p.code)}`, `${this.rest}/products`, body, ctx, p.code);
  }

  /** PUT when it exists (known link, or found after an uncertain attempt), else POST; a duplicate on POST means it exists. */
  private async upsertRest(itemUrl: string, collectionUrl: string, body: object, ctx: PushContext, remoteId: string): Promise<PushResult> {
    const exists = ctx.link !== null || (ctx.uncertain && (await this.get(itemUrl)) !== null);
    if (!exists) {
      const res = await this.http.request("POST", collectionUrl, { json: body, headers: { "Idempotency-Key": `${ctx.idempotencyKey}-create` }, accept: [400] });
      if (res.status < 300) return { remoteId };
      if (!(await this.get(itemUrl))) throw this.http400(res);
      // It was there already (made by hand, or by an attempt we lost track of): the PSA is master, so update it.
    }
    const put = await this.http.request("PUT", itemUrl, { json: body, headers: { "Idempotency-Key": `${ctx.idempotencyKey}-update` }, accept: [404] });
    if (put.status === 404) {
      // Deleted in e-conomic by hand since we last pushed it: the PSA is master, so create it again.
      await this.http.request("POST", collectionUrl, { json: body, headers: { "Idempotency-Key": `${ctx.idempotencyKey}-recreate` } });
    }
    return { remoteId };
  }

  // ── projects: OpenAPI Projects module ────────────────────────────────────────────────────────────

  private async pushProject(p: Project, ctx: PushContext): Promise<PushResult> {
    const body = projectBody(p, this.cfg);
    const url = `${this.projects}/Projects/${body.number}`;
    let current = ctx.link || ctx.uncertain ? await this.get(url) : null;
    if (!current) {
      const res = await this.http.request("POST", `${this.projects}/Projects`, { json: body, headers: { "Idempotency-Key": `${ctx.idempotencyKey}-create` }, accept: [400] });
      if (res.status < 300) return { remoteId: String(body.number) };
      if (res.body?.code !== "ProjectCannotBeCreatedUpdatedNumberAlreadyExists") throw this.http400(res);
      current = await this.get(url);
      if (!current) throw this.http400(res);
    }
    // Update: the OpenAPI PUT takes the number and the current objectVersion in the body. A 409 means
    // someone changed it meanwhile; that is retryable (we re-read the version next time).
    await this.http.request("PUT", `${this.projects}/Projects`, {
      json: { ...body, objectVersion: current.objectVersion },
      headers: { "Idempotency-Key": `${ctx.idempotencyKey}-update-${current.objectVersion}` },
      accept: [409],
    }).then((res) => {
      if (res.status === 409) throw new TargetError("retryable", { code: "version_conflict", message: `Project ${body.number} was changed in e-conomic while we updated it.`, hint: "kontobro re-reads it and tries again." });
    });
    return { remoteId: String(body.number) };
  }

  // ── invoices and credit notes ─────────────────────────────────────────────────────────────────────

  private async pushInvoice(inv: InvoiceLike, ctx: PushContext): Promise<PushResult> {
    const number = Number(inv.number);
    if (ctx.link || ctx.uncertain) {
      const booked = await this.findBooked(inv);
      if (booked) {
        if (ctx.link) throw alreadyBooked(inv);
        return { remoteId: String(number) };
      }
    }
    const customer = (ctx.record?.("customer", inv.customerNumber) as Customer | null) ?? null;
    // Drafts carrying our PSA id are left over from earlier attempts (whose answer was lost, or that
    // failed after creating one), possibly of an older version of the invoice: remove them, then book a
    // fresh draft of the current version. One lookup per invoice buys "never an orphan, never stale".
    await this.removeDrafts(inv.psaId, ctx);
    const draft = (await this.http.request("POST", `${this.rest}/invoices/drafts`, {
      json: draftInvoiceBody(inv, customer, this.cfg), headers: { "Idempotency-Key": `${ctx.idempotencyKey}-draft` },
    })).body;
    const draftNumber = Number(draft?.draftInvoiceNumber);
    if (!Number.isInteger(draftNumber) || draftNumber < 1) {
      throw new TargetError("uncertain", { code: "unexpected_answer", message: "e-conomic answered the draft invoice without a draftInvoiceNumber.", hint: "kontobro checks and retries by itself." });
    }
    let note: string | undefined;
    if (inv.pdf && this.cfg.attach_pdf) await this.attachPdf(draftNumber, inv, ctx);
    else if (inv.pdf) note = "PDF not attached: attach_pdf is off for this target.";
    const res = await this.http.request("PUT", `${this.rest}/invoices/booked/${number}`, {
      json: bookBody(draftNumber, number), headers: { "Idempotency-Key": `${ctx.idempotencyKey}-book-${draftNumber}` }, accept: [400],
    });
    if (res.status >= 400) {
      // Possibly booked by an attempt whose answer we lost; otherwise the number is taken or the data refused.
      const booked = await this.findBooked(inv);
      if (booked) return { remoteId: String(number) };
      throw this.http400(res);
    }
    return { remoteId: String(number), note };
  }

  private async attachPdf(draftNumber: number, inv: InvoiceLike, ctx: PushContext): Promise<void> {
    const base = `${this.rest}/invoices/drafts/${draftNumber}/attachment`;
    const form = new FormData();
    const bytes = Buffer.from(inv.pdf!.contentBase64, "base64");
    form.append("", new Blob([bytes], { type: "application/pdf" }), inv.pdf!.filename);
    await this.http.request("POST", `${base}/file`, { body: form, headers: { "Idempotency-Key": `${ctx.idempotencyKey}-pdf-${draftNumber}` } });
  }

  /** The booked invoice with this number, if it is ours; a different invoice with our number is an error. */
  private async findBooked(inv: InvoiceLike): Promise<any | null> {
    const booked = await this.get(`${this.rest}/invoices/booked/${Number(inv.number)}`);
    if (!booked) return null;
    if (booked.references?.other !== inv.psaId) {
      throw new TargetError("permanent", {
        code: "economic.invoice_number_taken",
        message: `Invoice number ${inv.number} is already used in e-conomic by another invoice (reference "${booked.references?.other ?? ""}").`,
        hint: "Invoice numbers must not be made in e-conomic by hand. Agree a separate number range, renumber in the PSA, and send it again.",
        field: "number",
      });
    }
    return booked;
  }

  /** Deletes every draft whose references.other is our PSA id. */
  private async removeDrafts(psaId: string, ctx: PushContext): Promise<void> {
    const filter = encodeURIComponent(`references.other$eq:${filterValue(psaId)}`);
    const res = await this.http.request("GET", `${this.rest}/invoices/drafts?filter=${filter}&pagesize=100`);
    const numbers: number[] = (res.body?.collection ?? []).map((d: any) => Number(d.draftInvoiceNumber)).filter((n: number) => Number.isInteger(n));
    for (const n of numbers) {
      await this.http.request("DELETE", `${this.rest}/invoices/drafts/${n}`, { accept: [404], headers: { "Idempotency-Key": `${ctx.idempotencyKey}-delete-${n}` } });
    }
  }

  // ── helpers ──────────────────────────────────────────────────────────────────────────────────────

  private async get(url: string): Promise<any | null> {
    const res = await this.http.request("GET", url, { accept: [404] });
    return res.status === 404 ? null : res.body;
  }

  private http400(res: { status: number; body: any }): TargetError {
    const p = describe(res);
    return new TargetError("permanent", { ...p, status: res.status });
  }

  async check(): Promise<CheckItem[]> {
    return runChecks(this.cfg, (url) => this.get(url), this.rest, this.projects);
  }
}

function alreadyBooked(inv: InvoiceLike): TargetError {
  return new TargetError("permanent", {
    code: "economic.invoice_already_booked",
    message: `Invoice ${inv.number} is already booked in e-conomic and booked invoices cannot be changed.`,
    hint: "Issue a credit note in the PSA (and a new invoice if needed) instead of changing a finalized invoice.",
  });
}

function describe(res: { status: number; body: any }): Problem {
  return describeEconomicError({ status: res.status, headers: new Headers(), body: res.body });
}
