// Two credit notes of one invoice with two hosted workers sharing a tenant, on Uni Micro. A credit note starts as the
// platform's credit draft of the invoice, unmarked until kontobro's PUT marks it; the turns that kept credit notes of
// one invoice apart were the connector's, per process, so worker B pushed its credit note while worker A's draft was
// still unmarked and stopped as `unimicro.credit_draft_foreign` (or, uncertain, adopted it: one credit note lost).
// Now the claim keeps them apart for every worker (agent/outbox.ts). A real PostgreSQL server (test/pg-server.ts), two
// workers with real heartbeats, each a dispatcher with a connector of its own, the Uni Micro sandbox over loopback.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Connector } from "../connectors/contract.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { waitFor } from "./helpers.ts";
import { type HostedCluster, startHostedCluster, startHostedWorker } from "./hosted-cluster.ts";
import { pgUnavailable } from "./pg-server.ts";
import { customer, type Env, invoice, project, startEnv } from "./unimicro-fixtures.ts";

const unavailable = pgUnavailable();
if (unavailable) console.warn(`hosted Uni Micro credit note tests skipped: ${unavailable}`);

let cluster: HostedCluster;
let env: Env | undefined;

beforeAll(async () => {
  if (!unavailable) cluster = await startHostedCluster();
}, 120_000);
afterAll(async () => {
  env?.stop();
  await cluster?.stop();
});

/**
 * A worker of its own (test/hosted-cluster.ts), pushing one record at a time and leasing none ahead (so that each
 * worker takes one of the two credit notes).
 */
const startWorker = (connector: Connector) =>
  startHostedWorker(cluster, { target: "uni", connector, dispatcher: { concurrency: 1, ahead: 0 } });

const credit = (number: string, unitPrice: number) => ({
  id: `cn-${number}`,
  type: "invoice.credited",
  data: invoice({
    number,
    psaId: `psa-inv-${number}`,
    creditedInvoiceNumber: "10117",
    lines: [{ text: `Kreditert ${number}`, quantity: 1, unitPrice, kind: "hours" }],
  }),
});

describe.skipIf(!!unavailable)("credit notes of one invoice, two workers", () => {
  test("each worker takes one, side by side: both booked once, each with its own lines", async () => {
    env = startEnv();
    const workers = [await startWorker(env.connector), await startWorker(env.another())];
    const submit = async (events: unknown[]) => {
      const parsed = parseEvents(events);
      if (!parsed.ok) throw new Error(`the test's events do not parse: ${JSON.stringify(parsed)}`);
      await new IntakeWriter(workers[0]!.outbox, () => ["uni"]).submit(parsed.events);
    };
    const statuses = () =>
      workers[0]!.outbox.runner.all<{ key: string; status: string; code: string | null }>(
        "SELECT key, status, error_code AS code FROM deliveries WHERE entity = 'invoice' ORDER BY key",
      );
    await submit([
      { id: "c", type: "customer.upserted", data: customer() },
      { id: "p", type: "project.upserted", data: project() },
      { id: "i", type: "invoice.finalized", data: invoice() },
    ]);
    await waitFor("the invoice booked", async () => (await statuses())[0]?.status === "done", 20_000);
    // The second credit note's first look is slow, and so are the PUTs (the credit action, the draft's marking): side
    // by side, it reads the invoice's credit drafts while the first one's is made and not yet marked.
    await env.faults([
      { method: "GET", path: "psa-inv-10119", fault: "latency", latencyMs: 700, count: 1 },
      { method: "PUT", path: "^/api/biz/invoices/\\d+$", fault: "latency", latencyMs: 500, probability: 1 },
    ]);
    await submit([credit("10118", 100000), credit("10119", 20000)]);
    const finished = async () => (await statuses()).every((d) => d.status === "done" || d.status === "needs_action");
    await waitFor("both credit notes finished", finished, 20_000);
    expect((await statuses()).map((d) => [d.key, d.status, d.code])).toEqual([
      ["10117", "done", null],
      ["10118", "done", null],
      ["10119", "done", null],
    ]);
    const credits = (await env.company()).invoices
      .filter((i: any) => i.InvoiceType === 1 && i.StatusCode !== 42001)
      .map((i: any) => [String(i.InvoiceNumber), i.InternalNote, i.TaxExclusiveAmount])
      .sort();
    expect(credits).toEqual([
      ["10118", "kontobro:psa-inv-10118", -1000],
      ["10119", "kontobro:psa-inv-10119", -200],
    ]);
    for (const w of workers) await w.dispatcher.stop(1_000);
    for (const w of workers) await w.worker.stop();
  }, 60_000);
});
