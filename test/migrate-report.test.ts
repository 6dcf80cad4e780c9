// agent/db/pg/migrate-report.ts: what a worker logs while an upgrade's index step runs long or it waits for another's
// migration (pure; test/pg-migrate-concurrent.test.ts gathers the facts on a real server).
import { describe, expect, test } from "bun:test";
import { retryPause } from "../agent/db/pg/migrate.ts";
import {
  deadlockOf,
  describeLockTimeout,
  describeLockWait,
  describeSlowStep,
  duration,
  type Session,
} from "../agent/db/pg/migrate-report.ts";

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
      reason: "lock_timeout",
      statements: 1,
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
    expect(r.msg).toContain("hold up other statements on the tables it alters for up to 3000 ms;");
    expect(r.fields).toMatchObject({ attempts: 2, retryInS: 2, lock: { relation: "deliveries" }, blockers: [{ pid: 4242 }] });
    // A row's lock, its holder not seen (the wait ended between two looks).
    const row = describeLockTimeout({
      what: "migration 0016_x",
      reason: "lock_timeout",
      statements: 1,
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

  test("in a migration of several statements a lock taken early is kept while each later statement waits: the stall it can cause adds up", () => {
    const r = describeLockTimeout({
      what: "migration 0016_x",
      reason: "lock_timeout",
      statements: 3,
      attempts: 1,
      lockTimeoutMs: 3_000,
      waitingMs: 3_000,
      retryInMs: 1_000,
      lock: { relation: "deliveries", mode: "AccessExclusiveLock", locktype: "relation" },
      blockers: [psql],
    });
    expect(r.msg).toContain(
      "each attempt can hold up other statements on the tables it alters for up to 3 × 3000 ms (a lock taken by one of its 3 statements is kept while each later one waits up to lock_timeout)",
    );
    expect(r.msg).not.toContain("at most");
  });

  test("a deadlock's DETAIL gives the lock the migration's session waited for and the other sessions in it", () => {
    const detail =
      "Process 8141 waits for AccessExclusiveLock on relation 16389 of database 16385; blocked by process 8142.\n" +
      "Process 8142 waits for AccessShareLock on relation 16386 of database 16385; blocked by process 8141.";
    expect(deadlockOf(detail, 8141)).toEqual({
      lock: { mode: "AccessExclusiveLock", locktype: "relation", relationOid: 16389 },
      others: [8142],
    });
    expect(deadlockOf(detail, 8142)).toEqual({
      lock: { mode: "AccessShareLock", locktype: "relation", relationOid: 16386 },
      others: [8141],
    });
    // Three in the cycle, the migration waiting for a row's transaction.
    const three =
      "Process 1 waits for ShareLock on transaction 755; blocked by process 2.\n" +
      "Process 2 waits for ExclusiveLock on tuple (0,5) of relation 163 of database 5; blocked by process 3.\n" +
      "Process 3 waits for AccessShareLock on relation 170 of database 5; blocked by process 1.";
    expect(deadlockOf(three, 1)).toEqual({ lock: { mode: "ShareLock", locktype: "transactionid", relationOid: null }, others: [2, 3] });
    expect(deadlockOf(three, 2).lock).toEqual({ mode: "ExclusiveLock", locktype: "tuple", relationOid: 163 });
    expect(deadlockOf("", 1)).toEqual({ lock: null, others: [] });
  });

  test("a migration ended by a deadlock says so, names the other session and that it is tried again", () => {
    const worker: Session = { ...psql, application: "kontobro-worker", user: "kontobro", query: "SELECT …" };
    const r = describeLockTimeout({
      what: "migration 0016_x",
      reason: "deadlock",
      statements: 2,
      attempts: 1,
      lockTimeoutMs: 3_000,
      waitingMs: 1_000,
      retryInMs: 1_000,
      lock: { relation: "deliveries", mode: "AccessExclusiveLock", locktype: "relation" },
      blockers: [worker],
    });
    expect(r.msg).toStartWith(
      "migration 0016_x met pid 4242 (application_name kontobro-worker, role kontobro, idle in transaction, its transaction open 5 min) in a deadlock while waiting for AccessExclusiveLock on deliveries (each waited for a lock the other held; PostgreSQL's deadlock check ended the migration's transaction after deadlock_timeout). It was rolled back, nothing of it applied; attempt 2 in 1 s",
    );
    expect(r.msg).toContain("up to 2 × 3000 ms");
    expect(r.msg).toContain("The other transaction went on");
    expect(r.fields).toMatchObject({ reason: "deadlock", statements: 2, blockers: [{ pid: 4242 }] });
    // The other session ended before it was looked up.
    const gone = describeLockTimeout({
      what: "migration 0016_x",
      reason: "deadlock",
      statements: 1,
      attempts: 1,
      lockTimeoutMs: 3_000,
      waitingMs: 1_000,
      retryInMs: 1_000,
      lock: null,
      blockers: [],
    });
    expect(gone.msg).toStartWith("migration 0016_x met another transaction in a deadlock while waiting for a lock (");
  });

  test("the pause between attempts doubles up to its ceiling", () => {
    expect([1, 2, 3, 7, 8, 40].map((n) => retryPause(n))).toEqual([1_000, 2_000, 4_000, 60_000, 60_000, 60_000]);
    expect([1, 2, 3].map((n) => retryPause(n, { retryPauseMs: 300, maxRetryPauseMs: 600 }))).toEqual([300, 600, 600]);
  });
});
