// Issue 10 item 3 at Uni Micro: an invoice or credit note with the PSA's number that kontobro did not create
// is never linked (not adopted, not rewritten, not marked delivered): a permanent error that names it, with a
// hint. Customers and projects stay matched by number on purpose (the PSA is master for them).
import { afterEach, describe, expect, test } from "bun:test";
import { startAgent } from "../agent/agent.ts";
import { demoConfig, startDemoTarget } from "../agent/demo.ts";
import { silentLogger } from "../agent/log.ts";
import { DEMO_COMPANY } from "../connectors/unimicro/sandbox/index.ts";
import { customerEvent, invoiceEvent, tempDir, waitFor } from "./helpers.ts";
import { ctx, customer, invoice, project, seedMasterData, startEnv, thrown, type Env } from "./unimicro-fixtures.ts";

let env: Env;
afterEach(() => env?.stop());

/** An invoice typed in by hand in the app (no kontobro marker, made by a user), optionally booked. */
async function handMade(over: Record<string, unknown>, book: boolean): Promise<any> {
  const co = await env.company();
  return env.control("manual/invoices", {
    book,
    invoice: {
      CustomerID: co.customers[0].ID,
      InvoiceDate: "2024-04-29",
      Items: [{ ProductID: co.products[0].ID, ItemText: "Typed in by hand", NumberOfItems: 2, PriceExVat: 700 }],
      ...over,
    },
  });
}

const expectForeign = (e: any, row: any, status: string) => {
  expect(e).toMatchObject({ kind: "permanent", code: "unimicro.invoice_number_foreign" });
  expect(e.message).toContain(`ID ${row.ID}`);
  expect(e.message).toContain(`${row.InvoiceNumber}`);
  expect(e.message).toContain(status);
  expect(e.hint).toContain("number ranges");
  expect(e.hint).toContain("press retry");
};

describe("an invoice number that is not ours", () => {
  test("a booked foreign invoice with the PSA's number: needs action, never linked; also when reconciling and in find()", async () => {
    env = startEnv();
    await seedMasterData(env);
    const foreign = await handMade({ InvoiceNumber: "10117" }, true);
    expect(foreign.StatusCode).toBe(42002);

    expectForeign(await thrown(env.connector.push("invoice", invoice(), ctx())), foreign, "invoiced");
    expectForeign(await thrown(env.connector.push("invoice", invoice(), ctx({ uncertain: true }))), foreign, "invoiced");
    expectForeign(await thrown(env.connector.find("invoice", invoice())), foreign, "invoiced");
    const co = await env.company();
    expect(co.invoices).toHaveLength(1); // ours was not made, theirs is untouched
    expect(co.invoices[0]).toMatchObject({ ID: foreign.ID, StatusCode: 42002, TaxExclusiveAmount: 1400 });
  });

  test("a foreign draft with the PSA's number is neither rewritten nor booked", async () => {
    env = startEnv();
    await seedMasterData(env);
    const foreign = await handMade({ InvoiceNumber: "10117", InternalNote: "Fakturert manuelt av Kari" }, false);

    expectForeign(await thrown(env.connector.push("invoice", invoice(), ctx({ uncertain: true }))), foreign, "draft");
    const co = await env.company();
    expect(co.invoices).toHaveLength(1);
    expect(co.invoices[0]).toMatchObject({
      ID: foreign.ID,
      StatusCode: 42001,
      InternalNote: "Fakturert manuelt av Kari",
      TaxExclusiveAmount: 1400,
    });
    expect(co.journalentries).toHaveLength(0);
  });

  test("an invoice kontobro made for another PSA invoice is named as such", async () => {
    env = startEnv();
    await seedMasterData(env);
    const other = await env.connector.push("invoice", invoice({ psaId: "psa-inv-OLD" }), ctx());
    const e = await thrown(env.connector.push("invoice", invoice(), ctx()));
    expectForeign(e, { ID: Number(other.remoteId), InvoiceNumber: "10117" }, "invoiced");
    expect(e.message).toContain("PSA invoice psa-inv-OLD");
    // A link to it does not make it ours either.
    expect(await thrown(env.connector.push("invoice", invoice(), ctx({ link: other })))).toMatchObject({
      code: "unimicro.invoice_number_foreign",
    });
  });

  test("our own invoice is still found, also when a user added text to its internal note", async () => {
    env = startEnv();
    await seedMasterData(env);
    const ours = await env.connector.push("invoice", invoice(), ctx());
    // The note edited in the app: the marker stays somewhere in the text.
    const note = "Purret 12.05. kontobro:psa-inv-10117 (ikke endre)";
    await fetch(`${env.url}/__sandbox/manual/invoices/${ours.remoteId}`, {
      method: "PATCH",
      body: JSON.stringify({ set: { InternalNote: note } }),
      headers: { "content-type": "application/json" },
    });
    expect((await env.company()).invoices[0].InternalNote).toBe(note);
    expect(await env.connector.find("invoice", invoice())).toEqual({ remoteId: ours.remoteId });
    expect((await env.connector.push("invoice", invoice(), ctx({ uncertain: true }))).remoteId).toBe(ours.remoteId);
  });
});

