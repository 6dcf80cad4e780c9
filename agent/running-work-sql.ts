// Long work under way kept in the database (table running_work), for hosted workers: they share no data directory, and
// a tenant's page may be served by any worker while an export or a pull runs on another. The same SQL text on both
// engines. Each report is a statement of its own (its own transaction, not the export's: on PostgreSQL an export holds
// one transaction open while it builds its files, and its progress must be seen before that commits). Reports of one
// piece of work are written one at a time, the newest pending one replacing an older (at most one a second anyway).
import type { SqlRunner } from "./db/pg/runner.ts";
import { SHOW_FINISHED_MS } from "./progress.ts";
import type { WorkBoard, WorkEntry } from "./running-work.ts";

/** Work not reported for this long without finishing was cut off without a word (as for the files). */
const ABANDONED_AFTER_MS = 60 * 60_000;

const SAVE = `INSERT INTO running_work (id, worker, started_at, updated_at, finished_at, entry) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
  ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, finished_at = excluded.finished_at, entry = excluded.entry`;
const LIST = `SELECT worker, entry FROM running_work ORDER BY started_at, id`;
/** What is no longer shown: finished a while ago, or neither finished nor reported for an hour. */
const PRUNE = `DELETE FROM running_work WHERE (finished_at IS NOT NULL AND finished_at < ?1) OR (finished_at IS NULL AND updated_at < ?2)`;

export interface SqlBoardOptions {
  /** workers.id of this worker: its work shows as cut off once it is gone from `liveWorkers`. Null: never judged so. */
  worker: number | null;
  /** The ids of the live workers (PostgreSQL: the workers table); absent: every worker counts as live. */
  liveWorkers?: (runner: SqlRunner) => Promise<number[]>;
}

/** What a listing shows of an entry: cut off when its worker is gone or it went silent; null once not shown. Pure. */
export function shownEntry(e: WorkEntry, workerLive: boolean, now: number): WorkEntry | null {
  let shown = e;
  if (e.finishedAt === undefined && (!workerLive || now - e.updatedAt > ABANDONED_AFTER_MS))
    shown = { ...e, finishedAt: e.updatedAt, outcome: "failed", message: "cut off: the worker running it stopped before it finished" };
  return shown.finishedAt !== undefined && now - shown.finishedAt > SHOW_FINISHED_MS ? null : shown;
}

export function sqlWorkBoard(runner: SqlRunner, options: SqlBoardOptions): WorkBoard {
  /** Per piece of work: the report waiting to be written (its JSON and times), and the write under way. */
  const queues = new Map<string, { next: Readonly<WorkEntry> | null; json: string; writing: Promise<void> | null }>();
  const pump = async (id: string, first: boolean) => {
    const q = queues.get(id)!;
    try {
      // A new piece of work clears what is no longer shown (as listing the files removes theirs).
      if (first && q.next) await runner.run(PRUNE, q.next.startedAt - SHOW_FINISHED_MS, q.next.startedAt - ABANDONED_AFTER_MS);
      while (q.next !== null) {
        const e = q.next;
        const json = q.json;
        q.next = null;
        await runner.run(SAVE, id, options.worker, e.startedAt, e.updatedAt, e.finishedAt ?? null, json);
        if (e.finishedAt !== undefined && q.next === null) queues.delete(id);
      }
    } finally {
      q.writing = null;
    }
  };
  return {
    save(entry) {
      let q = queues.get(entry.id);
      const first = !q;
      if (!q) queues.set(entry.id, (q = { next: null, json: "", writing: null }));
      q.next = { ...entry };
      q.json = JSON.stringify(entry);
      // A write under way writes this one next (its loop reads q.next again before it ends).
      return (q.writing ??= pump(entry.id, first));
    },
    async list(now = Date.now()) {
      const rows = await runner.all<{ worker: number | null; entry: string }>(LIST);
      const live = options.liveWorkers ? new Set((await options.liveWorkers(runner)).map(Number)) : null;
      const out: WorkEntry[] = [];
      for (const r of rows) {
        let e: WorkEntry;
        try {
          e = JSON.parse(r.entry) as WorkEntry;
        } catch {
          continue;
        }
        const shown = shownEntry(e, r.worker === null || live === null || live.has(Number(r.worker)), now);
        if (shown) out.push(shown);
      }
      return out;
    },
  };
}

/** The live workers of a PostgreSQL installation (the workers table is the installation's, readable under any tenant). */
export const liveWorkerIds = async (runner: SqlRunner) =>
  (await runner.all<{ id: number }>(`SELECT id FROM workers`)).map((r) => Number(r.id));
