// What follows a restore, on either engine (SQLite: agent/restore-sqlite.ts notices one at start from the high-water
// marks beside the file; PostgreSQL: agent/db/pg/restore-watch.ts from what the server says about the database; or the
// operator says so). After a restore the database has forgotten what it sent after the backup was taken; so, for
// every tenant (SQLite has one), in one transaction: every open delivery is treated as uncertain (looked up at the
// target before any create), the restore is recorded in the tenant's settings (RestoreInfo below: the status and
// intake read it), and the log says so. Idempotency keys need no help: each start (and, on PostgreSQL, each
// restore a running worker notices) takes a random epoch that is part of every key.
//
// Pushes the restored database has forgotten. Between the backup and the restore the agent may have pushed
// records this database never heard of (the data directory's high-water marks say how many events it lost,
// not which). When the PSA sends them again they are new records here, with no link at the target, and a
// plain create would double them (or, for a credit draft left unmarked, strand it). So, after a detected
// restore, a new delivery is uncertain (the connector looks the record up before creating it) when
//   1. the record has no link at that target: a record with a link is pushed as an update, and every
//      connector reconciles through the link; one with a delivery open at the restore is uncertain already,
//      and a newer version inherits that (Outbox.enqueue), and
//   2. its event came within RESTORE_LOOKUP_DAYS of the restore, or the record's latest known occurredAt
//      (records.occurred_at: a version sent without one keeps the time before it) is before that window
//      closed: a resend of anything from before the restore is looked up however late it comes, and a PSA
//      clock up to that far ahead of ours changes nothing.
// Nothing narrower is safe: the restored database cannot tell a resend from a new record, nor name the
// records it lost. What it cannot cover: after the window, a record never sent with occurredAt, or a change made
// after the window to a record pushed only in the lost span and never resent before that change.
// Cost: while the window is open every record new to a target costs the connector's lookups before its
// create (typically one or two GETs: by number, or by our reference among drafts and booked invoices);
// after it, only events dated inside it. Records with a link cost nothing more. The rule runs in intake's
// transaction (Outbox.enqueue), reading the restore's setting once per group of requests and the links
// of the records it applies to; the status page and the log show the window.
import { NOT_DONE } from "./db/open-deliveries.ts";
import type { SqlRunner } from "./db/pg/runner.ts";

export interface RestoreInfo {
  detectedAt: string;
  reason: string;
  /** When the backup was taken, if the database says so. */
  backupTakenAt?: string;
  /** Deliveries that were open and are now looked up before any create. */
  openDeliveries: number;
  /** Until when a record new to a target is looked up there before it is created (see the header). Absent before this rule. */
  lookupsUntil?: string;
  /** Events this data directory had stored that the database lacks (at least: the marks are a few seconds behind). */
  lostEvents?: number;
}

/** How long after a restore a record with no link at a target is looked up there before it is created. */
export const RESTORE_LOOKUP_DAYS = 7;
const RESTORE_SETTING = "restore_detected";
/** The setting that holds the last restore (RestoreInfo as JSON), for readers that run SQL of their own. */
export const RESTORE_SETTING_SQL = `SELECT value FROM settings WHERE name = '${RESTORE_SETTING}'`;

/** What decides a new delivery's doubt after a restore (ms): when it was detected, when its window closes. */
export interface RestoreDoubt {
  since: number;
  until: number;
}

/** The doubt of the restore stored as `value` (the setting's JSON), or null when there was none. Pure. */
export function restoreDoubt(value: string | null | undefined): RestoreDoubt | null {
  if (!value) return null;
  const info = JSON.parse(value) as RestoreInfo;
  const since = Date.parse(info.detectedAt);
  // A restore noticed before this rule existed: only what happened before it is in doubt.
  return { since, until: info.lookupsUntil ? Date.parse(info.lookupsUntil) : since };
}

/**
 * May a push of this record have been lost with the restore? Asked only for records without a link at the
 * target (see the header): true within the window, or for a change that says it happened before it closed. Pure.
 */
export function mayHaveBeenPushed(doubt: RestoreDoubt | null, occurredAt: number | null, now: number): boolean {
  if (!doubt) return false;
  return now < doubt.until || (occurredAt !== null && occurredAt < doubt.until);
}

/** Every open delivery becomes uncertain: looked up at its target before any create. ?1: now (ms). One text for both engines. */
export const OPEN_DELIVERIES_UNCERTAIN = `UPDATE deliveries SET uncertain = 1, updated_at = ?1 WHERE status IN ('pending', 'in_flight', 'waiting', 'needs_action') AND ${NOT_DONE}`;
/** Records the restore (?1: RestoreInfo as JSON) in the tenant's settings. One text for both engines. */
export const PUT_RESTORE_SETTING = `INSERT INTO settings (name, value) VALUES ('${RESTORE_SETTING}', ?1) ON CONFLICT (name) DO UPDATE SET value = excluded.value`;

/** The restore as recorded: detected now, for `reason`, with its lookup window. Pure. */
export function restoreInfo(now: Date, reason: string, openDeliveries: number, more: Partial<RestoreInfo> = {}): RestoreInfo {
  return {
    detectedAt: now.toISOString(),
    reason,
    ...more,
    openDeliveries,
    lookupsUntil: new Date(now.getTime() + RESTORE_LOOKUP_DAYS * 86_400_000).toISOString(),
  };
}

/**
 * Applies the restore rule to the tenant `tx` runs for, inside the caller's transaction: its open deliveries
 * become uncertain and the restore is recorded (RESTORE_SETTING_SQL reads it back).
 */
export async function declareRestore(tx: SqlRunner, now: Date, reason: string, more: Partial<RestoreInfo> = {}): Promise<RestoreInfo> {
  const { changes } = await tx.run(OPEN_DELIVERIES_UNCERTAIN, now.getTime());
  const info = restoreInfo(now, reason, changes, more);
  await tx.run(PUT_RESTORE_SETTING, JSON.stringify(info));
  return info;
}
