// The chaos run's verdict: the target's final state against what the PSA sent, and the request log
// against every Retry-After the target gave. Pure functions.
import type { BookedDoc, LoggedRequest, TargetSnapshot } from "../connectors/sandbox.ts";
import type { ExpectedDoc } from "./chaos-events.ts";

// What a sandbox's chaos adapter reads back (connectors/sandbox.ts), as the verdict uses it.
export type { BookedDoc, LoggedRequest, TargetSnapshot } from "../connectors/sandbox.ts";

export interface Verdict {
  missing: number;
  duplicates: number;
  wrong: number;
  orphanDrafts: number;
  missingCustomers: number;
  missingProjects: number;
  /** The first few findings, for a post-mortem. */
  findings: string[];
}

/** Why a booked document is not what the PSA sent, or null when it is. */
export function whatIsWrong(want: ExpectedDoc, got: BookedDoc): string | null {
  if (got.customer !== want.customer) return `customer ${got.customer}, PSA sent ${want.customer}`;
  if (got.total !== want.total) return `total ${got.total}, PSA sent ${want.total}`;
  if (want.kind === "credit_note" && !(got.total < 0)) return `a credit note raises what the customer owes (total ${got.total})`;
  if (JSON.stringify(got.lines) !== JSON.stringify(want.lines))
    return `lines ${JSON.stringify(got.lines)}, PSA sent ${JSON.stringify(want.lines)}`;
  if (
    want.creditedInvoiceNumber !== undefined &&
    got.creditedInvoiceNumber !== undefined &&
    got.creditedInvoiceNumber !== want.creditedInvoiceNumber
  ) {
    return `credits invoice ${got.creditedInvoiceNumber}, PSA sent ${want.creditedInvoiceNumber}`;
  }
  return null;
}

export function verify(
  expected: Map<string, ExpectedDoc>,
  master: { customers: string[]; projects: string[] },
  s: TargetSnapshot,
): Verdict {
  const findings: string[] = [];
  const note = (f: string) => {
    if (findings.length < 20) findings.push(f);
  };
  const byPsaId = new Map<string, BookedDoc[]>();
  let duplicates = 0;
  const ourNumbers = new Map([...expected.values()].map((d) => [d.number, d.psaId]));
  for (const b of s.booked) {
    if (b.psaId !== null && expected.has(b.psaId)) {
      byPsaId.set(b.psaId, [...(byPsaId.get(b.psaId) ?? []), b]);
    } else if (b.number !== null && ourNumbers.has(b.number)) {
      duplicates += 1; // our number, booked without our PSA id (or with another's)
      note(`booked ${b.number} carries PSA id ${b.psaId}, not ${ourNumbers.get(b.number)}`);
    }
  }
  let missing = 0;
  let wrong = 0;
  for (const want of expected.values()) {
    const got = byPsaId.get(want.psaId) ?? [];
    if (got.length === 0) {
      missing += 1;
      note(`missing ${want.psaId} (${want.number})`);
      continue;
    }
    if (got.length > 1) {
      duplicates += got.length - 1;
      note(`${want.psaId} booked ${got.length} times (${got.map((g) => g.number ?? "unnumbered").join(", ")})`);
    }
    const problems = got
      .map((g) => (g.number === null || g.number === want.number ? whatIsWrong(want, g) : `booked as ${g.number}, PSA sent ${want.number}`))
      .filter((p) => p !== null);
    if (problems.length > 0) {
      wrong += 1;
      note(`wrong ${want.psaId}: ${problems[0]}`);
    }
  }
  const orphanDrafts = s.drafts.length;
  if (orphanDrafts > 0)
    note(
      `drafts left: ${s.drafts
        .slice(0, 10)
        .map((d) => `${d.psaId ?? "(no PSA id)"} made ${new Date(d.createdAt).toISOString()}`)
        .join(", ")}`,
    );
  const has = (list: string[]) => new Set(list);
  const customers = has(s.customers);
  const projects = has(s.projects);
  return {
    missing,
    duplicates,
    wrong,
    orphanDrafts,
    missingCustomers: master.customers.filter((n) => !customers.has(n)).length,
    missingProjects: master.projects.filter((n) => !projects.has(n)).length,
    findings,
  };
}

