// One run of a pull job: claim the run (its row), pull page after page (each page stored with its cursor
// in one transaction), record the outcome. Used by the scheduler, the status page's "run now", webhook
// hints and `kontobro pull`. The SQL is written once and runs through a SqlRunner (agent/db/pg/runner.ts).
// On PostgreSQL the run row names its worker; if that worker is declared dead (agent/db/pg/dead-workers.ts ends the
// run as interrupted), whatever it still writes lands nowhere: its pages, progress and outcome are written only
// while the run is still running, and a page's cursor only replaces the one it was pulled from.
import type { Connector } from "../../connectors/contract.ts";
import { isTargetError } from "../../connectors/http.ts";
import { masterSyncFor } from "../master/index.ts";
import { todayIn } from "./cron.ts";
import type { Db } from "../db/index.ts";
import { storageTrouble } from "../db/storage-trouble.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import { type Inbox, StalePageError, type StoreCounts } from "./inbox.ts";
import { tryJobLock } from "../lock.ts";
import type { Logger } from "../log.ts";
import type { Problem } from "../problem.ts";
import { startWork, type WorkBoard, type WorkEntry } from "../running-work.ts";
import type { RunStatus, Trigger } from "../states.ts";
import { type AccountTarget, accountStillIs } from "../target-account.ts";

export interface JobRef {
  target: string;
  stream: string;
  /** The job's time zone: "today" for lookback windows is counted there. */
  timezone: string;
}

export type RunResult =
  | ({ status: "ok"; runId: number } & StoreCounts & { pages: number })
  | ({ status: "failed"; runId: number; problem: Problem } & StoreCounts & { pages: number })
  /**
   * Another run of the same job (in this or another process or worker) is under way, or the schedule slot asked for
   * was already run by another worker; nothing was done.
   */
  | { status: "busy" };

export interface RunnerDeps {
  /**
   * SQLite: the data directory's database, for progress files. Null on PostgreSQL: no progress files (no shared data
   * directory).
   */
  db: Db | null;
  /** Where the runs are recorded (job_runs). */
  storage: SqlRunner;
  inbox: Inbox;
  /**
   * SQLite: the data directory whose job lock a run holds (one process at a time; a run still marked running is
   * then a dead process's). Null on PostgreSQL: the claimed run row alone decides, and a dead worker's runs are
   * ended by the workers' recovery.
   */
  dataDir: string | null;
  /**
   * The worker the run is recorded under (workers.id, agent/db/pg/workers.ts): when it is declared dead, its running
   * run is ended so the job can run again. Null on SQLite (the job lock and the start-up handling of a leftover run).
   */
  worker: number | null;
  connectors: Map<string, Connector>;
  log: Logger;
  now?: () => number;
  /** Called after each stored page (wakes the PSA webhook deliverer). */
  onStored?: () => void;
  /** Hears the run's progress (the CLI's progress line); every process sees it too (agent/running-work.ts). */
  onProgress?: (work: Readonly<WorkEntry>) => void;
  /** Where the run's progress is reported for every worker to show (a hosted tenant's running_work); else `db`'s files. */
  work?: WorkBoard;
  /**
   * The targets as this process was configured (kind and settings): a page is stored only while the account recorded
   * for its target is still that one (agent/target-account.ts), else the run ends. Absent: not checked.
   */
  targets?: readonly AccountTarget[];
}

/** A runaway connector that always says "more" must not loop forever. */
const MAX_PAGES = 100_000;

