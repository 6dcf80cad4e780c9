// Everything in progress, as the status page's "In progress" section and `kontobro status` show it: each target's
// queue catching up after a burst (agent/queue-progress.ts), then exports and pulls under way or just finished
// (agent/running-work.ts), oldest first. Reads one settings row per target and a few small files (SQLite) or rows of
// running_work (a hosted tenant, agent/running-work-sql.ts).
import type { SqlRunner } from "./db/pg/runner.ts";
import { describeQueueProgress, isCatchingUp, isStale, queueTotal, readQueueProgress } from "./queue-progress.ts";
import { describeWorkState, isRunning, type WorkBoard } from "./running-work.ts";

/** Where progress is read: the storage (queues' settings rows), the board work reports to, and the targets. */
export interface ProgressSource {
  runner: SqlRunner;
  work: WorkBoard | null;
  targets: readonly string[];
}

export interface ProgressItem {
  /** "queue:<target>", or the work's id. */
  key: string;
  title: string;
  text: string;
  done: number;
  /** null: nobody knows how much there is (a bar shows activity, not a fraction). */
  total: number | null;
  /** "stale": a queue's counts the agent stopped refreshing (it is not running). */
  state: "running" | "finished" | "failed" | "stale";
}

export async function progressItems(source: ProgressSource, now = Date.now()): Promise<ProgressItem[]> {
  const items: ProgressItem[] = [];
  for (const target of source.targets) {
    const p = await readQueueProgress(source.runner, target, now);
    if (!p) continue;
    items.push({
      key: `queue:${target}`,
      title: `${target} queue`,
      text: describeQueueProgress(p, now),
      done: p.delivered,
      total: queueTotal(p),
      state: !isCatchingUp(p) ? "finished" : isStale(p, now) ? "stale" : "running",
    });
  }
  for (const w of (await source.work?.list(now)) ?? []) {
    items.push({
      key: w.id,
      title: w.title,
      text: describeWorkState(w),
      done: w.done,
      total: w.finishedAt !== undefined && w.outcome === "ok" ? Math.max(w.done, w.total ?? 0) : w.total,
      state: isRunning(w) ? "running" : w.outcome === "ok" ? "finished" : "failed",
    });
  }
  return items;
}
