// What a PostgreSQL migration says while it takes long (agent/db/pg/migrate.ts gathers the facts, the worker logs them
// and `kontobro storage check` prints them): an index step that has run for a while and what it waits on, and a process
// waiting for another's migration. A CONCURRENTLY build waits for every transaction open on its table when it starts
// (an operator's psql left in a transaction waits forever): without this, the migrating worker said nothing after its
// step's first line and the new workers never became ready. Pure.
import { describeIndexStep, type IndexStep } from "./index-steps.ts";

/** Another server session, as pg_stat_activity shows it to the role kontobro connects as. */
export interface Session {
  pid: number;
  /** application_name ('' when none). */
  application: string;
  user: string | null;
  /** 'idle in transaction', 'active', …; null when the role may not see it (another role's session). */
  state: string | null;
  /** How long its transaction has been open (ms), or null (none, or not visible). */
  transactionMs: number | null;
  /** Its last statement, shortened; null when not visible. */
  query: string | null;
}

/** An index step still running after a while. */
export interface SlowStep {
  step: IndexStep;
  migration: string;
  runningMs: number;
  /** What the step's session waits on (pg_stat_activity's wait_event_type: wait_event), or null. */
  waitEvent: string | null;
  /** pg_stat_progress_create_index's phase of a build, or null. */
  phase: string | null;
  /** The sessions it waits for (pg_blocking_pids). */
  blockers: Session[];
}

/** A process waiting for another's migration (the lock it polls is held). */
export interface LockWait {
  waitedMs: number;
  /** The session holding the lock, when visible. */
  holder: Session | null;
}

export interface Report {
  msg: string;
  fields: Record<string, unknown>;
}

/** "45 s", "3 min", "2 h 5 min". */
export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  return `${Math.floor(min / 60)} h ${min % 60} min`;
}

/** A session in a few words: "pid 4242 (psql, idle in transaction, its transaction open 5 min)". */
export function describeSession(s: Session): string {
  const parts = [s.application ? `application_name ${s.application}` : "no application_name"];
  if (s.user) parts.push(`role ${s.user}`);
  parts.push(s.state ?? "state not visible to this role");
  if (s.transactionMs !== null) parts.push(`its transaction open ${duration(s.transactionMs)}`);
  return `pid ${s.pid} (${parts.join(", ")})`;
}

const sessionFields = (s: Session) => ({
  pid: s.pid,
  application: s.application,
  user: s.user,
  state: s.state,
  transactionS: s.transactionMs === null ? null : Math.round(s.transactionMs / 1000),
  query: s.query,
});

/** The warn line repeated while an index step runs. */
export function describeSlowStep(r: SlowStep): Report {
  const { msg, index } = describeIndexStep(r.step);
  const fields = {
    index,
    migration: r.migration,
    runningS: Math.round(r.runningMs / 1000),
    waitEvent: r.waitEvent,
    phase: r.phase,
    blockers: r.blockers.map(sessionFields),
  };
  const what = `an index step has run for ${duration(r.runningMs)}: ${msg} ${index} (migration ${r.migration})`;
  const serving = "the workers already running serve meanwhile; new ones start when the steps are done";
  if (r.blockers.length > 0) {
    const hidden = r.blockers.some((b) => b.state === null);
    return {
      msg:
        `${what}, waiting for ${r.blockers.map(describeSession).join("; ")}. A concurrent build waits for every transaction ` +
        `open on its table when it starts: end ${r.blockers.length === 1 ? "that one" : "those"} (COMMIT or ROLLBACK in its ` +
        `session, or SELECT pg_terminate_backend(pid)); ${serving}` +
        (hidden ? ". A role granted pg_read_all_stats sees what another role's session is doing" : ""),
      fields,
    };
  }
  const doing = r.phase ? `, ${r.phase}` : r.waitEvent ? `, waiting on ${r.waitEvent}` : "";
  return {
    msg: `${what}${doing}; no other session holds it up: a build reads the whole table, minutes on a large one; ${serving}`,
    fields,
  };
}

/** The line told when a process starts waiting for another's migration, and again while it waits. */
export function describeLockWait(w: LockWait): Report {
  const since = w.waitedMs > 0 ? ` (waiting for ${duration(w.waitedMs)})` : "";
  const who = w.holder ? `: ${describeSession(w.holder)}${w.holder.query ? `, running ${w.holder.query}` : ""}` : "";
  return {
    msg:
      `another kontobro process is migrating the database${since}${who}; this one starts when it is done. ` +
      "The migrating process says every minute what an index step waits on",
    fields: { waitedS: Math.round(w.waitedMs / 1000), holder: w.holder ? sessionFields(w.holder) : null },
  };
}

/** The lock a migration's statement waited for (pg_locks: its relation, or the kind of lock when it has none, e.g. a row's). */
export interface WaitedLock {
  /** The table (or index) waited for, or null (a row's or a transaction's lock). */
  relation: string | null;
  /** pg_locks' mode: 'AccessExclusiveLock', … */
  mode: string;
  /** pg_locks' locktype: 'relation', 'transactionid', … */
  locktype: string;
}

/** Why a migration's transaction was rolled back: it waited lock_timeout for a lock (55P03), or met a deadlock (40P01). */
export type GaveUp = "lock_timeout" | "deadlock";

