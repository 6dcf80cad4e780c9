// Progress of a target's queue catching up after a burst (an initial sync queues thousands of records at once):
// "1,200 of 5,000 delivered since the burst started, 300/s, about 13 s left". The agent counts every second
// with the outbox's indexes (open deliveries by deliveries_ready, delivered ones by deliveries_done) and keeps
// the result in one settings row per target, so the status page and `kontobro status` only read that row.
// Nothing is added to intake, claim or complete.
import type { Statement } from "bun:sqlite";
import type { Db } from "./db/index.ts";
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
export function readQueueProgress(db: Db, target: string, now = Date.now()): QueueProgress | null {
  const row = db.$client.query(`SELECT value FROM settings WHERE name = ?1`).get(settingName(target)) as { value: string } | null;
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
  open: `SELECT count(*) AS n FROM deliveries WHERE target = ?1 AND status IN ('pending', 'in_flight', 'waiting')`,
  delivered: `SELECT count(*) AS n FROM deliveries WHERE target = ?1 AND status = 'done' AND done_at >= ?2`,
  needsAction: `SELECT count(*) AS n FROM deliveries WHERE target = ?1 AND status = 'needs_action' AND updated_at >= ?2`,
} as const;

/** Counts every target's queue in the agent and keeps the progress of bursts (started by agent.ts). */
export class QueueProgressWatch {
  private readonly queries: Record<keyof typeof QUEUE_COUNTS, Statement>;
  private readonly state = new Map<string, QueueProgress | null>();
  /** Per target, the last count that found its queue quiet (a burst that starts began after it). */
  private readonly quietAt = new Map<string, number>();
  private readonly save: Statement;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    db: Db,
    private readonly targets: string[],
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    const c = db.$client;
    this.queries = {
      open: c.prepare(QUEUE_COUNTS.open),
      delivered: c.prepare(QUEUE_COUNTS.delivered),
      needsAction: c.prepare(QUEUE_COUNTS.needsAction),
    };
    this.save = db.$client.prepare(
      `INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
    );
    // A burst under way when the agent stopped goes on from where it was.
    for (const t of targets) {
      this.state.set(t, readQueueProgress(db, t, Number.POSITIVE_INFINITY) ?? null);
      // Nothing was delivered by this agent before it started: a backlog it finds belongs to its first burst.
      this.quietAt.set(t, now());
    }
  }

  /** Counts once; writes a target's row only while it catches up, and when it has caught up. */
  tick(): void {
    const count = (q: Statement, ...args: (string | number)[]) => (q.get(...args) as { n: number }).n;
    for (const target of this.targets) {
      const prev = this.state.get(target) ?? null;
      const at = this.now();
      const open = count(this.queries.open, target);
      const since = countsSince(prev, at, open, this.quietAt.get(target) ?? at);
      const next = nextQueueProgress(target, prev, {
        at,
        open,
        since,
        delivered: since === null ? 0 : count(this.queries.delivered, target, since),
        needsAction: since === null ? 0 : count(this.queries.needsAction, target, since),
      });
      if (!isCatchingUp(next)) this.quietAt.set(target, at);
      if (next === prev || !next) continue;
      this.state.set(target, next);
      this.save.run(settingName(target), JSON.stringify(next));
    }
  }

  start(): void {
    const loop = () => {
      const started = performance.now();
      try {
        this.tick();
      } catch (e) {
        this.log.warn("could not count the queue's progress", { error: e });
      }
      const took = performance.now() - started;
      this.timer = setTimeout(loop, Math.max(WATCH_EVERY_MS, took * 20));
      this.timer.unref?.();
    };
    this.timer = setTimeout(loop, WATCH_EVERY_MS);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
