// The server's clock went back (a clock that ran an hour ahead corrected by NTP, a VM restored) while kontobro was
// stopped: the retry times, the late-answer hold and the target's pause it had stored were set by the clock as it was,
// an hour ahead. Real parts: the agent on a real SQLite file, the e-conomic sandbox over loopback; the stored times are
// written into the file as that clock wrote them. Before, nothing was sent for an hour; now each is due as long after
// the start as it was after its write, and the hold is not shortened.
import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { Outbox } from "../agent/outbox.ts";
import { databasePath } from "../agent/storage.ts";
import { enqueueCustomers, memoryTarget, testDispatcher } from "./dispatch-fixture.ts";
import { type Stack, startStack } from "./e2e-harness.ts";
import { customerEvent, tempDir, waitFor } from "./helpers.ts";

const HOUR = 3_600_000;
let stack: Stack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

test("after the clock went back an hour, retries, the hold and the pause stored by the clock as it was go as long after the start as they were set for", async () => {
  stack = await startStack({ economic: { paused: true, late_answer_wait_ms: 3000 } });
  expect((await stack.post([customerEvent(101), customerEvent(102)])).status).toBe(202);
  await stack.agent.stop();

  // Written by the clock an hour ahead: a retry 2 s after its write, a hold of the late-answer wait (3 s) after a lease
  // was taken back, and the target's pause (Retry-After 1 s).
  const ahead = Date.now() + HOUR;
  const db = new Database(databasePath(stack.dataDir));
  // The stopped agent's intake thread may still be closing its connection.
  db.exec("PRAGMA busy_timeout = 10000");
  const set = db.query("UPDATE deliveries SET next_attempt_at = ?2, updated_at = ?3, error_code = ?4, uncertain = ?5 WHERE key = ?1");
  set.run("101", ahead + 2000, ahead, "http_503", 0);
  set.run("102", ahead + 3000, ahead, "interrupted", 1);
  db.query(
    `INSERT INTO target_state (target, paused_until, pause_reason, breaker, failures, next_probe_at, updated_at)
     VALUES ('eco', ?1, '429: Retry-After 1', 'half_open', 0, ?1, ?2)
     ON CONFLICT (target) DO UPDATE SET paused_until = excluded.paused_until, pause_reason = excluded.pause_reason,
       breaker = excluded.breaker, next_probe_at = excluded.next_probe_at, updated_at = excluded.updated_at`,
  ).run(ahead + 1000, ahead);
  db.close();

  const started = Date.now();
  await stack.restartWith({ paused: false });
  await waitFor("both delivered", async () => (await stack!.deliveries("done")).length === 2, 20_000);
  const done = new Database(databasePath(stack.dataDir), { readonly: true });
  const doneAt = (key: string) => (done.query("SELECT done_at AS t FROM deliveries WHERE key = ?1").get(key) as { t: number }).t;
  // The hold is whole: a write of the interrupted push may still land within late_answer_wait_ms of the start.
  expect(doneAt("102") - started).toBeGreaterThanOrEqual(3000);
  expect(doneAt("101") - started).toBeGreaterThanOrEqual(2000);
  expect(doneAt("101") - started).toBeLessThan(HOUR);
  done.close();
}, 40_000);

// A worker among many (hosted, PostgreSQL) does not reschedule: each worker judges due times by the database's clock
// as its own last heartbeat measured it, so a reschedule by one that has seen the database's clock go back would make
// due, on another that has not measured it yet, a late-answer hold not over: a write that may still land sent again.
// Real outbox and dispatcher on a real SQLite file (the rule is the dispatcher's, the same on either engine).
test("a worker among many leaves a hold stored ahead as it is; the sole worker reschedules it", async () => {
  for (const soleWorker of [false, true]) {
    const dir = tempDir("kontobro-clock-back-");
    const db = openDatabase(join(dir, "k.db"));
    const outbox = new Outbox(sqliteRunner(db.$client));
    await enqueueCustomers(outbox, [7]);
    const ahead = Date.now() + HOUR;
    db.$client
      .query("UPDATE deliveries SET next_attempt_at = ?1, updated_at = ?2, uncertain = 1, error_code = 'interrupted'")
      .run(ahead + 600, ahead);
    const { connector, pushed } = memoryTarget(false);
    const d = testDispatcher(outbox, connector, { soleWorker });
    d.start();
    try {
      if (soleWorker) await waitFor("the hold rescheduled and sent after it", () => pushed.length === 1, 10_000);
      else {
        await Bun.sleep(1500);
        expect(pushed).toEqual([]);
        const row = db.$client.query("SELECT next_attempt_at AS due FROM deliveries").get() as { due: number };
        expect(row.due).toBe(ahead + 600);
      }
    } finally {
      await d.stop(1_000);
      db.$client.close();
    }
  }
}, 30_000);
