// The circuit breaker's probe is owned (issue 17, H6): on PostgreSQL target_state.probe_owner names the worker whose
// half-open probe is out. A worker declared dead with its probe out gets it freed by the recovery of its leases
// (agent/db/pg/dead-workers.ts), so another worker sends the next probe at once, not when the dead probe's lease
// would end (lease_seconds: an hour here, so a probe that waited for it would not go within the test at all). A live
// worker's probe is never freed by another worker's recovery. SQLite (one process) never names an owner.
// Real parts: a tenant on a real PostgreSQL server (test/engines.ts) with workers on clients of their own, the real
// Dispatcher, Outbox and intake, a real loopback target behind the shared HTTP client.
import { afterEach, describe, expect, test } from "bun:test";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { Outbox } from "../agent/outbox.ts";
import { initialState, TargetStateStore } from "../agent/target-state.ts";
import { loopbackConnector, testDispatcher } from "./dispatch-fixture.ts";
import { type EngineStorage, workerEngines } from "./engines.ts";
import { customerEvent, waitFor } from "./helpers.ts";

/** lease_seconds = 3600: a probe that waited for its lease to end would not go again during this test. */
const LEASE_MS = 3_600_000;
const EVENTS = 8;
const { engines, open } = workerEngines("the breaker probe of a worker declared dead");

/** A target on loopback that books every customer, except that requests of the workers in `hold` wait until let go. */
function startTarget() {
  const t = {
    /** The idempotency keys of the requests that reached it, in order: `<worker>-<delivery>-<attempt>`. */
    keys: [] as string[],
    hold: new Set<string>(),
    held: [] as (() => void)[],
    letGo() {
      t.hold.clear();
      for (const go of t.held.splice(0)) go();
    },
    from: (worker: string) => t.keys.filter((k) => k.startsWith(`${worker}-`)).length,
    server: null as unknown as ReturnType<typeof Bun.serve>,
  };
  t.server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const key = req.headers.get("idempotency-key") ?? "";
      t.keys.push(key);
      await req.text();
      if (t.hold.has(key.split("-")[0]!)) await new Promise<void>((go) => t.held.push(go));
      return Response.json({ id: `r-${t.keys.length}` }, { status: 201 });
    },
  });
  return t;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A tenant whose target "t" has its breaker open with the probe due, EVENTS customers queued, and its workers. */
async function setUp(engine: (typeof engines)[number]) {
  const storage: EngineStorage = await open(engine);
  const target = startTarget();
  const connector = loopbackConnector(`http://127.0.0.1:${target.server.port}`, 60_000);
  cleanups.push(async () => {
    target.letGo();
    target.server.stop(true);
  });
  const store = new TargetStateStore(storage.storage);
  const now = Date.now();
  await store.put({ ...initialState("t", now), breaker: "open", failures: 5, probeDelayMs: 100, nextProbeAt: now });

  /** A worker (its own runner, so its own workers row on PostgreSQL) running a dispatcher of "t" among many. */
  const worker = async (name: string, runner: SqlRunner) => {
    const outbox = new Outbox(runner, Date.now, 15 * 60_000, { leaseOwner: storage.workerOf(runner) });
    const dispatcher = testDispatcher(outbox, connector, {
      concurrency: 4,
      leaseMs: LEASE_MS,
      idlePollMs: 25,
      keyPrefix: name,
      breaker: { failures: 3, baseMs: 100, maxMs: 400 },
      targetState: new TargetStateStore(runner),
      soleWorker: false,
    });
    cleanups.push(async () => {
      target.letGo();
      await dispatcher.stop(2_000);
    });
    return { name, runner, outbox, dispatcher, id: storage.workerOf(runner) };
  };

  const first = await worker("a", storage.storage);
  const parsed = parseEvents(Array.from({ length: EVENTS }, (_, i) => customerEvent(i + 1)));
  if (!parsed.ok) throw new Error(JSON.stringify(parsed));
  await new IntakeWriter(first.outbox, () => ["t"]).submit(parsed.events);

  const statuses = async () =>
    (
      await storage.storage.all<{ status: string; n: number }>(
        "SELECT status, count(*) AS n FROM deliveries GROUP BY status ORDER BY status",
      )
    ).map((r) => `${r.status}:${Number(r.n)}`);
  /** Worker a sends the probe and the target holds it: the probe is out, owned by a. */
  const probeOutWithA = async () => {
    target.hold.add("a");
    first.dispatcher.start();
    await waitFor("worker a's probe at the target", () => target.held.length === 1);
    return store.get("t");
  };
  return { storage, target, store, worker, first, statuses, probeOutWithA };
}

/** Nothing reaches the target from `worker` while the window lasts (a window, not a timing). */
async function nothingFrom(target: ReturnType<typeof startTarget>, worker: string, ms = 600): Promise<void> {
  const before = target.from(worker);
  await Bun.sleep(ms);
  expect(target.from(worker)).toBe(before);
}

