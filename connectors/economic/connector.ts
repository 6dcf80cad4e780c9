// The e-conomic connector: customers, products (REST), projects (OpenAPI Projects), invoices and credit
// notes (REST draft → PDF → booking with the PSA's number, invoice-push.ts). Every write carries an Idempotency-Key;
// after an uncertain attempt we look the record up before creating anything.
import type { Customer, Entity, Product, Project } from "../../agent/model.ts";
import type { Problem } from "../../agent/problem.ts";
import type {
  CheckItem,
  Connector,
  ConnectorDeps,
  Link,
  PullOptions,
  PullResult,
  PushContext,
  PushResult,
  RelatedRecords,
} from "../contract.ts";
import { TargetError, type HttpClient } from "../http.ts";
import { AgreementSettings } from "./agreement.ts";
import { runChecks } from "./check.ts";
import { createEconomicHttp, describeEconomicError } from "./client.ts";
import type { EconomicConfig } from "./config.ts";
import { EconomicInvoices } from "./invoice-push.ts";
import { customerBody, postalAddress, productBody, productGroupFor, projectBody } from "./map.ts";
import { EconomicPuller } from "./pull.ts";
import { economicRules } from "./rules.ts";

const SUPPORTED: Entity[] = ["customer", "project", "product", "invoice"];

export class EconomicConnector implements Connector {
  readonly kind = "economic";
  private readonly http: HttpClient;
  private readonly rest: string;
  private readonly projects: string;
  private readonly puller: EconomicPuller;
  /** The agreement's country, VAT zones and payment terms, read once in a while. */
  readonly settings: AgreementSettings;
  /** Invoices and credit notes (invoice-push.ts). */
  readonly invoices: EconomicInvoices;

  constructor(
    readonly name: string,
    private readonly cfg: EconomicConfig,
    _deps: ConnectorDeps,
  ) {
    this.http = createEconomicHttp(cfg);
    this.rest = cfg.rest_url.replace(/\/$/, "");
    this.projects = cfg.projects_url.replace(/\/$/, "");
    this.puller = new EconomicPuller(this.http, this.rest, cfg);
    this.settings = new AgreementSettings(cfg, (url) => this.get(url), this.rest);
    this.invoices = new EconomicInvoices(this.http, this.rest, cfg, this.settings);
  }

  /** Posted supplier expenses and invoice payment status (pull.ts). */
  pull(stream: string, cursor: string | null, options: PullOptions): Promise<PullResult> {
    return this.puller.pull(stream, cursor, options);
  }

  /** A late draft's removal (invoice-push.ts) runs after its push: its 429 pauses this client, and the round stores it. */
  pausedForMs(): number {
    return this.http.gate.remainingMs();
  }

  supports(entity: Entity): boolean {
    return SUPPORTED.includes(entity);
  }

  validate(entity: Entity, payload: any, related?: RelatedRecords): Problem[] {
    return economicRules(entity, payload, related, this.cfg);
  }

  async push(entity: Entity, payload: any, ctx: PushContext): Promise<PushResult> {
    switch (entity) {
      case "customer":
        return this.pushCustomer(payload, ctx);
      case "project":
        return this.pushProject(payload, ctx);
      case "product":
        return this.pushProduct(payload, ctx);
      case "invoice":
        return this.invoices.push(payload, ctx);
    }
  }

  async find(entity: Entity, payload: any): Promise<Link | null> {
    switch (entity) {
      case "customer":
        return (await this.get(`${this.rest}/customers/${Number(payload.number)}`)) ? { remoteId: String(payload.number) } : null;
      case "project":
        return (await this.get(`${this.projects}/Projects/${Number(payload.number)}`)) ? { remoteId: String(payload.number) } : null;
      case "product":
        return (await this.get(`${this.rest}/products/${encodeURIComponent(payload.code)}`)) ? { remoteId: payload.code } : null;
      case "invoice": {
        const booked = await this.invoices.findBooked(payload);
        return booked ? { remoteId: String(booked.bookedInvoiceNumber) } : null;
      }
    }
  }

  // ── customers and products: REST, keyed by the PSA's number ──────────────────────────────────────

  private async pushCustomer(c: Customer, ctx: PushContext): Promise<PushResult> {
    // The VAT zone follows the customer's country (domestic, EU, abroad) on every push: the PSA is master.
    const body = customerBody(c, this.cfg, await this.settings.vatZoneFor(postalAddress(c)?.country, !!c.vatNumber));
    const url = `${this.rest}/customers/${body.customerNumber}`;
    return this.upsertRest(url, `${this.rest}/customers`, body, ctx, String(body.customerNumber));
  }

