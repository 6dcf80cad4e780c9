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