/**
 * How long after a stop the sandbox may begin a request the stopped agent sent before it: the handler starts when the
 * sandbox gets to it, on a loaded machine up to about 0.17 s after the request left (see maxRequestsInRetryAfterWindow).
 * A full test run under load once had a create begun 21 ms after its agent was killed, answered 1.5 s later: no agent
 * heard it. An agent started after the stop is still starting then (a process start and its recovery).
 */
const SENT_BEFORE_STOP_MS = 250;

/**
 * Of the drafts left, those traced to a create whose answer reached no agent (it was answered after the
 * client timeout, and the agent that sent it was stopped meanwhile: the READMEs' "left open" case): the
 * draft itself, or another document with its PSA id, was made by such a create (at Uni Micro the unheard
 * draft can be the one finished and booked, and a later one left). Stopped meanwhile: the sandbox saw the agent's
 * connection closed before it answered (LoggedRequest.clientGone: killed, or a worker that exited by itself after
 * the others declared it dead, which `stops` does not list), or, by the clock, a stop between the request's start
 * (less SENT_BEFORE_STOP_MS) and its answer.
 */
export function draftsMadeAfterStop<D extends { psaId: string | null; createdAt: number }>(
  drafts: D[],
  booked: { psaId: string | null; createdAt?: number }[],
  log: LoggedRequest[],
  stops: number[],
  timeoutMs: number,
): { afterStop: D[]; others: D[] } {
  const unheard = log.filter(
    (r) =>
      r.answeredAt - r.startedAt > timeoutMs &&
      (r.clientGone === true ||
        stops.some((s) => r.answeredEpoch - (r.answeredAt - r.startedAt) < s + SENT_BEFORE_STOP_MS && s < r.answeredEpoch)),
  );
  const madeUnheard = (createdAt: number | undefined) =>
    createdAt !== undefined && unheard.some((r) => Math.abs(r.answeredEpoch - createdAt) <= 50);
  const traced = new Set([...drafts, ...booked].filter((d) => madeUnheard(d.createdAt)).map((d) => d.psaId));
  const afterStop = drafts.filter((d) => madeUnheard(d.createdAt) || (d.psaId !== null && traced.has(d.psaId)));
  return { afterStop, others: drafts.filter((d) => !afterStop.includes(d)) };
}

/**
 * The most requests that reached the target while a Retry-After it gave was running: for every answer with a
 * Retry-After > 0, the requests the sandbox began after that answer and before its Retry-After ended.
 *
 * No time allowance tells "already on its way" from "sent during the pause": the sandbox cannot see when the
 * agent read the 429. On a loaded machine that was up to 0.3 s after the sandbox wrote it, and requests sent
 * before it reached the sandbox's handler up to 0.17 s after they left. What bounds the count is the agent's
 * order of work: a push sends its requests one after another; while the target throttles, every request is
 * answered 429, which ends the push; once the agent has read a 429 it sends nothing until the Retry-After
 * has passed on its own clock (so the probe that follows lands after the window). Each push under way sends
 * at most one request into a window, so the count is at most [dispatch] concurrency; more means the pause
 * did not stop new work.
 */
export function maxRequestsInRetryAfterWindow(log: LoggedRequest[]): { max: number; windows: number; worst?: string } {
  const starts = log.map((r) => r.startedAt).sort((a, b) => a - b);
  const atOrBefore = (t: number) => {
    // how many requests started at or before t
    let lo = 0,
      hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]! > t) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  let max = 0;
  let windows = 0;
  let worst: string | undefined;
  for (const r of log) {
    if (!r.retryAfterMs || r.retryAfterMs <= 0) continue;
    windows += 1;
    const end = r.answeredAt + r.retryAfterMs;
    const n = atOrBefore(end - 1e-6) - atOrBefore(r.answeredAt);
    if (n > max) {
      max = n;
      const inside = log
        .filter((x) => x.startedAt > r.answeredAt && x.startedAt < end)
        .map((x) => `${x.method} ${x.path} +${Math.round(x.startedAt - r.answeredAt)} ms`);
      worst = `${r.status} to ${r.method} ${r.path} (Retry-After ${r.retryAfterMs} ms), then ${inside.join("; ")}`;
    }
  }
  return { max, windows, worst };
}
