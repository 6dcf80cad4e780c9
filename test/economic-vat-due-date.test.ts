// Issue 10, item 13 (e-conomic): the VAT zone follows the customer's country (domestic, EU, abroad) from
// the agreement's own /vat-zones, with config overrides; the booked invoice keeps the PSA's due date
// when the agreement has payment terms of type "dueDate"; `kontobro check` shows both.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import type { StartedEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { removeSeed } from "../connectors/economic/sandbox/state.ts";
import { canonical, connectorFor, pushCtx } from "./economic-fixtures.ts";
import { startEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { customerEvent, invoiceEvent } from "./helpers.ts";

let sb: StartedEconomicSandbox;
beforeAll(async () => {
  sb = await startEconomicSandbox({ port: 0 });
});
afterAll(() => sb.stop());
beforeEach(() => sb.sandbox.reset());

// Business customers with a VAT number: the EU zone (reverse charge) is only for them (economic-vat-eu-consumer).
const customerIn = (n: number, country?: string) =>
  canonical(
    customerEvent(n, {
      vatNumber: `${country ?? "DK"}${10000000 + n}`,
      addresses: [{ street: "Street 1", zip: "1000", city: "City", ...(country ? { country } : {}) }],
    }),
  );

async function zonesOf(conn: ReturnType<typeof connectorFor>, countries: (string | undefined)[]): Promise<number[]> {
  const out: number[] = [];
  for (const [i, country] of countries.entries()) {
    await conn.push("customer", customerIn(100 + i, country), pushCtx());
    out.push(sb.sandbox.state.customers.get(100 + i)!.vatZone.vatZoneNumber);
  }
  return out;
}

describe("economic VAT zones", () => {
  test("a Danish agreement: DK and no country domestic (1), DE and SE EU (2), NO and US abroad (3)", async () => {
    expect(await zonesOf(connectorFor(sb), ["DK", undefined, "DE", "SE", "NO", "US"])).toEqual([1, 1, 2, 2, 3, 3]);
  });

  test("the invoice recipient gets the customer's zone: a German customer is invoiced without Danish VAT", async () => {
    const conn = connectorFor(sb);
    const de = customerIn(200, "DE");
    const dk = customerIn(201, "DK");
    await conn.push("customer", de, pushCtx());
    await conn.push("customer", dk, pushCtx());
    await conn.push("invoice", canonical(invoiceEvent(91001, 200)), pushCtx({ customer: de }));
    await conn.push("invoice", canonical(invoiceEvent(91002, 201)), pushCtx({ customer: dk }));
    const [eu, home] = [sb.sandbox.state.booked.get(91001)!.invoice, sb.sandbox.state.booked.get(91002)!.invoice];
    expect(eu.recipient.vatZone.vatZoneNumber).toBe(2);
    expect(eu.vatAmount).toBe(0);
    expect(home.recipient.vatZone.vatZoneNumber).toBe(1);
    expect(home.vatAmount).toBeGreaterThan(0);
  });

  test("the domestic country comes from the agreement (Sweden), or from home_country", async () => {
    sb.sandbox.state.self.agreementType = { agreementTypeNumber: 2, name: "Sweden" };
    expect(await zonesOf(connectorFor(sb), ["SE", "DK", "NO"])).toEqual([1, 2, 3]);
    expect(await zonesOf(connectorFor(sb, { home_country: "NO" }), ["NO", "SE", "DE"])).toEqual([1, 3, 3]); // Norway is not in the EU
  });

  test("vat_zones in the config wins, per category and per country", async () => {
    const conn = connectorFor(sb, { vat_zones: { eu: 3, GB: 2, DK: 4 } });
    expect(await zonesOf(conn, ["DE", "GB", "DK", "US", undefined])).toEqual([3, 2, 4, 3, 1]);
  });

  test("local zone names are found (Indland / EU / Udland)", async () => {
    const zones = sb.sandbox.state.vatZones;
    zones.clear();
    for (const [n, name] of [
      [11, "Indland"],
      [12, "EU"],
      [13, "Udland"],
      [14, "Indland momsfri"],
    ] as const)
      zones.set(n, { vatZoneNumber: n, name, enabledForCustomer: true, enabledForSupplier: true });
    expect(await zonesOf(connectorFor(sb), ["DK", "FR", "CH"])).toEqual([11, 12, 13]);
  });

  test("a zone that cannot be told needs action with the agreement's zones in the message; check says so too", async () => {
    sb.sandbox.state.vatZones.delete(2); // no EU zone
    const conn = connectorFor(sb);
    const e = await conn.push("customer", customerIn(300, "DE"), pushCtx()).catch((err) => err);
    expect(e).toMatchObject({ kind: "permanent", code: "economic.vat_zone_unknown" });
    expect(e.message).toContain("EU customers");
    expect(e.message).toContain("1 Domestic");
    expect(e.hint).toContain("vat_zones = { eu = N }");
    expect(await zonesOf(conn, ["DK"])).toEqual([1]); // domestic customers still go
    const failed = (await conn.check()).filter((i) => !i.ok);
    expect(failed.map((i) => i.name)).toEqual(["VAT zone for EU customers"]);
    expect(failed[0]!.hint).toContain("vat_zones");
  });

  test("check lists the mapping and refuses a configured zone that does not exist or is not for customers", async () => {
    const items = await connectorFor(sb).check();
    expect(items.find((i) => i.name === "domestic country")).toMatchObject({
      ok: true,
      message: expect.stringContaining("DK (from the agreement)"),
    });
    expect(items.find((i) => i.name === "VAT zone for EU customers")).toMatchObject({
      ok: true,
      message: "VAT zone 2 EU (found by its name).",
    });
    const bad = await connectorFor(sb, { vat_zones: { abroad: 9, DE: 4 } }).check();
    sb.sandbox.state.vatZones.get(4)!.enabledForCustomer = false;
    const bad2 = await connectorFor(sb, { vat_zones: { DE: 4 } }).check();
    expect(bad.find((i) => i.name.includes("abroad"))).toMatchObject({
      ok: false,
      message: expect.stringContaining("VAT zone 9 (set in kontobro.toml) does not exist"),
    });
    expect(bad2.find((i) => i.name === "VAT zone for customers in DE")).toMatchObject({
      ok: false,
      message: expect.stringContaining("cannot be used for customers"),
    });
  });
});

describe("economic due date", () => {
  test("the booked invoice carries the PSA's due date when the agreement has due-date payment terms", async () => {
    const conn = connectorFor(sb);
    const c = customerIn(400, "DK");
    await conn.push("customer", c, pushCtx());
    // Net 14 days from 2026-11-20 would be 2026-12-04; the PSA says 2026-12-31.
    const res = await conn.push(
      "invoice",
      canonical(invoiceEvent(92001, 400, undefined, { dueDate: "2026-12-31" })),
      pushCtx({ customer: c }),
    );
    const booked = sb.sandbox.state.booked.get(92001)!.invoice;
    expect(booked.dueDate).toBe("2026-12-31");
    expect(booked.paymentTerms.paymentTermsType).toBe("dueDate");
    expect(res.note).toBeUndefined();
    expect((await conn.check()).find((i) => i.name === "due date")).toMatchObject({
      ok: true,
      message: expect.stringContaining("keep the PSA's due date"),
    });
  });

  test("without such terms the invoice books with e-conomic's due date, and the push and check say so plainly", async () => {
    removeSeed(sb.sandbox.state, ["dueDateTerms"]);
    const conn = connectorFor(sb);
    const c = customerIn(401, "DK");
    await conn.push("customer", c, pushCtx());
    const res = await conn.push(
      "invoice",
      canonical(invoiceEvent(92002, 401, undefined, { dueDate: "2026-12-31" })),
      pushCtx({ customer: c }),
    );
    expect(sb.sandbox.state.booked.get(92002)!.invoice.dueDate).toBe("2026-12-04");
    expect(res.note).toContain("not the PSA's 2026-12-31");
    const item = (await conn.check()).find((i) => i.name === "due date")!;
    expect(item.ok).toBe(false);
    expect(item.message).toContain("cannot keep the PSA's due date");
    expect(item.hint).toContain("Due date");
  });

  test("check refuses due_date_payment_terms that are not of type due date", async () => {
    const item = (await connectorFor(sb, { due_date_payment_terms: 2 }).check()).find((i) => i.name === "due date")!;
    expect(item).toMatchObject({ ok: false, message: expect.stringContaining('of type net, not "due date"') });
  });
});
