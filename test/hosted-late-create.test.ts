// A create answered after request_timeout_ms, with many workers (review E). Worker A's attempt gives up at the deadline
// but keeps listening (connectors/http.ts, every write of a push), and no attempt of A creates again until the answer
// is in. Another worker knew nothing of it: the delivery was back to pending at once, worker B claimed the retry, looked
// for the draft before A's had landed, and made a second one with the same reference (eAccounting: whoever sends both
// invoices the customer twice). Now the delivery stays leased by A until A's late answer is in, so B looks only then.
// A real PostgreSQL server (test/pg-server.ts), two workers with real heartbeats, the eAccounting sandbox over loopback;
// A is fenced once its attempt has given up, so that the retry is B's.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Connector } from "../connectors/contract.ts";
import { openPostgres, type PostgresStorage } from "../agent/db/pg/open.ts";
import { Worker } from "../agent/db/pg/workers.ts";
import { Dispatcher } from "../agent/dispatcher.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { silentLogger } from "../agent/log.ts";
import { Metrics } from "../agent/metrics.ts";
import { Outbox } from "../agent/outbox.ts";
import { recordSource } from "../agent/record-source.ts";
import { TargetStateStore } from "../agent/target-state.ts";
import { customerData, invoiceData, projectData, startEnv, type Env } from "./eaccounting-fixtures.ts";
import { waitFor } from "./helpers.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

const TIMING = { heartbeatMs: 100, deadAfterMs: 5_000 };

const unavailable = pgUnavailable();
if (unavailable) console.warn(`hosted late-create tests skipped: ${unavailable}`);

let server: PgServer;
const pools: PostgresStorage[] = [];
let tenant = 0;
let env: Env | undefined;

beforeAll(async () => {
  if (unavailable) return;
  server = await startPgServer();
  const admin = await openPostgres(server.url);
  pools.push(admin);
  const [row] = (await admin.client.unsafe(
    `INSERT INTO tenants (slug, name, api_token_hash, created_at, updated_at) VALUES ('acme', 'Acme', 'a', 1, 1) RETURNING id`,
  )) as { id: number }[];
  tenant = Number(row!.id);
}, 120_000);
afterAll(async () => {
  await env?.stop();
  for (const p of pools) await p.close().catch(() => {});
  await server?.stop();
});

/** A worker of its own: a pool, a registered row with real heartbeats, and a dispatcher fenced by `fence` and by them. */
async function startWorker(connector: Connector, fence: () => string | null = () => null) {
  const pool = await openPostgres(server.url);
  pools.push(pool);
  const worker = await Worker.register(pool.client, TIMING);
  worker.start();
  const outbox = new Outbox(pool.runner(tenant), Date.now, 900_000, { leaseOwner: worker.id });
  const dispatcher = new Dispatcher(
    "ea",
    connector,
    outbox,
    {
      concurrency: 2,
      leaseMs: 60_000,
      backoff: { baseMs: 10, maxMs: 50 },
      idlePollMs: 20,
      keyPrefix: `k-${worker.id}`,
      targetState: new TargetStateStore(outbox.runner),
      soleWorker: false,
      fence: () => fence() ?? worker.fence(),
    },
    silentLogger,
    new Metrics(),
    recordSource(outbox.runner),
  );
  dispatcher.start();
  return { worker, outbox, dispatcher };
}

describe.skipIf(!!unavailable)("a create answered late, with many workers", () => {
  test("another worker's retry waits for the late answer: one eAccounting draft, found and updated", async () => {
    env = startEnv({ config: { request_timeout_ms: 300 } });
    await env.faults({ method: "POST", path: "/v2/customerinvoicedrafts$", fault: "latency", latencyMs: 1500, count: 1 });
    // Worker A: fenced (sends and claims nothing more) once its invoice attempt has given up at the deadline.
    let gaveUp = false;
    const inner = env.connector;
    const connectorA: Connector = Object.create(inner);
    connectorA.push = (e, p, c) =>
      inner.push(e, p, c).catch((err) => {
        if (e === "invoice") gaveUp = true;
        throw err;
      });
    const a = await startWorker(connectorA, () => (gaveUp ? "the test fenced worker A after its invoice attempt gave up" : null));
    const parsed = parseEvents([
      { id: "c-1", type: "customer.upserted", data: customerData() },
      { id: "p-1", type: "project.upserted", data: projectData() },
      { id: "i-1", type: "invoice.finalized", data: invoiceData() },
    ]);
    if (!parsed.ok) throw new Error("the test's events do not parse");
    await new IntakeWriter(a.outbox, () => ["ea"]).submit(parsed.events);
    await waitFor("worker A's invoice attempt giving up", () => gaveUp);
    const b = await startWorker(env.connectorWith({}));
    const invoiceStatus = () =>
      b.outbox.runner.get<{ status: string; remoteId: string | null }>(
        "SELECT status, remote_id AS remoteId FROM deliveries WHERE entity = 'invoice'",
      );
    await waitFor("the invoice delivered", async () => (await invoiceStatus())?.status === "done", 20_000);
    await Bun.sleep(1_700); // past the late POST's 1.5 s in the sandbox
    const drafts = (await env.state()).drafts;
    expect(drafts.map((d: any) => d.ElectronicReference)).toEqual(["kontobro:psa-inv-20001"]);
    expect((await invoiceStatus())?.remoteId).toBe(`draft:${drafts[0].Id}`);
    await b.dispatcher.stop(1_000);
    await a.dispatcher.stop(1_000);
    await b.worker.stop();
    await a.worker.stop();
  }, 60_000);
});
