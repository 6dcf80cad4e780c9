// Pull runs, the schedule and the PSA webhook deliverer on both storage engines (issue 17): a run stores each page
// with its cursor; a run is claimed as its job_runs row, so a job never has two runs at once and a schedule slot
// runs once whichever workers fire it; two deliverers never send one inbox item twice. On PostgreSQL the workers
// are runners on clients of their own (test/engines.ts), racing for real.
import { afterEach, describe, expect, test } from "bun:test";
import { TargetError } from "../connectors/http.ts";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { createLogger, silentLogger } from "../agent/log.ts";
import { Inbox } from "../agent/pulls/inbox.ts";
import { PsaDeliverer } from "../agent/pulls/psa-webhook.ts";
import { type JobRef, lastGoodRunAt, recentRuns, runPull, type RunnerDeps } from "../agent/pulls/runner.ts";
import { Scheduler } from "../agent/pulls/scheduler.ts";
import { waitFor } from "./helpers.ts";
import { pullOnlyConnector } from "./paged-target.ts";
import { type EngineStorage, workerEngines } from "./engines.ts";

const { engines, open } = workerEngines("the pull run tests");
const JOB: JobRef = { target: "eco", stream: "expenses", timezone: "UTC" };

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * A target with `pages` pages of one expense each (the cursor is the number of pages read). `hold()` keeps every
 * pull waiting until `release()`; `failAt` makes the page after that cursor fail.
 */
function fakeTarget(pages = 3) {
  const calls: (string | null)[] = [];
  let gate: Promise<void> | null = null;
  let open = () => {};
  const target = {
    calls,
    failAt: null as string | null,
    hold() {
      gate = new Promise((resolve) => {
        open = resolve;
      });
    },
    release() {
      gate = null;
      open();
    },
    connector: pullOnlyConnector(async (_stream, cursor) => {
      calls.push(cursor);
      if (gate) await gate;
      if (target.failAt !== null && cursor === target.failAt)
        throw new TargetError("retryable", { code: "http_503", message: "The target answered 503.", hint: "Usually temporary." });
      const n = Number(cursor ?? 0) + 1;
      return { items: [{ remoteId: `entry:${n}`, type: "expense.posted", data: { n } }], cursor: String(n), more: n < pages };
    }),
  };
  return target;
}

/** What one worker runs a pull with: SQLite holds the data directory's job lock, PostgreSQL claims the run row only. */
function depsOf(s: EngineStorage, storage: SqlRunner, target: ReturnType<typeof fakeTarget>): RunnerDeps {
  return {
    db: s.db,
    storage,
    inbox: new Inbox(storage),
    dataDir: s.engine === "sqlite" ? s.dataDir : null,
    worker: s.workerOf(storage),
    connectors: new Map([["eco", target.connector]]),
    log: silentLogger,
  };
}

const slotRuns = (storage: SqlRunner, slot: number) =>
  storage.all<{ status: string }>(`SELECT status FROM job_runs WHERE target = 'eco' AND stream = 'expenses' AND slot = ?1`, slot);

