// The agent end to end against the Uniconta sandbox, over loopback, with a real SQLite file: every flow of
// issue 12 through intake, the outbox, the dispatcher, the pulls, the inbox, the PSA webhook, /metrics and
// the status page.
import { afterEach, describe, expect, test } from "bun:test";
import { startAgent, type RunningAgent } from "../agent/agent.ts";
import { validateConfig } from "../agent/config.ts";
import { BROKEN_SAMPLE, demoConfig, sampleRound } from "../agent/demo.ts";
import { silentLogger } from "../agent/log.ts";
import { dayIn } from "../connectors/uniconta/budget.ts";
import { demoTarget } from "../connectors/uniconta/index.ts";
import { startUnicontaSandbox } from "../connectors/uniconta/sandbox/index.ts";
import { tempDir, waitFor } from "./helpers.ts";
import { day, PSA_SECRET, startPsaReceiver } from "./pull-harness.ts";
import { BASE_CONFIG, COMPANY, customerData, invoiceData, projectData } from "./uniconta-fixtures.ts";

const TOKEN = "test-token-0123456789";

interface Stack {
  agent: RunningAgent;
  sandboxUrl: string;
  psa: ReturnType<typeof startPsaReceiver>;
  send(events: object[]): Promise<void>;
  deliveries(status?: string): Promise<any[]>;
  api(path: string, init?: RequestInit): Promise<{ status: number; body: any }>;
  control(path: string, body?: unknown): Promise<any>;
  rows(type: string): Promise<any[]>;
  runNow(stream: string): Promise<any>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

async function start(
  target: Record<string, unknown> = {},
  sandboxOptions: Parameters<typeof startUnicontaSandbox>[0] = {},
): Promise<Stack> {
  const srv = startUnicontaSandbox(sandboxOptions);
  const psa = startPsaReceiver();
  const { config, targets } = validateConfig(
    {
      agent: { data_dir: tempDir("kontobro-uc-e2e-") },
      http: { port: 0, api_token: TOKEN },
      dispatch: { retry_base_ms: 20, retry_max_ms: 200, idle_poll_ms: 50 },
      psa: { webhook_url: psa.url, webhook_secret: PSA_SECRET, retry_base_ms: 20, retry_max_ms: 200, poll_ms: 50 },
      targets: [{ name: "uc", kind: "uniconta", api_url: srv.url, gateway_url: `${srv.url}/gateway`, ...BASE_CONFIG, ...target }],
    },
    {},
  );
  const control = async (path: string, body?: unknown) => {
    const res = await fetch(`${srv.url}/__sandbox/${path}`, {
      method: body === undefined ? "GET" : "POST",
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: { "content-type": "application/json" },
    });
    const out = (await res.json()) as any;
    if (res.status >= 300) throw new Error(`sandbox ${path}: ${res.status} ${JSON.stringify(out)}`);
    return out;
  };
  const s: Stack = {
    agent: await startAgent(config, targets, silentLogger),
    sandboxUrl: srv.url,
    psa,
    control,
    async api(path, init = {}) {
      const res = await fetch(`${s.agent.url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", ...(init.headers as Record<string, string>) },
      });
      const text = await res.text();
      let body: any = text;
      try {
        body = JSON.parse(text);
      } catch {}
      return { status: res.status, body };
    },
    async send(events) {
      const res = await s.api("/api/v1/events", { method: "POST", body: JSON.stringify(events) });
      if (res.status !== 202) throw new Error(`events refused: ${JSON.stringify(res.body)}`);
    },
    deliveries: async (status) => (await s.api(`/api/v1/deliveries?limit=1000${status ? `&status=${status}` : ""}`)).body.deliveries,
    rows: async (type) => (await control("state")).companies[COMPANY].rows[type] ?? [],
    runNow: async (stream) => (await s.api(`/api/v1/pulls/uc/${stream}`, { method: "POST" })).body,
    async restart() {
      await s.agent.stop();
      s.agent = await startAgent(config, targets, silentLogger);
    },
    async stop() {
      await s.agent.stop();
      psa.stop();
      await srv.stop();
    },
  };
  return (stack = s);
}

let n = 0;
const ev = (type: string, data: object) => ({ id: `${type}-${++n}-${Math.random()}`, type, data });
const customerEv = (over: Record<string, unknown> = {}) => ev("customer.upserted", customerData(over));
const projectEv = (over: Record<string, unknown> = {}) => ev("project.upserted", projectData(over));
const invoiceEv = (over: Record<string, unknown> = {}) => ev("invoice.finalized", invoiceData(over));
const creditEv = (over: Record<string, unknown> = {}) =>
  ev("invoice.credited", { ...invoiceData({ number: "20002", psaId: "psa-cn-20002" }), creditedInvoiceNumber: "20001", ...over });
const count = async (status: string) => (await stack!.deliveries(status)).length;

describe("Uniconta through the agent", () => {
  test("customer → project → invoice → credit note exactly once despite dropped answers on order creation and on posting; the budget in /metrics and on the status page", async () => {
    const s = await start();
    await s.control("faults", {
      rules: [
        { method: "POST", path: "Insert/DebtorOrderClient$", fault: "drop_after_commit", count: 1 },
        { method: "POST", path: "/Invoice/DebtorOrders/", fault: "drop_after_commit", count: 1 },
      ],
    });
    // Out of order on purpose: the outbox sends the customer first and the credit note after its invoice.
    await s.send([
      creditEv({ lines: [{ text: "Rabat", quantity: 2, unitPrice: 125000, kind: "hours" }] }),
      invoiceEv(),
      projectEv(),
      customerEv(),
    ]);
    await waitFor("four deliveries done", async () => (await count("done")) === 4);
    const state = await s.control("state");
    expect(state.requests.filter((r: any) => r.fault === "drop_after_commit")).toHaveLength(2); // the answers really were lost
    const invoices = state.companies[COMPANY].rows.DebtorInvoiceClient;
    expect(invoices.map((i: any) => [i.InvoiceNumber, i.OurRef, i.TotalAmount])).toEqual([
      [20001, "kontobro:psa-inv-20001", 61073.75],
      [20002, "kontobro:psa-cn-20002", -3125],
    ]);
    expect(state.companies[COMPANY].rows.DebtorOrderClient).toEqual([]);
    expect(await s.control("balances")).toEqual({ "10042": 57948.75 }); // the credit note lowered what the customer owes
    const done = await s.deliveries("done");
    expect(
      done
        .filter((d: any) => d.entity === "invoice")
        .map((d: any) => d.remoteId)
        .sort(),
    ).toEqual(["20001", "20002"]);

    // The call budget: counted as the sandbox counts it, in /metrics and on the status page, kept across a restart.
    const used = state.quota.users.kontobro.used;
    const metrics = await (await fetch(`${s.agent.url}/metrics`)).text();
    expect(metrics).toContain(`kontobro_target_budget_used{target="uc",budget="calls_per_day"} ${used}`);
    expect(metrics).toContain('kontobro_target_budget_limit{target="uc",budget="calls_per_day"} 5000');
    const page = await (await fetch(`${s.agent.url}/`)).text();
    expect(page).toContain(`Uniconta server calls today: <strong>${used} of 5000</strong>`);
    await s.restart();
    expect(await (await fetch(`${s.agent.url}/metrics`)).text()).toContain(
      `kontobro_target_budget_used{target="uc",budget="calls_per_day"} ${used}`,
    );
  });

  test("an unknown customer group: needs action listing Uniconta's groups; fixed in the PSA, everything goes by itself", async () => {
    const s = await start();
    await s.send([customerEv({ group: "STORKUNDE" }), projectEv(), invoiceEv()]);
    await waitFor("customer needs action", async () => (await count("needs_action")) === 1);
    const [d] = await s.deliveries("needs_action");
    expect(d).toMatchObject({ entity: "customer", key: "10042", errorCode: "uniconta.customer_group_unknown" });
    expect(d.errorMessage).toContain("ERHVERV, PRIV, UDLAND");
    expect(d.errorHint).toContain("Customer › Maintenance › Customer groups");
    expect(await s.rows("DebtorClient")).toEqual([]);
    await s.send([customerEv({ group: "UDLAND" })]);
    await waitFor("all delivered", async () => (await count("done")) === 3);
    expect((await s.rows("DebtorClient"))[0].Group).toBe("UDLAND");
    expect(await s.rows("DebtorInvoiceClient")).toHaveLength(1);
  });

  test("a number-series mismatch is needs action with the fix; retry accepts Uniconta's number; posted once", async () => {
    const s = await start();
    await s.control("number-series", { next: 20010 });
    await s.send([customerEv(), projectEv(), invoiceEv()]);
    await waitFor("invoice needs action", async () => (await count("needs_action")) === 1);
    const [d] = await s.deliveries("needs_action");
    expect(d.errorCode).toBe("uniconta.invoice_number_mismatch");
    expect(d.errorMessage).toContain("as invoice 20010");
    expect(d.errorHint).toContain("General Ledger › Maintenance › Voucher number series");
    expect((await s.api(`/api/v1/deliveries/${d.id}/retry`, { method: "POST" })).status).toBeLessThan(300);
    await waitFor("invoice done", async () => (await count("done")) === 3);
    const inv = (await s.deliveries("done")).find((x: any) => x.entity === "invoice");
    expect(inv.remoteId).toBe("20010");
    expect(inv.note).toContain("20010");
    expect(await s.rows("DebtorInvoiceClient")).toHaveLength(1);
  });

  test("a number mismatch is accepted only by a person's retry of the delivery told: the PSA sending the invoice again meanwhile still needs action", async () => {
    const s = await start();
    await s.control("number-series", { next: 20010 });
    await s.send([customerEv(), projectEv(), invoiceEv()]);
    await waitFor("invoice needs action", async () => (await count("needs_action")) === 1);
    const [first] = await s.deliveries("needs_action");
    expect(first.errorCode).toBe("uniconta.invoice_number_mismatch");
    // The PSA sends the invoice again (another event id) before anyone has looked: its new delivery replaces the one
    // that needs action, and no person has accepted Uniconta's number for it.
    await s.send([invoiceEv()]);
    const invoiceDone = async () => (await s.deliveries("done")).some((d: any) => d.key === "20001");
    await waitFor(
      "the new version tried",
      async () => (await invoiceDone()) || (await s.deliveries("needs_action")).some((d: any) => d.id !== first.id),
    );
    expect(await invoiceDone()).toBe(false);
    const [second] = await s.deliveries("needs_action");
    expect(second.errorCode).toBe("uniconta.invoice_number_mismatch");
    expect(second.errorMessage).toContain("as invoice 20010");
    // That delivery's retry, a person's, accepts Uniconta's number.
    expect((await s.api(`/api/v1/deliveries/${second.id}/retry`, { method: "POST" })).status).toBeLessThan(300);
    await waitFor("invoice done", invoiceDone);
    const inv = (await s.deliveries("done")).find((x: any) => x.key === "20001");
    expect(inv.remoteId).toBe("20010");
    expect(await s.rows("DebtorInvoiceClient")).toHaveLength(1);
  });

  test("a posting whose total is not the PSA's needs action naming both totals, its credit note waits; retry links it and the credit note follows", async () => {
    const s = await start({}, { pricesInclVatFromDebtor: "always" });
    await s.send([customerEv(), projectEv()]);
    await waitFor("customer and project done", async () => (await count("done")) === 2);
    const [debtor] = await s.rows("DebtorClient");
    const pricesInclVat = (on: boolean) =>
      fetch(`${s.sandboxUrl}/api/Entities/Update/DebtorClient`, {
        method: "PUT",
        headers: {
          authorization: `Basic ${Buffer.from(`00${COMPANY}/kontobro:demo-password`).toString("base64")}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ ...debtor, PricesInclVat: on }),
      });
    await pricesInclVat(true);
    await s.send([invoiceEv(), creditEv({ lines: [{ text: "Rabat", quantity: 2, unitPrice: 125000, kind: "hours" }] })]);
    await waitFor("invoice needs action", async () => (await count("needs_action")) === 1);
    const [d] = await s.deliveries("needs_action");
    expect(d.errorCode).toBe("uniconta.posted_total_differs");
    expect(d.errorMessage).toContain("but the PSA invoiced 48859.00 DKK");
    expect(d.errorMessage).toContain("posted in Uniconta as invoice 20001");
    const page = await (await fetch(`${s.agent.url}/`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    expect(page.includes("the PSA invoiced 48859.00 DKK. It is posted in Uniconta as invoice 20001")).toBe(true);
    expect((await s.deliveries("waiting")).map((x: any) => x.key)).toEqual(["20002"]);
    expect(await s.rows("DebtorInvoiceClient")).toHaveLength(1);

    // The person does what the hint says: the customer's flag off in Uniconta (the wrong invoice credited there), retry.
    await pricesInclVat(false);
    expect((await s.api(`/api/v1/deliveries/${d.id}/retry`, { method: "POST" })).status).toBeLessThan(300);
    await waitFor("invoice and credit note done", async () => (await count("done")) === 4);
    const inv = (await s.deliveries("done")).find((x: any) => x.key === "20001");
    expect(inv.remoteId).toBe("20001");
    expect(inv.note).toContain("not the PSA's 48859.00 DKK");
    expect((await s.rows("DebtorInvoiceClient")).map((r: any) => r.InvoiceNumber)).toEqual([20001, 20002]);
  });

