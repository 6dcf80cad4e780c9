// A target's queue that stopped moving: the oldest delivery that neither reached the target nor needs action, once it is
// older than [notifications] stalled_after_minutes. Every other alert names a failure someone saw; this one catches what
// fails quietly: a target down or throttling for hours (retried by itself, never "needs action"), a hang, a target
// paused in kontobro.toml and forgotten, a delivery held or waiting behind another that does not move, a dispatcher that
// stopped or fails every round. One alert per target (subject ""), resolved once nothing that old is open.
import { NOT_DONE } from "../db/open-deliveries.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import { MOVING_DELIVERY_STATUSES } from "../states.ts";
import { TargetStateStore, type TargetState } from "../target-state.ts";
import { showTime } from "../time.ts";
import type { Problem } from "./alerts.ts";
import type { ScheduledPull } from "./overdue-pulls.ts";
import { capitalise } from "../problem.ts";

export interface StalledCheck {
  /** Configured, enabled targets; `paused`: paused = true in kontobro.toml. */
  targets: { name: string; paused?: boolean }[];
  /** An open delivery older than this (since it was queued) makes its target's queue stalled; 0: never. */
  stalledAfterMs: number;
  /** The scheduled pull jobs, told when they stop completing (overdue-pulls.ts). */
  pulls?: ScheduledPull[];
  /** Items pulled for the PSA and not taken are told after `afterMs` (unread-inbox.ts); absent: not checked. */
  unread?: { afterMs: number; webhook: boolean };
  now: number;
}

interface Oldest {
  id: number;
  entity: string;
  key: string;
  status: string;
  attempts: number;
  createdAt: number;
  nextAttemptAt: number;
  waitingOn: string | null;
  code: string | null;
  message: string | null;
  hint: string | null;
}

// Per status: whether the target has any (deliveries_ready, target and status), then the oldest, walking the partial index
// deliveries_status_id (status, id) from its start to the target's first: without the first, a target with none of that
// status would walk every other target's.
const ANY_OPEN = `SELECT 1 AS found FROM deliveries WHERE target = ?1 AND status = ?2 AND ${NOT_DONE} LIMIT 1`;
const OLDEST_OPEN = `SELECT id, entity, key, status, attempts, created_at AS createdAt, next_attempt_at AS nextAttemptAt,
    waiting_on AS waitingOn, error_code AS code, error_message AS message, error_hint AS hint
  FROM deliveries WHERE status = ?2 AND ${NOT_DONE} AND target = ?1 ORDER BY id LIMIT 1`;
// A waiting delivery counts only while what it waits for neither needs action (told as such already) nor waits itself
// (judged on its own): so an invoice behind a customer that needs action is not told twice, but a wait that nothing
// ends any more (the record it waits for delivered, or nowhere open) is.
const OLDEST_WAITING = `SELECT id, entity, key, status, attempts, created_at AS createdAt, next_attempt_at AS nextAttemptAt,
    waiting_on AS waitingOn, error_code AS code, error_message AS message, error_hint AS hint
  FROM deliveries w WHERE status = 'waiting' AND ${NOT_DONE} AND target = ?1
    AND NOT EXISTS (SELECT 1 FROM deliveries b WHERE b.target = ?1 AND b.status IN ('needs_action', 'waiting') AND b.status <> 'done'
      AND b.entity || ':' || b.key = w.waiting_on)
  ORDER BY id LIMIT 1`;

/** The oldest delivery to `target` that is neither delivered, replaced nor needing action; null when none. */
export async function oldestOpen(db: SqlRunner, target: string): Promise<Oldest | null> {
  let oldest: Oldest | null = null;
  for (const status of MOVING_DELIVERY_STATUSES) {
    if (!(await db.get(ANY_OPEN, target, status))) continue;
    const row = await (status === "waiting" ? db.get<Oldest>(OLDEST_WAITING, target) : db.get<Oldest>(OLDEST_OPEN, target, status));
    if (row && (!oldest || row.id < oldest.id)) oldest = row;
  }
  return oldest;
}