describe.each(engines)("pull runs (%s)", (engine) => {
  test("a run stores each page with its cursor and records what it did; a failed page keeps the pages before it", async () => {
    const s = await open(engine);
    const target = fakeTarget(3);
    const deps = depsOf(s, s.storage, target);
    const first = await runPull(deps, JOB, "manual");
    expect(first).toMatchObject({ status: "ok", pages: 3, fetched: 3, imported: 3 });
    expect(await deps.inbox.cursor("eco", "expenses")).toBe("3");
    const [run] = await recentRuns(s.storage, "eco", "expenses");
    expect(run).toMatchObject({ status: "ok", trigger: "manual", pages: 3, imported: 3 });
    expect(await lastGoodRunAt(s.storage, "eco", "expenses")).toBe(run!.startedAt);

    // Three more pages exist; the second of them fails: the first stays stored with its cursor.
    const more = fakeTarget(6);
    more.failAt = "4";
    const failed = await runPull(depsOf(s, s.storage, more), JOB, "webhook");
    expect(failed).toMatchObject({ status: "failed", pages: 1, imported: 1, problem: { code: "http_503" } });
    expect(await deps.inbox.cursor("eco", "expenses")).toBe("4");
    expect((await recentRuns(s.storage, "eco", "expenses")).map((r) => [r.status, r.errorCode])).toEqual([
      ["failed", "http_503"],
      ["ok", null],
    ]);
    expect(more.calls).toEqual(["3", "4"]);
  });

  test("a failed run's log line says what to do (the problem's hint), as its job_runs row does", async () => {
    const s = await open(engine);
    const target = fakeTarget(2);
    target.failAt = "1";
    const lines: { msg: string; code?: string; hint?: string }[] = [];
    const log = createLogger("warn", {}, (l) => lines.push(JSON.parse(l)));
    expect(await runPull({ ...depsOf(s, s.storage, target), log }, JOB, "manual")).toMatchObject({ status: "failed" });
    expect(lines.find((l) => l.msg === "pull failed")).toMatchObject({ code: "http_503", hint: "Usually temporary." });
  });

  test("a job never has two runs at once; a schedule slot runs once, but a failed one may be caught up", async () => {
    const s = await open(engine);
    const target = fakeTarget(1);
    const deps = depsOf(s, s.storage, target);
    const slot = Date.UTC(2026, 11, 1, 6);
    target.hold();
    const running = runPull(deps, JOB, "schedule", slot);
    await waitFor("the scheduled run under way", () => target.calls.length === 1);
    expect(await runPull(deps, JOB, "schedule", slot)).toEqual({ status: "busy" });
    expect(await runPull(deps, JOB, "manual")).toEqual({ status: "busy" });
    target.release();
    expect(await running).toMatchObject({ status: "ok", imported: 1 });
    // Done: the same slot again (a late worker's cron, a catch-up) does nothing; a run asked for does.
    expect(await runPull(deps, JOB, "catch-up", slot)).toEqual({ status: "busy" });
    expect(await runPull(deps, JOB, "manual")).toMatchObject({ status: "ok" });
    expect(await slotRuns(s.storage, slot)).toEqual([{ status: "ok" }]);

    const next = slot + 86_400_000;
    target.failAt = await deps.inbox.cursor("eco", "expenses");
    expect(await runPull(deps, JOB, "schedule", next)).toMatchObject({ status: "failed" });
    target.failAt = null;
    expect(await runPull(deps, JOB, "catch-up", next)).toMatchObject({ status: "ok" });
    expect((await slotRuns(s.storage, next)).map((r) => r.status).sort()).toEqual(["failed", "ok"]);
  });

  test("two workers fire the same schedule slots at once: each slot is run by exactly one of them", async () => {
    const s = await open(engine);
    const target = fakeTarget(2);
    const workers = [depsOf(s, s.storage, target), depsOf(s, await s.worker(), target)];
    const slots = Array.from({ length: 12 }, (_, i) => Date.UTC(2026, 11, 1, i));
    const results = [];
    for (const slot of slots) {
      const [a, b] = await Promise.all(workers.map((w) => runPull(w, JOB, "schedule", slot)));
      results.push([a!.status, b!.status].sort());
    }
    expect(results).toEqual(slots.map(() => ["busy", "ok"]));
    for (const slot of slots) expect(await slotRuns(s.storage, slot)).toEqual([{ status: "ok" }]);
    // Each run pulled its pages once: the first from the start, the others from where the one before stopped.
    expect(target.calls.length).toBe(2 + (slots.length - 1));
  });
});

