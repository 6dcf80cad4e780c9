// Migrates a PostgreSQL database with the embedded migrations (scripts/embed-migrations.ts's shape), keeping drizzle's
// bookkeeping (drizzle.__drizzle_migrations: a migration is applied when a row's created_at is at least its `when`);
// openPostgres (agent/db/pg/open.ts) calls it. Many workers may start at once: an advisory lock (STEPS_LOCK) lets one
// migrate while the others wait (polling, so a waiting worker holds no snapshot a concurrent index build would wait
// for), then find nothing left to do; MIGRATION_LOCK, which older versions wait for, is held around transactions only.
//
// Each migration is one transaction, except its index statements on tables that already hold rows: those become steps
// run after it with CONCURRENTLY (agent/db/pg/index-steps.ts), so intake and dispatch go on while an index is built.
// The steps are written to drizzle.kontobro_index_steps in the migration's transaction and each is deleted when done:
// a worker killed during a build leaves its steps there, and the next one to take the lock runs them first (a build
// interrupted left an INVALID index: it is dropped and built again). A left step on an index that a later migration,
// applied meanwhile by an older version, built or dropped is not run (index-steps.ts's stepAfterLater).
//
// A migration's transaction waits for its locks for lock_timeout at most (lockTimeoutMs): its other DDL (ALTER TABLE
// … ADD COLUMN) takes an ACCESS EXCLUSIVE lock, and while it waits behind a long transaction (a report, a session left
// idle in transaction) every other statement on that table queues behind it: unbounded, intake and dispatch stopped,
// silently, for as long as that transaction lasted. So it gives up after lock_timeout (SQLSTATE 55P03), is rolled back
// (nothing of it applied) and is tried again after a pause that doubles, each retry told (onLockTimeout) with the lock
// and the sessions holding it; a deadlock with a worker's transaction (40P01, found after deadlock_timeout, before
// lock_timeout) is retried the same way. Each statement waits up to lock_timeout, and a lock an earlier one took is kept
// meanwhile: an attempt can hold a table up for (statements) × lock_timeout. The index steps run outside that
// transaction and keep waiting as long as they need to.
import type { SQL } from "bun";
import {
  describeIndexStep,
  type IndexStatement,
  type IndexStep,
  indexesNamed,
  planMigration,
  quoteIdent,
  stepAfterLater,
} from "./index-steps.ts";
import {
  type Deadlock,
  deadlockOf,
  type GaveUp,
  type LockTimeout,
  type LockWait,
  type Session,
  type SlowStep,
  type WaitedLock,
} from "./migrate-report.ts";

export interface EmbeddedMigration {
  tag: string;
  when: number;
  breakpoints: boolean;
  hash: string;
  sql: string;
}

/** The advisory lock key every kontobro process takes to migrate ("kont" in ASCII). */
export const MIGRATION_LOCK = 0x6b6f6e74;

/**
 * Taken (polled) by processes of this version for their whole migration, index steps included, so one migrates at a
 * time. MIGRATION_LOCK itself is held only around transactions, never during a CONCURRENTLY step: a process of an
 * older version (drizzle's migrator) waits for MIGRATION_LOCK in pg_advisory_lock, a statement holding a snapshot that
 * a concurrent build waits for, and a build holding that lock would deadlock with it ('deadlock detected' ended the
 * build or the older process's start).
 */
export const STEPS_LOCK = MIGRATION_LOCK + 1;

/** How long a migration's statement waits for a lock before its transaction is rolled back and tried again (ms). */
export const DEFAULT_MIGRATION_LOCK_TIMEOUT_MS = 3_000;