  test("a posting whose total is not the PSA's is linked only by a person's retry of it: the PSA sending the invoice again meanwhile still needs action", async () => {
    const s = await start({}, { pricesInclVatFromDebtor: "always" });
    await s.send([customerEv(), projectEv()]);
    await waitFor("customer and project done", async () => (await count("done")) === 2);
    const [debtor] = await s.rows("DebtorClient");
    await fetch(`${s.sandboxUrl}/api/Entities/Update/DebtorClient`, {
      method: "PUT",
      headers: {
        authorization: `Basic ${Buffer.from(`00${COMPANY}/kontobro:demo-password`).toString("base64")}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ ...debtor, PricesInclVat: true }),
    });
    await s.send([invoiceEv()]);
    await waitFor("invoice needs action", async () => (await count("needs_action")) === 1);
    const [first] = await s.deliveries("needs_action");
    expect(first.errorCode).toBe("uniconta.posted_total_differs");
    // The PSA sends the invoice again (a resend of its register, another event id) before anyone has looked: its new
    // delivery replaces the one that needs action, and no person has accepted Uniconta's total for it.
    await s.send([invoiceEv()]);
    const invoiceDone = async () => (await s.deliveries("done")).some((d: any) => d.key === "20001");
    await waitFor(
      "the new version tried",
      async () => (await invoiceDone()) || (await s.deliveries("needs_action")).some((d: any) => d.id !== first.id),
    );
    expect(await invoiceDone()).toBe(false);
    const [second] = await s.deliveries("needs_action");
    expect(second.errorCode).toBe("uniconta.invoice_changed_after_posting");
    // That delivery's retry, a person's, links it.
    expect((await s.api(`/api/v1/deliveries/${second.id}/retry`, { method: "POST" })).status).toBeLessThan(300);
    await waitFor("invoice done", invoiceDone);
    expect(await s.rows("DebtorInvoiceClient")).toHaveLength(1);
  });

  test("the quota running low and out: pulls are postponed, invoices still go, nothing ever passes the quota", async () => {
    const s = await start(
      { calls_per_day: 80, reserve_for_pushes: 40, expenses: { start_date: day(-5) } },
      { quota: { limit: 80, mode: "refuse" } },
    );
    await s.send([customerEv(), projectEv(), invoiceEv()]);
    await waitFor("first invoice done", async () => (await count("done")) === 3);
    // The day so far: 60 calls used (by this agent, say) — in the agent's counter and at Uniconta.
    const today = dayIn("Europe/Copenhagen", Date.now());
    s.agent.db.$client.run(`UPDATE settings SET value = ?1 WHERE name = 'counter:uc:calls'`, [`${today}:60`]);
    await s.control("quota", { used: 60 });
    const pulled = await s.runNow("expenses");
    expect(pulled).toMatchObject({ status: "ok", fetched: 0, imported: 0 });
    expect((await s.api("/api/v1/pulls")).body.jobs.find((j: any) => j.stream === "expenses")).toBeTruthy();
    expect(s.agent.db.$client.query(`SELECT count(*) AS n FROM cursors WHERE target = 'uc'`).get()).toEqual({ n: 0 }); // nothing moved
    expect(await (await fetch(`${s.agent.url}/`)).text()).toContain("Pulls are postponed");

    // 20 calls left: four invoices (6 calls each through the gateway) do not fit.
    await s.send([20002, 20003, 20004, 20005].map((k) => invoiceEv({ number: String(k), psaId: `psa-inv-${k}` })));
    await waitFor("the budget spent, the rest waiting for midnight", async () =>
      (await s.deliveries()).some((d: any) => d.errorCode === "uniconta.call_budget_spent"),
    );
    await waitFor("in-flight pushes settled", async () => (await count("in_flight")) === 0);
    const state = await s.control("state");
    expect(state.quota.users.kontobro.used).toBeLessThanOrEqual(80);
    expect(state.quota.users.kontobro.over).toBe(0);
    expect(state.requests.some((r: any) => r.status === 400 && /NoSubscription/.test(JSON.stringify(r)))).toBe(false);
    expect((await s.deliveries("needs_action")).map((d: any) => [d.key, d.errorCode, d.errorMessage])).toEqual([]);
    const waiting = (await s.deliveries()).filter((d: any) => d.errorCode === "uniconta.call_budget_spent");
    expect(waiting.every((d: any) => d.status === "pending" && d.nextAttemptAt > Date.now() + 30_000)).toBe(true);
    // Every invoice that reached Uniconta is there once.
    const numbers = (await s.rows("DebtorInvoiceClient")).map((i: any) => i.InvoiceNumber);
    expect(new Set(numbers).size).toBe(numbers.length);
    const metrics = await (await fetch(`${s.agent.url}/metrics`)).text();
    const usedMetric = Number(/kontobro_target_budget_used\{target="uc",budget="calls_per_day"\} (\d+)/.exec(metrics)![1]);
    expect(usedMetric).toBeLessThanOrEqual(80);
    expect(usedMetric).toBe(state.quota.users.kontobro.used);
  });
});

describe("order only", () => {
  test("kontobro creates the order, a person invoices it, the PSA learns Uniconta's number and later the payment", async () => {
    const s = await start({ posting: "order_only" });
    await s.send([customerEv(), projectEv(), invoiceEv({ date: day(0), dueDate: day(20) })]);
    await waitFor("order delivered", async () => (await count("done")) === 3);
    const inv = (await s.deliveries("done")).find((d: any) => d.entity === "invoice");
    expect(inv.remoteId).toMatch(/^order:\d+$/);
    expect(inv.note).toContain("invoice it there");
    expect(await s.runNow("invoices")).toMatchObject({ status: "ok", imported: 0 });
    await s.control("invoice-order", { orderNumber: Number(inv.remoteId.slice(6)) });
    expect(await s.runNow("invoices")).toMatchObject({ status: "ok", imported: 1 });
    expect(await s.runNow("invoices")).toMatchObject({ status: "ok", imported: 0 });
    await s.control("payments", { invoice: 20001 });
    expect(await s.runNow("payments")).toMatchObject({ status: "ok", imported: 1 });
    await waitFor("two items at the PSA", () => s.psa.accepted().length === 2);
    expect(s.psa.accepted().map((i) => [i.type, i.data.previousStatus, i.data.status, i.data.unicontaInvoiceNumber])).toEqual([
      ["invoice.posted", "ordered", "unpaid", 20001],
      ["invoice.paid", "unpaid", "paid", 20001],
    ]);
  });
});

describe("pulls back to the PSA", () => {
  test("expenses: configured number series and accounts, on projects the PSA sent, never twice, late postings found", async () => {
    const s = await start({
      expenses: { number_series: "KOB", accounts: "2750, 2810", start_date: day(-10), activity: "Udlæg", billable: false, page_size: 2 },
    });
    await s.send([customerEv(), projectEv({ number: "P1" })]);
    await waitFor("master data", async () => (await count("done")) === 2);
    await s.control("rows", { type: "ProjectClient", row: { Number: "P9", Name: "Only in Uniconta", Account: "10042" } });
    const cost = (over: Record<string, unknown>) => ({
      project: "P1",
      date: day(-1),
      category: "REJSE",
      account: "2750",
      creditorAccount: "30011",
      text: "Hotel Bergen",
      amount: 1984,
      ...over,
    });
    await s.control("project-costs", {
      costs: [
        cost({}),
        cost({ account: "2810", text: "Underleverandør", amount: 5000, qty: 2, creditorAccount: "30012", category: "MATERIALER" }),
        cost({ account: "2800", text: "Wrong account", amount: 100 }),
        cost({ numberSerie: "KASSE", text: "Wrong series", amount: 100 }),
        cost({ project: "P9", text: "Unknown project", amount: 700 }),
        cost({ date: day(-30), text: "Before the start date", amount: 100 }),
        cost({ timeJournal: true, text: "Hours, not an expense", amount: 800 }),
      ],
    });
    expect(await s.runNow("expenses")).toMatchObject({ status: "ok", imported: 2, ignored: 1 });
    await waitFor("two expenses at the PSA", () => s.psa.accepted().length === 2);
    const hotel = s.psa.accepted().find((i) => i.data.title === "Hotel Bergen");
    expect(hotel).toMatchObject({
      type: "expense.posted",
      requires: { entity: "project", key: "P1" },
      data: {
        projectNumber: "P1",
        activity: "Udlæg",
        billable: false,
        date: day(-1),
        quantity: 1,
        amount: 198400,
        currency: "DKK",
        supplier: { number: "30011", name: "Hotel Bergen A/S" },
        category: "REJSE",
        numberSeries: "KOB",
      },
    });
    expect(hotel.data.voucherNumber).toBeGreaterThan(0);
    expect(hotel.data.description).toContain("Hotel Bergen");
    expect(s.psa.accepted().find((i) => i.data.title === "Underleverandør").data).toMatchObject({
      quantity: 2,
      amount: 500000,
      unitCost: 250000,
    });

    // Again: nothing new. A cost posted now with an old date (inside start_date) is still found, once.
    expect(await s.runNow("expenses")).toMatchObject({ status: "ok", imported: 0 });
    await s.control("project-costs", { costs: [cost({ date: day(-9), text: "Late receipt", amount: 300 })] });
    expect(await s.runNow("expenses")).toMatchObject({ status: "ok", imported: 1 });
    expect(await s.runNow("expenses")).toMatchObject({ status: "ok", imported: 0 });
    // The PSA sends project P9: its cost, kept as ignored, goes to the PSA once.
    await s.send([projectEv({ number: "P9" })]);
    await waitFor("P9 delivered", async () => (await count("done")) === 3);
    expect(await s.runNow("expenses")).toMatchObject({ status: "ok", imported: 1, ignored: 0 });
    await waitFor("four expenses at the PSA", () => s.psa.accepted().length === 4);
    const ids = s.psa.accepted().map((i) => i.remoteId);
    expect(new Set(ids).size).toBe(4);
    expect(
      s.psa
        .accepted()
        .map((i) => i.data.title)
        .sort(),
    ).toEqual(["Hotel Bergen", "Late receipt", "Underleverandør", "Unknown project"]);
  });

  test("payments: the status of invoices kontobro posted, from the configured start date, each change once", async () => {
    const s = await start({ payments: { start_date: "2026-01-01" } });
    await s.send([
      customerEv(),
      projectEv(),
      invoiceEv({ dueDate: day(20) }),
      invoiceEv({ number: "20002", psaId: "psa-inv-20002", dueDate: day(20) }),
    ]);
    await waitFor("invoices done", async () => (await count("done")) === 4);
    expect(await s.runNow("payments")).toMatchObject({ status: "ok", fetched: 2, imported: 0 }); // unpaid: the PSA knows
    await s.control("payments", { invoice: 20001, amount: 1000 });
    expect(await s.runNow("payments")).toMatchObject({ imported: 0 }); // partly paid is still unpaid
    await s.control("payments", { invoice: 20001 });
    expect(await s.runNow("payments")).toMatchObject({ imported: 1 });
    expect(await s.runNow("payments")).toMatchObject({ fetched: 2, imported: 0, duplicates: 2 }); // paid: asked a while longer, unchanged
    await waitFor("paid at the PSA", () => s.psa.accepted().length === 1);
    expect(s.psa.accepted()[0]).toMatchObject({
      type: "invoice.paid",
      data: { invoiceNumber: "20001", unicontaInvoiceNumber: 20001, status: "paid", remainder: 0, currency: "DKK", numberMatches: true },
    });
  });
});

describe("the demo", () => {
  test("demoTarget() with startUnicontaSandbox(): the demo's sample rounds go through, the broken sample needs action", async () => {
    const srv = startUnicontaSandbox({ port: 0 });
    const { config, targets } = demoConfig({
      dataDir: tempDir("kontobro-uc-demo-"),
      port: 0,
      target: { ...demoTarget(srv.url), requests_per_second: 0 },
    });
    config.dispatch.retry_base_ms = 20;
    config.dispatch.retry_max_ms = 200;
    config.dispatch.idle_poll_ms = 50;
    const agent = await startAgent(config, targets, silentLogger);
    try {
      const post = (events: unknown[]) =>
        fetch(`${agent.url}/api/v1/events`, {
          method: "POST",
          body: JSON.stringify(events),
          headers: { authorization: `Bearer ${agent.apiToken}`, "content-type": "application/json" },
        });
      expect((await post([BROKEN_SAMPLE, ...sampleRound(1), ...sampleRound(2)])).status).toBe(202);
      const counts = () => agent.db.$client.query("SELECT status, count(*) AS n FROM deliveries GROUP BY status ORDER BY status").all();
      await waitFor(
        "demo delivered",
        () =>
          JSON.stringify(counts()) ===
          JSON.stringify([
            { status: "done", n: 6 },
            { status: "needs_action", n: 1 },
          ]),
      );
      const state = (await (await fetch(`${srv.url}/__sandbox/state`)).json()) as any;
      expect(state.companies[COMPANY].rows.DebtorInvoiceClient.map((i: any) => i.InvoiceNumber)).toEqual([20001, 20002]);
      expect(state.companies[COMPANY].rows.UserDocsClient).toHaveLength(2); // the sample PDFs
    } finally {
      await agent.stop();
      await srv.stop();
    }
  });
});
