// agent/db/pg/migrate-report.ts: what a worker logs while an upgrade's index step runs long or it waits for another's
// migration (pure; test/pg-migrate-concurrent.test.ts gathers the facts on a real server).
import { describe, expect, test } from "bun:test";
import { retryPause } from "../agent/db/pg/migrate.ts";
import { describeLockTimeout, describeLockWait, describeSlowStep, duration, type Session } from "../agent/db/pg/migrate-report.ts";

const psql: Session = {
  pid: 4242,
  application: "psql",
  user: "ops",
  state: "idle in transaction",
  transactionMs: 330_000,
  query: "UPDATE deliveries SET note = 'x' WHERE id = 1",
};
const step = { op: "create", name: "deliveries_record_kb_build", sql: "" } as const;

describe("reports of a long migration", () => {
  test("durations", () => {
    expect([duration(400), duration(45_000), duration(180_000), duration(7_500_000)]).toEqual(["0 s", "45 s", "3 min", "2 h 5 min"]);
  });

  test("a step held up names the blockers and says how to end them", () => {
    const r = describeSlowStep({
      step,
      migration: "0013_x",
      runningMs: 120_000,
      waitEvent: "Lock: virtualxid",
      phase: null,
      blockers: [psql],
    });
    expect(r.msg).toStartWith(
      "an index step has run for 2 min: building an index (CONCURRENTLY) deliveries_record_kb_build (migration 0013_x), waiting for pid 4242 (application_name psql, role ops, idle in transaction, its transaction open 5 min).",
    );
    expect(r.msg).toContain("COMMIT or ROLLBACK in its session, or SELECT pg_terminate_backend(pid)");
    expect(r.msg).not.toContain("pg_read_all_stats");
    expect(r.fields).toMatchObject({ index: "deliveries_record_kb_build", runningS: 120, blockers: [{ pid: 4242, transactionS: 330 }] });
    // Another role's session: its state is not visible to kontobro's role.
    const hidden = describeSlowStep({
      step,
      migration: "0013_x",
      runningMs: 60_000,
      waitEvent: null,
      phase: null,
      blockers: [{ ...psql, state: null, transactionMs: null, query: null }],
    });
    expect(hidden.msg).toContain("pid 4242 (application_name psql, role ops, state not visible to this role)");
    expect(hidden.msg).toContain("pg_read_all_stats");
  });

  test("a step that waits for no one says what it is doing", () => {
    const r = describeSlowStep({
      step,
      migration: "0013_x",
      runningMs: 61_000,
      waitEvent: null,
      phase: "building index: scanning table",
      blockers: [],
    });
    expect(r.msg).toContain("(migration 0013_x), building index: scanning table; no other session holds it up");
  });

  test("a process waiting for another's migration", () => {
    expect(describeLockWait({ waitedMs: 0, holder: null }).msg).toStartWith(
      "another kontobro process is migrating the database; this one starts when it is done",
    );
    const again = describeLockWait({
      waitedMs: 120_000,
      holder: { ...psql, application: "kontobro-worker", user: "kontobro", state: "active", query: "CREATE INDEX CONCURRENTLY …" },
    });
    expect(again.msg).toContain("(waiting for 2 min): pid 4242 (application_name kontobro-worker, role kontobro, active");
    expect(again.msg).toContain("running CREATE INDEX CONCURRENTLY …");
    expect(again.fields).toMatchObject({ waitedS: 120, holder: { pid: 4242 } });
  });

  test("a migration that gave up waiting for a lock names the lock and its holders, says nothing was applied and when it is tried again", () => {
    const r = describeLockTimeout({
      what: "migration 0016_x",
      attempts: 2,
      lockTimeoutMs: 3_000,
      waitingMs: 9_000,
      retryInMs: 2_000,
      lock: { relation: "deliveries", mode: "AccessExclusiveLock", locktype: "relation" },
      blockers: [psql],
    });
    expect(r.msg).toStartWith(
      "migration 0016_x could not take AccessExclusiveLock on deliveries within 3000 ms ([storage] migration_lock_timeout_ms), held by pid 4242 (application_name psql, role ops, idle in transaction, its transaction open 5 min). It was rolled back, nothing of it applied; attempt 3 in 2 s (waiting for 9 s so far).",
    );
    expect(r.msg).toContain("COMMIT or ROLLBACK in its session, or SELECT pg_terminate_backend(pid)");
    expect(r.fields).toMatchObject({ attempts: 2, retryInS: 2, lock: { relation: "deliveries" }, blockers: [{ pid: 4242 }] });
    // A row's lock, its holder not seen (the wait ended between two looks).
    const row = describeLockTimeout({
      what: "migration 0016_x",
      attempts: 1,
      lockTimeoutMs: 3_000,
      waitingMs: 3_000,
      retryInMs: 1_000,
      lock: { relation: null, mode: "ShareLock", locktype: "transactionid" },
      blockers: [],
    });
    expect(row.msg).toStartWith("migration 0016_x could not take ShareLock (transactionid: a row another transaction holds) within");
    expect(row.msg).toContain("look for long ones in pg_stat_activity");
  });

  test("the pause between attempts doubles up to its ceiling", () => {
    expect([1, 2, 3, 7, 8, 40].map((n) => retryPause(n))).toEqual([1_000, 2_000, 4_000, 60_000, 60_000, 60_000]);
    expect([1, 2, 3].map((n) => retryPause(n, { retryPauseMs: 300, maxRetryPauseMs: 600 }))).toEqual([300, 600, 600]);
  });
});