export interface MigrateOptions {
  /** How often a worker waiting for another's migration asks for the lock again (ms, default 250). */
  pollMs?: number;
  /** Told each index step as it starts (tests, logs). */
  onStep?: (step: IndexStep) => void;
  /**
   * Told when another process holds the migration lock (it may be building an index: minutes on a large table), then
   * again every reportEveryMs while it still does.
   */
  onWait?: (wait: LockWait) => void;
  /** Told every reportEveryMs while an index step runs: how long it has run and what it waits on. */
  onSlowStep?: (report: SlowStep) => void;
  /** How often onWait and onSlowStep are told (ms, default 60,000). */
  reportEveryMs?: number;
  /**
   * lock_timeout of each migration's transaction (ms, default DEFAULT_MIGRATION_LOCK_TIMEOUT_MS): how long other
   * statements on a table may queue behind its ALTER TABLE waiting for a long transaction.
   */
  lockTimeoutMs?: number;
  /** The pause after a transaction's first lock timeout (ms, default 1,000); it doubles after each, up to maxRetryPauseMs. */
  retryPauseMs?: number;
  /** The longest pause between attempts (ms, default 60,000). */
  maxRetryPauseMs?: number;
  /** Told each time a migration's transaction gave up waiting for a lock and was rolled back, before its pause. */
  onLockTimeout?: (report: LockTimeout) => void;
  /**
   * Aborted (`kontobro run`'s SIGTERM, its reason the signal's name): the upgrade stops at once with MigrationStopped
   * while it pauses between two attempts or waits for another process's migration, nothing of the migration under way
   * applied. An attempt under way ends first (lock_timeout per statement at most), an index step under way is not
   * interrupted: the upgrade then stops before the next migration or index step (the next start goes on from there).
   */
  signal?: AbortSignal;
}

/** The upgrade stopped by MigrateOptions.signal while it waited: nothing of the migration it was on is applied. */
export class MigrationStopped extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MigrationStopped";
  }
}

/** Why `signal` was aborted, for a MigrationStopped's message: " (SIGTERM)", or "". */
const abortReason = (signal: AbortSignal) => (typeof signal.reason === "string" ? ` (${signal.reason})` : "");

/** Throws MigrationStopped(stopped(" (SIGTERM)")) when `signal` has been aborted: checked before each migration and index step. */
function stopIfAborted(signal: AbortSignal | undefined, stopped: (why: string) => string): void {
  if (signal?.aborted) throw new MigrationStopped(stopped(abortReason(signal)));
}

/** Sleeps `ms`, or throws MigrationStopped(stopped(" (SIGTERM)")) at once when `signal` is aborted (before or meanwhile). */
function pause(ms: number, signal: AbortSignal | undefined, stopped: (why: string) => string): Promise<void> {
  if (!signal) return Bun.sleep(ms);
  return new Promise((resolve, reject) => {
    const abort = () => {
      clearTimeout(timer);
      reject(new MigrationStopped(stopped(abortReason(signal))));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", abort);
      resolve();
    }, ms);
    if (signal.aborted) abort();
    else signal.addEventListener("abort", abort, { once: true });
  });
}

const STEPS_TABLE = "drizzle.kontobro_index_steps";

