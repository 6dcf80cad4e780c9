// What needs a person now, read from the database (so nothing is missed across crashes and restarts), and
// the alerts table kept in step with it: a problem seen for the first time opens an alert, a problem gone
// resolves it. Per target: records that need action (one alert per record, whatever its retries), pull
// jobs whose last run failed or that stopped completing (overdue-pulls.ts), credentials the target refused, a queue that
// stopped moving (stalled.ts), items pulled from it that the PSA webhook keeps refusing (PSA_ALERT_ATTEMPTS attempts or
// more) or that the PSA does not take at all (unread-inbox.ts), credit notes at it crediting what turned out the wrong
// document (credited-after-push.ts), and what only the running process knows (a failed
// fsync of the SQLite agent's WAL, agent/durability.ts: nothing is sent to any target until a restart; a disk
// running out of space, agent/disk-space.ts).
import { NOT_DONE } from "../db/open-deliveries.ts";
import { BACK_MARGIN } from "../disk-space.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import { listRefusedCredentials } from "./credentials.ts";
import { creditsSentUnchecked } from "./credited-after-push.ts";
import { EXPIRY_SUBJECT_PREFIX } from "./expiry.ts";
import { overduePulls, type ScheduledPull } from "./overdue-pulls.ts";
import { stalledQueues, type StalledCheck, unconfiguredQueues } from "./stalled.ts";
import { UNREAD_SUBJECT, unreadInbox } from "./unread-inbox.ts";

export type AlertKind = "delivery" | "pull" | "credentials" | "storage" | "disk" | "stalled" | "psa";

/**
 * An item the PSA webhook has refused (or not answered) this many times is told (with the default retry_base_ms of
 * 1 s doubling, after about 17 minutes): until then a PSA briefly down is not worth a notice.
 */
export const PSA_ALERT_ATTEMPTS = 10;

export interface Problem {
  target: string;
  kind: AlertKind;
  /** "invoice:20001", the stream, or "" (credentials, storage, stalled). */
  subject: string;
  code: string | null;
  message: string;
  hint: string | null;
  detail: Record<string, unknown>;
}

export interface AlertRow extends Problem {
  id: number;
  openedAt: number;
  resolvedAt: number | null;
  resolution: string | null;
  openedBatch: number | null;
  resolvedBatch: number | null;
}

const ALERT_COLUMNS = `id, target, kind, subject, code, message, hint, detail, opened_at AS openedAt, resolved_at AS resolvedAt,
  resolution, opened_batch AS openedBatch, resolved_batch AS resolvedBatch`;

export const toAlert = (r: any): AlertRow => ({ ...r, detail: JSON.parse(r.detail || "{}") });

export async function selectAlerts(db: SqlRunner, where: string, ...params: (string | number)[]): Promise<AlertRow[]> {
  return (await db.all<any>(`SELECT ${ALERT_COLUMNS} FROM alerts WHERE ${where} ORDER BY id`, ...params)).map(toAlert);
}

/** The configured pull job `target`/`stream` (scheduled or run only when asked), or undefined. */
const configuredPull = (pulls: ScheduledPull[], target: string, stream: string) =>
  pulls.find((p) => p.target === target && p.stream === stream);