// A record the PSA sends again and again while the target takes nothing: each version replaces the one before, so its
// open delivery is always young, and a queue of such records (projects whose hours change, a PSA re-sending its
// register) never looked stuck. Its age counts from its oldest version replaced since the target last delivered
// anything: the target's last delivery (deliveries_done), then the first replaced version queued after it whose record
// is still on its way (deliveries_status_id from that id on; the record's open delivery by deliveries_record).
const LAST_DONE = `SELECT id, done_at AS doneAt FROM deliveries WHERE target = ?1 AND status = 'done' ORDER BY done_at DESC LIMIT 1`;
const FIRST_REPLACED = `SELECT s.entity, s.key, s.created_at AS createdAt, o.id, o.status, o.attempts, o.next_attempt_at AS nextAttemptAt,
    o.waiting_on AS waitingOn, o.error_code AS code, o.error_message AS message, o.error_hint AS hint
  FROM deliveries s JOIN deliveries o ON o.target = ?1 AND o.entity = s.entity AND o.key = s.key
    AND (o.status = 'done' OR o.status = 'superseded') = FALSE AND o.status IN ('pending', 'in_flight')
  WHERE s.status = 'superseded' AND s.status <> 'done' AND s.id > ?2 AND s.target = ?1 AND s.created_at > ?3
  ORDER BY s.id LIMIT 1`;

/**
 * The oldest delivery to `target`, as oldestOpen, but a record sent again meanwhile dated from its first version queued
 * since the target last delivered anything; `resent` says so. Null when none.
 */
export async function oldestUndelivered(db: SqlRunner, target: string): Promise<(Oldest & { resent?: boolean }) | null> {
  const oldest = await oldestOpen(db, target);
  if (!oldest) return null;
  const last = await db.get<{ id: number; doneAt: number }>(LAST_DONE, target);
  const replaced = await db.get<Oldest>(FIRST_REPLACED, target, last?.id ?? 0, last?.doneAt ?? 0);
  if (!replaced || Number(replaced.createdAt) >= Number(oldest.createdAt)) return oldest;
  return { ...replaced, resent: true };
}

/** "40 s", "45 min", "3 h 20 min", "2 days 4 h". Pure. */
export function showAge(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return minutes % 60 === 0 ? `${hours} h` : `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} days ${hours % 24} h`;
}

/** Where the oldest delivery stands, in a few words. Pure. */
function standing(d: Oldest, now: number): string {
  if (d.status === "waiting") return `it waits for ${d.waitingOn?.replace(":", " ") ?? "another record"} to reach the target first`;
  if (d.status === "in_flight") return "it is being sent";
  if (d.attempts === 0 && !d.message)
    return d.nextAttemptAt <= now ? "it has not been tried" : `its first try is due ${showTime(d.nextAttemptAt)}`;
  const tried = `${d.attempts} attempt${d.attempts === 1 ? "" : "s"}`;
  return `${tried}, next ${d.nextAttemptAt <= now ? "due now" : showTime(d.nextAttemptAt)}${d.message ? `: ${d.message.replace(/\.+$/, "")}` : ""}`;
}

/** What to do, from the most likely cause: kontobro.toml, the target's pause or breaker, then the delivery itself. Pure. */
function whatToDo(d: Oldest, paused: boolean, s: TargetState, now: number): string {
  if (paused)
    return "The target is paused in kontobro.toml (paused = true): nothing is sent to it. Remove paused (or set it to false) and restart kontobro.";
  if (s.pausedUntil !== null && s.pausedUntil > now)
    return `The target asked kontobro to wait until ${showTime(s.pausedUntil)}${s.pauseReason ? ` (${s.pauseReason})` : ""}; sending resumes by itself then. If it keeps asking, check the target's quota and rate limits with its vendor.`;
  if (s.breaker !== "closed")
    return `The target failed ${s.failures} time(s) in a row (server errors, timeouts or broken connections); kontobro keeps probing it and resumes by itself. Check the target's service status, and this server's network, DNS and proxy (\`kontobro check\`).`;
  if (d.status === "waiting") return "Open the record it waits for on the status page: that one is not delivered yet, and says why.";
  if (d.attempts === 0 && !d.message && d.nextAttemptAt <= now)
    return "Nothing is sending to this target: look in kontobro's log for errors of the dispatcher, and restart kontobro.";
  return d.hint ?? "kontobro retries by itself; the record's page on the status page lists every attempt and its answer.";
}

/** A delivery queued this far "in the future" says the server's clock went back since. */
const CLOCK_SLACK_MS = 5 * 60_000;

/**
 * The clock went back (a wrong time corrected, say a day): every time stored by the clock as it was lies ahead by as
 * much, and the deliveries' ages read negative. The dispatcher reschedules their tries and the target's pause when it
 * sees the clock go back (Dispatcher.noteClock), so nothing waits for the clock to get there again.
 */