export async function migratePostgres(client: SQL, migrations: EmbeddedMigration[], options: MigrateOptions = {}): Promise<void> {
  const conn = await client.reserve();
  const everyMs = options.reportEveryMs ?? 60_000;
  const take = async (key: number) => {
    let since: number | null = null;
    let toldAt = 0;
    for (;;) {
      const [got] = (await conn`SELECT pg_try_advisory_lock(${key}) AS got`) as { got: boolean }[];
      if (got!.got) return;
      const now = performance.now();
      since ??= now;
      if (options.onWait && (toldAt === 0 || now - toldAt >= everyMs)) {
        toldAt = now;
        options.onWait({ waitedMs: now - since, holder: await lockHolder(conn, key).catch(() => null) });
      }
      await pause(options.pollMs ?? 250, options.signal, (why) => `stopped${why} while waiting for another kontobro process's migration`);
    }
  };
  /** Runs `fn` holding MIGRATION_LOCK (older versions migrate under it too). */
  const locked = async <T>(fn: () => Promise<T>): Promise<T> => {
    await take(MIGRATION_LOCK);
    try {
      return await fn();
    } finally {
      await conn`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`;
    }
  };
  try {
    await take(STEPS_LOCK);
    try {
      await locked(async () => {
        await conn.unsafe(`CREATE SCHEMA IF NOT EXISTS drizzle`);
        await conn.unsafe(
          `CREATE TABLE IF NOT EXISTS drizzle.__drizzle_migrations (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)`,
        );
        await conn.unsafe(
          `CREATE TABLE IF NOT EXISTS ${STEPS_TABLE} (seq SERIAL PRIMARY KEY, migration text NOT NULL, step jsonb NOT NULL)`,
        );
      });
      const [{ pid }] = (await conn`SELECT pg_backend_pid() AS pid`) as { pid: number }[];
      const steps = { client, conn, pid, migrations, options, locked, everyMs };
      // Steps an interrupted start left.
      await runSteps(steps);
      for (;;) {
        // One migration at a time, the last applied read again under the lock (an older version may have migrated
        // while this one ran steps without it); MIGRATION_LOCK is let go during the pause after a lock timeout.
        const applied = await boundedLockWait(steps, (tagged) =>
          locked(async () => {
            const last = await lastApplied(conn);
            const m = migrations.find((m) => !(last !== null && last >= m.when));
            if (!m) return false;
            // Stopped (SIGTERM) during the attempt before, which landed: not on to the next migration.
            stopIfAborted(
              options.signal,
              (why) => `stopped during the upgrade${why}; nothing of migration ${m.tag} applied (the next start applies it)`,
            );
            const statements = m.breakpoints ? m.sql.split("--> statement-breakpoint") : [m.sql];
            const holdingRows = await tablesHoldingRows(conn);
            const plan = planMigration(statements, (s) => holdingRows(s));
            tagged(`migration ${m.tag}`, plan.inTransaction.length);
            await conn.begin(async (tx) => {
              await boundLocks(tx, options);
              for (const sql of plan.inTransaction) await tx.unsafe(sql);
              for (const step of plan.steps)
                await tx.unsafe(`INSERT INTO ${STEPS_TABLE} (migration, step) VALUES ($1, $2::jsonb)`, [m.tag, JSON.stringify(step)]);
              await tx.unsafe(`INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ($1, $2)`, [m.hash, m.when]);
            });
            return true;
          }),
        );
        if (!applied) break;
        await runSteps(steps);
      }
      // The tables' owner (the role kontobro connects as) is held to row-level security too (an ACCESS EXCLUSIVE lock
      // on each table not yet forced: bounded as a migration's).
      await boundedLockWait(steps, (tagged) =>
        locked(async () => {
          tagged("forcing row-level security on new tables");
          await conn.begin(async (tx) => {
            await boundLocks(tx, options);
            const unforced = await tx.unsafe(`
              SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relrowsecurity AND NOT c.relforcerowsecurity`);
            tagged("forcing row-level security on new tables", unforced.length);
            for (const { name } of unforced as { name: string }[]) await tx.unsafe(`ALTER TABLE "${name}" FORCE ROW LEVEL SECURITY`);
          });
        }),
      );
    } finally {
      await conn`SELECT pg_advisory_unlock(${STEPS_LOCK})`;
    }
  } finally {
    conn.release();
  }
}

/**
 * Whether an index statement of this migration is on a table that holds rows now (its size is not 0: a table just
 * created, or never written, has no pages). A dropped index's table is its own in the catalog.
 */
async function tablesHoldingRows(conn: SQL): Promise<(s: IndexStatement) => boolean> {
  const [row] = (await conn.unsafe(
    `SELECT coalesce(json_agg(c.relname), '[]') AS tables FROM pg_class c
      WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND pg_relation_size(c.oid) > 0`,
  )) as { tables: string[] | string }[];
  const tables = new Set<string>(typeof row!.tables === "string" ? JSON.parse(row!.tables) : row!.tables);
  const [idx] = (await conn.unsafe(
    `SELECT coalesce(json_object_agg(i.relname, t.relname), '{}') AS of FROM pg_index x
       JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
      WHERE i.relnamespace = current_schema()::regnamespace`,
  )) as { of: Record<string, string> | string }[];
  const tableOf: Record<string, string> = typeof idx!.of === "string" ? JSON.parse(idx!.of) : idx!.of;
  return (s) => tables.has(s.kind === "create" ? s.table : (tableOf[s.name] ?? ""));
}

const lockTimeoutOf = (o: MigrateOptions) => Math.max(1, Math.round(o.lockTimeoutMs ?? DEFAULT_MIGRATION_LOCK_TIMEOUT_MS));

/** Sets lock_timeout for the rest of transaction `tx` (SET LOCAL: the index steps, outside it, are not bounded). */
async function boundLocks(tx: SQL, o: MigrateOptions): Promise<void> {
  await tx.unsafe(`SELECT set_config('lock_timeout', $1, true)`, [`${lockTimeoutOf(o)}ms`]);
}

/** The pause after the `failed`th lock timeout in a row: retryPauseMs, doubled each time, at most maxRetryPauseMs. Pure. */
export function retryPause(failed: number, o: Pick<MigrateOptions, "retryPauseMs" | "maxRetryPauseMs"> = {}): number {
  const first = o.retryPauseMs ?? 1_000;
  return Math.min(o.maxRetryPauseMs ?? 60_000, first * 2 ** Math.min(failed - 1, 30));
}

