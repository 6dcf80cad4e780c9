// The scheduler: no overlapping runs, debounced webhook hints, catch-up at start, and what node-cron's
// time zones do under Bun (the findings documented in README.md).
import { afterEach, describe, expect, setSystemTime, test } from "bun:test";
import { join } from "node:path";
import cron from "node-cron";
import { missedSlot, scheduleProblems, todayIn } from "../agent/pulls/cron.ts";
import { openDatabase, type Db } from "../agent/db/index.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { tryJobLock } from "../agent/lock.ts";
import { silentLogger } from "../agent/log.ts";
import type { JobRef, RunResult } from "../agent/pulls/runner.ts";
import type { Trigger } from "../agent/states.ts";
import { Scheduler, type ScheduledJob } from "../agent/pulls/scheduler.ts";
import { tempDir, waitFor } from "./helpers.ts";

const OK: RunResult = { status: "ok", runId: 1, fetched: 0, imported: 0, duplicates: 0, ignored: 0, pages: 1 };
const job = (cron: string | null, timezone = "Europe/Copenhagen", stream = "expenses"): ScheduledJob => ({
  target: "eco",
  stream,
  cron,
  timezone,
});

/** A job body that records its calls and finishes only when released. */
function gatedBody() {
  const calls: { job: JobRef; trigger: Trigger }[] = [];
  let release!: () => void;
  let gate = new Promise<void>((r) => {
    release = r;
  });
  return {
    calls,
    release: () => {
      release();
      gate = new Promise<void>((r) => {
        release = r;
      });
    },
    run: async (j: JobRef, trigger: Trigger): Promise<RunResult> => {
      calls.push({ job: j, trigger });
      await gate;
      return OK;
    },
  };
}

let db: Db;
let scheduler: Scheduler | undefined;
const freshDb = () => (db = openDatabase(join(tempDir("kontobro-sched-"), "k.db")));
afterEach(async () => {
  await scheduler?.stop(1000);
  scheduler = undefined;
  db?.$client.close();
  setSystemTime();
});