describe("a credit draft that is not ours", () => {
  test("a credit draft made by hand on the credited invoice is never adopted, not even when reconciling", async () => {
    env = startEnv();
    await seedMasterData(env);
    const original = await env.connector.push("invoice", invoice(), ctx());
    const hand = await env.control("manual/invoices", { creditOf: Number(original.remoteId) });
    const credit = invoice({
      kind: "credit_note",
      number: "10118",
      psaId: "psa-inv-10118",
      creditedInvoiceNumber: "10117",
      lines: [{ text: "Kreditert reise", quantity: 1, unitPrice: 198400, kind: "expenses" }],
    });

    for (const uncertain of [false, true]) {
      const e = await thrown(env.connector.push("invoice", credit, ctx({ uncertain })));
      expect(e).toMatchObject({ kind: "permanent", code: "unimicro.credit_draft_foreign" });
      expect(e.message).toContain(`ID ${hand.ID}`);
      expect(e.message).toContain("10117");
      expect(e.hint).toContain("delete that credit draft");
    }
    const co = await env.company();
    const credits = co.invoices.filter((i: any) => i.InvoiceType === 1);
    expect(credits).toHaveLength(1);
    expect(credits[0]).toMatchObject({ ID: hand.ID, StatusCode: 42001, TaxExclusiveAmount: -48859 }); // untouched
    expect(credits[0].InternalNote).toBeUndefined();
  });

  test("a booked credit note with the PSA's credit note number, made by hand, is foreign too", async () => {
    env = startEnv();
    await seedMasterData(env);
    const original = await env.connector.push("invoice", invoice(), ctx());
    const hand = await env.control("manual/invoices", {
      creditOf: Number(original.remoteId),
      book: true,
      invoice: { InvoiceNumber: "10118", Items: [{ ProductID: (await env.company()).products[0].ID, NumberOfItems: -1, PriceExVat: 100 }] },
    });
    const credit = invoice({ kind: "credit_note", number: "10118", psaId: "psa-inv-10118", creditedInvoiceNumber: "10117" });
    const e = await thrown(env.connector.push("invoice", credit, ctx()));
    expect(e).toMatchObject({ code: "unimicro.invoice_number_foreign" });
    expect(e.message).toContain(`credit note 10118 (ID ${hand.ID}, invoiced)`);
  });
});

describe("customers and projects are matched by number on purpose", () => {
  test("a customer and a project made by hand with the PSA's numbers are taken over and updated (the PSA is master)", async () => {
    env = startEnv();
    const hand = await env.control("manual/customers", { row: { CustomerNumber: 100123, Info: { Name: "Typed in by hand" } } });
    const r = await env.connector.push("customer", customer(), ctx()); // no link: found by number
    expect(r.remoteId).toBe(String(hand.ID));
    expect((await env.company()).customers).toHaveLength(1);
    expect((await env.company()).customers[0].Info.Name).toBe("Fjordtech AS");
    const handProject = await env.control("manual/projects", { row: { ProjectNumber: "24017", Name: "By hand" } });
    const p = await env.connector.push("project", project(), ctx());
    expect(p.remoteId).toBe(String(handProject.ID));
    expect((await env.company()).projects.map((p: any) => p.Name)).toEqual(["ERP migration"]);
  });
});

describe("through the agent", () => {
  test("an invoice whose number is taken by a foreign booked invoice needs action, naming it; nothing is marked delivered", async () => {
    const target = await startDemoTarget("unimicro");
    const { config, targets } = demoConfig({ dataDir: tempDir(), port: 0, target: { ...target.target, requests_per_second: 0 } });
    Object.assign(config.dispatch, { retry_base_ms: 20, retry_max_ms: 200, idle_poll_ms: 50 });
    const agent = await startAgent(config, targets, silentLogger);
    try {
      const post = (events: unknown[]) =>
        fetch(`${agent.url}/api/v1/events`, {
          method: "POST",
          body: JSON.stringify(events),
          headers: { authorization: `Bearer ${agent.apiToken}`, "content-type": "application/json" },
        });
      const delivery = (status: string) =>
        agent.db.$client
          .query(
            "SELECT error_code AS code, error_message AS message, error_hint AS hint FROM deliveries WHERE entity = 'invoice' AND status = ?",
          )
          .get(status) as any;
      expect((await post([customerEvent(10501)])).status).toBe(202);
      const sandboxState = async () =>
        ((await (await fetch(`${target.sandboxUrl}/__sandbox/state`)).json()) as any).companies[DEMO_COMPANY.Key];
      await waitFor("customer at the target", async () => (await sandboxState()).customers.length === 1);
      const co = await sandboxState();
      const res = await fetch(`${target.sandboxUrl}/__sandbox/manual/invoices`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          book: true,
          invoice: {
            CustomerID: co.customers[0].ID,
            InvoiceNumber: "80001",
            Items: [{ ProductID: co.products[0].ID, NumberOfItems: 1, PriceExVat: 100 }],
          },
        }),
      });
      const foreign = (await res.json()) as any;

      expect((await post([invoiceEvent(80001, 10501)])).status).toBe(202);
      const row = await waitFor("needs action", () => delivery("needs_action"));
      expect(row.code).toBe("unimicro.invoice_number_foreign");
      expect(row.message).toContain(`invoice 80001 (ID ${foreign.ID}, invoiced)`);
      expect(row.hint).toContain("number ranges");
      expect(delivery("done")).toBeNull();
      expect((await sandboxState()).invoices).toHaveLength(1);
    } finally {
      await agent.stop();
      await target.stop();
    }
  });
});