/** The server error in `e` (Bun's SQL: errno is its SQLSTATE, detail the server's DETAIL), or undefined. */
function serverError(e: unknown): { state: string; detail: string } | undefined {
  let err = e as { errno?: unknown; detail?: unknown; cause?: unknown } | undefined;
  while (err && typeof err.errno !== "string" && err.cause && typeof err.cause === "object") err = err.cause as typeof err;
  if (typeof err?.errno !== "string") return undefined;
  return { state: err.errno, detail: typeof err.detail === "string" ? err.detail : "" };
}

/**
 * The SQLSTATEs after which a migration's transaction (rolled back whole by them) is tried again: it gave up waiting
 * for a lock (lock_timeout), or PostgreSQL's deadlock check (deadlock_timeout, 1 s by default: before lock_timeout)
 * ended it because it and another transaction (a worker's that read its tables in another order) each waited for a
 * lock the other held. Not retried, the new worker exited at start and, restarted, could meet the same deadlock again.
 */
const RETRIED: Record<string, GaveUp> = { "55P03": "lock_timeout", "40P01": "deadlock" };

/**
 * Runs `attempt` (a transaction on run.conn under lock_timeout, which names what it runs and how many statements it
 * has through `tagged`) until it ends without giving up waiting for a lock (RETRIED: a lock timeout or a deadlock):
 * after each, onLockTimeout is told the lock and the sessions holding it (watched from another connection while it
 * ran; for a deadlock, those the server's DETAIL names) and it is tried again after retryPause.
 */
async function boundedLockWait<T>(run: StepRun, attempt: (tagged: (what: string, statements?: number) => void) => Promise<T>): Promise<T> {
  const { options } = run;
  const timeoutMs = lockTimeoutOf(options);
  const started = performance.now();
  for (let failed = 0; ; ) {
    let what = "a migration";
    let statements = 1;
    const seen: { last: { lock: WaitedLock; blockers: Session[] } | null } = { last: null };
    let asking = false;
    // A lock wait is seen while it lasts: after the timeout the statement no longer waits and pg_blocking_pids is empty.
    const timer = setInterval(
      () => {
        if (asking || !options.onLockTimeout) return;
        asking = true;
        lockWaitOf(run.client, run.pid)
          .then((w) => {
            if (w) seen.last = w;
          })
          .catch(() => {})
          .finally(() => (asking = false));
      },
      Math.min(1_000, Math.max(20, timeoutMs / 3)),
    );
    let reason: GaveUp | undefined;
    let detail = "";
    try {
      return await attempt((w, n) => {
        what = w;
        if (n !== undefined) statements = n;
      });
    } catch (e) {
      const err = serverError(e);
      reason = err && RETRIED[err.state];
      if (!reason) throw e;
      detail = err!.detail;
    } finally {
      clearInterval(timer);
    }
    failed++;
    const wait = retryPause(failed, options);
    let waited: { lock: WaitedLock | null; blockers: Session[] } | null = seen.last;
    if (reason === "deadlock" && options.onLockTimeout) {
      // The other transactions went on: they are named by the server's DETAIL, not seen waiting.
      const facts = await deadlockFacts(run.client, deadlockOf(detail, run.pid)).catch(() => null);
      if (facts) waited = { lock: facts.lock ?? waited?.lock ?? null, blockers: facts.blockers };
    }
    options.onLockTimeout?.({
      what,
      reason,
      statements,
      attempts: failed,
      lockTimeoutMs: timeoutMs,
      waitingMs: performance.now() - started,
      retryInMs: wait,
      lock: waited?.lock ?? null,
      blockers: waited?.blockers ?? [],
    });
    await pause(wait, options.signal, (why) => `stopped during the upgrade${why}; nothing of ${what} applied (the next start applies it)`);
  }
}

/** The lock session `pid` waits for now and the sessions it waits for, or null when it waits for none. */
async function lockWaitOf(client: SQL, pid: number): Promise<{ lock: WaitedLock; blockers: Session[] } | null> {
  const [row] = (await client.unsafe(
    `SELECT (SELECT json_build_object('relation', l.relation::regclass::text, 'mode', l.mode, 'locktype', l.locktype)
               FROM pg_locks l WHERE l.pid = $1 AND NOT l.granted LIMIT 1) AS lock,
            (SELECT coalesce(json_agg(${SESSION} ORDER BY a.pid), '[]') FROM pg_stat_activity a
              WHERE a.pid = ANY(pg_blocking_pids($1))) AS blockers`,
    [pid],
  )) as { lock: WaitedLock | string | null; blockers: unknown }[];
  if (!row?.lock) return null;
  return { lock: typeof row.lock === "string" ? JSON.parse(row.lock) : row.lock, blockers: sessions(row.blockers) };
}