describe.each(engines)("the inbox across workers (%s)", (engine) => {
  test("two workers store pages of two jobs at once: every item stored once, each at a feed position of its own", async () => {
    const s = await open(engine);
    const inboxes = [new Inbox(s.storage), new Inbox(await s.worker())];
    const stored: string[] = [];
    for (let round = 1; round <= 10; round++) {
      await Promise.all(
        inboxes.map((inbox, w) => {
          const items = Array.from({ length: 5 }, (_, i) => ({ remoteId: `${w}:${round}:${i}`, type: "expense.posted", data: { i } }));
          stored.push(...items.map((i) => i.remoteId));
          return inbox.storeBatch("eco", w === 0 ? "expenses" : "payments", items, String(round));
        }),
      );
    }
    const feed = await inboxes[0]!.feed({ after: 0, limit: 1000 });
    expect(feed.rows.map((r) => r.remoteId).toSorted()).toEqual(stored.toSorted());
    expect(new Set(feed.rows.map((r) => r.seq)).size).toBe(stored.length);
    expect([await inboxes[0]!.cursor("eco", "expenses"), await inboxes[1]!.cursor("eco", "payments")]).toEqual(["10", "10"]);
  });
});

describe.each(engines)("the schedule across workers (%s)", (engine) => {
  test("two schedulers fire every second's slot: each slot is run once, by one of them", async () => {
    const s = await open(engine);
    const target = fakeTarget(1);
    const fired = new Map<number, number>();
    const schedulers = [s.storage, await s.worker()].map((storage) => {
      const deps = depsOf(s, storage, target);
      const scheduler = new Scheduler([{ ...JOB, cron: "* * * * * *" }], {
        storage,
        log: silentLogger,
        debounceMs: 10,
        run: (job, trigger, slot) => {
          if (slot !== null) fired.set(slot, (fired.get(slot) ?? 0) + 1);
          return runPull(deps, job, trigger, slot);
        },
      });
      cleanups.push(() => scheduler.stop(5000));
      return scheduler;
    });
    await Promise.all(schedulers.map((x) => x.start()));
    await waitFor("three slots fired by both schedulers", () => [...fired.values()].filter((n) => n === 2).length >= 3, 20_000);
    await Promise.all(schedulers.map((x) => x.stop(5000)));
    const runs = await s.storage.all<{ slot: number; n: number }>(
      `SELECT slot, count(*) AS n FROM job_runs WHERE status = 'ok' GROUP BY slot ORDER BY slot`,
    );
    const twice = [...fired].filter(([, n]) => n === 2).map(([slot]) => slot);
    for (const slot of twice) expect(runs.find((r) => r.slot === slot)?.n).toBe(1);
    expect(runs.every((r) => r.n === 1)).toBe(true);
    // Only the runs made pulled: one page each, never a second pull of a slot.
    expect(target.calls.length).toBe(runs.length);
  }, 30_000);
});

describe.each(engines)("PSA webhook delivery across workers (%s)", (engine) => {
  test("two deliverers send every inbox item, none twice", async () => {
    const s = await open(engine);
    const received: string[] = [];
    const psa = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        const items = JSON.parse(await req.text()).items as { remoteId: string }[];
        received.push(...items.map((i) => i.remoteId));
        await Bun.sleep(5); // a request takes a moment: the other deliverer looks meanwhile
        return new Response("ok");
      },
    });
    cleanups.push(() => psa.stop(true));
    const ids = Array.from({ length: 60 }, (_, i) => `entry:${i + 1}`);
    await new Inbox(s.storage).storeBatch(
      "eco",
      "expenses",
      ids.map((remoteId) => ({ remoteId, type: "expense.posted", data: { remoteId } })),
      null,
    );
    for (const storage of [s.storage, await s.worker()]) {
      const deliverer = new PsaDeliverer(
        new Inbox(storage),
        {
          url: `http://127.0.0.1:${psa.port}/hook`,
          secret: "psa-secret-0123456789abcdef",
          batchSize: 4,
          maxBodyBytes: 1_000_000,
          timeoutMs: 5000,
          retryBaseMs: 40,
          retryMaxMs: 1000,
          pollMs: 20,
          userAgent: "kontobro-test",
        },
        silentLogger,
      );
      deliverer.start();
      cleanups.push(() => deliverer.stop());
    }
    const delivered = async () =>
      (await s.storage.get<{ n: number }>(`SELECT count(*) AS n FROM inbox WHERE state = 'delivered'`))!.n === ids.length;
    await waitFor("every item delivered", delivered, 30_000);
    expect(received.toSorted()).toEqual(ids.toSorted());
  }, 40_000);
});
