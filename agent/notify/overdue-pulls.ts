// A scheduled pull that stopped completing, quietly: no run since (the schedule does not fire, the scheduler stopped,
// the job throws before its run is recorded), or a run that never ends (a request that hangs). A pull whose last run
// failed is told as such already (alerts.ts); this one is told when no run has completed well for twice the schedule's
// longest interval plus OVERDUE_MARGIN_MS, counted from the start of the last good run (or from when the job was first
// configured). Kind "pull" with the stream as subject: resolved as a failed pull is, by its next good run.
import type { SqlRunner } from "../db/pg/runner.ts";
import { nextSlots } from "../pulls/cron.ts";
import { lastGoodRunAt } from "../pulls/runner.ts";
import { showTime } from "../time.ts";
import type { Problem } from "./alerts.ts";
import { showAge } from "./stalled.ts";

/** A pull job on a schedule, as the scheduler runs it (agent/pulls/scheduler.ts ScheduledJob). */
export interface ScheduledPull {
  target: string;
  stream: string;
  /** null: run only when asked, never overdue. */
  cron: string | null;
  timezone: string;
}

/** Time a run may take beyond the schedule (a long first pull, a slow target) before it counts as overdue. */
export const OVERDUE_MARGIN_MS = 30 * 60_000;

const DAY = 86_400_000;
/** The span of slots looked at for the longest interval: a week and a day, so a weekend's gap is in it. */
const SPAN_MS = 8 * DAY;
const MAX_SLOTS = 12_000;

const gaps = new Map<string, number>();

/**
 * The longest interval between consecutive runs of the schedule over its next eight days (at least two slots): for
 * "0 6 * * 1-5" the weekend's 72 h, not a weekday's 24 h. Computed once per schedule.
 */
export function longestInterval(cron: string, timezone: string): number {
  const key = `${cron}\u0000${timezone}`;
  const known = gaps.get(key);
  if (known !== undefined) return known;
  const [first, second] = nextSlots(cron, timezone, 2).map((d) => d.getTime());
  let longest = second! - first!;
  if (longest < SPAN_MS) {
    const slots = nextSlots(cron, timezone, Math.min(MAX_SLOTS, Math.ceil(SPAN_MS / longest) + 2)).map((d) => d.getTime());
    for (let i = 1; i < slots.length; i++) longest = Math.max(longest, slots[i]! - slots[i - 1]!);
  }
  gaps.set(key, longest);
  return longest;
}

interface LatestRun {
  id: number;
  status: string;
  startedAt: number;
}

const LATEST_RUN = `SELECT id, status, started_at AS startedAt FROM job_runs WHERE target = ?1 AND stream = ?2 ORDER BY id DESC LIMIT 1`;
const FIRST_SEEN = `SELECT value FROM settings WHERE name = ?1`;

/** The scheduled pulls that have not completed well for too long, one problem each. */
export async function overduePulls(db: SqlRunner, pulls: ScheduledPull[], now: number): Promise<Problem[]> {
  const problems: Problem[] = [];
  for (const pull of pulls) {
    if (!pull.cron) continue;
    const good = await lastGoodRunAt(db, pull.target, pull.stream);
    const firstSeen = await db.get<{ value: string }>(FIRST_SEEN, `pull_first_seen:${pull.target}:${pull.stream}`);
    const since = good ?? (firstSeen ? Number(firstSeen.value) : null);
    if (since === null) continue; // not started yet: the scheduler writes pull_first_seen at its start
    const interval = longestInterval(pull.cron, pull.timezone);
    const after = 2 * interval + OVERDUE_MARGIN_MS;
    if (now - since < after) continue;
    const latest = await db.get<LatestRun>(LATEST_RUN, pull.target, pull.stream);
    if (latest?.status === "failed") continue; // told as a failed pull, in its own words
    // A run under way (a catch-up after the agent was down) gets its interval and the margin before it counts as hung.
    if (latest?.status === "running" && now - latest.startedAt < interval + OVERDUE_MARGIN_MS) continue;
    problems.push(overdue(pull, { since, good: good !== null, interval, latest: latest ?? null, now }));
  }
  return problems;
}

function overdue(
  pull: ScheduledPull,
  o: { since: number; good: boolean; interval: number; latest: LatestRun | null; now: number },
): Problem {
  const since = o.good ? `its last good run started (${showTime(o.since)})` : `it was first scheduled (${showTime(o.since)})`;
  const head = `The ${pull.stream} pull (schedule "${pull.cron}", ${pull.timezone}, at least every ${showAge(o.interval)}) has not completed for ${showAge(o.now - o.since)}, since ${since}`;
  const ran = o.latest && o.latest.startedAt > o.since;
  const { message, hint } =
    ran && o.latest!.status === "running"
      ? {
          message: `${head}. Its run ${o.latest!.id}, started ${showTime(o.latest!.startedAt)}, is still running: it hangs.`,
          hint: `A request to ${pull.target} (or to the PSA) may never answer. Look in kontobro's log for run ${o.latest!.id}, then restart kontobro: the run is ended and the next one starts from the stored cursor, so nothing is lost.`,
        }
      : ran && o.latest!.status === "interrupted"
        ? {
            message: `${head}. Its last run (${o.latest!.id}, started ${showTime(o.latest!.startedAt)}) was interrupted and none has run since.`,
            hint: "kontobro stopped during that run and the schedule has not started another: look in kontobro's log for errors of the scheduler, and restart kontobro.",
          }
        : {
            message: `${head}. No run has started since: the schedule does not start it, or the job fails before its run is recorded.`,
            hint: `Check [targets.pulls.${pull.stream}] of ${pull.target} in kontobro.toml (cron, timezone, enabled) and look in kontobro's log for "pull could not run"; then restart kontobro. The next run starts from the stored cursor, so nothing is lost.`,
          };
  return {
    target: pull.target,
    kind: "pull",
    subject: pull.stream,
    code: "pull_overdue",
    message,
    hint,
    detail: { stream: pull.stream, cron: pull.cron, timezone: pull.timezone, since: o.since, ...(o.latest ? { run: o.latest.id } : {}) },
  };
}
