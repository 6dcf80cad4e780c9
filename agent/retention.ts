// Retention: finished work older than `agent.retention_days` is pruned, in small write transactions that
// yield to the event loop between them, so intake and the dispatchers never wait for more than one of them.
//
// What is kept, whatever its age:
//   - the event of every record's latest version (records.last_event_seq), with its payload;
//   - every event that still has a delivery that is not finished (finished = done or superseded);
//   - deliveries in pending, waiting, in_flight and needs_action;
//   - a slim row of every pruned event (id, type, record, time; payload '') so that a PSA re-sending an
//     old event id is still answered "duplicate", never stored and pushed again;
//   - a slim row of every pruned inbox item (same reason: a later pull of the same remote id is a duplicate);
//   - the last run and the last good run of every pull job (the scheduler's catch-up reads them);
//   - the newest delivery row (restore detection compares the highest ids with marks kept beside the file);
//   - the export tables' rows (runs, files with their size and SHA-256, every invoice's export status), so nothing
//     is ever exported twice; the content of a file goes once it is older than retention_days and was written to the
//     output folder or offered for download (agent/exports/store.ts pruneExportFileBytes; a file still waiting for the
//     folder keeps it).
// Delivery attempts (the record page's history) older than retention_days go, whatever their delivery's state:
// the delivery row keeps its latest state.
// Delivery statistics (the status page's charts) are kept STATS_KEPT_DAYS, whatever retention_days says.
import { statSync } from "node:fs";
import type { Db } from "./db/index.ts";
import { sqliteRunner } from "./db/pg/runner.ts";
import { pruneDeliveryStats, STATS_KEPT_DAYS } from "./delivery-stats.ts";
import { EXPORT_FILES_PER_STATEMENT, pruneExportFileBytes } from "./exports/store.ts";
import type { Logger } from "./log.ts";
import type { Gauge } from "./metrics.ts";
import { startPeriodic } from "./periodic.ts";
import { getSetting } from "./queries.ts";

export const DEFAULT_RETENTION_DAYS = 90;
const DAY_MS = 86_400_000;
const LAST_PRUNE_SETTING = "retention_last_prune";

export interface PruneResult {
  /** When the prune started (ms). */
  at: number;
  retentionDays: number;
  /** Finished work older than this (ms) was pruned. */
  cutoff: number;
  /** Events whose payload was dropped (their slim rows stay). */
  events: number;
  deliveries: number;
  /** Delivered inbox items whose content and attachment were dropped (their slim rows stay). */
  inboxItems: number;
  jobRuns: number;
  /** Rows of delivery attempt history (absent in results stored by older versions). */
  attempts?: number;
  /** Hours of delivery statistics older than STATS_KEPT_DAYS (absent in results stored by older versions). */
  statsHours?: number;
  /** Export files whose content was removed (absent in results stored by older versions). */
  exportFiles?: number;
  durationMs: number;
  /** Stopped early (the agent is shutting down); the next run continues. */
  interrupted?: boolean;
}