/**
 * The lock the migration's session waited for in a deadlock (its table's name, while it still exists) and the other
 * sessions in it as pg_stat_activity shows them now (their transactions went on), or null when the DETAIL named none.
 */
async function deadlockFacts(client: SQL, d: Deadlock): Promise<{ lock: WaitedLock | null; blockers: Session[] } | null> {
  if (!d.lock && d.others.length === 0) return null;
  const [row] = (await client.unsafe(
    `SELECT (SELECT to_regclass($1::oid::regclass::text)::text) AS relation,
            (SELECT coalesce(json_agg(${SESSION} ORDER BY a.pid), '[]') FROM pg_stat_activity a
              WHERE a.pid = ANY($2::int[])) AS blockers`,
    [d.lock?.relationOid ?? 0, `{${d.others.join(",")}}`],
  )) as { relation: string | null; blockers: unknown }[];
  const lock = d.lock && {
    relation: d.lock.relationOid === null ? null : (row?.relation ?? null),
    mode: d.lock.mode,
    locktype: d.lock.locktype,
  };
  // A session that ended meanwhile is not named.
  return { lock, blockers: sessions(row?.blockers) };
}

/** The created_at of the last migration applied (drizzle's bookkeeping), or null. */
async function lastApplied(conn: SQL): Promise<number | null> {
  const [last] = (await conn.unsafe(`SELECT created_at FROM drizzle.__drizzle_migrations ORDER BY created_at DESC LIMIT 1`)) as {
    created_at: string | number;
  }[];
  return last ? Number(last.created_at) : null;
}

interface StepRun {
  client: SQL;
  conn: SQL;
  /** conn's server process. */
  pid: number;
  migrations: EmbeddedMigration[];
  options: MigrateOptions;
  locked: <T>(fn: () => Promise<T>) => Promise<T>;
  everyMs: number;
}

/**
 * The indexes named by migrations after `tag` that are applied now: a version from before the steps may have applied
 * them, ignoring the steps left (index-steps.ts's stepAfterLater). None for a migration this version does not know.
 */
async function namedLater(run: StepRun, tag: string): Promise<string[]> {
  const m = run.migrations.find((m) => m.tag === tag);
  const last = m ? await lastApplied(run.conn) : null;
  if (!m || last === null) return [];
  return run.migrations
    .filter((later) => later.when > m.when && later.when <= last)
    .flatMap((later) => indexesNamed(later.breakpoints ? later.sql.split("--> statement-breakpoint") : [later.sql]));
}

/**
 * Runs the stored steps in order, each deleted once done; each may be run again after an interruption. A step on an
 * index that a later migration, already applied, named is not run (stepAfterLater). A drop or rename is looked at and
 * run under MIGRATION_LOCK, so an older version cannot apply such a migration in between (neither waits for snapshots);
 * a build is not (minutes), and one whose index a migration applied meanwhile is undone by its swap's rename step.
 */
async function runSteps(run: StepRun): Promise<void> {
  const { conn, options } = run;
  for (;;) {
    const [next] = (await conn.unsafe(`SELECT seq, migration, step FROM ${STEPS_TABLE} ORDER BY seq LIMIT 1`)) as {
      seq: number;
      migration: string;
      step: IndexStep | string;
    }[];
    if (!next) return;
    const stored: IndexStep = typeof next.step === "string" ? JSON.parse(next.step) : next.step;
    stopIfAborted(options.signal, (why) => {
      const { msg, index } = describeIndexStep(stored);
      return `stopped during the upgrade${why}; migration ${next.migration} is applied, ${msg} ${index} is left to the next start`;
    });
    const once = async () => {
      const step = stepAfterLater(stored, await namedLater(run, next.migration));
      if (!step) return;
      options.onStep?.(step);
      try {
        await watched(run, step, next.migration, runStep(conn, step));
      } catch (e) {
        throw new IndexStepError(step, next.migration, e);
      }
    };
    await (stored.op === "create" ? once() : run.locked(once));
    await conn.unsafe(`DELETE FROM ${STEPS_TABLE} WHERE seq = $1`, [next.seq]);
  }
}

