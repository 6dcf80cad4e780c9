// Issue 10 item 5: the circuit breaker per target, and the pause shared through the store. The real
// dispatcher and outbox on both engines (a SQLite file; a tenant on a real PostgreSQL server, test/engines.ts), and a
// real loopback server behind the shared HTTP client (connectors/http.ts); the server counts the requests that reach
// it and how many run at once.
import { afterEach, describe, expect, test } from "bun:test";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { Metrics } from "../agent/metrics.ts";
import { Outbox } from "../agent/outbox.ts";
import { initialState, TargetStateStore } from "../agent/target-state.ts";
import { loopbackConnector, testDispatcher } from "./dispatch-fixture.ts";
import { type Engine, workerEngines } from "./engines.ts";
import { customerEvent, waitFor } from "./helpers.ts";

const { engines, open } = workerEngines("the circuit breaker and the shared pause");

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

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

async function setUp(engine: Engine, breaker = { failures: 3, baseMs: 200, maxMs: 800 }) {
  const target = startTarget();
  const { storage, workerOf } = await open(engine);
  const outbox = new Outbox(storage, Date.now, undefined, { leaseOwner: workerOf(storage) });
  const intake = new IntakeWriter(outbox, () => ["t"]);
  const store = new TargetStateStore(storage);
  const metrics = new Metrics();
  const dispatcher = testDispatcher(
    outbox,
    loopbackConnector(`http://127.0.0.1:${target.server.port}`, 150),
    // On PostgreSQL other workers may run the target too (as a hosted worker does).
    { concurrency: 8, breaker, targetState: store, soleWorker: engine === "sqlite" },
    metrics,
  );
  const send = async (n: number, from = 1) => {
    const parsed = parseEvents(Array.from({ length: n }, (_, i) => customerEvent(from + i)));
    if (!parsed.ok) throw new Error(JSON.stringify(parsed));
    await intake.submit(parsed.events);
    dispatcher.notify();
  };
  const doneCount = async () => (await storage.get<{ n: number }>(`SELECT count(*) AS n FROM deliveries WHERE status = 'done'`))!.n;
  cleanup = async () => {
    await dispatcher.stop(1000);
    target.server.stop(true);
  };
  return { target, store, metrics, dispatcher, send, doneCount };
}

/** Requests that reach the target during `ms`, and the most that ran at once (a window, not a timing). */
async function window(target: ReturnType<typeof startTarget>, ms: number) {
  await waitFor("no request at the target", () => target.inFlight === 0);
  const before = target.requests;
  target.maxInFlight = 0;
  await Bun.sleep(ms);
  return { requests: target.requests - before, maxInFlight: target.maxInFlight };
}

describe.each(engines)("circuit breaker per target, on %s", (engine) => {
  test("repeated 5xx open it; then one probe at a time with growing delay; a good probe closes it and the queue flows again", async () => {
    const { target, store, metrics, dispatcher, send, doneCount } = await setUp(engine);
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
    await waitFor("all 30 delivered", async () => (await doneCount()) === 30);
    expect(await store.get("t")).toMatchObject({ breaker: "closed", failures: 0 });
    expect(target.maxInFlight).toBeGreaterThan(1);
    expect(metrics.render([], 0)).toContain(`kontobro_target_breaker_state{target="t",state="closed"} 1`);
  }, 30_000);

  test("timeouts open it too", async () => {
    const { target, store, dispatcher, send } = await setUp(engine);
    target.mode = "hang";
    await send(20);
    dispatcher.start();
    await waitFor("the breaker to open", async () => (await store.get("t")).breaker === "open");
    const open = await window(target, 1500);
    expect(open.maxInFlight).toBeLessThanOrEqual(1);
    expect(open.requests).toBeLessThanOrEqual(4);
  }, 30_000);
});

describe.each(engines)("the pause is stored, shared by every worker of the target, on %s", (engine) => {
  test("a pause written by another worker stops this one; when it is lifted, one probe goes first, then the queue", async () => {
    const { target, store, dispatcher, send, doneCount } = await setUp(engine);
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
    expect(await doneCount()).toBe(0);

    // The pause ends (written as the other worker would see it expire).
    await store.put({ ...(await store.get("t")), pausedUntil: Date.now() - 1, nextProbeAt: Date.now() - 1 });
    target.trace = [];
    target.maxInFlight = 0;
    dispatcher.notify();
    await waitFor("all 20 delivered", async () => (await doneCount()) === 20);
    expect(target.trace.slice(0, 2)).toEqual(["in", "out"]); // the probe went alone and was answered first
    expect(target.maxInFlight).toBeGreaterThan(1); // then the queue at full concurrency
    expect((await store.get("t")).breaker).toBe("closed");
  }, 30_000);
});
