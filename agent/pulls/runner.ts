// One run of a pull job: take the job's lock, record the run, pull page after page (each page stored
// with its cursor in one transaction), record the outcome. Used by the scheduler, the status page's
// "run now", webhook hints and `kontobro pull`.
import type { Connector } from "../../connectors/contract.ts";
import { isTargetError } from "../../connectors/http.ts";
import { masterSyncFor } from "../master/index.ts";
import { todayIn } from "./cron.ts";
import type { Db } from "../db/index.ts";
import type { Inbox, StoreCounts } from "./inbox.ts";
import { tryJobLock } from "../lock.ts";
import type { Logger } from "../log.ts";
import type { Problem } from "../problem.ts";
import { startWork, type WorkEntry } from "../running-work.ts";
import type { RunStatus, Trigger } from "../states.ts";

export interface JobRef {
  target: string;
  stream: string;
  /** The job's time zone: "today" for lookback windows is counted there. */
  timezone: string;
}

export type RunResult =
  | ({ status: "ok"; runId: number } & StoreCounts & { pages: number })
  | ({ status: "failed"; runId: number; problem: Problem } & StoreCounts & { pages: number })
  /** Another run of the same job (in this or another process) is under way; nothing was done. */
  | { status: "busy" };

export interface RunnerDeps {
  db: Db;
  inbox: Inbox;
  dataDir: string;
  connectors: Map<string, Connector>;
  log: Logger;
  now?: () => number;
  /** Called after each stored page (wakes the PSA webhook deliverer). */
  onStored?: () => void;
  /** Hears the run's progress (the CLI's progress line); every process sees it too (agent/running-work.ts). */
  onProgress?: (work: Readonly<WorkEntry>) => void;
}

/** A runaway connector that always says "more" must not loop forever. */
const MAX_PAGES = 100_000;

export async function runPull(deps: RunnerDeps, job: JobRef, trigger: Trigger): Promise<RunResult> {
  const now = deps.now ?? Date.now;
  const connector = deps.connectors.get(job.target);
  if (!connector?.pull) throw new Error(`target ${job.target} cannot pull`);
  const lock = tryJobLock(deps.dataDir, job.target, job.stream);
  if (!lock) return { status: "busy" };
  const c = deps.db.$client;
  const log = deps.log.child({ target: job.target, stream: job.stream });
  // Master data read back goes through master per entity (agent/master/); null for targets without it.
  const master = masterSyncFor(deps.db, job.target, connector, false);
  let runId = 0;
  let work: ReturnType<typeof startWork> | undefined;
  const totals = { fetched: 0, imported: 0, duplicates: 0, ignored: 0, pages: 0 };
  try {
    runId = deps.db.transaction(
      () => {
        // We hold the job's lock, so a run still marked "running" belongs to a process that died.
        c.run(
          `UPDATE job_runs SET status = 'interrupted', finished_at = ?3, error_code = 'interrupted',
               error_message = 'The run was cut off (the process stopped or was killed) before it finished.',
               error_hint = 'Nothing is lost: the next run continues from the last page that was stored.'
             WHERE target = ?1 AND stream = ?2 AND status = 'running'`,
          [job.target, job.stream, now()],
        );
        return Number(
          c.run(`INSERT INTO job_runs (target, stream, trigger, status, started_at, pid) VALUES (?1, ?2, ?3, 'running', ?4, ?5)`, [
            job.target,
            job.stream,
            trigger,
            now(),
            process.pid,
          ]).lastInsertRowid,
        );
      },
      { behavior: "immediate" },
    );
    log.info("pull started", { trigger, run: runId });
    // How many items a pull brings is not known until the target says "no more": progress counts what came.
    work = startWork(
      deps.db,
      { kind: "pull", title: `${job.target}: ${job.stream}`, unit: "items fetched" },
      { listener: deps.onProgress },
    );
    for (let page = 0; page < MAX_PAGES; page++) {
      const result = await connector.pull(job.stream, deps.inbox.cursor(job.target, job.stream), {
        today: todayIn(job.timezone, now()),
        openInvoices: deps.inbox.openInvoices(job.target),
      });
      const counts = deps.inbox.storeBatch(
        job.target,
        job.stream,
        result.items,
        result.cursor,
        master ? { pulled: (item) => master.pulled(item) } : undefined,
      );
      totals.pages += 1;
      for (const k of ["fetched", "imported", "duplicates", "ignored"] as const) totals[k] += counts[k];
      c.run(`UPDATE job_runs SET pages = ?2, fetched = ?3, imported = ?4, duplicates = ?5, ignored = ?6 WHERE id = ?1`, [
        runId,
        totals.pages,
        totals.fetched,
        totals.imported,
        totals.duplicates,
        totals.ignored,
      ]);
      work.update(totals.fetched, null, `page ${totals.pages}, ${totals.imported} new`);
      if (counts.imported > 0) deps.onStored?.();
      if (!result.more) break;
    }
    c.run(`UPDATE job_runs SET status = 'ok', finished_at = ?2 WHERE id = ?1`, [runId, now()]);
    log.info("pull finished", { run: runId, ...totals });
    work.finish("ok", `${totals.imported} new`);
    return { status: "ok", runId, ...totals };
  } catch (e) {
    const problem = describeFailure(e);
    if (runId > 0) {
      try {
        c.run(
          `UPDATE job_runs SET status = 'failed', finished_at = ?2, error_code = ?3, error_message = ?4, error_hint = ?5 WHERE id = ?1`,
          [runId, now(), problem.code, problem.message, problem.hint ?? null],
        );
      } catch (inner) {
        log.error("could not record the failed run", { run: runId, error: inner });
      }
    }
    log.warn("pull failed", { run: runId, code: problem.code, message: problem.message, ...totals });
    work?.finish("failed", problem.message);
    return { status: "failed", runId, problem, ...totals };
  } finally {
    lock.release();
  }
}

function describeFailure(e: unknown): Problem {
  if (isTargetError(e)) return { code: e.code, message: e.message, hint: e.hint, field: e.field };
  const message = e instanceof Error ? e.message : String(e);
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

export function recentRuns(db: Db, target: string, stream: string, limit = 5): JobRunRow[] {
  return db.$client
    .query(
      `SELECT id, target, stream, trigger, status, started_at AS startedAt, finished_at AS finishedAt, pages, fetched, imported, duplicates, ignored,
            error_code AS errorCode, error_message AS errorMessage, error_hint AS errorHint
       FROM job_runs WHERE target = ?1 AND stream = ?2 ORDER BY id DESC LIMIT ?3`,
    )
    .all(target, stream, limit) as JobRunRow[];
}

/** Start time of the last run that finished without error, or null. */
export function lastGoodRunAt(db: Db, target: string, stream: string): number | null {
  const row = db.$client
    .query(`SELECT max(started_at) AS t FROM job_runs WHERE target = ?1 AND stream = ?2 AND status = 'ok'`)
    .get(target, stream) as { t: number | null } | null;
  return row?.t ?? null;
}
