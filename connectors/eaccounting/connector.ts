// The eAccounting connector: customers and articles (either side may be master: agent/master/ decides what
// travels; this connector offers its records in the PSA's shape), projects as cost-centre items, invoices as
// drafts (invoice-push.ts), and pulls of master data, invoice status and supplier costs (pull.ts). Every create
// whose earlier attempt is uncertain is preceded by a lookup by number (eAccounting has no idempotency key).
import type { Customer, Entity, InvoiceLike, Product, Project } from "../../agent/model.ts";
import { sameName } from "../../agent/model.ts";
import type { Problem } from "../../agent/problem.ts";
import type {
  CheckItem,
  Connector,
  ConnectorDeps,
  Link,
  MasterData,
  MasterEntity,
  MasterRecord,
  MasterSide,
  PullOptions,
  PullResult,
  PushContext,
  PushResult,
  RelatedRecords,
} from "../contract.ts";
import { TargetError } from "../http.ts";
import { memoryCredentials, OAuthTokens } from "./auth.ts";
import { runChecks } from "./check.ts";
import { EaccountingClient, type Row } from "./client.ts";
import { tokenUrl, type EaccountingConfig } from "./config.ts";
import { draftIdOf, draftRemoteId, EaccountingInvoices } from "./invoice-push.ts";
import {
  ARTICLE_OWNED,
  articleFields,
  CUSTOMER_OWNED,
  customerFields,
  customerFromApi,
  differs,
  itemFields,
  mergeEntity,
  productFromApi,
  unitKindOf,
} from "./map.ts";
import { EaccountingPuller } from "./pull.ts";
import { eaccountingRules } from "./rules.ts";
import { SetupLists } from "./setup.ts";

const SUPPORTED: Entity[] = ["customer", "product", "project", "invoice"];

/** eAccounting's field names → the PSA's, for messages about a record. */
const PSA_FIELD: Record<string, string> = {
  Name: "name",
  CustomerNumber: "number",
  InvoiceAddress1: "addresses.0.street",
  InvoiceAddress2: "addresses.0.street",
  InvoicePostalCode: "addresses.0.zip",
  InvoiceCity: "addresses.0.city",
  InvoiceCountryCode: "addresses.0.country",
  VatNumber: "vatNumber",
  CorporateIdentityNumber: "orgNumber",
  Number: "code",
  ShortName: "number",
};

export class EaccountingConnector implements Connector {
  readonly kind = "eaccounting";
  readonly tokens: OAuthTokens;
  readonly client: EaccountingClient;
  readonly setup: SetupLists;
  readonly invoices: EaccountingInvoices;
  readonly master: MasterData;
  private readonly puller: EaccountingPuller;

  constructor(
    readonly name: string,
    readonly cfg: EaccountingConfig,
    deps: ConnectorDeps,
    now: () => number = Date.now,
  ) {
    this.tokens = new OAuthTokens({
      target: name,
      tokenUrl: tokenUrl(cfg),
      clientId: cfg.client_id,
      clientSecret: cfg.client_secret,
      clientAuth: cfg.token_auth,
      bootstrapRefreshToken: cfg.refresh_token,
      store: deps.credentials ?? memoryCredentials(),
      ...(deps.signIn ? { signIn: deps.signIn } : {}),
      timeoutMs: cfg.request_timeout_ms,
      now,
    });
    this.client = new EaccountingClient({
      apiUrl: cfg.api_url,
      timeoutMs: cfg.request_timeout_ms,
      requestsPerSecond: cfg.requests_per_second,
      burst: cfg.burst,
      tokens: this.tokens,
      filter: cfg.filter,
      dateLiteral: cfg.filter_date_literal,
      pageSize: cfg.page_size,
    });
    this.setup = new SetupLists(this.client, cfg, now);
    this.invoices = new EaccountingInvoices(this.client, cfg, this.setup);
    const sides: Record<MasterEntity, MasterSide> = { customer: deps.masters?.customer ?? "psa", product: deps.masters?.product ?? "psa" };
    this.master = {
      sides,
      entities: ["customer", "product"],
      project: (entity, payload) => this.project(entity, payload),
      lookup: (entity, key) => this.lookup(entity, key),
      list: (entity) => this.list(entity),
    };
    this.puller = new EaccountingPuller(this.client, cfg, this.setup, (entity, row) => this.toMaster(entity, row));
  }

