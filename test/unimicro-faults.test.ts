// Uni Micro connector under faults: pre-flight rules, failure classification, uncertain outcomes and
// token refresh, all against the sandbox over real HTTP.
import { afterEach, describe, expect, test } from "bun:test";
import { TargetError } from "../connectors/http.ts";
import { ctx, customer, invoice, project, seedMasterData, startEnv, thrown, type Env } from "./unimicro-fixtures.ts";

let env: Env;
afterEach(() => env?.stop());

describe("DnB Regnskap number rules", () => {
  test("fail before any call: the sandbox sees no request", async () => {
    env = startEnv();
    const c = env.connector;
    const bad = customer({ number: "42" });
    expect(c.validate("customer", bad).map((p) => p.code)).toEqual(["unimicro.customer_number_out_of_range"]);
    expect(c.validate("project", project({ number: "P-17" })).map((p) => p.code)).toEqual(["unimicro.project_number_not_numeric"]);
    const e = await thrown(c.push("customer", bad, ctx()));
    expect(e).toBeInstanceOf(TargetError);
    expect(e).toMatchObject({ kind: "permanent", code: "unimicro.customer_number_out_of_range", field: "number" });
    expect(e.hint).toContain("100000");
    expect(await thrown(c.push("project", project({ number: "P-17" }), ctx()))).toMatchObject({
      kind: "permanent",
      code: "unimicro.project_number_not_numeric",
    });
    const state = await env.state();
    expect(state.requests).toEqual([]);
    expect(state.tokensIssued).toBe(0);
  });

  test("are enforced by the DnB profile server-side too, in the platform's error envelope", async () => {
    env = startEnv({ sandbox: { profile: "dnb-regnskap" }, config: { customer_number_range: false } });
    const e = await thrown(env.connector.push("customer", customer({ number: "42" }), ctx()));
    expect(e).toMatchObject({ kind: "permanent", code: "unimicro.validation", status: 400, field: "CustomerNumber" });
    expect(e.message).toContain("between 100000 and 199999");
    expect((await env.company()).customers).toHaveLength(0);
  });
});

describe("failure classification", () => {
  test("503 on a lookup is retryable", async () => {
    env = startEnv();
    await env.faults({ method: "GET", path: "^/api/biz/customers$", fault: "503", count: 1 });
    const e = await thrown(env.connector.push("customer", customer(), ctx()));
    expect(e).toMatchObject({ kind: "retryable", status: 503 });
    await env.connector.push("customer", customer(), ctx()); // the rule is used up
    expect((await env.company()).customers).toHaveLength(1);
  });

  test("429 is retryable and carries Retry-After", async () => {
    env = startEnv();
    await env.faults({ path: "^/api/biz/customers", fault: "429", count: 1, retryAfterSeconds: 7 });
    const e = await thrown(env.connector.push("customer", customer(), ctx()));
    expect(e).toMatchObject({ kind: "retryable", status: 429, retryAfterMs: 7000 });
  });

  test("503 on a create is uncertain (the write may have happened)", async () => {
    env = startEnv();
    await env.faults({ method: "POST", path: "^/api/biz/customers$", fault: "503", count: 1 });
    expect(await thrown(env.connector.push("customer", customer(), ctx()))).toMatchObject({ kind: "uncertain", status: 503 });
  });
});

