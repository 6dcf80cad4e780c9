// A create answered after request_timeout_ms, with many workers (review E). Worker A's attempt gives up at the deadline
// but keeps listening (connectors/http.ts, every write of a push), and no attempt of A creates again until the answer
// is in. Another worker knew nothing of it: the delivery was back to pending at once, worker B claimed the retry, looked
// for the draft before A's had landed, and made a second one with the same reference (eAccounting: whoever sends both
// invoices the customer twice). Now the delivery stays leased by A until A's late answer is in, so B looks only then.
// A real PostgreSQL server (test/pg-server.ts), two workers with real heartbeats, the eAccounting sandbox over loopback;
// A is fenced once its attempt has given up, so that the retry is B's.
//
// And when worker A goes (stopped, or declared dead) while its draft POST is still on its way (held by the target), the
// lease taken back from it used to be due at once: B looked before A's draft had landed, made and kept its own, and A's
// landed beside it. Now the lease is due only once the target's late_answer_wait_ms has passed (agent/db/pg/dead-workers.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Connector } from "../connectors/contract.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { customerData, invoiceData, projectData, startEnv, type Env } from "./eaccounting-fixtures.ts";
import { waitFor } from "./helpers.ts";
import { type HostedCluster, startHostedCluster, startHostedWorker } from "./hosted-cluster.ts";
import { pgUnavailable } from "./pg-server.ts";

const TIMING = { heartbeatMs: 100, deadAfterMs: 5_000 };
/** The target's late_answer_wait_ms in these tests. */
const LATE_ANSWER_WAIT_MS = 6_000;

const unavailable = pgUnavailable();
if (unavailable) console.warn(`hosted late-create tests skipped: ${unavailable}`);

let cluster: HostedCluster;
let env: Env | undefined;

beforeAll(async () => {
  if (!unavailable) cluster = await startHostedCluster();
}, 120_000);
afterAll(async () => {
  await env?.stop();
  await cluster?.stop();
});

/** A worker of its own (test/hosted-cluster.ts), fenced by `fence` and by its heartbeats. */
const startWorker = (connector: Connector, fence: () => string | null = () => null, tenant = cluster.tenant) =>
  startHostedWorker(cluster, {
    target: "ea",
    connector,
    tenant,
    timing: TIMING,
    fence,
    dispatcher: { lateAnswerWaitMs: LATE_ANSWER_WAIT_MS },
  });

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

  test("worker A goes while its draft POST is held by the target: the lease taken back waits, then B finds A's draft", async () => {
    await env?.stop();
    // Within its timeout when A goes (a kill just after the request left); the target carries it out 4 s after it came.
    env = startEnv({ config: { request_timeout_ms: 10_000 } });
    await env.faults({ method: "POST", path: "/v2/customerinvoicedrafts$", fault: "latency", latencyMs: 4_000, count: 1 });
    // A tenant of its own: the first test's links name records of its sandbox.
    const bolt = await cluster.addTenant("bolt");
    let gone = false;
    const a = await startWorker(env.connector, () => (gone ? "worker A is gone" : null), bolt);
    const parsed = parseEvents([
      { id: "c-2", type: "customer.upserted", data: customerData() },
      { id: "p-2", type: "project.upserted", data: projectData() },
      { id: "i-2", type: "invoice.finalized", data: invoiceData({ number: "20002", psaId: "psa-inv-20002" }) },
    ]);
    if (!parsed.ok) throw new Error("the test's events do not parse");
    await new IntakeWriter(a.outbox, () => ["ea"]).submit(parsed.events);
    const faults = async () => (await (await fetch(`${env!.url}/__sandbox/faults`)).json()) as { rules: unknown[] };
    await waitFor("worker A's draft POST held by the sandbox", async () => (await faults()).rules.length === 0, 20_000);
    // A goes: it sends nothing more, and its leases are taken back (as for a worker declared dead: the same statement).
    gone = true;
    await a.worker.stop();
    const invoice = () =>
      a.outbox.runner.get<{ status: string; remoteId: string | null; errorMessage: string | null }>(
        "SELECT status, remote_id AS remoteId, error_message AS errorMessage FROM deliveries WHERE entity = 'invoice'",
      );
    expect(await invoice()).toMatchObject({ status: "pending", errorMessage: expect.stringContaining("late_answer_wait_ms") });
    const b = await startWorker(env.connectorWith({}), undefined, bolt);
    await waitFor("the invoice delivered", async () => (await invoice())?.status === "done", 20_000);
    await Bun.sleep(4_000); // past the held POST, had the recovery not waited for it
    const drafts = (await env.state()).drafts;
    expect(drafts.map((d: any) => d.ElectronicReference)).toEqual(["kontobro:psa-inv-20002"]);
    expect((await invoice())?.remoteId).toBe(`draft:${drafts[0].Id}`);
    await b.dispatcher.stop(1_000);
    await a.dispatcher.stop(1_000);
    await b.worker.stop();
  }, 60_000);
});