  private async pushProduct(p: Product, ctx: PushContext): Promise<PushResult> {
    if (p.vatRate !== undefined) await this.requireGroupRate(p, p.vatRate);
    const body = productBody(p, this.cfg);
    try {
      return await this.upsertRest(`${this.rest}/products/${encodeURIComponent(p.code)}`, `${this.rest}/products`, body, ctx, p.code);
    } finally {
      // Its group may have changed (a new VAT rate): an invoice line's check reads the product again.
      this.settings.forgetProduct(p.code);
    }
  }

  /**
   * A product goes into the group of its VAT rate (product_groups_by_vat_rate, else product_group), whose sales account
   * decides the VAT of every invoice line on it (a line has no VAT of its own): for domestic customers, the VAT code of
   * the group's domestic sales account. A product whose PSA rate is not that code's would be booked with another VAT: it
   * needs action, nothing is sent. An existing product is moved (the PUT carries the group): the PSA is master of the
   * rate, and invoices booked before keep the VAT they were booked with. What cannot be told (no domestic sales account,
   * a code /vat-accounts lacks) is left to the invoice's own line check.
   */
  private async requireGroupRate(p: Product, rate: number): Promise<void> {
    const { group, named } = productGroupFor(p, this.cfg);
    const zone = await this.settings.vatZoneFor(undefined);
    const { account, vatCode } = await this.settings.groupBooking(group, zone);
    if (account === undefined) return;
    const booked = vatCode ? await this.settings.vatRate(vatCode) : 0;
    if (booked === undefined || Math.abs(booked - rate) < 0.001) return;
    const setting = named ? `product_groups_by_vat_rate "${rate}"` : "product_group";
    throw new TargetError("permanent", {
      code: "economic.product_vat_rate",
      field: "vatRate",
      message: `Product ${p.code} (${p.name}) has ${rate} % VAT in the PSA, but product group ${group} (${setting}) books domestic sales on account ${account} ${vatCode ? `with VAT code ${vatCode} at ${booked} %` : "without VAT"}, and e-conomic books every invoice line on the product with it. Nothing was sent.`,
      hint: named
        ? `Correct the product's VAT rate in the PSA if it is wrong; else set product_groups_by_vat_rate's group for "${rate}" in this target's section of kontobro.toml to a group whose domestic sales account books ${rate} % (e-conomic: Settings › Product groups) and restart. Then press retry.`
        : `Correct the product's VAT rate in the PSA if it is wrong; else name a product group for it in this target's section of kontobro.toml, product_groups_by_vat_rate = { "${rate}" = N } with N a group whose domestic sales account books ${rate} % (e-conomic: Settings › Product groups), and restart. Then press retry.`,
    });
  }

  /** PUT when it exists (known link, or found after an uncertain attempt), else POST; a duplicate on POST means it exists. */
  private async upsertRest(itemUrl: string, collectionUrl: string, body: object, ctx: PushContext, remoteId: string): Promise<PushResult> {
    const exists = ctx.link !== null || (ctx.uncertain && (await this.get(itemUrl)) !== null);
    if (!exists) {
      const res = await this.http.request("POST", collectionUrl, {
        json: body,
        headers: { "Idempotency-Key": `${ctx.idempotencyKey}-create` },
        accept: [400],
      });
      if (res.status < 300) return { remoteId };
      if (!(await this.get(itemUrl))) throw this.http400(res);
      // It was there already (made by hand, or by an attempt we lost track of): the PSA is master, so update it.
    }
    const put = await this.http.request("PUT", itemUrl, {
      json: body,
      headers: { "Idempotency-Key": `${ctx.idempotencyKey}-update` },
      accept: [404],
    });
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
      const res = await this.http.request("POST", `${this.projects}/Projects`, {
        json: body,
        headers: { "Idempotency-Key": `${ctx.idempotencyKey}-create` },
        accept: [400],
      });
      if (res.status < 300) return { remoteId: String(body.number) };
      if (res.body?.code !== "ProjectCannotBeCreatedUpdatedNumberAlreadyExists") throw this.http400(res);
      current = await this.get(url);
      if (!current) throw this.http400(res);
    }
    // Update: the OpenAPI PUT takes the number and the current objectVersion in the body. A 409 means
    // someone changed it meanwhile; that is retryable (we re-read the version next time).
    await this.http
      .request("PUT", `${this.projects}/Projects`, {
        json: { ...body, objectVersion: current.objectVersion },
        headers: { "Idempotency-Key": `${ctx.idempotencyKey}-update-${current.objectVersion}` },
        accept: [409],
      })
      .then((res) => {
        if (res.status === 409)
          throw new TargetError("retryable", {
            code: "version_conflict",
            message: `Project ${body.number} was changed in e-conomic while we updated it.`,
            hint: "kontobro re-reads it and tries again.",
          });
      });
    return { remoteId: String(body.number) };
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
    this.settings.forget();
    return runChecks(this.cfg, (url) => this.get(url), this.rest, this.projects, this.settings);
  }
}

function describe(res: { status: number; body: any }): Problem {
  return describeEconomicError({ status: res.status, headers: new Headers(), body: res.body });
}