  /** A 429 read by a request outside a push (a pull, the set-up lists) pauses this client: the round stores it for every worker. */
  pausedForMs(): number {
    return this.client.gate.remainingMs();
  }

  supports(entity: Entity): boolean {
    return SUPPORTED.includes(entity);
  }

  validate(entity: Entity, payload: any, related?: RelatedRecords): Problem[] {
    return eaccountingRules(entity, payload, related, this.cfg);
  }

  async push(entity: Entity, payload: any, ctx: PushContext): Promise<PushResult> {
    switch (entity) {
      case "customer":
        return this.pushCustomer(payload as Customer, ctx);
      case "product":
        return this.pushProduct(payload as Product, ctx);
      case "project":
        return this.pushProject(payload as Project, ctx);
      case "invoice":
        return this.invoices.push(payload as InvoiceLike, ctx);
      default:
        throw new TargetError("permanent", {
          code: "eaccounting.unsupported",
          message: `eAccounting does not take ${entity} records from kontobro.`,
          hint: "Nothing to do.",
        });
    }
  }

  async find(entity: Entity, payload: any): Promise<Link | null> {
    switch (entity) {
      case "customer": {
        const r = await this.setup.customerByNumber(payload.number);
        return r ? { remoteId: r.Id } : null;
      }
      case "product": {
        const r = await this.setup.articleByNumber(payload.code);
        return r ? { remoteId: r.Id } : null;
      }
      case "project": {
        const r = await this.setup.item(payload.number, true);
        return r ? { remoteId: r.Id } : null;
      }
      case "invoice": {
        const found = await this.invoices.find(payload);
        if (found?.draft) return { remoteId: draftRemoteId(found.draft.Id) };
        return found?.invoice ? { remoteId: draftRemoteId(found.invoice.CreatedFromDraftId ?? found.invoice.Id) } : null;
      }
      default:
        return null;
    }
  }

  pull(stream: string, cursor: string | null, options: PullOptions): Promise<PullResult> {
    return this.puller.pull(stream, cursor, options);
  }

  check(): Promise<CheckItem[]> {
    return runChecks(this.name, this.cfg, this.client, this.setup, this.tokens);
  }

  // ---- customers --------------------------------------------------------------------------------------------

  private async pushCustomer(c: Customer, ctx: PushContext): Promise<PushResult> {
    const who = `Customer ${c.number} (${c.name})`;
    return this.explained(who, async () => {
      const terms = await this.setup.terms(c.paymentTermsDays ?? this.cfg.payment_terms_days);
      const mapped = customerFields(c, { Id: terms.Id, NumberOfDays: terms.NumberOfDays });
      let existing = ctx.link ? await this.getOrNull(`/customers/${ctx.link.remoteId}`) : null;
      if (!existing && (ctx.link || ctx.uncertain)) existing = await this.setup.customerByNumber(c.number);
      if (!existing) {
        try {
          const row = await this.client.post("/customers", mapped);
          this.setup.remember("customer", c.number, row.Id);
          return { remoteId: row.Id, state: await this.toMaster("customer", row) };
        } catch (e) {
          existing = isConflict(e) ? await this.racedCustomer(c) : null;
          if (!existing) throw e;
        }
      }
      const row = differs(existing, mapped, CUSTOMER_OWNED)
        ? await this.client.put(`/customers/${existing.Id}`, mergeEntity(existing, mapped, CUSTOMER_OWNED))
        : existing;
      this.setup.remember("customer", c.number, row.Id);
      return { remoteId: row.Id, state: await this.toMaster("customer", row), before: await this.toMaster("customer", existing) };
    });
  }

  /**
   * The customer that made eAccounting refuse our create (4000 Conflict: the number is taken), when it is this one:
   * another process (a second kontobro installation against this company) created it between the match by number
   * and name and our create. Same number and name: updated as the one matched. Otherwise null: the refusal stands.
   */
  private async racedCustomer(c: Customer): Promise<Row | null> {
    const found = await this.setup.customerByNumber(c.number);
    return found && sameName(found.Name, c.name) ? found : null;
  }

  // ---- articles ---------------------------------------------------------------------------------------------