/** Everything that needs a person right now; the stalled queues only with `stalled` (the notifier's targets and setting). */
export async function currentProblems(db: SqlRunner, stalled?: StalledCheck): Promise<Problem[]> {
  // The newest delivery of each record that needs action.
  const deliveries = await db.all<any>(
    `SELECT target, entity, key, id, attempts, error_code AS code, error_message AS message, error_hint AS hint FROM deliveries
        WHERE id IN (SELECT max(id) FROM deliveries WHERE status = 'needs_action' AND ${NOT_DONE} GROUP BY target, entity, key) ORDER BY target, entity, key`,
  );
  const pulls = await db.all<any>(
    `SELECT target, stream, id, error_code AS code, error_message AS message, error_hint AS hint, started_at AS startedAt FROM job_runs j
      WHERE id = (SELECT max(id) FROM job_runs WHERE target = j.target AND stream = j.stream) AND status = 'failed'`,
  );
  // A pull taken out of kontobro.toml (or its target) is no problem any more, whatever its last run did.
  const configured = (p: { target: string; stream: string }) => !stalled?.pulls || configuredPull(stalled.pulls, p.target, p.stream);
  const refused = await listRefusedCredentials(db);
  // Per target, the oldest item the PSA webhook keeps refusing, and how many wait behind the same problem.
  const psa = await db.all<any>(
    `SELECT target, id, attempts, error_code AS code, error_message AS message, error_hint AS hint,
        (SELECT count(*) FROM inbox w WHERE w.target = i.target AND w.state = 'new' AND w.attempts >= ?1) AS waiting
      FROM inbox i WHERE id = (SELECT id FROM inbox WHERE target = i.target AND state = 'new' AND attempts >= ?1 ORDER BY seq LIMIT 1)`,
    PSA_ALERT_ATTEMPTS,
  );
  return [
    ...deliveries.map(
      (d): Problem => ({
        target: d.target,
        kind: "delivery",
        subject: `${d.entity}:${d.key}`,
        code: d.code,
        message: d.message ?? "Needs action.",
        hint: d.hint,
        detail: { delivery: d.id, entity: d.entity, key: d.key, attempts: d.attempts },
      }),
    ),
    ...pulls.filter(configured).map(
      (p): Problem => ({
        target: p.target,
        kind: "pull",
        subject: p.stream,
        code: p.code,
        message: p.message ?? "The pull failed.",
        hint: p.hint,
        detail: { run: p.id, stream: p.stream, startedAt: p.startedAt },
      }),
    ),
    ...psa.map(
      (p): Problem => ({
        target: p.target,
        kind: "psa",
        subject: "",
        code: p.code,
        message: `The PSA webhook has not taken ${p.waiting} item(s) pulled from ${p.target} after ${p.attempts} attempts or more: ${p.message ?? "no answer"}`,
        hint:
          p.hint ??
          "Check that the PSA is up and that psa.webhook_url and psa.webhook_secret match its side; the items are sent again by themselves.",
        detail: { item: p.id, attempts: p.attempts, waiting: p.waiting },
      }),
    ),
    ...refused.map(
      (r): Problem => ({
        target: r.target,
        kind: "credentials",
        subject: "",
        code: "credentials_refused",
        message: r.message,
        hint: r.hint ?? null,
        detail: { since: r.since },
      }),
    ),
    // Credit notes at the configured targets crediting what turned out a credit note, another customer's invoice or one in
    // another currency (credited-after-push.ts).
    ...(stalled
      ? await creditsSentUnchecked(
          db,
          stalled.targets.map((t) => t.name),
        )
      : []),
    ...(stalled ? await stalledQueues(db, stalled) : []),
    ...(stalled ? await unconfiguredQueues(db, stalled) : []),
    ...(stalled?.pulls ? await overduePulls(db, stalled.pulls, stalled.now) : []),
    ...(stalled?.unread ? await unreadInbox(db, { ...stalled.unread, now: stalled.now }) : []),
  ];
}

const keyOf = (p: { target: string; kind: string; subject: string }) => `${p.target}\u0000${p.kind}\u0000${p.subject}`;

/**
 * Why an open alert that is no longer a current problem is over, or null while it is still under way
 * (a record retried and not delivered yet, a pull running again).
 */