/** Pull runs' statements, written once for both engines. */
const SQL = {
  // Only while holding the job's lock (SQLite): a run still marked "running" belongs to a process that died.
  interruptLeftover: `UPDATE job_runs SET status = 'interrupted', finished_at = ?3, error_code = 'interrupted',
        error_message = 'The run was cut off (the process stopped or was killed) before it finished.',
        error_hint = 'Nothing is lost: the next run continues from the last page that was stored.'
      WHERE target = ?1 AND stream = ?2 AND status = 'running'`,
  // Nothing is inserted while the job has a running run, or when the slot has a running or good one
  // (the unique indexes job_runs_running and job_runs_slot): the first to insert runs it.
  claim: `INSERT INTO job_runs (target, stream, trigger, status, started_at, pid, slot, worker) VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7)
      ON CONFLICT DO NOTHING RETURNING id`,
  // Only while the run is still running: a run ended by the workers' recovery stays as the recovery wrote it.
  // stillRunning also holds the run's row until the page's transaction ends (PostgreSQL: the recovery waits for it).
  stillRunning: `UPDATE job_runs SET worker = worker WHERE id = ?1 AND status = 'running'`,
  progress: `UPDATE job_runs SET pages = ?2, fetched = ?3, imported = ?4, duplicates = ?5, ignored = ?6 WHERE id = ?1 AND status = 'running'`,
  ok: `UPDATE job_runs SET status = 'ok', finished_at = ?2 WHERE id = ?1 AND status = 'running'`,
  failed: `UPDATE job_runs SET status = 'failed', finished_at = ?2, error_code = ?3, error_message = ?4, error_hint = ?5
      WHERE id = ?1 AND status = 'running'`,
  recent: `SELECT id, target, stream, trigger, status, started_at AS startedAt, finished_at AS finishedAt, pages, fetched, imported, duplicates, ignored,
            error_code AS errorCode, error_message AS errorMessage, error_hint AS errorHint
       FROM job_runs WHERE target = ?1 AND stream = ?2 ORDER BY id DESC LIMIT ?3`,
  lastGood: `SELECT max(started_at) AS t FROM job_runs WHERE target = ?1 AND stream = ?2 AND status = 'ok'`,
};

/**
 * One run of `job`. `slot`: the schedule time a scheduled or catch-up run is for; of all workers that fire the same
 * slot, the first to record its run runs it, the others get "busy".
 */
export async function runPull(deps: RunnerDeps, job: JobRef, trigger: Trigger, slot: number | null = null): Promise<RunResult> {
  const now = deps.now ?? Date.now;
  const connector = deps.connectors.get(job.target);
  if (!connector?.pull) throw new Error(`target ${job.target} cannot pull`);
  if (deps.dataDir === null && deps.worker === null)
    throw new Error(
      "runPull on shared storage (no data directory lock) needs the worker id (Worker.register), or a dead worker's run would block its job",
    );
  const lock = deps.dataDir === null ? null : tryJobLock(deps.dataDir, job.target, job.stream);
  if (deps.dataDir !== null && !lock) return { status: "busy" };
  const log = deps.log.child({ target: job.target, stream: job.stream });
  // Master data read back goes through master per entity (agent/master/), in the page's transaction; null for targets without it.
  const master = masterSyncFor(deps.storage, job.target, connector, { withInbox: false, now });
  let runId = 0;
  let work: ReturnType<typeof startWork> | undefined;
  const totals = { fetched: 0, imported: 0, duplicates: 0, ignored: 0, pages: 0 };
  try {
    const claimed = await deps.storage.transaction(async (tx) => {
      if (lock) await tx.run(SQL.interruptLeftover, job.target, job.stream, now());
      return tx.get<{ id: number }>(SQL.claim, job.target, job.stream, trigger, now(), process.pid, slot, deps.worker ?? null);
    });
    if (!claimed) {
      log.info("pull already running or this slot already run elsewhere; not starting another", { trigger, slot });
      return { status: "busy" };
    }
    runId = claimed.id;
    log.info("pull started", { trigger, run: runId });
    // How many items a pull brings is not known until the target says "no more": progress counts what came.
    work = startWork(
      deps.work ?? deps.db,
      { kind: "pull", title: `${job.target}: ${job.stream}`, unit: "items fetched" },
      { listener: deps.onProgress },
    );
    const configured = deps.targets?.find((t) => t.name === job.target);
    const stillRunning = async (tx: SqlRunner) => {
      // Pulled with a configuration whose account for the target is no longer the one recorded: not the new account's.
      // Checked first: its row is taken before the run's, in the order a change of the account takes them.
      if (configured && !(await accountStillIs(tx, configured)))
        throw new StalePageError(
          `The page of ${job.target}/${job.stream} was not stored: the target points at another account now than in the configuration this run was started with (it was changed meanwhile, or kontobro.toml was changed and the agent not started with it yet). A running agent or worker starts the target afresh with its configuration; on a single installation start it once (kontobro run, with --forget-links or --keep-links if asked).`,
        );
      return (await tx.run(SQL.stillRunning, runId)).changes > 0;
    };
    // The target was made master of this stream's entity in kontobro.toml: its changes reported while the PSA was
    // master go to the PSA first (they are behind the watermark). Stored like a page, without moving the cursor.
    const entity = job.stream === "customers" ? "customer" : job.stream === "products" ? "product" : null;
    const switched = master && entity && connector.master?.entities.includes(entity) ? await master.switchedToTarget(entity) : [];
    if (switched.length > 0) {
      const counts = await deps.inbox.storeBatch(job.target, job.stream, switched, null, {
        pulled: (item, tx) => master!.pulled(item, tx),
      });
      for (const k of ["fetched", "imported", "duplicates", "ignored"] as const) totals[k] += counts[k];
      if (counts.imported > 0) deps.onStored?.();
    }
    for (let page = 0; page < MAX_PAGES; page++) {
      const cursorWas = await deps.inbox.cursor(job.target, job.stream);
      const result = await connector.pull(job.stream, cursorWas, {
        today: todayIn(job.timezone, now()),
        openInvoices: await deps.inbox.openInvoices(job.target),
      });
      const counts = await deps.inbox.storeBatch(
        job.target,
        job.stream,
        result.items,
        result.cursor,
        master ? { pulled: (item, tx) => master.pulled(item, tx) } : undefined,
        { cursorWas, stillRunning },
      );
      totals.pages += 1;
      for (const k of ["fetched", "imported", "duplicates", "ignored"] as const) totals[k] += counts[k];
      await deps.storage.run(SQL.progress, runId, totals.pages, totals.fetched, totals.imported, totals.duplicates, totals.ignored);
      work.update(totals.fetched, null, `page ${totals.pages}, ${totals.imported} new`);
      if (counts.imported > 0) deps.onStored?.();
      if (!result.more) break;
    }
    if ((await deps.storage.run(SQL.ok, runId, now())).changes === 0)
      throw new StalePageError("The run's outcome was not recorded: the run was ended by another worker (this one was declared dead).");
    log.info("pull finished", { run: runId, ...totals });
    work.finish("ok", `${totals.imported} new`);
    return { status: "ok", runId, ...totals };
  } catch (e) {
    const problem = describeFailure(e);
    if (runId > 0) {
      try {
        await deps.storage.run(SQL.failed, runId, now(), problem.code, problem.message, problem.hint ?? null);
      } catch (inner) {
        log.error("could not record the failed run", { run: runId, error: inner });
      }
    }
    log.warn("pull failed", { run: runId, code: problem.code, message: problem.message, hint: problem.hint, ...totals });
    work?.finish("failed", problem.message);
    return { status: "failed", runId, problem, ...totals };
  } finally {
    lock?.release();
  }
}

