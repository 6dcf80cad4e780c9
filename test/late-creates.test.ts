// Writes answered after request_timeout_ms (connectors/http.ts, every write of a push): the attempt gives up at the
// deadline, the write is listened to for up to LATE_ANSWER_WAIT_MS, and the delivery stays leased until its answer is in.
//
// What the timeout says about the target used to reach the circuit breaker only with the late answer: a target that
// hung on every create filled every push slot for 10 minutes while the breaker stayed closed and the status page said
// the target was sending normally. Now the breaker hears it at the deadline (review R).
//
// A real SQLite file, the dispatcher, the eAccounting sandbox on loopback.
import { afterEach, describe, test } from "bun:test";
import { join } from "node:path";
import type { Connector } from "../connectors/contract.ts";
import { openDatabase, type Db } from "../agent/db/index.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { Dispatcher } from "../agent/dispatcher.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { silentLogger } from "../agent/log.ts";
import { Metrics } from "../agent/metrics.ts";
import { Outbox } from "../agent/outbox.ts";
import { recordSource } from "../agent/record-source.ts";
import { BREAKER_DEFAULTS, TargetStateStore } from "../agent/target-state.ts";
import { customerData, invoiceData, projectData, startEnv, type Env } from "./eaccounting-fixtures.ts";
import { tempDir, waitFor } from "./helpers.ts";

const REQUEST_TIMEOUT_MS = 300;

const opened: { db: Db; env: Env }[] = [];
afterEach(async () => {
  for (const { db, env } of opened.splice(0)) {
    await env.stop();
    db.$client.close();
  }
});

/** A SQLite outbox with a customer, its project and `invoices` invoices for the sandbox's target "ea". */
async function setUp(invoices = 1) {
  const db = openDatabase(join(tempDir(), "k.db"));
  const env = startEnv({ config: { request_timeout_ms: REQUEST_TIMEOUT_MS } });
  opened.push({ db, env });
  const outbox = new Outbox(sqliteRunner(db.$client));
  const targetState = new TargetStateStore(outbox.runner);
  // As a hosted tenant's runtime: its stop holds a released lease for the target's request timeout.
  const dispatcher = (connector: Connector, breakerFailures = BREAKER_DEFAULTS.failures, fence?: () => string | null) =>
    new Dispatcher(
      "ea",
      connector,
      outbox,
      {
        concurrency: 2,
        leaseMs: 60_000,
        backoff: { baseMs: 10, maxMs: 50 },
        idlePollMs: 20,
        keyPrefix: `k-${Math.random()}`,
        targetState,
        soleWorker: false,
        lateAnswerWaitMs: 10_000,
        breaker: { ...BREAKER_DEFAULTS, failures: breakerFailures },
        ...(fence ? { fence } : {}),
      },
      silentLogger,
      new Metrics(),
      recordSource(outbox.runner),
    );
  const parsed = parseEvents([
    { id: "c-1", type: "customer.upserted", data: customerData() },
    { id: "p-1", type: "project.upserted", data: projectData() },
    ...Array.from({ length: invoices }, (_, i) => ({
      id: `i-${i + 1}`,
      type: "invoice.finalized",
      data: invoiceData({ number: String(20001 + i), psaId: `psa-inv-${20001 + i}` }),
    })),
  ]);
  if (!parsed.ok) throw new Error("the test's events do not parse");
  await new IntakeWriter(outbox, () => ["ea"]).submit(parsed.events);
  /** The connector, counting invoice pushes that gave up. */
  const watched = () => {
    const counts = { gaveUp: 0 };
    const inner = env.connector;
    const connector: Connector = Object.create(inner);
    connector.push = (e, p, c) =>
      inner.push(e, p, c).catch((err) => {
        if (e === "invoice") counts.gaveUp++;
        throw err;
      });
    return { connector, counts };
  };
  return { db, env, dispatcher, watched, targetState, outbox };
}

describe("creates answered late", () => {
  test("a target that answers no create in time: the circuit breaker opens at the deadlines, not when the late answers come", async () => {
    const { env, dispatcher, watched, targetState } = await setUp(2);
    await env.faults({ method: "POST", path: "/v2/customerinvoicedrafts$", fault: "latency", latencyMs: 5_000, count: 2 });
    const { connector, counts } = watched();
    const d = dispatcher(connector, 2);
    d.start();
    await waitFor("both invoice attempts giving up at the deadline", () => counts.gaveUp === 2);
    // Both push slots wait for late answers; the status page's target line reads this state.
    await waitFor("the breaker open", async () => (await targetState.get("ea")).breaker === "open", 2_000);
    await d.stop(0);
  }, 30_000);
});
