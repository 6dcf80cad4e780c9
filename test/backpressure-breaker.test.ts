// Issue 10 item 5: the circuit breaker per target, and the pause shared through the store. The real
// dispatcher, outbox and SQLite file, and a real loopback server behind the shared HTTP client
// (connectors/http.ts); the server counts the requests that reach it and how many run at once.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Connector } from "../connectors/contract.ts";
import { HttpClient } from "../connectors/http.ts";
import { openDatabase, type Db } from "../agent/db/index.ts";
import { Dispatcher } from "../agent/dispatcher.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { silentLogger } from "../agent/log.ts";
import { Metrics } from "../agent/metrics.ts";
import { Outbox } from "../agent/outbox.ts";
import { recordSource } from "../agent/record-source.ts";
import { initialState, TargetStateStore } from "../agent/target-state.ts";
import { customerEvent, tempDir, waitFor } from "./helpers.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";

type Mode = "fail" | "hang" | "ok";

/** A target on loopback: answers 500, hangs past the client timeout, or books. Counts what reaches it. */
function startTarget() {
  const t = {
    mode: "fail" as Mode,
    requests: 0,
    inFlight: 0,
    maxInFlight: 0,
    trace: [] as string[],
    server: null as unknown as ReturnType<typeof Bun.serve>,
  };
  t.server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      t.requests++;
      t.trace.push("in");
      t.inFlight++;
      t.maxInFlight = Math.max(t.maxInFlight, t.inFlight);
      try {
        await req.text();
        if (t.mode === "hang") await Bun.sleep(400);
        else await Bun.sleep(30); // long enough for pushes to overlap when several are sent at once
        if (t.mode === "fail") return Response.json({ message: "Internal error" }, { status: 500 });
        return Response.json({ id: t.requests }, { status: 201 });
      } finally {
        t.inFlight--;
        t.trace.push("out");
      }
    },
  });
  return t;
}

function connectorFor(url: string): Connector {
  const http = new HttpClient({
    baseHeaders: () => ({}),
    timeoutMs: 150,
    targetTitle: "Test target",
    describeError: (res) => ({ code: `http_${res.status}`, message: `HTTP ${res.status}` }),
  });
  return {
    name: "t",
    kind: "test",
    supports: (e) => e === "customer",
    check: async () => [],
    validate: () => [],
    async push(_entity, payload, ctx) {
      const res = await http.request("POST", `${url}/customers`, { json: payload, headers: { "idempotency-key": ctx.idempotencyKey } });
      return { remoteId: String(res.body.id) };
    },
    find: async () => null,
  };
}

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

async function setUp(breaker = { failures: 3, baseMs: 200, maxMs: 800 }) {
  const target = startTarget();
  const db: Db = openDatabase(join(tempDir(), "k.db"));
  const outbox = new Outbox(sqliteRunner(db.$client));
  const intake = new IntakeWriter(outbox, () => ["t"]);
  const store = new TargetStateStore(sqliteRunner(db.$client));
  const metrics = new Metrics();
  const dispatcher = new Dispatcher(
    "t",
    connectorFor(`http://127.0.0.1:${target.server.port}`),
    outbox,
    {
      concurrency: 8,
      leaseMs: 30_000,
      backoff: { baseMs: 10, maxMs: 50 },
      idlePollMs: 20,
      keyPrefix: "k",
      breaker,
      targetState: store,
    },
    silentLogger,
    metrics,
    recordSource(outbox.runner),
  );
  const send = async (n: number, from = 1) => {
    const parsed = parseEvents(Array.from({ length: n }, (_, i) => customerEvent(from + i)));
    if (!parsed.ok) throw new Error(JSON.stringify(parsed));
    await intake.submit(parsed.events);
    dispatcher.notify();
  };
  const doneCount = () => (db.$client.query(`SELECT count(*) AS n FROM deliveries WHERE status = 'done'`).get() as any).n as number;
  cleanup = async () => {
    await dispatcher.stop(1000);
    target.server.stop(true);
    db.$client.close();
  };
  return { target, db, store, metrics, dispatcher, send, doneCount };
}

