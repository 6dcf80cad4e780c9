// Two credit notes of one invoice sent together (a PSA sending partial credits at once; the dispatcher pushes up to
// `concurrency` records side by side). A credit note starts as the platform's credit draft of the invoice, unmarked
// until kontobro's PUT marks it: a credit note pushed beside it saw that draft and stopped as
// `unimicro.credit_draft_foreign`, and an uncertain one adopted it, rewrote it with its own lines, and the two credit
// notes ended as one booked document. The outbox's claim keeps credit notes of one invoice one at a time
// (agent/outbox.ts; test/outbox-credit-turns.test.ts for workers sharing a tenant). The real agent, the sandbox on loopback.
import { afterEach, expect, test } from "bun:test";
import { startAgent, type RunningAgent } from "../agent/agent.ts";
import { demoConfig, startDemoTarget, type DemoTarget } from "../agent/demo.ts";
import { silentLogger } from "../agent/log.ts";
import { DEMO_COMPANY } from "../connectors/unimicro/sandbox/index.ts";
import { customerEvent, invoiceEvent, tempDir, waitFor } from "./helpers.ts";

let agent: RunningAgent;
let target: DemoTarget;
afterEach(async () => {
  await agent?.stop();
  await target?.stop();
});

const control = async (path: string, body?: unknown) =>
  (
    await fetch(`${target.sandboxUrl}/__sandbox/${path}`, {
      method: body === undefined ? "GET" : "POST",
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
    })
  ).json() as Promise<any>;
const post = (events: unknown[]) =>
  fetch(`${agent.url}/api/v1/events`, {
    method: "POST",
    body: JSON.stringify(events),
    headers: { authorization: `Bearer ${agent.apiToken}`, "content-type": "application/json" },
  });
const statuses = () =>
  agent.db.$client.query("SELECT key, status, error_code AS code FROM deliveries WHERE entity = 'invoice' ORDER BY key").all() as any[];
const credit = (n: number, unitPrice: number) => ({
  ...invoiceEvent(n, 10501, undefined, {
    creditedInvoiceNumber: 80001,
    lines: [{ text: `Kreditert ${n}`, quantity: 1, unitPrice, kind: "hours" }],
  }),
  type: "invoice.credited",
});

test("two credit notes of one invoice sent together: each booked once, with its own lines", async () => {
  target = await startDemoTarget("unimicro");
  const { config, targets } = demoConfig({ dataDir: tempDir(), port: 0, target: { ...target.target, requests_per_second: 0 } });
  config.dispatch.retry_base_ms = 20;
  config.dispatch.retry_max_ms = 200;
  config.dispatch.idle_poll_ms = 50;
  agent = await startAgent(config, targets, silentLogger);
  expect((await post([customerEvent(10501), invoiceEvent(80001, 10501)])).status).toBe(202);
  await waitFor("the invoice booked", () => statuses().every((d) => d.status === "done"));
  // The second credit note's first look is slow, and so are the PUTs (the credit action, the draft's marking): side by
  // side, it reads the invoice's credit drafts while the first one's is made and not yet marked.
  await control("faults", [
    { method: "GET", path: "PSA-INV-80003", fault: "latency", latencyMs: 700, count: 1 },
    { method: "PUT", path: "^/api/biz/invoices/\\d+$", fault: "latency", latencyMs: 500, probability: 1 },
  ]);
  expect((await post([credit(80002, 100000), credit(80003, 20000)])).status).toBe(202);
  await waitFor("both credit notes finished", () => statuses().every((d) => d.status === "done" || d.status === "needs_action"));
  expect(statuses().map((d) => [d.key, d.status, d.code])).toEqual([
    ["80001", "done", null],
    ["80002", "done", null],
    ["80003", "done", null],
  ]);
  const invoices = (await control("state")).companies[DEMO_COMPANY.Key].invoices;
  const credits = invoices
    .filter((i: any) => i.InvoiceType === 1 && i.StatusCode !== 42001)
    .map((i: any) => [String(i.InvoiceNumber), i.InternalNote, i.TaxExclusiveAmount])
    .sort();
  expect(credits).toEqual([
    ["80002", "kontobro:PSA-INV-80002", -1000],
    ["80003", "kontobro:PSA-INV-80003", -200],
  ]);
});
