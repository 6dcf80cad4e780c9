// The e-conomic connector against the sandbox, for the cases a review found: stale and stray drafts,
// and records deleted by hand in e-conomic.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { parseEvents } from "../agent/intake.ts";
import { silentLogger } from "../agent/log.ts";
import { EconomicConfig } from "../connectors/economic/config.ts";
import { EconomicConnector } from "../connectors/economic/connector.ts";
import { startEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { customerEvent, invoiceEvent } from "./helpers.ts";

let sb: Awaited<ReturnType<typeof startEconomicSandbox>>;
let conn: EconomicConnector;
beforeAll(async () => {
  sb = await startEconomicSandbox({ port: 0 });
  conn = new EconomicConnector(
    "eco",
    EconomicConfig.parse({
      rest_url: sb.url,
      projects_url: sb.projectsUrl,
      app_secret_token: "demo-app-secret",
      agreement_grant_token: "demo-agreement-grant",
      requests_per_second: 0,
    }),
    { log: silentLogger },
  );
});
afterAll(() => sb.stop());

const data = (e: unknown) => {
  const p = parseEvents([e]);
  if (!p.ok) throw new Error(JSON.stringify(p));
  return p.events[0]!.data as any;
};
const ctx = (key: string, uncertain: boolean, customer: unknown) => ({
  link: null,
  uncertain,
  idempotencyKey: key,
  record: (e: string) => (e === "customer" ? customer : null),
});

describe("e-conomic connector", () => {
  test("after a lost booking answer and a corrected invoice, the corrected version is booked and no draft is left", async () => {
    const customer = data(customerEvent(3));
    await conn.push("customer", customer, { link: null, uncertain: false, idempotencyKey: "c3" });
    const v1 = data(invoiceEvent(300, 3, undefined, { lines: [{ text: "OLD line", quantity: 1, unitPrice: 100000, kind: "hours" }] }, "a"));
    const v2 = data(invoiceEvent(300, 3, undefined, { lines: [{ text: "NEW line", quantity: 2, unitPrice: 250000, kind: "hours" }] }, "b"));
    // Retry-After: 0: a 503 with a longer Retry-After pauses the whole target (the client would hold the next push back).
    sb.sandbox.addFault({ kind: "503", method: "PUT", path: "^/invoices/booked", retryAfterSeconds: 0 });
    expect((await conn.push("invoice", v1, ctx("d1-1", false, customer)).catch((e) => e)).kind).toBe("uncertain");
    sb.sandbox.addFault({ kind: "503", method: "PUT", path: "^/invoices/booked", retryAfterSeconds: 0 });
    await conn.push("invoice", v2, ctx("d2-1", true, customer)).catch((e) => e);
    await conn.push("invoice", v2, ctx("d2-2", true, customer));
    const booked = JSON.stringify(sb.sandbox.state.booked.get(300));
    expect(booked).toContain("NEW line");
    expect(booked).not.toContain("OLD line");
    expect(sb.sandbox.stats().counts.drafts).toBe(0);
  });

  test("a customer deleted by hand in e-conomic is created again on the next update", async () => {
    const customer = data(customerEvent(2));
    await conn.push("customer", customer, { link: null, uncertain: false, idempotencyKey: "c2-1" });
    sb.sandbox.state.customers.delete(2);
    await conn.push("customer", { ...customer, name: "Renamed" }, { link: { remoteId: "2" }, uncertain: false, idempotencyKey: "c2-2" });
    expect((sb.sandbox.state.customers.get(2) as any).name).toBe("Renamed");
  });
});

describe("a product's VAT rate", () => {
  test("a product at another rate than product_group's domestic sales account books needs action; at that rate, or without one, it is sent", async () => {
    const product = (code: string, vatRate?: number) =>
      data({
        id: `p-${code}`,
        type: "product.upserted",
        occurredAt: "2026-04-01T10:00:00Z",
        data: { code, name: `Product ${code}`, vatRate },
      });
    const pctx = (key: string) => ({ link: null, uncertain: false, idempotencyKey: key, record: () => null });
    // Group 1 books domestic sales on 1010 with U25 (25 %): a 12 % product would book every line on it at 25 %.
    const e: any = await conn.push("product", product("FOOD", 12), pctx("vat-food")).catch((x) => x);
    expect(e).toMatchObject({ kind: "permanent", code: "economic.product_vat_rate", field: "vatRate" });
    expect(e.message).toContain(
      "has 12 % VAT in the PSA, but product group 1 (product_group) books domestic sales on account 1010 with VAT code U25 at 25 %",
    );
    expect(sb.sandbox.state.products.has("FOOD")).toBe(false);
    await conn.push("product", product("KONS", 25), pctx("vat-kons"));
    await conn.push("product", product("MISC"), pctx("vat-misc"));
    expect(sb.sandbox.state.products.has("KONS") && sb.sandbox.state.products.has("MISC")).toBe(true);
  });
});

describe("a product group per VAT rate (product_groups_by_vat_rate)", () => {
  let byRate: EconomicConnector;
  let byRateConfig: EconomicConfig;
  beforeAll(() => {
    // Group 2 books sales in every zone on 1020, an account without VAT code: VAT-exempt services.
    sb.sandbox.state.productGroups.set(2, { productGroupNumber: 2, name: "Exempt services" });
    sb.sandbox.state.salesAccounts.set(2, { 1: 1020, 2: 1020, 3: 1020, 4: 1020 });
    byRateConfig = EconomicConfig.parse({
      rest_url: sb.url,
      projects_url: sb.projectsUrl,
      app_secret_token: "demo-app-secret",
      agreement_grant_token: "demo-agreement-grant",
      requests_per_second: 0,
      product_groups_by_vat_rate: { "0": 2 },
    });
    byRate = new EconomicConnector("eco-rates", byRateConfig, { log: silentLogger });
  });
  const product = (code: string, vatRate?: number) =>
    data({
      id: `p-${code}-${vatRate}`,
      type: "product.upserted",
      occurredAt: "2026-04-01T10:00:00Z",
      data: { code, name: `Product ${code}`, vatRate },
    });
  const pctx = (key: string, linked = false) => ({
    link: linked ? { remoteId: key } : null,
    uncertain: false,
    idempotencyKey: key,
    record: () => null,
  });
  const groupOf = (code: string) => (sb.sandbox.state.products.get(code) as any)?.productGroup?.productGroupNumber;

  test("each product goes into the group of its rate; an unnamed rate or none into product_group; a rate neither books needs action naming the setting", async () => {
    await byRate.push("product", product("EXEMPT", 0), pctx("r-exempt"));
    await byRate.push("product", product("TAXED", 25), pctx("r-taxed"));
    await byRate.push("product", product("NORATE"), pctx("r-norate"));
    expect([groupOf("EXEMPT"), groupOf("TAXED"), groupOf("NORATE")]).toEqual([2, 1, 1]);
    const e: any = await byRate.push("product", product("FOOD", 12), pctx("r-food")).catch((x) => x);
    expect(e).toMatchObject({ kind: "permanent", code: "economic.product_vat_rate", field: "vatRate" });
    expect(e.hint).toContain('product_groups_by_vat_rate = { "12" = N }');
    expect(sb.sandbox.state.products.has("FOOD")).toBe(false);
  });

  test("a configured group at another rate than its key needs action naming that entry", async () => {
    const wrong = new EconomicConnector(
      "eco-wrong",
      EconomicConfig.parse({
        rest_url: sb.url,
        projects_url: sb.projectsUrl,
        app_secret_token: "demo-app-secret",
        agreement_grant_token: "demo-agreement-grant",
        requests_per_second: 0,
        product_groups_by_vat_rate: { "0": 1 },
      }),
      { log: silentLogger },
    );
    const e: any = await wrong.push("product", product("ZERO", 0), pctx("w-zero")).catch((x) => x);
    expect(e).toMatchObject({ code: "economic.product_vat_rate" });
    expect(e.message).toContain(
      'product group 1 (product_groups_by_vat_rate "0") books domestic sales on account 1010 with VAT code U25 at 25 %',
    );
    expect(sb.sandbox.state.products.has("ZERO")).toBe(false);
  });

  test("a product whose rate changed in the PSA is moved to its new rate's group, and its invoice lines are checked and booked with that group's VAT", async () => {
    const customer = data(customerEvent(40, { addresses: [{ street: "Vestergade 1", zip: "1456", city: "København", country: "DK" }] }));
    await byRate.push("customer", customer, pctx("r-c40"));
    await byRate.push("product", product("ADVICE", 25), pctx("r-advice-1"));
    const line = { text: "Advice", quantity: 1, unitPrice: 100000, kind: "hours", productCode: "ADVICE", vatCode: "U25" };
    const ictx = (key: string) => ({
      link: null,
      uncertain: false,
      idempotencyKey: key,
      record: (e: string) => (e === "customer" ? customer : null),
    });
    await byRate.push("invoice", data(invoiceEvent(4001, 40, undefined, { lines: [line] })), ictx("r-i4001"));
    expect(sb.sandbox.state.booked.get(4001)).toMatchObject({ invoice: { vatAmount: 250 } });

    // The PSA makes the product VAT-exempt: the update moves it into group 2; booked invoices keep their VAT.
    await byRate.push("product", product("ADVICE", 0), pctx("ADVICE", true));
    expect(groupOf("ADVICE")).toBe(2);
    expect(sb.sandbox.state.booked.get(4001)).toMatchObject({ invoice: { vatAmount: 250 } });
    // A line still stating U25 would now be booked without VAT: needs action (not the group read before the move).
    const stale: any = await byRate
      .push("invoice", data(invoiceEvent(4002, 40, undefined, { lines: [line] })), ictx("r-i4002"))
      .catch((x) => x);
    expect(stale).toMatchObject({ kind: "permanent", code: "economic.line_vat_code" });
    expect(sb.sandbox.state.booked.has(4002)).toBe(false);
    const { vatCode: _, ...exempt } = line;
    await byRate.push("invoice", data(invoiceEvent(4003, 40, undefined, { lines: [exempt] })), ictx("r-i4003"));
    expect(sb.sandbox.state.booked.get(4003)).toMatchObject({ invoice: { netAmount: 1000, vatAmount: 0 } });
  });

  test("hosted: the move is seen by another worker's connector too, whose cache still holds the product's old group", async () => {
    // Two workers of one tenant: each has its own connector (and cache); either may claim the product or the invoice.
    const other = new EconomicConnector("eco-rates", byRateConfig, { log: silentLogger });
    const customer = data(customerEvent(41, { addresses: [{ street: "Vestergade 2", zip: "1456", city: "København", country: "DK" }] }));
    await byRate.push("customer", customer, pctx("h-c41"));
    await byRate.push("product", product("AUDIT", 25), pctx("h-audit-1"));
    const line = { text: "Audit", quantity: 1, unitPrice: 100000, kind: "hours", productCode: "AUDIT", vatCode: "U25" };
    let psaProduct = product("AUDIT", 25);
    const ictx = (key: string) => ({
      link: null,
      uncertain: false,
      idempotencyKey: key,
      record: (e: string) => (e === "customer" ? customer : e === "product" ? psaProduct : null),
    });
    await other.push("invoice", data(invoiceEvent(4101, 41, undefined, { lines: [line] })), ictx("h-i4101"));
    expect(sb.sandbox.state.booked.get(4101)).toMatchObject({ invoice: { vatAmount: 250 } });
    // The PSA makes the product VAT-exempt; the first worker moves it into group 2.
    psaProduct = product("AUDIT", 0);
    await byRate.push("product", psaProduct, pctx("AUDIT", true));
    expect(groupOf("AUDIT")).toBe(2);
    // The second worker checks a line still stating U25: it would be booked without VAT, so it needs action.
    const stale: any = await other
      .push("invoice", data(invoiceEvent(4102, 41, undefined, { lines: [line] })), ictx("h-i4102"))
      .catch((x) => x);
    expect(stale).toMatchObject({ kind: "permanent", code: "economic.line_vat_code" });
    expect(sb.sandbox.state.booked.has(4102)).toBe(false);
  });
});