describe("scheduler", () => {
  test("a job never runs twice at once; a hint during a run brings one more run after it", async () => {
    freshDb();
    const body = gatedBody();
    scheduler = new Scheduler([job(null)], { storage: sqliteRunner(db.$client), log: silentLogger, debounceMs: 10, run: body.run });
    const first = scheduler.runNow("eco", "expenses", "manual");
    expect(await scheduler.runNow("eco", "expenses", "manual")).toEqual({ status: "busy" });
    expect(scheduler.isRunning("eco", "expenses")).toBe(true);
    scheduler.hint("eco", "expenses");
    scheduler.hint("eco", "expenses");
    expect(body.calls).toHaveLength(1);
    body.release();
    expect(await first).toEqual(OK);
    await waitFor("the follow-up run", () => body.calls.length === 2);
    expect(body.calls.map((c) => c.trigger)).toEqual(["manual", "webhook"]);
    body.release();
    await waitFor("idle", () => !scheduler!.isRunning("eco", "expenses"));
    expect(await scheduler.runNow("eco", "nope", "manual")).toEqual({ status: "unknown_job" });
  });

  test("a burst of webhook hints starts one run", async () => {
    freshDb();
    const body = gatedBody();
    scheduler = new Scheduler([job(null)], { storage: sqliteRunner(db.$client), log: silentLogger, debounceMs: 300, run: body.run });
    for (let i = 0; i < 5; i++) scheduler.hint("eco", "expenses");
    await waitFor("the debounced run", () => body.calls.length === 1);
    body.release();
    await waitFor("idle", () => !scheduler!.isRunning("eco", "expenses"));
    expect(body.calls.map((c) => c.trigger)).toEqual(["webhook"]);
  });

  test("webhook hints that never stop (a target booking a long batch) do not postpone the hinted run for ever", async () => {
    freshDb();
    const body = gatedBody();
    scheduler = new Scheduler([job(null)], { storage: sqliteRunner(db.$client), log: silentLogger, debounceMs: 300, run: body.run });
    const started = Date.now();
    // A hint every 50 ms for 1.5 s: the run starts within the debounce of the first, while the hints still come.
    while (Date.now() - started < 1500 && body.calls.length === 0) {
      scheduler.hint("eco", "expenses");
      await Bun.sleep(50);
    }
    expect(body.calls).toHaveLength(1);
    body.release();
    await waitFor("idle", () => !scheduler!.isRunning("eco", "expenses") && body.calls.length >= 1);
  });

  test("the job lock keeps a second process (or connection) out while a run holds it", () => {
    const dir = tempDir("kontobro-lock-");
    const first = tryJobLock(dir, "eco", "expenses")!;
    expect(first).not.toBeNull();
    expect(tryJobLock(dir, "eco", "expenses")).toBeNull();
    const other = tryJobLock(dir, "eco", "payments");
    expect(other).not.toBeNull();
    first.release();
    other!.release();
    const again = tryJobLock(dir, "eco", "expenses");
    expect(again).not.toBeNull();
    again!.release();
  });

  test("catch-up at start: a run due while the agent was down is made once; none on a first start", async () => {
    freshDb();
    const now = Date.parse("2026-03-10T12:00:00Z");
    const body = gatedBody();
    const jobs = [job("0 6 * * *"), job("0 23 * * *", "Europe/Copenhagen", "payments")];
    scheduler = new Scheduler(jobs, {
      storage: sqliteRunner(db.$client),
      log: silentLogger,
      debounceMs: 10,
      run: body.run,
      now: () => now,
    });
    expect(await scheduler.dueForCatchUp()).toEqual([]); // first start: nothing was ever due
    // Down since three days before; the last good expenses run was then, payments ran this morning at 00:00.
    db.$client.run(`UPDATE settings SET value = ?1 WHERE name LIKE 'pull_first_seen:%'`, [String(now - 3 * 86_400_000)]);
    db.$client.run(
      `INSERT INTO job_runs (target, stream, trigger, status, started_at) VALUES ('eco', 'expenses', 'schedule', 'ok', ?1), ('eco', 'payments', 'schedule', 'ok', ?2)`,
      [now - 3 * 86_400_000, Date.parse("2026-03-09T22:00:00Z")],
    );
    expect((await scheduler.dueForCatchUp()).map((d) => d.job.stream)).toEqual(["expenses"]);
    // A failed or interrupted run does not count as done: the slot is still caught up.
    db.$client.run(
      `INSERT INTO job_runs (target, stream, trigger, status, started_at) VALUES ('eco', 'expenses', 'schedule', 'failed', ?1)`,
      [now - 60_000],
    );
    expect((await scheduler.dueForCatchUp()).map((d) => d.job.stream)).toEqual(["expenses"]);
    scheduler.start();
    await waitFor("the catch-up run", () => body.calls.length === 1);
    expect(body.calls[0]).toMatchObject({ trigger: "catch-up", job: { stream: "expenses" } });
    body.release();
  });

  test("a cron job with a stated time zone fires under Bun (Asia/Kathmandu, UTC+05:45)", async () => {
    freshDb();
    const body = gatedBody();
    scheduler = new Scheduler([job("* * * * * *", "Asia/Kathmandu")], {
      storage: sqliteRunner(db.$client),
      log: silentLogger,
      debounceMs: 10,
      run: async (j, t) => {
        body.calls.push({ job: j, trigger: t });
        return OK;
      },
    });
    scheduler.start();
    await waitFor("a scheduled run", () => body.calls.some((c) => c.trigger === "schedule"), 10_000);
    expect(scheduler.describe()[0]!.next).toBeInstanceOf(Date);
  });
});