/**
 * A migration's transaction that gave up waiting for a lock (lock_timeout) or was ended by PostgreSQL's deadlock
 * check, and was rolled back, to be tried again.
 */
export interface LockTimeout {
  /** What was rolled back: "migration 0016_…" (or "forcing row-level security on new tables"). */
  what: string;
  reason: GaveUp;
  /**
   * How many statements its transaction runs: a lock one of them took is kept while each later one waits, up to
   * lock_timeout, so an attempt can hold up a table's other statements for up to this many lock_timeouts.
   */
  statements: number;
  /** How many attempts gave up so far. */
  attempts: number;
  lockTimeoutMs: number;
  /** Since its first attempt. */
  waitingMs: number;
  /** The pause before the next attempt. */
  retryInMs: number;
  /** The lock its statement waited for, as last seen while it waited; null when not seen. */
  lock: WaitedLock | null;
  /** The sessions it waited for then (pg_blocking_pids; in a deadlock, the others the server named). */
  blockers: Session[];
}

/** What a deadlock's DETAIL says: the lock the migration's session waited for, and the other sessions in it. */
export interface Deadlock {
  lock: { mode: string; locktype: string; relationOid: number | null } | null;
  others: number[];
}

/**
 * Reads a deadlock error's DETAIL ("Process 8141 waits for AccessExclusiveLock on relation 16389 of database 16385;
 * blocked by process 8142.", a line per process in the cycle) for session `pid`'s side. Pure.
 */
export function deadlockOf(detail: string, pid: number): Deadlock {
  let lock: Deadlock["lock"] = null;
  const others = new Set<number>();
  for (const line of detail.split("\n")) {
    const m = /^Process (\d+) waits for (\w+) on (.*?); blocked by process (\d+)\.?$/.exec(line.trim());
    if (!m) continue;
    for (const p of [Number(m[1]), Number(m[4])]) if (p !== pid) others.add(p);
    if (Number(m[1]) !== pid) continue;
    const object = m[3]!;
    const relation = /^(?:tuple \S+ of )?relation (\d+)/.exec(object);
    const locktype = object.startsWith("transaction ")
      ? "transactionid"
      : object.startsWith("tuple ")
        ? "tuple"
        : relation
          ? "relation"
          : object.split(" ")[0]!;
    lock = { mode: m[2]!, locktype, relationOid: relation ? Number(relation[1]) : null };
  }
  return { lock, others: [...others] };
}

/** The warn line told each time a migration gave up waiting for a lock or was ended by a deadlock. */
export function describeLockTimeout(r: LockTimeout): Report {
  const lock = r.lock
    ? `${r.lock.mode} ${r.lock.relation ? `on ${r.lock.relation}` : `(${r.lock.locktype}: a row another transaction holds)`}`
    : "a lock";
  const named = r.blockers.map(describeSession).join("; ");
  const hidden = r.blockers.some((b) => b.state === null);
  const one = r.blockers.length === 1;
  const deadlock = r.reason === "deadlock";
  const what = deadlock
    ? `${r.what} met ${named || "another transaction"} in a deadlock while waiting for ${lock} (each waited for a lock ` +
      `the other held; PostgreSQL's deadlock check ended the migration's transaction after deadlock_timeout)`
    : `${r.what} could not take ${lock} within ${r.lockTimeoutMs} ms ([storage] migration_lock_timeout_ms)${named ? `, held by ${named}` : ""}`;
  // A lock one statement took is kept while each later one waits, up to lock_timeout: the stall adds up.
  const stall =
    r.statements > 1
      ? `up to ${r.statements} × ${r.lockTimeoutMs} ms (a lock taken by one of its ${r.statements} statements is kept while each later one waits up to lock_timeout)`
      : `up to ${r.lockTimeoutMs} ms`;
  const end = deadlock
    ? `The other transaction went on; the next attempt usually finds its tables free. If deadlocks recur, end ${one ? "that session's" : "those sessions'"} ` +
      "transactions (SELECT pg_terminate_backend(pid)) or stop the older workers for the upgrade"
    : r.blockers.length > 0
      ? `End ${one ? "that transaction" : "those transactions"} (COMMIT or ROLLBACK in its session, or SELECT pg_terminate_backend(pid)) to let the upgrade go on`
      : "A transaction open on that table holds it: look for long ones in pg_stat_activity (xact_start)";
  return {
    msg:
      `${what}. It was rolled back, nothing of it applied; attempt ${r.attempts + 1} in ${duration(r.retryInMs)} ` +
      `(waiting for ${duration(r.waitingMs)} so far). Meanwhile the running workers go on, though each attempt can hold ` +
      `up other statements on the tables it alters for ${stall}; new workers start when the upgrade is done. ${end}` +
      (hidden ? ". A role granted pg_read_all_stats sees what another role's session is doing" : ""),
    fields: {
      what: r.what,
      reason: r.reason,
      statements: r.statements,
      attempts: r.attempts,
      lockTimeoutMs: r.lockTimeoutMs,
      waitingS: Math.round(r.waitingMs / 1000),
      retryInS: Math.round(r.retryInMs / 1000),
      lock: r.lock,
      blockers: r.blockers.map(sessionFields),
    },
  };
}
