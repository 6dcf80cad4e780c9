// The sandbox's control API under /__sandbox (not eAccounting's): state, reset, faults, the clock, the identity
// server (grants, revocation, expiry), the company's onboarding state, and what people do in eAccounting by hand:
// create or edit a customer or article, send a draft (it becomes a numbered invoice), register a payment, book
// a supplier invoice with project rows.
import type { Hono } from "hono";
import { faultRoutes } from "../../sandbox-faults.ts";
import { type EAccountingFaults, FaultRulesBody } from "./faults.ts";
import type { Invoicing } from "./invoicing.ts";
import type { IdentityServer } from "./oauth.ts";
import type { CompanyStore } from "./store.ts";
import { EaError, envelope, type Row } from "./validate.ts";
import type { ApiState } from "./api.ts";

export interface ControlDeps {
  faults: EAccountingFaults;
  identity: IdentityServer;
  api: ApiState;
  store(): CompanyStore;
  invoicing(): Invoicing;
  clientId: string;
  clock: { offsetMs: number };
  state(): unknown;
  reset(): void;
}

const same = (a: unknown, b: unknown) => String(a ?? "").toLowerCase() === String(b ?? "").toLowerCase();

export function registerControl(app: Hono, d: ControlDeps): void {
  const run = async (c: any, work: (body: any) => unknown, status = 201) => {
    const body = await c.req.json().catch(() => ({}));
    try {
      return c.json(work(body) ?? { ok: true }, status);
    } catch (e) {
      if (e instanceof EaError) return c.json(envelope(e.code, e.message), e.status);
      throw e;
    }
  };
  const byNumber = (map: Map<string, Row>, field: string, number: string) => {
    const row = [...map.values()].find((r) => same(r[field], number));
    if (!row) throw new EaError(404, 3000, `${number} not found.`);
    return row;
  };

  app.get("/__sandbox/state", (c) => c.json(d.state()));
  app.post("/__sandbox/reset", (c) => {
    d.reset();
    return c.json({ reset: true });
  });
  faultRoutes(app, d.faults, FaultRulesBody);

  /** {advanceMs} or {offsetMs}: the server clock (ServerTimeUtc, ChangedUtc, token expiry). */
  app.post("/__sandbox/clock", (c) =>
    run(
      c,
      (b) => {
        if (typeof b.offsetMs === "number") d.clock.offsetMs = b.offsetMs;
        if (typeof b.advanceMs === "number") d.clock.offsetMs += b.advanceMs;
        return { offsetMs: d.clock.offsetMs, now: d.store().nowIso() };
      },
      200,
    ),
  );

  /** {scope?, refreshToken?}: a grant made without the browser; answers its refresh token. */
  app.post("/__sandbox/oauth/grant", (c) =>
    run(c, (b) => ({
      refresh_token: d.identity.grant(
        d.clientId,
        (b.scope ?? "ea:api offline_access ea:sales ea:accounting ea:purchase").split(/\s+/),
        b.refreshToken,
      ),
    })),
  );
  /** {refreshToken?}: the user removes the app's access (all grants without refreshToken). */
  app.post("/__sandbox/oauth/revoke", (c) => run(c, (b) => ({ revoked: d.identity.revoke(b.refreshToken) }), 200));
  app.post("/__sandbox/oauth/expire", (c) =>
    run(
      c,
      () => {
        d.identity.expireAccessTokens();
        return { expired: true };
      },
      200,
    ),
  );
  /** {accessTokenSeconds?, refreshTokenSeconds?, grantable?}. */
  app.post("/__sandbox/oauth/options", (c) =>
    run(
      c,
      (b) => {
        Object.assign(d.identity.o, b);
        return d.identity.o;
      },
      200,
    ),
  );
  app.post("/__sandbox/oauth/check", (c) => run(c, (b) => ({ valid: d.identity.isValidRefreshToken(String(b.refreshToken ?? "")) }), 200));

  /** {code: 4003 | 4004 | 4009 | 4011 | 4012 | 4034 | null}; {readonly: bool}; {rateLimitPerMinute}; {lockedBefore}; {nextInvoiceNumber}; {filter}; {currencyRates: {EUR: 11.5}} (company currency per unit). */
  app.post("/__sandbox/settings", (c) =>
    run(
      c,
      (b) => {
        if ("onboarding" in b) d.api.onboarding.code = b.onboarding;
        if (typeof b.readonly === "boolean") d.api.readonlyUser.on = b.readonly;
        if (typeof b.rateLimitPerMinute === "number") d.api.limiter.perMinute = b.rateLimitPerMinute;
        if (typeof b.retryAfterHeader === "boolean") d.api.retryAfterHeader = b.retryAfterHeader;
        if ("lockedBefore" in b) d.invoicing().lockedBefore = b.lockedBefore;
        if (typeof b.nextInvoiceNumber === "number") d.invoicing().nextInvoiceNumber = b.nextInvoiceNumber;
        if (typeof b.filter === "boolean") d.api.query.filter = b.filter;
        if (b.currencyRates) Object.assign(d.invoicing().currencyRates, b.currencyRates);
        if (b.dateLiterals) d.api.query.dateLiterals = b.dateLiterals;
        return {
          onboarding: d.api.onboarding.code,
          readonly: d.api.readonlyUser.on,
          rateLimitPerMinute: d.api.limiter.perMinute,
          query: d.api.query,
        };
      },
      200,
    ),
  );

  /** A fault, not eAccounting's documented behaviour: {"<article number>": unitPrice} books those rows at that price; {} ends it. */
  app.put("/__sandbox/price-list", (c) =>
    run(
      c,
      (b) => {
        const entries = Object.entries(b ?? {});
        if (entries.some(([, v]) => typeof v !== "number" || !Number.isFinite(v)))
          throw new EaError(400, 2000, 'price-list: give {"<article number>": unitPrice, …} with numbers as prices.');
        d.invoicing().priceList = new Map(entries as [string, number][]);
        return Object.fromEntries(entries);
      },
      200,
    ),
  );

  // ---- a person in eAccounting ---------------------------------------------------------------------------------
  /** A customer created in eAccounting (defaults: 30 days, active, a company). */
  app.post("/__sandbox/customers", (c) =>
    run(c, (b) => d.store().createCustomer({ IsPrivatePerson: false, IsActive: true, TermsOfPaymentId: d.store().terms[0]!.Id, ...b })),
  );
  /** Edit a customer by its number: the fields given replace the stored ones. */
  app.put("/__sandbox/customers/:number", (c) =>
    run(
      c,
      (b) => {
        const row = byNumber(d.store().customers, "CustomerNumber", c.req.param("number"));
        return d.store().replaceCustomer(row.Id, { ...row, ...b });
      },
      200,
    ),
  );
  /** A person deletes a customer in eAccounting, by its number (as DELETE /v2/customers/{customerId} does). */
  app.delete("/__sandbox/customers/:number", (c) =>
    run(
      c,
      () => {
        const row = byNumber(d.store().customers, "CustomerNumber", c.req.param("number"));
        d.store().deleteCustomer(row.Id);
        return { deleted: row.Id };
      },
      200,
    ),
  );
  /** An article created in eAccounting (defaults: services 25 %, pieces, active). */
  app.post("/__sandbox/articles", (c) =>
    run(c, (b) => d.store().createArticle({ IsActive: true, CodingId: d.store().codings[0]!.Id, UnitId: d.store().units[2]!.Id, ...b })),
  );
  app.put("/__sandbox/articles/:number", (c) =>
    run(
      c,
      (b) => {
        const row = byNumber(d.store().articles, "Number", c.req.param("number"));
        return d.store().replaceArticle(row.Id, { ...row, ...b });
      },
      200,
    ),
  );
  /** An article a person deletes in eAccounting (the API has no DELETE for articles, eaccounting.md §7; the app may). */
  app.delete("/__sandbox/articles/:number", (c) =>
    run(
      c,
      () => {
        const row = byNumber(d.store().articles, "Number", c.req.param("number"));
        d.store().articles.delete(row.Id);
        return { deleted: row.Id };
      },
      200,
    ),
  );
  /** {ShortName, Name?, IsActive?, costCenterNumber?}: a cost-centre item made or changed in eAccounting. */
  app.post("/__sandbox/costcenteritems", (c) =>
    run(c, (b) => {
      const center = d.store().costCenters.find((x) => x.Number === (b.costCenterNumber ?? 1))!;
      const item = (center.Items as Row[]).find((i) => same(i.ShortName, b.ShortName));
      const next = {
        CostCenterId: center.Id,
        Name: b.Name ?? item?.Name,
        ShortName: b.ShortName,
        IsActive: b.IsActive ?? item?.IsActive ?? true,
      };
      return item ? d.store().updateCostCenterItem(item.Id, next) : d.store().createCostCenterItem(next);
    }),
  );

  /** {draftId? | reference?: [field, value], keepOriginalDraftDate?}: a person sends the draft; it becomes a numbered invoice. */
  app.post("/__sandbox/send-draft", (c) =>
    run(c, (b) => {
      const inv = d.invoicing();
      const draft = b.draftId
        ? inv.draft(b.draftId)
        : [...inv.drafts.values()].find((x) => b.reference && x[b.reference[0]] === b.reference[1]);
      if (!draft) throw new EaError(404, 3000, "Customer invoice draft not found.");
      const invoice = inv.convert(draft.Id, !!b.keepOriginalDraftDate);
      const stored = inv.invoices.get(invoice.Id)!;
      stored.SendType = 2;
      return { ...invoice, SendType: 2 };
    }),
  );
  /** {invoiceNumber, amount?}: a payment received, in the invoice's currency (the whole remainder without amount; below 0: returned). */
  app.post("/__sandbox/payments", (c) =>
    run(c, (b) => d.invoicing().registerPayment(Number(b.invoiceNumber), typeof b.amount === "number" ? b.amount : undefined)),
  );
  /** {invoices: [...]}: supplier invoices booked in eAccounting, rows with DebetAmount and a project (cost-centre item or ProjectId). */
  app.post("/__sandbox/supplier-invoices", (c) =>
    run(c, (b) => ({ booked: (b.invoices ?? [b]).map((i: Row) => d.invoicing().addSupplierInvoice(i)) })),
  );
  app.put("/__sandbox/supplier-invoices/:id", (c) => run(c, (b) => d.invoicing().changeSupplierInvoice(c.req.param("id"), b), 200));
  /** {Number, Name, StartDate?}: an eAccounting project (supplier rows may name it by ProjectId). */
  app.post("/__sandbox/projects", (c) => run(c, (b) => d.store().createProject({ StartDate: `${d.store().today()}T00:00:00`, ...b })));

  app.all("/__sandbox/*", (c) => c.json({ message: `No control endpoint ${c.req.method} ${c.req.path}.` }, 404));
}