  private async pushProduct(p: Product, ctx: PushContext): Promise<PushResult> {
    const who = `Product ${p.code} (${p.name})`;
    return this.explained(who, async () => {
      const unit = await this.setup.unitFor(p.unit);
      let existing = ctx.link ? await this.getOrNull(`/articles/${ctx.link.remoteId}`) : null;
      if (!existing && (ctx.link || ctx.uncertain)) existing = await this.setup.articleByNumber(p.code);
      let row: Row;
      let attention: string | undefined;
      let before: MasterRecord | undefined;
      if (!existing) {
        const coding = await this.setup.codingFor(p);
        await this.setup.requireCodingRate(p, coding, false);
        const rate = (await this.setup.vatRateOf(coding.Id)) ?? p.vatRate ?? this.cfg.vat_rate;
        row = await this.client.post("/articles", articleFields(p, { unitId: unit.Id, codingId: coding.Id, vatRate: rate }));
        attention = `Article ${p.code} (${p.name}) was created in eAccounting with the account coding "${coding.Name}" (${rate} % VAT): check the coding in eAccounting (Sales › Articles).`;
      } else {
        // An existing article keeps its coding (and so its VAT rate), which must be the PSA's rate; prices follow the PSA.
        const coding = existing.CodingId ? await this.setup.coding(existing.CodingId) : undefined;
        if (coding) await this.setup.requireCodingRate(p, coding, true);
        const rate = (await this.setup.vatRateOf(existing.CodingId)) ?? p.vatRate ?? this.cfg.vat_rate;
        const mapped = articleFields(p, { unitId: unit.Id, vatRate: rate });
        before = await this.toMaster("product", existing);
        row = differs(existing, mapped, ARTICLE_OWNED)
          ? await this.client.put(`/articles/${existing.Id}`, mergeEntity(existing, mapped, ARTICLE_OWNED))
          : existing;
      }
      this.setup.remember("article", p.code, row.Id);
      return { remoteId: row.Id, state: await this.toMaster("product", row), before, ...(attention ? { attention, note: attention } : {}) };
    });
  }

  // ---- projects as cost-centre items ------------------------------------------------------------------------

  private async pushProject(p: Project, ctx: PushContext): Promise<PushResult> {
    const who = `Project ${p.number} (${p.name})`;
    return this.explained(who, async () => {
      // A new project is created at once in the cost centre as last read: eAccounting refuses an item whose short
      // name or name is taken (4000 Conflict), and only then, for an update or after an uncertain attempt, are the
      // items read to find ours or name the clash.
      if (!ctx.link && !ctx.uncertain) {
        const center = await this.setup.costCenter();
        try {
          const row = await this.client.post("/costcenteritems", itemFields(p, center.Id));
          this.setup.addItem(row);
          return { remoteId: row.Id };
        } catch (e) {
          if (!isConflict(e)) throw e;
        }
      }
      const center = await this.setup.costCenter(true);
      const items = (center.Items as Row[] | undefined) ?? [];
      const mine = items.find((i) => eq(i.ShortName, p.number));
      const clash = items.find((i) => i !== mine && eq(i.Name, p.name));
      if (clash) {
        throw new TargetError("permanent", {
          code: "eaccounting.CostCenterItemAlreadyExists",
          field: "name",
          message: `${who}: eAccounting's cost centre "${center.Name}" already has an item named "${clash.Name}" with the abbreviation ${clash.ShortName}; names and abbreviations must be unique there (error 4000), so kontobro created nothing.`,
          hint: `The PSA's project name and number must match the item's exactly: rename the project in the PSA, or the item in eAccounting (Settings › Cost centres), or give item ${clash.ShortName} the project's number ${p.number} there; then press retry.`,
        });
      }
      const wanted = itemFields(p, center.Id);
      let row: Row;
      if (!mine) row = await this.client.post("/costcenteritems", wanted);
      else if (mine.Name !== wanted.Name || mine.IsActive !== wanted.IsActive || mine.ShortName !== wanted.ShortName)
        row = await this.client.put(`/costcenteritems/${mine.Id}`, { ...mine, ...wanted });
      else row = mine;
      this.setup.forgetList("costcenters");
      return { remoteId: row.Id };
    });
  }

  // ---- master per entity --------------------------------------------------------------------------------------