describe.if(engines.includes("postgres"))("the breaker's probe on PostgreSQL is owned by its worker", () => {
  test("a worker declared dead with the probe out: the recovery frees the probe and another worker sends the next one, an hour before its lease would end", async () => {
    const { storage, target, store, worker, first, statuses, probeOutWithA } = await setUp("postgres");
    const out = await probeOutWithA();
    expect(first.id).toEqual(expect.any(Number));
    expect(out).toMatchObject({ breaker: "half_open", probeOwner: first.id });
    expect(out.nextProbeAt!).toBeGreaterThan(Date.now() + LEASE_MS / 2);

    // Worker b waits: the probe is out (for as long as its lease, an hour, were nobody to free it).
    const second = await worker("b", await storage.worker());
    second.dispatcher.start();
    await nothingFrom(target, "b");

    // Worker a falls silent and is declared dead: its leased probe delivery goes back, and its probe is freed.
    const recovery = await storage.declareDead(first.runner);
    expect(recovery.workers.map((w) => w.id)).toEqual([first.id!]);
    expect(recovery).toMatchObject({ deliveries: 1, probes: 1 });
    expect((await store.get("t")).probeOwner).not.toBe(first.id);

    // Worker b sends the next probe (its own key), it succeeds, the breaker closes, and b delivers everything.
    await waitFor("every delivery done", async () => (await statuses()).join() === `done:${EVENTS}`);
    expect(target.keys[1]).toStartWith("b-");
    expect(target.from("b")).toBe(EVENTS);
    expect(await store.get("t")).toMatchObject({ breaker: "closed", failures: 0, probeOwner: null });

    // Worker a's late answer lands nowhere and changes nothing: no second booking, the breaker stays closed.
    target.letGo();
    await first.dispatcher.stop(2_000);
    expect(await statuses()).toEqual([`done:${EVENTS}`]);
    expect(target.from("a")).toBe(1);
    expect(await store.get("t")).toMatchObject({ breaker: "closed", probeOwner: null });
  }, 60_000);

  test("the freed probe is due when the target's pause ends, if one was asked for meanwhile, and owned by nobody", async () => {
    const { storage, store, first, probeOutWithA } = await setUp("postgres");
    const out = await probeOutWithA();
    // Another worker's push got a 429 with Retry-After while the probe was out (the pause it stored).
    const pausedUntil = Date.now() + 600_000;
    await store.put({ ...out, pausedUntil, pauseReason: "429: slow down" });
    const recovery = await storage.declareDead(first.runner);
    expect(recovery.workers.map((w) => w.id)).toEqual([first.id!]);
    expect(recovery).toMatchObject({ deliveries: 1, probes: 1 });
    const freed = await store.get("t");
    expect(freed).toMatchObject({ breaker: "half_open", probeOwner: null, pausedUntil, nextProbeAt: pausedUntil });
    expect(freed.updatedAt).toBeGreaterThanOrEqual(out.updatedAt);
  }, 30_000);

  test("a live worker's probe is untouched when another worker is declared dead; its own answer closes the breaker", async () => {
    const { storage, target, store, worker, first, statuses, probeOutWithA } = await setUp("postgres");
    const out = await probeOutWithA();
    expect(out).toMatchObject({ breaker: "half_open", probeOwner: first.id });
    const second = await worker("b", await storage.worker());
    second.dispatcher.start();

    // A third worker, with no probe out, dies: its recovery leaves worker a's probe as it was.
    const third = await storage.worker();
    const recovery = await storage.declareDead(third);
    expect(recovery.workers.map((w) => w.id)).toEqual([storage.workerOf(third)!]);
    expect(recovery).toMatchObject({ deliveries: 0, probes: 0 });
    expect(await store.get("t")).toEqual(out);
    await nothingFrom(target, "b");

    // Worker a's probe is answered: the breaker closes and both workers send the rest.
    target.letGo();
    await waitFor("every delivery done", async () => (await statuses()).join() === `done:${EVENTS}`);
    expect(target.keys[0]).toStartWith("a-");
    expect(target.keys.length).toBe(EVENTS);
    expect(await store.get("t")).toMatchObject({ breaker: "closed", failures: 0, probeOwner: null });
  }, 60_000);
});

describe("the breaker's probe on SQLite (one process)", () => {
  test("names no owner: the probe is out, probe_owner NULL, and its answer closes the breaker", async () => {
    const { target, store, statuses, probeOutWithA } = await setUp("sqlite");
    expect(await probeOutWithA()).toMatchObject({ breaker: "half_open", probeOwner: null });
    target.letGo();
    await waitFor("every delivery done", async () => (await statuses()).join() === `done:${EVENTS}`);
    expect(await store.get("t")).toMatchObject({ breaker: "closed", probeOwner: null });
  }, 30_000);
});