async function resolutionOf(db: SqlRunner, a: AlertRow, scheduled?: ScheduledPull[]): Promise<string | null> {
  if (a.kind === "delivery" && a.detail.sentUnchecked)
    return "the credit note and the document it credits no longer differ (a new version of one of them)";
  if (a.kind === "delivery") {
    const { entity, key } = a.detail as { entity: string; key: string };
    const latest = await db.get<{ status: string }>(
      // Finished ones too: by the record's events (deliveries_record holds only open deliveries).
      `SELECT d.status FROM events e JOIN deliveries d ON d.event_seq = e.seq WHERE e.entity = ?2 AND e.key = ?3 AND d.target = ?1
        ORDER BY d.id DESC LIMIT 1`,
      a.target,
      entity,
      key,
    );
    if (!latest) return "it is no longer queued";
    if (latest.status === "done") return "delivered";
    if (latest.status === "superseded") return "replaced by a newer version";
    return null;
  }
  if (a.kind === "pull") {
    // Taken out of kontobro.toml (or its target), or made manual: nothing runs the job on its own any more, so neither a
    // good run nor the end of a run it left "running" (ended only when its job next runs) would ever resolve the alert.
    const job = scheduled ? configuredPull(scheduled, a.target, a.subject) : null;
    if (scheduled && !job) return "the pull is no longer configured";
    if (a.code === "pull_overdue" && job && !job.cron) return "the pull is no longer scheduled";
    const last = await db.get<{ status: string }>(
      `SELECT status FROM job_runs WHERE target = ?1 AND stream = ?2 ORDER BY id DESC LIMIT 1`,
      a.target,
      a.subject,
    );
    if (!last) return "no run is recorded any more";
    return last.status === "ok" ? "the pull succeeded" : null;
  }
  if (a.kind === "storage") return "kontobro was restarted and makes its commits durable again";
  if (a.kind === "disk") return `free disk space is back above agent.disk_free_warn_bytes and its ${BACK_MARGIN * 100}% margin`;
  if (a.kind === "stalled" && a.code === "target_not_configured")
    return "the target is configured again, or nothing is queued for it any more";
  if (a.kind === "stalled") return "the queue moves again: nothing open is that old any more";
  if (a.kind === "psa" && a.subject === UNREAD_SUBJECT) return "the PSA has taken them";
  if (a.kind === "psa") return "the PSA webhook takes the items again";
  if (a.subject.startsWith(EXPIRY_SUBJECT_PREFIX)) return "it was renewed (or is no longer configured)";
  return "the target accepts the credentials again";
}

/**
 * Opens, updates and resolves alerts to match the current problems: those in the database, and `known`, those only
 * this process knows of (NotifierOptions.problems). Runs inside the caller's transaction (`tx`: the notifier's round),
 * so what it reads and writes commits together.
 */
export async function syncAlerts(
  tx: SqlRunner,
  now: number,
  known: Problem[] = [],
  stalled?: StalledCheck,
): Promise<{ opened: number; resolved: number }> {
  const current = new Map([...(await currentProblems(tx, stalled)), ...known].map((p) => [keyOf(p), p]));
  const open = await selectAlerts(tx, "resolved_at IS NULL");
  let opened = 0;
  let resolved = 0;
  const openKeys = new Set<string>();
  for (const a of open) {
    const k = keyOf(a);
    openKeys.add(k);
    const p = current.get(k);
    if (p) {
      // Still a problem: keep its latest words (a retry may have failed differently); no new notice.
      if (p.message !== a.message || p.hint !== a.hint || p.code !== a.code)
        await tx.run(
          `UPDATE alerts SET code = ?2, message = ?3, hint = ?4, detail = ?5 WHERE id = ?1`,
          a.id,
          p.code,
          p.message,
          p.hint,
          JSON.stringify(p.detail),
        );
      continue;
    }
    const resolution = await resolutionOf(tx, a, stalled?.pulls);
    if (resolution === null) continue;
    await tx.run(`UPDATE alerts SET resolved_at = ?2, resolution = ?3 WHERE id = ?1`, a.id, now, resolution);
    resolved += 1;
  }
  for (const [k, p] of current) {
    if (openKeys.has(k)) continue;
    await tx.run(
      `INSERT INTO alerts (target, kind, subject, code, message, hint, detail, opened_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)`,
      p.target,
      p.kind,
      p.subject,
      p.code,
      p.message,
      p.hint,
      JSON.stringify(p.detail),
      now,
    );
    opened += 1;
  }
  return { opened, resolved };
}

/** "invoice 20001", "the expenses pull", "the credentials", "the database", "the queue". */
export function whatOf(a: Pick<Problem, "kind" | "subject">): string {
  if (a.kind === "delivery") {
    const i = a.subject.indexOf(":");
    return `${a.subject.slice(0, i)} ${a.subject.slice(i + 1)}`;
  }
  if (a.kind === "storage") return "the database";
  if (a.kind === "disk") return a.subject === "exports" ? "the export output folder's disk" : "the database's disk";
  if (a.kind === "stalled") return "the queue";
  if (a.kind === "psa") return a.subject === UNREAD_SUBJECT ? "the items pulled for the PSA" : "the PSA webhook";
  return a.kind === "pull" ? `the ${a.subject} pull` : "the credentials";
}
