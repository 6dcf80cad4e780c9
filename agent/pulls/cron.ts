// Schedules: cron expressions evaluated by node-cron in a stated IANA time zone. Pure helpers for
// validation, "was a run missed?" (catch-up at start) and "what is today there?".
import cron from "node-cron";
import type { Problem } from "../problem.ts";

/** True when `tz` is an IANA time zone this runtime knows (Intl decides, as it does for node-cron). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Problems with a schedule, in plain language; empty when node-cron will run it. */
export function scheduleProblems(expression: string, timezone: string, field: string): Problem[] {
  const problems: Problem[] = [];
  const detail = cron.validateDetailed(expression);
  if (!detail.valid) {
    const why = detail.errors.map((e) => e.message).join("; ");
    problems.push({
      code: "config.invalid_cron",
      field: `${field}.cron`,
      message: `"${expression}" is not a valid cron expression${why ? ` (${why})` : ""}`,
      hint: 'Use five fields, minute hour day-of-month month day-of-week, e.g. "0 6 * * *" for 06:00 every day.',
    });
  }
  if (!isTimeZone(timezone)) {
    problems.push({
      code: "config.invalid_time_zone",
      field: `${field}.timezone`,
      message: `"${timezone}" is not a time zone`,
      hint: 'Use an IANA name such as "Europe/Copenhagen", "Europe/Oslo" or "UTC".',
    });
  }
  return problems;
}

const MINUTE = 60_000;
/**
 * How far back a missed run is searched for: enough for daily, weekly and monthly schedules (one
 * catch-up run covers any gap anyway) while keeping the walk under ~50,000 matcher calls.
 */
export const CATCH_UP_WINDOW_MS = 35 * 24 * 60 * MINUTE;

/**
 * The first time the schedule was due in (since, now], or null. Used at start: if a run was due while
 * the agent was down, one catch-up run is made. Walks minute by minute with node-cron's own matcher
 * (so time zones and DST behave exactly as the live schedule does); a minute matches at the first
 * second the expression allows, which makes six-field expressions work too.
 */
export function missedSlot(expression: string, timezone: string, since: number, now: number): Date | null {
  const task = cron.createTask(expression, () => {}, { timezone });
  try {
    const seconds = cron.parse(expression).second;
    const firstSecond = Math.min(...seconds);
    let minute = Math.floor(Math.max(since, now - CATCH_UP_WINDOW_MS) / MINUTE) * MINUTE;
    for (; minute <= now; minute += MINUTE) {
      const at = minute + firstSecond * 1000;
      if (at > since && at <= now && task.match(new Date(at))) return new Date(at);
    }
    return null;
  } finally {
    void task.destroy();
  }
}

/** The next times the schedule is due, from now (for the status page). */
export function nextSlots(expression: string, timezone: string, count = 1): Date[] {
  const task = cron.createTask(expression, () => {}, { timezone });
  try {
    return task.getNextRuns(count);
  } finally {
    void task.destroy();
  }
}

/** The calendar date (YYYY-MM-DD) at `now` in time zone `tz`. */
export function todayIn(tz: string, now: number = Date.now()): string {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(
    new Date(now),
  );
  const get = (t: string) => parts.find((p) => p.type === t)!.value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

/** Adds (or subtracts) whole days to an ISO date. */
export function addDays(isoDate: string, days: number): string {
  const d = new Date(`${isoDate}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}
