// A webhook hint that lands on one worker while another worker's run of the same job is under way (issue 17, review
// finding): the hinted run is answered "busy" by the run row the other worker holds, yet the change the hint points at
// may be newer than that run's fetch, so one more run must follow once the other ends. Two schedulers on the same
// storage, each with its own worker's runner (PostgreSQL: clients of their own; SQLite: the data directory's job lock
// held by the other), a job with no schedule, so nothing but the hint could ever pull the change.
import { afterEach, describe, expect, test } from "bun:test";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { silentLogger } from "../agent/log.ts";
import { Inbox } from "../agent/pulls/inbox.ts";
import { type JobRef, recentRuns, runPull, type RunResult } from "../agent/pulls/runner.ts";
import { Scheduler } from "../agent/pulls/scheduler.ts";
import type { Trigger } from "../agent/states.ts";
import { type EngineStorage, workerEngines } from "./engines.ts";
import { waitFor } from "./helpers.ts";
import { pullOnlyConnector } from "./paged-target.ts";

const { engines, open } = workerEngines("the hint on a busy job tests");
const JOB: JobRef = { target: "eco", stream: "expenses", timezone: "UTC" };

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * The target's entries, one per page (the cursor is the number read). A pull reads the entries as they are when it is
 * called; `holdAt(cursor)` keeps the pull from that cursor waiting (with what it read) until `release()`.
 */
function changingTarget(entries: string[]) {
  const calls: (string | null)[] = [];
  let heldAt: string | null = null;
  let release = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const connector = pullOnlyConnector(async (_stream, cursor) => {
    calls.push(cursor);
    const read = entries.slice();
    if (cursor === heldAt) await gate;
    const n = Number(cursor ?? 0);
    const page = read.slice(n, n + 1);
    return {
      items: page.map((text) => ({ remoteId: text, type: "expense.posted", data: { text } })),
      cursor: String(n + page.length),
      more: n + 1 < read.length,
    };
  });
  return {
    connector,
    calls,
    entries,
    holdAt: (cursor: string) => {
      heldAt = cursor;
    },
    release,
  };
}

/** One worker's scheduler for the job (no schedule), its runs' outcomes in `outcomes`. */
function schedulerOn(s: EngineStorage, storage: SqlRunner, target: ReturnType<typeof changingTarget>) {
  const outcomes: RunResult["status"][] = [];
  const deps = {
    db: s.db,
    storage,
    inbox: new Inbox(storage),
    dataDir: s.engine === "sqlite" ? s.dataDir : null,
    worker: s.workerOf(storage),
    connectors: new Map([["eco", target.connector]]),
    log: silentLogger,
  };
  const scheduler = new Scheduler([{ ...JOB, cron: null }], {
    storage,
    log: silentLogger,
    debounceMs: 10,
    recheckMs: 50,
    run: async (job: JobRef, trigger: Trigger, slot: number | null) => {
      const result = await runPull(deps, job, trigger, slot);
      outcomes.push(result.status);
      return result;
    },
  });
  cleanups.push(() => scheduler.stop(5000));
  return { scheduler, outcomes, inbox: deps.inbox };
}

describe.each(engines)("a hint while another worker runs the job (%s)", (engine) => {
  test("the hinted worker runs the job once the other's run ends: the entry added after that run's fetch lands in the inbox", async () => {
    const s = await open(engine);
    const target = changingTarget(["entry 1", "entry 2"]);
    const a = schedulerOn(s, s.storage, target);
    const b = schedulerOn(s, await s.worker(), target);
    await Promise.all([a.scheduler.start(), b.scheduler.start()]);

    // Worker A's run has read page 2 (the last one it knows of) and is held there.
    target.holdAt("1");
    const runOnA = a.scheduler.runNow("eco", "expenses", "manual");
    await waitFor("A's run held on its second page", () => target.calls.includes("1"));
    // A new entry at the target after A's fetch, and its hint on worker B: B's run finds A's run under way.
    target.entries.push("entry 3");
    expect(b.scheduler.hint("eco", "expenses")).toBe(true);
    await waitFor("B's hinted run answered busy", () => b.outcomes.includes("busy"));
    expect(b.outcomes.every((o) => o === "busy")).toBe(true);

    target.release();
    expect(await runOnA).toMatchObject({ status: "ok", imported: 2 });
    await waitFor("the entry added after A's fetch in the inbox", async () =>
      (await a.inbox.feed({ after: 0, limit: 100 })).rows.some((r) => r.remoteId === "entry 3"),
    );
    await waitFor("B's hinted run finished", () => b.outcomes.includes("ok"));
    const feed = await a.inbox.feed({ after: 0, limit: 100 });
    expect(feed.rows.map((r) => r.remoteId)).toEqual(["entry 1", "entry 2", "entry 3"]);
    // One run each: A's manual run, then B's hinted one (on B's worker), which pulled from where A's stopped.
    const runs = await recentRuns(s.storage, "eco", "expenses");
    expect(runs.map((r) => [r.trigger, r.status, r.imported])).toEqual([
      ["webhook", "ok", 1],
      ["manual", "ok", 2],
    ]);
    expect(b.outcomes.filter((o) => o !== "busy")).toEqual(["ok"]);
    expect(target.calls).toEqual([null, "1", "2"]);
  }, 60_000);
});