function clockWentBack(target: string, d: Oldest, now: number): Problem {
  return {
    target,
    kind: "stalled",
    subject: "",
    code: "clock_went_back",
    message: `${capitalise(`${d.entity} ${d.key}`)} was queued at ${showTime(d.createdAt)}, ${showAge(d.createdAt - now)} later than the time now (${showTime(now)}): the server's clock went back. kontobro has rescheduled the tries and the target's pause set by the clock as it was: each is due as long after now as it was then.`,
    hint: "Check the server's time and its time synchronisation (timedatectl, NTP). This alert ends once the clock has passed the times the deliveries were queued at.",
    detail: { delivery: d.id, entity: d.entity, key: d.key, status: d.status, attempts: d.attempts, queuedAt: d.createdAt },
  };
}

/** The stalled queues of the configured targets, one problem each. */
export async function stalledQueues(db: SqlRunner, check: StalledCheck): Promise<Problem[]> {
  if (check.stalledAfterMs <= 0) return [];
  const problems: Problem[] = [];
  const state = new TargetStateStore(db);
  for (const t of check.targets) {
    const d = await oldestUndelivered(db, t.name);
    if (!d) continue;
    if (d.createdAt - check.now > CLOCK_SLACK_MS) {
      problems.push(clockWentBack(t.name, d, check.now));
      continue;
    }
    if (check.now - d.createdAt < check.stalledAfterMs) continue;
    const s = await state.get(t.name);
    const what = `${d.entity} ${d.key}`;
    problems.push({
      target: t.name,
      kind: "stalled",
      subject: "",
      code: "queue_stalled",
      message: `${capitalise(what)}, queued ${showTime(d.createdAt)}${d.resent ? " (since sent again by the PSA: each newer version replaced the one before, none reached the target)" : ""}, is not delivered after ${showAge(check.stalledAfterMs)}: ${standing(d, check.now)}.`,
      hint: whatToDo(d, t.paused === true, s, check.now),
      detail: { delivery: d.id, entity: d.entity, key: d.key, status: d.status, attempts: d.attempts, queuedAt: d.createdAt },
    });
  }
  return problems;
}

// The next target, after ?1, with an open delivery: one seek on deliveries_ready (target first, open ones only), so all
// the targets with a queue are found in as many seeks, however long their queues.
const NEXT_QUEUED_TARGET = `SELECT min(target) AS target FROM deliveries WHERE ${NOT_DONE} AND target > ?1`;
const OPEN_OF_TARGET = `SELECT count(*) AS n, min(created_at) AS since FROM deliveries WHERE target = ?1 AND ${NOT_DONE}`;

/** The targets that have open deliveries. */
export async function queuedTargets(db: SqlRunner): Promise<string[]> {
  const names: string[] = [];
  for (let after = ""; ; ) {
    const next = (await db.get<{ target: string | null }>(NEXT_QUEUED_TARGET, after))?.target ?? null;
    if (next === null) return names;
    names.push(next);
    after = next;
  }
}

/**
 * Deliveries queued for a target that is no longer an enabled one (removed from kontobro.toml, renamed, enabled =
 * false): nothing sends them and no other check looks at them. One problem per such target, at once.
 */
export async function unconfiguredQueues(db: SqlRunner, check: StalledCheck): Promise<Problem[]> {
  const configured = new Set(check.targets.map((t) => t.name));
  const problems: Problem[] = [];
  for (const name of await queuedTargets(db)) {
    if (configured.has(name)) continue;
    const open = (await db.get<{ n: number; since: number }>(OPEN_OF_TARGET, name))!;
    problems.push({
      target: name,
      kind: "stalled",
      subject: "",
      code: "target_not_configured",
      message: `${open.n} deliver${open.n === 1 ? "y is" : "ies are"} queued for target "${name}" (the oldest since ${showTime(open.since)}), which is not an enabled target in kontobro.toml (removed, renamed, or enabled = false): nothing sends ${open.n === 1 ? "it" : "them"}. They are kept.`,
      hint: `Renamed? Give the target its old name back (name = "${name}"): what kontobro booked there (its customers, projects and invoices) is kept under that name, and a target under a new name starts without it, so records already booked could be booked again. Removed or disabled on purpose: these wait until "${name}" is configured and enabled again.`,
      detail: { open: open.n, since: open.since },
    });
  }
  return problems;
}