/** `running` (a step on run.conn), with onSlowStep told every everyMs until it ends, from another connection. */
async function watched(run: StepRun, step: IndexStep, migration: string, running: Promise<void>): Promise<void> {
  const report = run.options.onSlowStep;
  if (!report) return running;
  const started = performance.now();
  let asking = false;
  const timer = setInterval(() => {
    if (asking) return;
    asking = true;
    stepState(run.client, run.pid)
      .then((state) => report({ step, migration, runningMs: performance.now() - started, ...state }))
      .catch(() => {})
      .finally(() => (asking = false));
  }, run.everyMs);
  try {
    await running;
  } finally {
    clearInterval(timer);
  }
}

const SESSION = `json_build_object('pid', a.pid, 'application', a.application_name, 'user', a.usename::text, 'state', a.state,
  'transactionMs', (extract(epoch FROM now() - a.xact_start) * 1000)::bigint,
  'query', CASE WHEN a.query IS NULL THEN NULL ELSE left(regexp_replace(a.query, '\\s+', ' ', 'g'), 120) END)`;

const sessions = (v: unknown): Session[] => (typeof v === "string" ? JSON.parse(v) : ((v as Session[] | null) ?? []));

/** What the step's session `pid` waits on and whom for. */
async function stepState(client: SQL, pid: number): Promise<Pick<SlowStep, "waitEvent" | "phase" | "blockers">> {
  const [row] = (await client.unsafe(
    `SELECT (SELECT a.wait_event_type || ': ' || a.wait_event FROM pg_stat_activity a WHERE a.pid = $1) AS "waitEvent",
            (SELECT p.phase FROM pg_stat_progress_create_index p WHERE p.pid = $1) AS phase,
            (SELECT coalesce(json_agg(${SESSION} ORDER BY a.pid), '[]') FROM pg_stat_activity a
              WHERE a.pid = ANY(pg_blocking_pids($1))) AS blockers`,
    [pid],
  )) as { waitEvent: string | null; phase: string | null; blockers: unknown }[];
  return { waitEvent: row!.waitEvent, phase: row!.phase, blockers: sessions(row!.blockers) };
}

/** The session holding advisory lock `key` (a bigint under 2^32: classid 0, objid the key), when visible. */
async function lockHolder(conn: SQL, key: number): Promise<Session | null> {
  const [row] = (await conn.unsafe(
    `SELECT coalesce(json_agg(${SESSION}), '[]') AS holders FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = $1 AND l.objsubid = 1`,
    [key],
  )) as { holders: unknown }[];
  return sessions(row!.holders)[0] ?? null;
}

/**
 * An index step that failed. Its migration's transaction was committed (and recorded) before it; the step stays in
 * drizzle.kontobro_index_steps and the next start runs it again, before any later migration.
 */
export class IndexStepError extends Error {
  constructor(
    readonly step: IndexStep,
    readonly migration: string,
    cause: unknown,
  ) {
    const err = cause as { message?: string; detail?: unknown } | undefined;
    const detail = typeof err?.detail === "string" && err.detail ? ` (${err.detail.replace(/\.$/, "")})` : "";
    const { msg, index } = describeIndexStep(step);
    super(`${msg} ${index} for migration ${migration} failed: ${err?.message ?? String(cause)}${detail}`, { cause });
  }
}

async function runStep(conn: SQL, step: IndexStep): Promise<void> {
  if (step.op === "create") {
    const [found] = (await conn.unsafe(`SELECT x.indisvalid AS valid FROM pg_index x WHERE x.indexrelid = to_regclass($1)`, [
      quoteIdent(step.name),
    ])) as { valid: boolean }[];
    // A build that was interrupted left the index INVALID (never used by queries, still written): build it again.
    if (found && !found.valid) await conn.unsafe(`DROP INDEX CONCURRENTLY IF EXISTS ${quoteIdent(step.name)}`);
    if (!found?.valid) await conn.unsafe(step.sql);
  } else if (step.op === "drop") await conn.unsafe(`DROP INDEX CONCURRENTLY IF EXISTS ${quoteIdent(step.name)}`);
  else await conn.unsafe(`ALTER INDEX IF EXISTS ${quoteIdent(step.from)} RENAME TO ${quoteIdent(step.to)}`);
}
