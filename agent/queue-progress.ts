// Progress of a target's queue catching up after a burst (an initial sync queues thousands of records at once):
// "1,200 of 5,000 delivered since the burst started, 300/s, about 13 s left". The agent counts every second
// with the outbox's indexes (open deliveries by deliveries_ready, delivered ones by deliveries_done) and keeps
// the result in one settings row per target, so the status page and `kontobro status` only read that row.
// Nothing is added to intake, claim or complete. The same on both engines, through the SqlRunner; a hosted tenant's
// settings row is shared by its workers (QueueWatchOptions.shared).
import { NOT_DONE } from "./db/open-deliveries.ts";
import type { SqlRunner } from "./db/pg/runner.ts";
import type { Logger } from "./log.ts";
import {
  addSample,
  describeAmount,
  describePace,
  estimate,
  formatCount,
  formatDuration,
  SHOW_FINISHED_MS,
  type Sample,
} from "./progress.ts";
import { showTime } from "./time.ts";

/** A burst starts when this many deliveries of a target are open at once (fewer go by within a second or two). */
export const BURST_STARTS_AT = 100;
/** …and is over when fewer than this are open (a steady trickle of new events keeps a few in flight). */
export const BURST_ENDS_BELOW = 10;
/** The watch counts this often, or less often when counting takes long (a huge backlog): at most 5% of the time. */
export const WATCH_EVERY_MS = 1_000;
/** Counts older than this while the burst is not over: the agent that counts them is not running. */
const STALE_AFTER_MS = 30_000;

export interface QueueProgress {
  target: string;
  /** When the burst started. */
  since: number;
  /** Delivered since then. */
  delivered: number;
  /** Needing action now, changed since then (they are no longer open and will not be delivered by themselves). */
  needsAction: number;
  /** Pending, in flight or waiting now. */
  open: number;
  /** `delivered` over time, for the rate. */
  samples: Sample[];
  updatedAt: number;
  /** When fewer than BURST_ENDS_BELOW were open again; null while it lasts. */
  finishedAt: number | null;
}

export interface QueueCounts {
  at: number;
  open: number;
  /** What `delivered` and `needsAction` count from (countsSince); null: they were not counted. */
  since: number | null;
  delivered: number;
  needsAction: number;
}

export const isCatchingUp = (p: QueueProgress | null): p is QueueProgress & { finishedAt: null } => p !== null && p.finishedAt === null;

/**
 * Over, with the last few still open when it ended: their counts are followed until none is (for as long as the
 * burst is shown), so it ends as "caught up: 2,000 delivered" rather than "1,995 delivered, 5 still open".
 */
const isFinishing = (p: QueueProgress | null, at: number): p is QueueProgress & { finishedAt: number } =>
  p !== null && p.finishedAt !== null && p.open > 0 && at - p.finishedAt <= SHOW_FINISHED_MS;

/**
 * From when the delivered and needing-action deliveries are to be counted, given the open ones: since the burst
 * under way started; for a burst starting now, since `quietAt` (the last count that found the queue quiet: what was
 * delivered since then belongs to this burst); null when only the open ones matter.
 */
export function countsSince(p: QueueProgress | null, at: number, open: number, quietAt: number): number | null {
  if (isCatchingUp(p)) return p.since;
  if (open >= BURST_STARTS_AT) return quietAt;
  return isFinishing(p, at) ? p.since : null;
}

/** The next state from new counts; the same object when nothing is to be kept (no burst, none starting). Pure. */
export function nextQueueProgress(target: string, prev: QueueProgress | null, seen: QueueCounts): QueueProgress | null {
  if (!isCatchingUp(prev)) {
    if (seen.open < BURST_STARTS_AT) {
      if (!isFinishing(prev, seen.at)) return prev;
      return { ...prev, delivered: seen.delivered, needsAction: seen.needsAction, open: seen.open, updatedAt: seen.at };
    }
    const since = seen.since ?? seen.at;
    return {
      target,
      since,
      delivered: seen.delivered,
      needsAction: seen.needsAction,
      open: seen.open,
      samples: addSample([{ at: since, done: 0 }], { at: seen.at, done: seen.delivered }),
      updatedAt: seen.at,
      finishedAt: null,
    };
  }
  return {
    ...prev,
    delivered: seen.delivered,
    needsAction: seen.needsAction,
    open: seen.open,
    samples: addSample(prev.samples, { at: seen.at, done: seen.delivered }),
    updatedAt: seen.at,
    finishedAt: seen.open < BURST_ENDS_BELOW ? seen.at : null,
  };
}

export const queueTotal = (p: QueueProgress) => p.delivered + p.needsAction + p.open;

/** Not refreshed for a while although not over: the agent that counts is not running. */
export const isStale = (p: QueueProgress, now: number) => p.finishedAt === null && now - p.updatedAt > STALE_AFTER_MS;

/**
 * A line for a person: "catching up: 1,200 of 5,000 delivered (24%) · 300/s · about 13 s left", or how the
 * last burst ended: "caught up: 5,000 delivered in 20 s". Counts the agent has not refreshed for a while say so.
 */