function describeFailure(e: unknown): Problem {
  if (isTargetError(e)) return { code: e.code, message: e.message, hint: e.hint, field: e.field };
  if (e instanceof StalePageError)
    return {
      code: "interrupted",
      message: e.message,
      hint: "Nothing to do: the job's next run continues from the last page that was stored.",
    };
  const message = e instanceof Error ? e.message : String(e);
  if (storageTrouble(e))
    return {
      code: "storage_unwritable",
      message: `The pulled page could not be stored: ${message}.`,
      hint: "Free disk space on the kontobro server (or fix what the message says about its database); the next run starts from the last page stored, so nothing is lost.",
    };
  return {
    code: "internal_error",
    message: `Unexpected error: ${message}`,
    hint: "Run the pull again; if it happens again, send the log to kontobro support.",
  };
}

export interface JobRunRow {
  id: number;
  target: string;
  stream: string;
  trigger: Trigger;
  status: RunStatus;
  startedAt: number;
  finishedAt: number | null;
  pages: number;
  fetched: number;
  imported: number;
  duplicates: number;
  ignored: number;
  errorCode: string | null;
  errorMessage: string | null;
  errorHint: string | null;
}

export function recentRuns(storage: SqlRunner, target: string, stream: string, limit = 5): Promise<JobRunRow[]> {
  return storage.all<JobRunRow>(SQL.recent, target, stream, limit);
}

/** Start time of the last run that finished without error, or null. */
export async function lastGoodRunAt(storage: SqlRunner, target: string, stream: string): Promise<number | null> {
  return (await storage.get<{ t: number | null }>(SQL.lastGood, target, stream))?.t ?? null;
}