describe("time zones and DST (node-cron under Bun)", () => {
  test("a stated time zone gives the same instants whatever the process's TZ is", async () => {
    const outputs = await Promise.all(
      ["UTC", "America/New_York", "Asia/Tokyo"].map(async (tz) => {
        const proc = Bun.spawn([process.execPath, join(import.meta.dir, "fixtures/cron-probe.ts")], {
          env: { ...process.env, TZ: tz },
          stdout: "pipe",
          stderr: "pipe",
        });
        const out = JSON.parse(await new Response(proc.stdout).text());
        expect(await proc.exited).toBe(0);
        expect(out.processZone).toBe(tz);
        return out;
      }),
    );
    for (const out of outputs) {
      expect(out.winter).toEqual([true, false]);
      expect(out.summer).toEqual([true, false]);
      expect(out.missed).toBe("2026-07-14T21:00:00.000Z");
      expect(out.today).toBe("2026-07-16");
    }
    // Without a stated zone the process's TZ decides: the reason kontobro always passes one.
    expect(outputs.map((o) => o.withoutZoneAt2300Z)).toEqual([true, false, false]);
  });

  test("spring forward: a job at a local time that does not exist is skipped that day", () => {
    setSystemTime(new Date("2026-03-28T12:00:00Z"));
    const task = cron.createTask("30 2 * * *", () => {}, { timezone: "Europe/Copenhagen" });
    expect(task.getNextRuns(2).map((d) => d.toISOString())).toEqual(["2026-03-30T00:30:00.000Z", "2026-03-31T00:30:00.000Z"]);
    expect(
      missedSlot("30 2 * * *", "Europe/Copenhagen", Date.parse("2026-03-28T12:00:00Z"), Date.parse("2026-03-29T12:00:00Z")),
    ).toBeNull();
    void task.destroy();
  });

  test("fall back: a job in the repeated hour runs once, at its second occurrence", () => {
    setSystemTime(new Date("2026-10-24T12:00:00Z"));
    const daily = cron.createTask("30 2 * * *", () => {}, { timezone: "Europe/Copenhagen" });
    expect(daily.getNextRuns(2).map((d) => d.toISOString())).toEqual(["2026-10-25T01:30:00.000Z", "2026-10-26T01:30:00.000Z"]);
    setSystemTime(new Date("2026-10-24T23:30:00Z"));
    const hourly = cron.createTask("0 * * * *", () => {}, { timezone: "Europe/Copenhagen" });
    // 02:00 CEST (00:00Z) is not run; 02:00 CET (01:00Z) is.
    expect(hourly.getNextRuns(2).map((d) => d.toISOString())).toEqual(["2026-10-25T01:00:00.000Z", "2026-10-25T02:00:00.000Z"]);
    void daily.destroy();
    void hourly.destroy();
  });

  test("the defaults (06:00 and 23:00 Europe/Copenhagen) keep clear of the DST hours", () => {
    for (const [expr, since, now] of [
      ["0 6 * * *", "2026-03-28T12:00:00Z", "2026-03-29T12:00:00Z"],
      ["0 23 * * *", "2026-10-25T12:00:00Z", "2026-10-26T12:00:00Z"],
    ] as const) {
      expect(missedSlot(expr, "Europe/Copenhagen", Date.parse(since), Date.parse(now))).not.toBeNull();
    }
  });

  test("schedules are validated with plain messages", () => {
    expect(scheduleProblems("0 6 * * *", "Europe/Oslo", "x")).toEqual([]);
    const [bad, zone] = scheduleProblems("0 25 * * *", "Europe/Atlantis", "targets[0].pulls.expenses");
    expect(bad!.field).toBe("targets[0].pulls.expenses.cron");
    expect(bad!.message).toContain("hour");
    expect(zone!.message).toContain("Europe/Atlantis");
    expect(zone!.hint).toContain("Europe/Copenhagen");
    expect(todayIn("Pacific/Kiritimati", Date.parse("2026-11-21T10:00:00Z"))).toBe("2026-11-22");
  });
});