export function describeQueueProgress(p: QueueProgress, now: number): string {
  const extra = p.needsAction > 0 ? `, ${formatCount(p.needsAction)} need action` : "";
  if (p.finishedAt !== null) {
    const open = p.open > 0 ? `, ${formatCount(p.open)} still open` : "";
    return `caught up: ${formatCount(p.delivered)} delivered in ${formatDuration(p.finishedAt - p.since)}${extra}${open}`;
  }
  const e = estimate(p.delivered, queueTotal(p), p.samples);
  const pace = describePace(e, p.samples);
  const stale = isStale(p, now) ? ` (counted at ${showTime(p.updatedAt)}: is the agent running?)` : "";
  return `catching up: ${describeAmount(e, "delivered")}${extra}${pace ? ` · ${pace}` : ""}${stale}`;
}

const settingName = (target: string) => `queue_progress:${target}`;

/** The target's last burst as the agent counted it; null when there was none, or it ended long ago. O(1). */
export async function readQueueProgress(runner: SqlRunner, target: string, now = Date.now()): Promise<QueueProgress | null> {
  const row = await runner.get<{ value: string }>(`SELECT value FROM settings WHERE name = ?1`, settingName(target));
  if (!row) return null;
  let p: QueueProgress;
  try {
    p = JSON.parse(row.value) as QueueProgress;
  } catch {
    return null;
  }
  return p.finishedAt !== null && now - p.finishedAt > SHOW_FINISHED_MS ? null : p;
}

/** The counts of one target, each one range of an outbox index (test/queue-progress.test.ts checks the plans). */
export const QUEUE_COUNTS = {
  open: `SELECT count(*) AS n FROM deliveries WHERE target = ?1 AND status IN ('pending', 'in_flight', 'waiting') AND ${NOT_DONE}`,
  delivered: `SELECT count(*) AS n FROM deliveries WHERE target = ?1 AND status = 'done' AND done_at >= ?2`,
  needsAction: `SELECT count(*) AS n FROM deliveries WHERE target = ?1 AND status = 'needs_action' AND ${NOT_DONE} AND updated_at >= ?2`,
} as const;

const SAVE = `INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`;

export interface QueueWatchOptions {
  /**
   * Other workers count the same queues (a hosted tenant on PostgreSQL): each count starts from the stored progress,
   * whoever wrote it, and a target counted by another worker within the last half second is left to it.
   */
  shared?: boolean;
  /**
   * Whether the target's queue moved on this worker since the last count (its pushes). A target that did not, and
   * is not catching up, is not counted: an idle tenant costs no statement. Absent: every target is counted.
   */
  active?: (target: string) => boolean;
}

/**
 * Counts every target's queue and keeps the progress of bursts: started by agent.ts (SQLite), and per tenant by a
 * hosted worker (agent/hosted/tenant-runtime.ts; shared, counting only targets its dispatchers pushed to).
 */
export class QueueProgressWatch {
  private readonly state = new Map<string, QueueProgress | null>();
  /** Per target, the last count that found its queue quiet (a burst that starts began after it). */
  private readonly quietAt = new Map<string, number>();
  private loaded = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;

  constructor(
    private readonly runner: SqlRunner,
    private readonly targets: string[],
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly options: QueueWatchOptions = {},
  ) {
    // Nothing was delivered by this agent before it started: a backlog it finds belongs to its first burst.
    for (const t of targets) this.quietAt.set(t, now());
  }

  /** Counts once; writes a target's row only while it catches up, and when it has caught up. */
  async tick(): Promise<void> {
    const count = async (text: string, ...args: (string | number)[]) => Number((await this.runner.get<{ n: number }>(text, ...args))!.n);
    if (!this.loaded) {
      // A burst under way when the agent stopped goes on from where it was.
      for (const t of this.targets) this.state.set(t, await readQueueProgress(this.runner, t, Number.POSITIVE_INFINITY));
      this.loaded = true;
    }
    for (const target of this.targets) {
      let prev = this.state.get(target) ?? null;
      const at = this.now();
      if (this.options.active && !this.options.active(target) && !isCatchingUp(prev) && !isFinishing(prev, at)) {
        this.quietAt.set(target, at);
        continue;
      }
      if (this.options.shared) {
        prev = await readQueueProgress(this.runner, target, Number.POSITIVE_INFINITY);
        this.state.set(target, prev);
        if (prev && at - prev.updatedAt < WATCH_EVERY_MS / 2) continue;
      }
      const open = await count(QUEUE_COUNTS.open, target);
      const since = countsSince(prev, at, open, this.quietAt.get(target) ?? at);
      const next = nextQueueProgress(target, prev, {
        at,
        open,
        since,
        delivered: since === null ? 0 : await count(QUEUE_COUNTS.delivered, target, since),
        needsAction: since === null ? 0 : await count(QUEUE_COUNTS.needsAction, target, since),
      });
      if (!isCatchingUp(next)) this.quietAt.set(target, at);
      if (next === prev || !next) continue;
      this.state.set(target, next);
      await this.runner.run(SAVE, settingName(target), JSON.stringify(next));
    }
  }

  start(): void {
    const loop = async () => {
      const started = performance.now();
      try {
        await this.tick();
      } catch (e) {
        this.log.warn("could not count the queue's progress", { error: e });
      }
      if (this.stopped) return;
      const took = performance.now() - started;
      this.timer = setTimeout(loop, Math.max(WATCH_EVERY_MS, took * 20));
      this.timer.unref?.();
    };
    this.timer = setTimeout(loop, WATCH_EVERY_MS);
    this.timer.unref?.();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