export interface PruneOptions {
  retentionDays: number;
  /** Rows looked at per write transaction. */
  batchSize?: number;
  now?: () => number;
  /** Asked between transactions; true ends the prune early. */
  shouldStop?: () => boolean;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

// One chunk of events (by seq range) that has work to do. The CASE fixes the order of the checks: index
// lookups first, so a kept event's (possibly large) payload is never read.
const PRUNABLE_EVENTS = `
  SELECT e.seq FROM events e
   WHERE e.seq >= ?1 AND e.seq < ?2 AND CASE
     WHEN EXISTS (SELECT 1 FROM records r WHERE r.entity = e.entity AND r.key = e.key AND r.last_event_seq = e.seq) THEN FALSE
     WHEN EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.status NOT IN ('done', 'superseded')) THEN FALSE
     WHEN e.received_at >= ?3 THEN FALSE
     WHEN e.payload <> '' THEN TRUE
     ELSE EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.status IN ('done', 'superseded') AND d.updated_at < ?3)
   END`;

// Written once for both engines (hosted tenants: agent/hosted/stats-prune.ts).
/** Pull runs that finished before ?1, at most ?2, but never a job's last run or last good run (the scheduler's catch-up). */
export const PRUNE_JOB_RUNS = `DELETE FROM job_runs WHERE id IN (
  SELECT j.id FROM job_runs j WHERE j.status <> 'running' AND j.finished_at IS NOT NULL AND j.finished_at < ?1
     AND j.id <> (SELECT max(id) FROM job_runs WHERE target = j.target AND stream = j.stream)
     AND j.id IS DISTINCT FROM (SELECT id FROM job_runs WHERE target = j.target AND stream = j.stream AND status = 'ok' ORDER BY started_at DESC, id DESC LIMIT 1)
   LIMIT ?2)`;
/** Attempt ids grow with time: the old ones are a prefix. */
export const OLDEST_ATTEMPTS = `SELECT id, at FROM delivery_attempts ORDER BY id LIMIT ?1`;
export const DELETE_ATTEMPTS = `DELETE FROM delivery_attempts WHERE id <= ?1 AND at < ?2`;
/** Delivered inbox items after feed position ?1 that the PSA received before ?2 and that still hold content, at most ?3. */
export const INBOX_TO_SLIM = `SELECT id, seq FROM inbox WHERE state = 'delivered' AND seq > ?1 AND delivered_at < ?2
  AND (attachment IS NOT NULL OR payload <> '{}') ORDER BY seq LIMIT ?3`;
/** An inbox item's slim row: content and attachment go, the row stays (a later pull of its remote id is a duplicate). */
export const SLIM_INBOX_ITEM = `UPDATE inbox SET payload = '{}', attachment = NULL, attachment_name = NULL, attachment_type = NULL WHERE id = ?1 AND state = 'delivered'`;

/** Prunes once, chunk by chunk. Safe to run while the agent runs (also from another process). */
export async function pruneOnce(db: Db, options: PruneOptions): Promise<PruneResult> {
  const now = options.now ?? Date.now;
  const batch = Math.max(1, options.batchSize ?? 200);
  const stop = options.shouldStop ?? (() => false);
  const at = now();
  const cutoff = at - options.retentionDays * DAY_MS;
  const result: PruneResult = {
    at,
    retentionDays: options.retentionDays,
    cutoff,
    events: 0,
    deliveries: 0,
    inboxItems: 0,
    jobRuns: 0,
    attempts: 0,
    statsHours: 0,
    exportFiles: 0,
    durationMs: 0,
  };
  const c = db.$client;
  const q = {
    first: c.prepare(`SELECT seq, received_at AS receivedAt FROM events WHERE seq >= ?1 ORDER BY seq LIMIT 1`),
    max: c.prepare(`SELECT coalesce(max(seq), 0) AS seq FROM events`),
    prunable: c.prepare(PRUNABLE_EVENTS),
    slim: c.prepare(`UPDATE events SET payload = '' WHERE seq = ?1 AND payload <> ''`),
    // The newest delivery row always stays: its id is a high-water mark that restore detection compares.
    deleteDeliveries: c.prepare(`DELETE FROM deliveries WHERE event_seq = ?1 AND status IN ('done', 'superseded') AND updated_at < ?2
      AND id < (SELECT max(id) FROM deliveries)`),
    inbox: c.prepare(INBOX_TO_SLIM),
    slimInbox: c.prepare(SLIM_INBOX_ITEM),
    jobRuns: c.prepare(PRUNE_JOB_RUNS),
    oldestAttempts: c.prepare(OLDEST_ATTEMPTS),
    deleteAttempts: c.prepare(DELETE_ATTEMPTS),
  };
  const write = <T>(fn: () => T): T => c.transaction(fn).immediate();

  try {
    // Events: seq follows arrival, so the old ones are a prefix; find its end by bisection (each row is
    // still checked against the cut-off, in case the clock went backwards).
    const last = lastSeqBefore(
      cutoff,
      (q.max.get() as { seq: number }).seq,
      (s) => q.first.get(s) as { seq: number; receivedAt: number } | null,
    );
    for (let from = 1; from <= last && !stop(); from += batch) {
      const to = Math.min(from + batch, last + 1);
      if ((q.prunable.all(from, to, cutoff) as unknown[]).length > 0) {
        // Checked again inside the transaction: what was read above may have changed since.
        write(() => {
          for (const { seq } of q.prunable.all(from, to, cutoff) as { seq: number }[]) {
            result.events += q.slim.run(seq).changes;
            result.deliveries += q.deleteDeliveries.run(seq, cutoff).changes;
          }
        });
      }
      await yieldToEventLoop();
    }

    // Delivered inbox items: content and attachment bytes go, the row stays (dedupe by remote id).
    for (let after = 0; !stop(); ) {
      const rows = q.inbox.all(after, cutoff, batch) as { id: number; seq: number }[];
      if (rows.length === 0) break;
      write(() => {
        for (const r of rows) result.inboxItems += q.slimInbox.run(r.id).changes;
      });
      after = rows[rows.length - 1]!.seq;
      await yieldToEventLoop();
    }

    while (!stop()) {
      const n = write(() => q.jobRuns.run(cutoff, batch).changes);
      result.jobRuns += n;
      await yieldToEventLoop();
      if (n < batch) break;
    }

    while (!stop()) {
      const rows = q.oldestAttempts.all(batch) as { id: number; at: number }[];
      const end = rows.findIndex((r) => r.at >= cutoff);
      const old = end < 0 ? rows : rows.slice(0, end);
      if (old.length > 0) result.attempts! += write(() => q.deleteAttempts.run(old[old.length - 1]!.id, cutoff).changes);
      await yieldToEventLoop();
      if (old.length < batch) break;
    }

    while (!stop()) {
      const n = await pruneExportFileBytes(sqliteRunner(c), cutoff, EXPORT_FILES_PER_STATEMENT);
      result.exportFiles! += n;
      await yieldToEventLoop();
      if (n < EXPORT_FILES_PER_STATEMENT) break;
    }

    if (!stop()) result.statsHours = write(() => pruneDeliveryStats(c, at));
  } finally {
    for (const s of Object.values(q)) s.finalize();
  }
  if (stop()) result.interrupted = true;
  result.durationMs = now() - at;
  c.run(`INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, [
    LAST_PRUNE_SETTING,
    JSON.stringify(result),
  ]);
  return result;
}

/** The largest seq whose event arrived before `cutoff` (0 if none), assuming arrival times grow with seq. */
export function lastSeqBefore(
  cutoff: number,
  maxSeq: number,
  firstAtOrAfter: (seq: number) => { seq: number; receivedAt: number } | null,
): number {
  let lo = 0;
  let hi = maxSeq;
  while (lo < hi) {
    const mid = Math.floor((lo + hi + 1) / 2);
    const row = firstAtOrAfter(mid);
    if (!row || row.seq > hi || row.receivedAt >= cutoff) hi = mid - 1;
    else lo = row.seq;
  }
  return lo;
}

/** What the last prune did (from any process), or null if none has run. */
export function lastPrune(db: Db): PruneResult | null {
  const text = getSetting(db, LAST_PRUNE_SETTING);
  return text ? (JSON.parse(text) as PruneResult) : null;
}

export interface DatabaseSize {
  /** page_count × page_size + the WAL file: what the database takes on disk. */
  bytes: number;
  walBytes: number;
  /** Pages on the free list: space that pruning freed, reused before the file grows again. */
  freeBytes: number;
}

export function databaseSize(db: Db): DatabaseSize {
  const c = db.$client;
  const pragma = (name: string) => Number(Object.values(c.query(`PRAGMA ${name}`).get() as object)[0] ?? 0);
  const pageSize = pragma("page_size");
  const file = (c.query(`PRAGMA database_list`).all() as { name: string; file: string }[]).find((d) => d.name === "main")?.file;
  let walBytes = 0;
  if (file)
    try {
      walBytes = statSync(`${file}-wal`).size;
    } catch {
      /* no WAL file (yet) */
    }
  return { bytes: pragma("page_count") * pageSize + walBytes, walBytes, freeBytes: pragma("freelist_count") * pageSize };
}

/** /metrics: the database's size and what the last prune removed. */
export function retentionGauges(db: Db): Gauge[] {
  const size = databaseSize(db);
  const last = lastPrune(db);
  const gauges: Gauge[] = [
    {
      name: "kontobro_database_bytes",
      help: "Size of the database on disk: pages plus the WAL file.",
      rows: [{ labels: {}, value: size.bytes }],
    },
    {
      name: "kontobro_database_free_bytes",
      help: "Free pages in the database file (reused before it grows).",
      rows: [{ labels: {}, value: size.freeBytes }],
    },
  ];
  if (last) {
    gauges.push(
      {
        name: "kontobro_retention_last_prune_timestamp_seconds",
        help: "Start of the last prune of finished work.",
        rows: [{ labels: {}, value: Math.round(last.at / 1000) }],
      },
      {
        name: "kontobro_retention_last_pruned",
        help: "What the last prune removed, by kind.",
        rows: [
          { labels: { kind: "events" }, value: last.events },
          { labels: { kind: "deliveries" }, value: last.deliveries },
          { labels: { kind: "inbox_items" }, value: last.inboxItems },
          { labels: { kind: "job_runs" }, value: last.jobRuns },
          { labels: { kind: "delivery_attempts" }, value: last.attempts ?? 0 },
          { labels: { kind: "delivery_stats_hours" }, value: last.statsHours ?? 0 },
          { labels: { kind: "export_files" }, value: last.exportFiles ?? 0 },
        ],
      },
    );
  }
  return gauges;
}

export const formatBytes = (n: number) =>
  n >= 1024 ** 3
    ? `${(n / 1024 ** 3).toFixed(1)} GB`
    : n >= 1024 ** 2
      ? `${(n / 1024 ** 2).toFixed(1)} MB`
      : n >= 1024
        ? `${(n / 1024).toFixed(1)} kB`
        : `${n} B`;

/** One line per fact, for `kontobro status` and `kontobro prune`. */
export function storageLines(db: Db): string[] {
  const size = databaseSize(db);
  const last = lastPrune(db);
  return [
    `database: ${formatBytes(size.bytes)} (WAL ${formatBytes(size.walBytes)}, ${formatBytes(size.freeBytes)} free for reuse)`,
    last ? `last prune: ${new Date(last.at).toISOString()}, ${describePrune(last)}` : "last prune: none yet",
  ];
}

export function describePrune(r: PruneResult): string {
  return `finished work older than ${r.retentionDays} days: ${r.events} event payload(s), ${r.deliveries} deliveries, ${r.inboxItems} inbox item(s), ${r.jobRuns} job run(s), ${r.attempts ?? 0} delivery attempt(s), ${r.exportFiles ?? 0} export file(s)' content, ${r.statsHours ?? 0} hour(s) of delivery statistics (kept ${STATS_KEPT_DAYS} days) removed in ${(r.durationMs / 1000).toFixed(1)} s${r.interrupted ? " (interrupted; continued next time)" : ""}`;
}

export interface RetentionRuntime {
  /** Waits for a prune under way to stop at its next transaction boundary. */
  stop(): Promise<void>;
}

/**
 * Prunes at start and then every `intervalMs` (an hour by default). retention_days = 0 keeps everything.
 * The database-size gauges go into /metrics either way.
 */
export function startRetention(
  db: Db,
  options: { retentionDays: number; log: Logger; metrics?: { gaugeSources: (() => Gauge[])[] }; intervalMs?: number },
): RetentionRuntime {
  options.metrics?.gaugeSources.push(() => retentionGauges(db));
  if (options.retentionDays <= 0) return { stop: async () => {} };
  return startPeriodic(async (stopped) => {
    try {
      const r = await pruneOnce(db, { retentionDays: options.retentionDays, shouldStop: stopped });
      if (r.events + r.deliveries + r.inboxItems + r.jobRuns + (r.attempts ?? 0) + (r.exportFiles ?? 0) + (r.statsHours ?? 0) > 0)
        options.log.info(`pruned ${describePrune(r)}`, { ...r });
    } catch (e) {
      options.log.warn("pruning finished work failed; it is tried again at the next interval", { error: (e as Error).message });
    }
  }, options.intervalMs ?? 3_600_000);
}
