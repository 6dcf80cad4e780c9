// `kontobro check` for Uniconta against the sandbox: login and the company list (a flaky, empty list is
// retried before it is reported), the chosen company, and the set-up, each in plain words with a fix.
import { afterEach, describe, expect, test } from "bun:test";
import { memoryCounters, startEnv, type Env } from "./uniconta-fixtures.ts";

let env: Env;
afterEach(async () => {
  await env?.stop();
});

const byName = (items: { name: string }[], name: string) => items.find((i) => i.name === name) as any;

describe("kontobro check", () => {
  test("everything in place: every item ok, the companies listed, the groups the PSA's tags must use", async () => {
    env = startEnv({ config: { expenses: { number_series: "KOB", accounts: "2750" }, project_department: "project" } });
    const items = await env.connector.check();
    expect(items.filter((i) => !i.ok)).toEqual([]);
    expect(byName(items, "login").message).toContain("12114 Kontobro Demo ApS, 12115 Kontobro Test ApS");
    expect(byName(items, "company").message).toContain('Company 12114 "Kontobro Demo ApS"');
    expect(byName(items, "customer groups").message).toContain("ERHVERV, PRIV, UDLAND");
    expect(byName(items, "credit note payment terms").message).toContain("0 days");
    expect(byName(items, "invoice numbers").message).toContain("next number 20001");
    expect(byName(items, "gateway").ok).toBe(true);
    expect(byName(items, "department dimension").message).toContain("dimension 1");
    expect(byName(items, "call budget").message).toMatch(/^This check made \d+ of the server user's 5000 calls a day/);
    const counted = await env.connectorWith({}, memoryCounters()).check();
    expect(byName(counted, "call budget").message).toMatch(/^\d+ of 5000 Uniconta calls used today/);
  });

  test("a flaky company list is retried before it is reported; one that stays empty is a failure with the fix", async () => {
    env = startEnv();
    await env.faults({ fault: "empty_companies", path: "CompanyClient", count: 2 });
    const items = await env.connector.check();
    expect(byName(items, "login").ok).toBe(true);
    expect((await env.requests()).filter((r) => r.path.includes("CompanyClient"))).toHaveLength(3);

    await env.faults({ fault: "empty_companies", path: "CompanyClient", count: 5 });
    const failed = await env.connector.check();
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({
      ok: false,
      name: "login",
      message: expect.stringContaining("no companies 5 times"),
      hint: expect.stringContaining("again"),
    });
  });

  test("wrong password, a company the user cannot reach, set-up codes that do not exist, credit-note terms that are not 0 days", async () => {
    env = startEnv();
    const wrong = await env.connectorWith({ password: "nope" }).check();
    expect(wrong[0]).toMatchObject({ ok: false, name: "login" });
    expect(wrong[0]!.hint).toContain("username and password");

    const other = await env.connectorWith({ company_id: 99999 }).check();
    expect(byName(other, "company")).toMatchObject({ ok: false, hint: expect.stringContaining("12114, 12115") });

    const bad = await env
      .connectorWith({
        accounts: { hours: "3000" },
        vat_codes: { hours: "S25" },
        credit_note_payment_terms: "NK14",
        default_customer_group: "STOR",
        posting: "gateway",
        gateway_url: "http://127.0.0.1:1/gateway",
      })
      .check();
    expect(byName(bad, "hours account")).toMatchObject({
      ok: false,
      message: expect.stringContaining("3000 (accounts.hours) does not exist"),
    });
    expect(byName(bad, "hours VAT code").message).toContain("U25, U0, I25");
    expect(byName(bad, "default customer group").ok).toBe(false);
    expect(byName(bad, "credit note payment terms")).toMatchObject({ ok: false, message: expect.stringContaining("14 days") });
    expect(byName(bad, "gateway")).toMatchObject({ ok: false, hint: expect.stringContaining("gateway_url") });

    const noDims = await env.connectorWith({ company_id: 12115, project_department: "project", department_dimension: 2 }).check();
    expect(byName(noDims, "department dimension")).toMatchObject({ ok: false, message: expect.stringContaining("uses 1 dimension") });
  });
});
