// A hosted tenant's finished work older than retention_days, pruned by the rules of the SQLite agent (agent/retention.ts):
//   - an event older than the cut-off loses its payload (its slim row stays: a re-sent event id is still a duplicate)
//     unless it is its record's latest version or has a delivery that is not finished; its finished deliveries go
//     with it;
//   - a delivered inbox item the PSA received before the cut-off loses its content and attachment (its slim row stays:
//     pulling it again is still a duplicate), with the SQLite agent's statements.
// Where PostgreSQL differs, and why:
//   - The walk: a tenant's events are spread over the global seq (every tenant's rows share it), so a walk by seq
//     ranges would read every other tenant's rows. The old events still holding their payload are found by
//     events_unpruned (tenant, received_at, payload <> ''), oldest first, a few hundred per transaction.
//   - An event whose finished delivery changed after the cut-off (done late, superseded lately) keeps its payload until
//     that delivery is old too; then both go together. (SQLite drops the payload first and the delivery on a later run;
//     here an event that lost its payload is never looked at again, so nothing would be left behind.)
//   - The newest delivery row is not kept: restore detection on PostgreSQL does not compare delivery ids
//     (agent/db/pg/restore-watch.ts), and identity ids never repeat after a delete.
// No lock is needed against the tenant's other workers: a finished delivery is never opened again (only pending, waiting
// and needs_action ones are retried), a record's latest version only moves to a newer event, and the checks are part of
// the UPDATE itself, so what another transaction commits meanwhile at most leaves an event for the next run.
import type { SqlRunner } from "../db/pg/runner.ts";
import { INBOX_TO_SLIM, SLIM_INBOX_ITEM } from "../retention.ts";

/** Events and inbox items looked at per transaction. */
export const FINISHED_WORK_BATCH = 200;

/** The next events still holding their payload that arrived before ?1, after (?2, ?3) in (received_at, seq) order, at most ?4. */
const OLD_EVENTS = `SELECT seq, received_at AS receivedAt FROM events
  WHERE payload <> '' AND received_at < ?1 AND received_at >= ?2 AND (received_at > ?2 OR seq > ?3)
  ORDER BY received_at, seq LIMIT ?4`;
/** Of the events ?1, those to prune lose their payload: not their record's latest version, no delivery open or changed since ?2. */
const SLIM_EVENTS = `UPDATE events SET payload = '' WHERE seq IN (SELECT CAST(value AS BIGINT) FROM json_each(?1))
  AND payload <> '' AND received_at < ?2
  AND NOT EXISTS (SELECT 1 FROM records r WHERE r.entity = events.entity AND r.key = events.key AND r.last_event_seq = events.seq)
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq AND (d.status NOT IN ('done', 'superseded') OR d.updated_at >= ?2))
  RETURNING seq`;
/** The finished deliveries of the events ?1 (their payloads just went), by deliveries_event: the list first, then each event's. */
const DELETE_DELIVERIES = `WITH pruned AS MATERIALIZED (SELECT CAST(value AS BIGINT) AS seq FROM json_each(?1))
  DELETE FROM deliveries WHERE event_seq IN (SELECT seq FROM pruned) AND status IN ('done', 'superseded') AND updated_at < ?2`;

export interface FinishedWorkPruned {
  events: number;
  deliveries: number;
  inboxItems: number;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Prunes the tenant's finished work from before `cutoff`, chunk by chunk; `stop()` true ends it between chunks. */
export async function pruneFinishedWork(runner: SqlRunner, cutoff: number, stop: () => boolean): Promise<FinishedWorkPruned> {
  const pruned: FinishedWorkPruned = { events: 0, deliveries: 0, inboxItems: 0 };
  for (let after = { receivedAt: 0, seq: 0 }; !stop(); ) {
    const rows = await runner.all<{ seq: number; receivedAt: number }>(
      OLD_EVENTS,
      cutoff,
      after.receivedAt,
      after.seq,
      FINISHED_WORK_BATCH,
    );
    if (rows.length === 0) break;
    const seqs = JSON.stringify(rows.map((r) => r.seq));
    await runner.transaction(async (tx) => {
      const slimmed = await tx.all<{ seq: number }>(SLIM_EVENTS, seqs, cutoff);
      pruned.events += slimmed.length;
      if (slimmed.length > 0)
        pruned.deliveries += (await tx.run(DELETE_DELIVERIES, JSON.stringify(slimmed.map((r) => r.seq)), cutoff)).changes;
    });
    after = rows[rows.length - 1]!;
    await yieldToEventLoop();
    if (rows.length < FINISHED_WORK_BATCH) break;
  }
  for (let after = 0; !stop(); ) {
    const rows = await runner.all<{ id: number; seq: number }>(INBOX_TO_SLIM, after, cutoff, FINISHED_WORK_BATCH);
    if (rows.length === 0) break;
    await runner.transaction(async (tx) => {
      for (const r of rows) pruned.inboxItems += (await tx.run(SLIM_INBOX_ITEM, r.id)).changes;
    });
    after = rows[rows.length - 1]!.seq;
    await yieldToEventLoop();
    if (rows.length < FINISHED_WORK_BATCH) break;
  }
  return pruned;
}