  /** A PSA payload as eAccounting keeps it: its fields only, with the defaults a push adds (terms, unit). */
  private project(entity: MasterEntity, payload: any): unknown {
    if (entity === "customer") {
      const c = payload as Customer;
      const days = c.paymentTermsDays ?? this.cfg.payment_terms_days;
      return customerFromApi(
        {
          ...customerFields({ ...c, addresses: c.addresses ?? [], contacts: c.contacts ?? [], active: c.active ?? true } as Customer, {
            Id: "terms",
            NumberOfDays: days,
          }),
          Id: "x",
        },
        () => days,
      );
    }
    const p = payload as Product;
    const units = this.setup.cached("units");
    const kind = unitKindOf(p.unit);
    // The unit as eAccounting names it: the configured code for hours and kilometres, one of eAccounting's own
    // the PSA names, else pieces (as unitFor chooses it when pushing).
    const named = !kind && p.unit ? units?.find((u) => [u.Code, u.Abbreviation, u.Name].some((x) => eq(x, p.unit))) : undefined;
    const unit = kind
      ? this.cfg.units[kind]
      : named
        ? String(named.Code ?? named.Abbreviation ?? named.Name)
        : !p.unit || units
          ? this.cfg.units.pieces
          : p.unit.trim();
    const { vatRate: _rate, ...rest } = productFromApi(
      {
        Number: p.code,
        Name: p.name,
        IsActive: p.active !== false,
        NetPrice: p.price === undefined ? undefined : p.price / 100,
        UnitId: "u",
      },
      () => unit,
      () => undefined,
    );
    return rest;
  }

  /** An eAccounting record as a MasterRecord in the PSA's shape (the VAT rate is information, not compared). */
  async toMaster(entity: MasterEntity, row: Row): Promise<MasterRecord> {
    if (entity === "customer") {
      const days = row.TermsOfPaymentId ? await this.setup.daysOf(row.TermsOfPaymentId) : undefined;
      const data = customerFromApi(row, () => days);
      return { entity, key: data.number, remoteId: row.Id, data: data as any, modifiedAt: row.ChangedUtc };
    }
    const unit = row.UnitId ? await this.setup.unitCode(row.UnitId) : undefined;
    const rate = row.CodingId ? await this.setup.vatRateOf(row.CodingId) : undefined;
    const data = productFromApi(
      row,
      () => unit,
      () => rate,
    );
    return { entity, key: data.code, remoteId: row.Id, data: data as any, modifiedAt: row.ChangedUtc };
  }

  private async lookup(entity: MasterEntity, key: string): Promise<MasterRecord | null> {
    const row = entity === "customer" ? await this.setup.customerByNumber(key) : await this.setup.articleByNumber(key);
    return row ? this.toMaster(entity, row) : null;
  }

  private async list(entity: MasterEntity): Promise<MasterRecord[]> {
    const rows = await this.client.all(entity === "customer" ? "customers" : "articles");
    const out: MasterRecord[] = [];
    for (const r of rows) out.push(await this.toMaster(entity, r));
    return out;
  }

  // ---- helpers ------------------------------------------------------------------------------------------------

  private async getOrNull(path: string): Promise<Row | null> {
    const res = await this.client.request("GET", path, { accept: [404] });
    return res.status === 404 ? null : res.body;
  }

  /** eAccounting's refusals said for the record, with the PSA's field (issue 13, item 8: which record, which field). */
  private async explained<T>(who: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (e) {
      if (!(e instanceof TargetError) || e.kind !== "permanent" || e.message.startsWith(who)) throw e;
      const field = e.field ? (PSA_FIELD[e.field] ?? e.field) : undefined;
      throw new TargetError("permanent", { ...e, message: `${who}: ${e.message}`, ...(field ? { field } : {}) });
    }
  }
}

/** eAccounting's 4000 Conflict: a record with this number, short name or name exists. */
const isConflict = (e: unknown) => e instanceof TargetError && (e.code === "eaccounting.Conflict" || e.code.endsWith("AlreadyExists"));

const eq = (a: unknown, b: unknown) =>
  String(a ?? "")
    .trim()
    .toLowerCase() ===
  String(b ?? "")
    .trim()
    .toLowerCase();

export { draftIdOf };
