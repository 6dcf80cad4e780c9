// Everything in progress, as the status page's "In progress" section and `kontobro status` show it: each target's
// queue catching up after a burst (agent/queue-progress.ts), then exports and pulls under way or just finished
// (agent/running-work.ts), oldest first. Reads one settings row per target and a few small files.
import type { Db } from "./db/index.ts";
import { describeQueueProgress, isCatchingUp, isStale, queueTotal, readQueueProgress } from "./queue-progress.ts";
import { describeWorkState, isRunning, listWork } from "./running-work.ts";

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

export function progressItems(db: Db, targets: readonly string[], now = Date.now()): ProgressItem[] {
  const items: ProgressItem[] = [];
  for (const target of targets) {
    const p = readQueueProgress(db, target, now);
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
  for (const w of listWork(db, now)) {
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