describe("uncertain outcomes never duplicate", () => {
  test("invoice create dropped after commit → lookup finds the draft, books it: exactly one invoice", async () => {
    env = startEnv();
    await seedMasterData(env);
    await env.faults({ method: "POST", path: "^/api/biz/invoices$", fault: "drop_after_commit", count: 1 });
    const e = await thrown(env.connector.push("invoice", invoice(), ctx()));
    expect(e).toMatchObject({ kind: "uncertain" });
    expect((await env.company()).invoices.map((i: any) => i.StatusCode)).toEqual([42001]);
    expect(await env.connector.find("invoice", invoice())).toBeNull(); // a draft is not a booked invoice

    const r = await env.connector.push("invoice", invoice(), ctx({ uncertain: true }));
    const co = await env.company();
    expect(co.invoices).toHaveLength(1);
    expect(co.invoices[0]).toMatchObject({ ID: Number(r.remoteId), StatusCode: 42002, InvoiceNumber: "10117", TaxExclusiveAmount: 48859 });
    expect(co.invoices[0].Items).toHaveLength(2);
    expect(co.journalentries).toHaveLength(1);
  });

  test("invoice transition dropped after commit → found booked, not booked again", async () => {
    env = startEnv();
    await seedMasterData(env);
    await env.faults({ method: "POST", path: "action=invoice", fault: "drop_after_commit", count: 1 });
    expect(await thrown(env.connector.push("invoice", invoice(), ctx()))).toMatchObject({ kind: "uncertain" });
    const link = await env.connector.find("invoice", invoice());
    expect(link).not.toBeNull();
    const r = await env.connector.push("invoice", invoice(), ctx({ uncertain: true }));
    expect(r.remoteId).toBe(link!.remoteId);
    const co = await env.company();
    expect(co.invoices).toHaveLength(1);
    expect(co.journalentries).toHaveLength(1);
  });

  test("credit draft dropped after commit → the orphan draft is adopted: exactly one credit note", async () => {
    env = startEnv();
    await seedMasterData(env);
    await env.connector.push("invoice", invoice(), ctx());
    const credit = invoice({
      kind: "credit_note",
      number: "10118",
      psaId: "psa-inv-10118",
      creditedInvoiceNumber: "10117",
      lines: [{ text: "Kreditert reise", quantity: 1, unitPrice: 198400, kind: "expenses" }],
    });
    await env.faults({ method: "PUT", path: "create-credit-draft-invoice", fault: "drop_after_commit", count: 1 });
    expect(await thrown(env.connector.push("invoice", credit, ctx()))).toMatchObject({ kind: "uncertain" });
    expect((await env.company()).invoices.filter((i: any) => i.InvoiceType === 1).map((i: any) => i.StatusCode)).toEqual([42001]);
    await env.connector.push("invoice", credit, ctx({ uncertain: true }));
    await env.connector.push("invoice", credit, ctx({ uncertain: true })); // and once more: still one
    const co = await env.company();
    const credits = co.invoices.filter((i: any) => i.InvoiceType === 1);
    expect(credits).toHaveLength(1);
    expect(credits[0]).toMatchObject({ StatusCode: 42002, InvoiceNumber: "10118", TaxExclusiveAmount: -1984 });
    expect(co.journalentries).toHaveLength(2);
    expect(co.invoices.find((i: any) => i.InvoiceNumber === "10117").StatusCode).toBe(42002); // partly credited
  });

  test("customer create dropped after commit → found by number and updated, not created again", async () => {
    env = startEnv();
    await env.faults({ method: "POST", path: "^/api/biz/customers$", fault: "drop_after_commit", count: 1 });
    expect(await thrown(env.connector.push("customer", customer(), ctx()))).toMatchObject({ kind: "uncertain" });
    await env.connector.push("customer", customer(), ctx({ uncertain: true }));
    const co = await env.company();
    expect(co.customers).toHaveLength(1);
    expect(co.customers[0].Info.Phones).toHaveLength(1);
  });
});

describe("access token refresh", () => {
  test("an expired token is replaced once, even with concurrent pushes", async () => {
    env = startEnv({ sandbox: { tokenLifetimeSeconds: 1 } });
    await env.connector.push("customer", customer(), ctx());
    expect((await env.state()).tokensIssued).toBe(1);
    await Bun.sleep(1100); // let the 1-second token expire
    const numbers = ["100201", "100202", "100203", "100204", "100205"];
    await Promise.all(numbers.map((n) => env.connector.push("customer", customer({ number: n }), ctx())));
    const state = await env.state();
    expect(state.tokensIssued).toBe(2);
    expect(state.companies[Object.keys(state.companies)[0]!].customers).toHaveLength(6);
  });

  test("a token the server stops accepting is refreshed once on the 401, and the calls succeed", async () => {
    env = startEnv();
    await env.connector.push("customer", customer(), ctx());
    await env.control("tokens/expire");
    // One call is held back, so its 401 arrives after the others have already refreshed: it must reuse
    // the new token instead of refreshing again.
    await env.faults({ method: "GET", path: "CustomerNumber eq 100302", fault: "latency", latencyMs: 300, count: 1 });
    const numbers = ["100301", "100302", "100303", "100304"];
    await Promise.all(numbers.map((n) => env.connector.push("customer", customer({ number: n }), ctx())));
    const state = await env.state();
    expect(state.tokensIssued).toBe(2);
    expect(state.requests.filter((r: any) => r.status === 401).length).toBeGreaterThanOrEqual(1);
    expect(state.companies[Object.keys(state.companies)[0]!].customers).toHaveLength(5);
  });
});