/** Requests that reach the target during `ms`, and the most that ran at once (a window, not a timing). */
async function window(target: ReturnType<typeof startTarget>, ms: number) {
  await waitFor("no request at the target", () => target.inFlight === 0);
  const before = target.requests;
  target.maxInFlight = 0;
  await Bun.sleep(ms);
  return { requests: target.requests - before, maxInFlight: target.maxInFlight };
}

describe("circuit breaker per target", () => {
  test("repeated 5xx open it; then one probe at a time with growing delay; a good probe closes it and the queue flows again", async () => {
    const { target, store, metrics, dispatcher, send, doneCount } = await setUp();
    await send(30);
    dispatcher.start();
    await waitFor("the breaker to open", async () => (await store.get("t")).breaker === "open");
    expect((await store.get("t")).probeDelayMs).toBe(200);

    // Open: probes at +200 ms, then +400, +800 (the cap), … one at a time, never the whole queue.
    const open = await window(target, 2000);
    expect(open.maxInFlight).toBeLessThanOrEqual(1);
    expect(open.requests).toBeGreaterThanOrEqual(1);
    expect(open.requests).toBeLessThanOrEqual(5);
    expect((await store.get("t")).probeDelayMs).toBeGreaterThan(200); // failed probes doubled the delay
    expect(metrics.render([], 0)).toMatch(/kontobro_target_breaker_state\{target="t",state="(open|half_open)"\} 1/);

    // The target recovers: the next probe succeeds, the breaker closes, the rest go at full concurrency.
    target.mode = "ok";
    target.maxInFlight = 0;
    await waitFor("all 30 delivered", () => doneCount() === 30);
    expect(await store.get("t")).toMatchObject({ breaker: "closed", failures: 0 });
    expect(target.maxInFlight).toBeGreaterThan(1);
    expect(metrics.render([], 0)).toContain(`kontobro_target_breaker_state{target="t",state="closed"} 1`);
  }, 30_000);

  test("timeouts open it too", async () => {
    const { target, store, dispatcher, send } = await setUp();
    target.mode = "hang";
    await send(20);
    dispatcher.start();
    await waitFor("the breaker to open", async () => (await store.get("t")).breaker === "open");
    const open = await window(target, 1500);
    expect(open.maxInFlight).toBeLessThanOrEqual(1);
    expect(open.requests).toBeLessThanOrEqual(4);
  }, 30_000);
});

describe("the pause is stored, shared by every worker of the target", () => {
  test("a pause written by another worker stops this one; when it is lifted, one probe goes first, then the queue", async () => {
    const { target, store, dispatcher, send, doneCount } = await setUp();
    target.mode = "ok";
    // Another worker got a 429 with Retry-After: 600 (it wrote the shared state).
    const now = Date.now();
    await store.put({
      ...initialState("t", now),
      pausedUntil: now + 600_000,
      pauseReason: "429: slow down",
      breaker: "half_open",
      nextProbeAt: now + 600_000,
    });
    await send(20);
    dispatcher.start();
    expect((await window(target, 1500)).requests).toBe(0);
    expect(doneCount()).toBe(0);

    // The pause ends (written as the other worker would see it expire).
    await store.put({ ...(await store.get("t")), pausedUntil: Date.now() - 1, nextProbeAt: Date.now() - 1 });
    target.trace = [];
    target.maxInFlight = 0;
    dispatcher.notify();
    await waitFor("all 20 delivered", () => doneCount() === 20);
    expect(target.trace.slice(0, 2)).toEqual(["in", "out"]); // the probe went alone and was answered first
    expect(target.maxInFlight).toBeGreaterThan(1); // then the queue at full concurrency
    expect((await store.get("t")).breaker).toBe("closed");
  }, 30_000);
});
