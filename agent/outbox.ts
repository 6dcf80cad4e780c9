// The outbox: deliveries (one per event and target) and the state machine they move through.
// Every change of state is one transaction; the network call happens between two of them. The SQL is written
// once and runs through a SqlRunner (agent/db/pg/runner.ts): the agent's SQLite file, or PostgreSQL.
import { leaseHeldBy, RETRY_EARLY, STILL_LANDING } from "./db/lease-owner.ts";
import { multiRowSql } from "./db/multi-row.ts";
import { type SqlRunner, together } from "./db/pg/runner.ts";
import { addDeliveryStats, tallyOutcomes } from "./delivery-stats.ts";
import { lockTargets } from "./target-state.ts";
import {
  type CreditPicture,
  creditedMismatch,
  creditPictures,
  documentAmount,
  overCredit,
  type PictureRow,
  toTarget,
} from "./credit-room.ts";
import { creditedInvoiceOf, dependenciesOf, type Entity } from "./model.ts";
import { capitalise, type Problem } from "./problem.ts";
import { mayHaveBeenPushed, RESTORE_SETTING_SQL, restoreDoubt, type RestoreDoubt } from "./restore.ts";
import { NOT_DONE, OPEN } from "./db/open-deliveries.ts";
import type { AttemptOutcome, DeliveryStatus } from "./states.ts";

export interface ClaimedDelivery {
  id: number;
  eventSeq: number;
  target: string;
  entity: Entity;
  key: string;
  attempts: number;
  uncertain: boolean;
  payload: any;
  createdAt: number;
  /** The newest event stored when it was claimed: a blamed record changed after this was fixed meanwhile. */
  claimSeq?: number;
  /** The record's link at the target when it was claimed (read in the claim's transaction), or null. */
  link: { remoteId: string; payloadHash: string } | null;
}

export type Outcome =
  | { kind: "done"; remoteId: string; payloadHash: string; note?: string }
  | { kind: "retry"; problem: Problem; delayMs: number; uncertain: boolean }
  | { kind: "needs_action"; problem: Problem; uncertain: boolean }
  /** Not pushed yet because something it needs is not at the target: wait for `on` ("entity:key"). */
  | { kind: "wait"; on: string; reason: string };

export const recordRef = (entity: string, key: string) => `${entity}:${key}`;

/**
 * OPEN: "not finished" (neither done nor superseded), the rows of deliveries_record: a query by record says so to read
 * only those, however long the record's history. NOT_DONE: the rows of deliveries_ready and deliveries_status_id. Each
 * query by status says so, as SQLite uses a partial index only then (agent/db/open-deliveries.ts).
 */
export { NOT_DONE, OPEN };

/** A stored event's deliveries to create (Outbox.enqueue). */
export interface NewDeliveries {
  eventSeq: number;
  entity: Entity;
  key: string;
  targets: string[];
  /** The record was stored before this request: its open deliveries are superseded by this one. */
  seenBefore: boolean;
  /** A newer version of the record came later in the same request: this delivery is superseded at once. */
  superseded: boolean;
  /**
   * The record's latest known occurredAt (ms) from the PSA (records.occurred_at: a version sent without one keeps the time
   * before it), null if none had one: after a restore, a record from before its window is looked up (agent/restore.ts).
   */
  occurredAt: number | null;
}

export interface Completed {
  delivery: ClaimedDelivery;
  outcome: Outcome;
  latencyMs?: number;
}

/**
 * The outbox's statements, written once for both engines. An outcome's write (done, retry, needsAction, supersedeOne,
 * parkOutcome) lands only while the lease it answers is still held: `status = 'in_flight' AND attempts = ?a AND
 * ${leaseHeldBy(o)}`, ?a the attempt the lease was taken for (each lease counts one), ?o the lease owner (null on
 * SQLite). A worker declared dead (PostgreSQL), or whose lease ran out and was taken again, finds another lease there,
 * so its late outcome changes nothing.
 */
/**
 * A taken-back lease's delivery is due again from ?1 (now) plus its lease's late_answer_wait_ms: heldFrom("?1")
 * (agent/db/lease-owner.ts), written out so that test/sql-statements reads the statements that use it.
 */
const HELD_FROM = "?1 + coalesce(late_answer_wait_ms, 0)";

/**
 * In supersedeAll's RETURNING (the row as updated, ?2 now): the replaced delivery was held, pending until a write of an
 * earlier push can have landed (HELD_FROM, holdRestored, a dead worker's recovery). Only a pending delivery carries
 * these codes among those it replaces (waiting and needs_action ones have their own).
 */
const HELD = "deliveries.error_code IN ('interrupted', 'restored') AND deliveries.next_attempt_at > ?2";

/**
 * The payload of invoice record `r` as it is at target ?1: its newest version whose push was done there. The record's
 * own (newest) payload when there is none (never pushed there) or retention has emptied that version's event.
 */
const BOOKED_VERSION = `coalesce((SELECT nullif(e.payload, '') FROM deliveries d JOIN events e ON e.seq = d.event_seq
           WHERE d.target = ?1 AND d.entity = 'invoice' AND d.key = r.key AND d.status = 'done' ORDER BY d.id DESC LIMIT 1), r.payload)`;

const SQL = {
  // The first `?3` ready deliveries are picked before the joins: PostgreSQL, not knowing that each has one event,
  // otherwise joins all of the tenant's deliveries and events and sorts them (10 ms against 0.6 ms with 1,000 each).
  // claimSeq: the newest event stored, read with them (an uncorrelated subquery: once, not per row).
  ready: `SELECT d.id, d.event_seq AS eventSeq, d.target, d.entity, d.key, d.attempts, d.uncertain, d.created_at AS createdAt, e.payload,
                l.remote_id AS linkRemoteId, l.payload_hash AS linkPayloadHash, (SELECT coalesce(max(seq), 0) FROM events) AS claimSeq
           FROM (SELECT id, event_seq, target, entity, key, attempts, uncertain, created_at, next_attempt_at FROM deliveries
                  WHERE target = ?1 AND status = 'pending' AND ${NOT_DONE} AND next_attempt_at <= ?2 ORDER BY next_attempt_at, id LIMIT ?3) d
           JOIN events e ON e.seq = d.event_seq
           LEFT JOIN links l ON l.target = d.target AND l.entity = d.entity AND l.key = d.key
          ORDER BY d.next_attempt_at, d.id`,
  // What a claim checks of its deliveries' records, in one statement for all of them (a statement per delivery and
  // dependency was a round trip each on PostgreSQL): ?2 is a JSON array of {e: entity, k: key, b: id}; per record,
  // whether it has an open delivery to target ?1 with an id below b, and whether it has a link there. Materialized,
  // so that PostgreSQL probes deliveries_record and the links' key with plain columns (a join on the JSON
  // expressions, not leakproof, is kept above row-level security's filter: a walk of all the tenant's rows).
  recordFacts: `WITH asked AS MATERIALIZED (SELECT json_extract(value, '$.e') AS entity, json_extract(value, '$.k') AS key,
                CAST(json_extract(value, '$.b') AS BIGINT) AS below FROM json_each(?2))
        SELECT asked.entity, asked.key, asked.below,
               CASE WHEN EXISTS (SELECT 1 FROM deliveries WHERE target = ?1 AND entity = asked.entity AND key = asked.key AND ${OPEN}
                       AND status IN ('pending','in_flight','waiting') AND id < asked.below) THEN 1 ELSE 0 END AS open,
               CASE WHEN EXISTS (SELECT 1 FROM links WHERE target = ?1 AND entity = asked.entity AND key = asked.key) THEN 1 ELSE 0 END AS linked
          FROM asked`,
  // The credit notes to target ?1 under way of the invoices ?2 (a JSON array of invoice numbers): in flight; pending and
  // held until a write of their last push can have landed (HELD_FROM, holdRestored; ?3 now); or pending after a push
  // whose outcome is unknown (uncertain: it may have been booked, and its next attempt looks first). Read only by a
  // claim with credit notes among its ready deliveries (creditsUnderWay): the invoices' credit notes by records_credits,
  // then each one's open deliveries to the target by deliveries_record, never the target's backlog of pending ones.
  // The one that goes on is the last row: one in flight if any, else the same one at every claim (by key).
  creditsUnderWay: `WITH invoices AS MATERIALIZED (SELECT value AS invoice FROM json_each(?2)),
        notes AS MATERIALIZED (SELECT r.key, r.credits FROM invoices JOIN records r ON r.credits = invoices.invoice AND +r.entity = 'invoice')
        SELECT key, credited FROM (
          SELECT notes.key, notes.credits AS credited,
                 (SELECT min(CASE WHEN status = 'in_flight' THEN 0 ELSE 1 END) FROM deliveries
                   WHERE target = ?1 AND entity = 'invoice' AND key = notes.key AND ${OPEN}
                     AND (status = 'in_flight' OR (status = 'pending'
                          AND (uncertain = 1 OR (next_attempt_at > ?3 AND error_code IN ('interrupted', 'restored')))))) AS rank
            FROM notes) under_way
         WHERE rank IS NOT NULL
         ORDER BY rank DESC, key`,
  // The invoices ?2 (a JSON array of numbers) that credit notes among a claim's ready deliveries credit (credit-room.ts):
  // each invoice's record, and its credit notes linked at target ?1 (booked there, role 'credit') or needing action
  // there after a push in doubt (they may be booked, role 'doubt'; one pending in doubt holds the turn instead). Read
  // only by such a claim, by index probes per invoice asked: each CTE of the list is read once (SQLite, without
  // statistics, walked every credit note by records_credits, and every invoice by the primary key's entity range, for a
  // list read twice), the invoice by a scalar subquery on the primary key, `+entity` keeps SQLite on records_credits,
  // and the deliveries are probed by deliveries_record. Each document's amount is the one at the target: its newest
  // version done there (BOOKED_VERSION), not a later version that needs action (a booked invoice's other amounts) or
  // is not sent yet.
  creditPicture: `WITH credited AS MATERIALIZED (SELECT value AS invoice FROM json_each(?2)),
        notes AS MATERIALIZED (SELECT credited.invoice, r.key, ${BOOKED_VERSION} AS payload,
               EXISTS (SELECT 1 FROM links l WHERE l.target = ?1 AND l.entity = 'invoice' AND l.key = r.key) AS linked
          FROM credited JOIN records r ON r.credits = credited.invoice AND +r.entity = 'invoice'),
        asked AS MATERIALIZED (SELECT value AS invoice FROM json_each(?2))
        SELECT invoice, 'invoice' AS role, invoice AS key,
               (SELECT ${BOOKED_VERSION} FROM records r WHERE r.entity = 'invoice' AND r.key = asked.invoice) AS payload FROM asked
        UNION ALL
        SELECT invoice, CASE WHEN linked THEN 'credit' ELSE 'doubt' END AS role, key, payload FROM notes
         WHERE linked OR EXISTS (SELECT 1 FROM deliveries d WHERE d.target = ?1 AND d.entity = 'invoice' AND d.key = notes.key AND ${OPEN}
                                   AND +d.status = 'needs_action' AND d.uncertain = 1)`,
  // A claimed credit note that would credit more than its invoice (credit-room.ts): needs action, never sent.
  overCredit: `UPDATE deliveries SET status = 'needs_action', waiting_on = NULL, error_code = ?2, error_message = ?3, error_hint = ?4, error_field = ?5, updated_at = ?6
        WHERE id = ?1 AND status = 'pending'`,
  record: `SELECT last_event_seq AS seq, occurred_at AS occurredAt FROM records WHERE entity = ?1 AND key = ?2`,
  // The open deliveries to target ?1, not started, of versions older than their record's newest: the target missed the
  // newer versions (out of the configuration when they came; intake queues for configured targets only). Outbox.catchUp.
  behind: `SELECT DISTINCT r.last_event_seq AS seq, d.entity, d.key, r.occurred_at AS occurredAt
           FROM deliveries d JOIN records r ON r.entity = d.entity AND r.key = d.key
          WHERE d.target = ?1 AND d.status IN ('pending', 'waiting', 'needs_action') AND ${NOT_DONE} AND r.last_event_seq > d.event_seq
          ORDER BY r.last_event_seq`,
  // After a restore: which of one target's records of one entity have a link there (the others are looked up first).
  linkedKeys: `SELECT key FROM links WHERE target = ?1 AND entity = ?2 AND key IN (SELECT value FROM json_each(?3))`,
  // Intake's hot path, in the intake transaction: a group's supersedes in one statement (one per record was the writer's
  // largest cost for records stored before, issue 16). ?1: a JSON array of {t: target, e: entity, k: key}, each once.
  // Materialized, as recordFacts, so that PostgreSQL probes deliveries_record with plain columns.
  supersedeAll: `WITH refs AS MATERIALIZED (SELECT json_extract(value, '$.t') AS target, json_extract(value, '$.e') AS entity,
                json_extract(value, '$.k') AS key FROM json_each(?1))
          UPDATE deliveries SET status = 'superseded', updated_at = ?2, waiting_on = NULL
          FROM refs WHERE deliveries.target = refs.target AND deliveries.entity = refs.entity AND deliveries.key = refs.key
            AND ${OPEN} AND status IN ('pending', 'waiting', 'needs_action')
          RETURNING deliveries.target, deliveries.entity, deliveries.key, deliveries.uncertain,
            CASE WHEN ${HELD} THEN CAST(json_object('until', deliveries.next_attempt_at, 'code', deliveries.error_code,
              'message', deliveries.error_message, 'hint', deliveries.error_hint) AS TEXT) END AS held`,
  // The new deliveries of records whose replaced delivery was held (?1: a JSON array of {t: target, e: entity, k: key,
  // u: held until, c, m, h: why}): due no sooner than the hold, saying why, as the replaced one did.
  holdReplacing: `WITH held AS MATERIALIZED (SELECT json_extract(value, '$.t') AS target, json_extract(value, '$.e') AS entity,
                json_extract(value, '$.k') AS key, CAST(json_extract(value, '$.u') AS BIGINT) AS until, json_extract(value, '$.c') AS code,
                json_extract(value, '$.m') AS message, json_extract(value, '$.h') AS hint FROM json_each(?1))
          UPDATE deliveries SET next_attempt_at = CASE WHEN deliveries.next_attempt_at > held.until THEN deliveries.next_attempt_at ELSE held.until END,
            updated_at = ?2, error_code = held.code, error_message = held.message, error_hint = held.hint, error_field = NULL
          FROM held WHERE deliveries.target = held.target AND deliveries.entity = held.entity AND deliveries.key = held.key
            AND ${OPEN} AND status = 'pending'`,
  insert: `INSERT INTO deliveries (event_seq, target, entity, key, status, next_attempt_at, created_at, updated_at, uncertain)
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5, ?5, ?6)`,
  // ?1: the ids of a round's claim, a JSON array: one statement for all of them. ?4: the lease owner.
  // A materialized list joined, not `id IN (…)` nor a subquery PostgreSQL pulls up: either way the join's condition is
  // on CAST(value AS BIGINT), which is not leakproof, so it is kept above row-level security's filter and PostgreSQL
  // hash-joins all of the tenant's deliveries (1,000 heap pages for a tenant among 1,000); on a plain column it probes
  // the primary key 50 times.
  // ?5: the target's late_answer_wait_ms, the hold of this lease if it is taken back without an answer (HELD_FROM).
  lease: `WITH claimed AS MATERIALIZED (SELECT CAST(value AS BIGINT) AS id FROM json_each(?1))
          UPDATE deliveries SET status = 'in_flight', lease_until = ?2, lease_owner = ?4, attempts = attempts + 1, updated_at = ?3,
            late_answer_wait_ms = ?5
          FROM claimed WHERE deliveries.id = claimed.id`,
  // ?5: set when the wait is for a record the PSA has not sent (the grace period counts from the first such wait).
  // ?6: the status it parks from (pending when claimed, waiting when checked again; a push's outcome is parkOutcome).
  park: `UPDATE deliveries SET status = 'waiting', waiting_on = ?2, error_code = 'waiting', error_message = ?3, error_hint = NULL, error_field = NULL, lease_until = NULL, updated_at = ?4,
        waiting_since = CASE WHEN CAST(?5 AS BIGINT) IS NULL THEN NULL ELSE coalesce(waiting_since, ?5) END WHERE id = ?1 AND status = ?6`,
  // A push's "wait" outcome: parked only while its lease is still held (a lease given up or taken back: nothing).
  parkOutcome: `UPDATE deliveries SET status = 'waiting', waiting_on = ?2, error_code = 'waiting', error_message = ?3, error_hint = NULL, error_field = NULL,
        lease_until = NULL, lease_owner = NULL, updated_at = ?4, waiting_since = NULL WHERE id = ?1 AND status = 'in_flight' AND attempts = ?5 AND ${leaseHeldBy(6)}`,
  retryCausedBy: `UPDATE deliveries INDEXED BY deliveries_caused_by SET status = 'pending', caused_by = NULL, next_attempt_at = ?2, updated_at = ?2
          WHERE caused_by IN (SELECT value FROM json_each(?1)) AND status = 'needs_action'`,
  overdueWaits: `SELECT id, entity, key, waiting_on AS waitingOn FROM deliveries WHERE target = ?1 AND status = 'waiting' AND waiting_since <= ?2`,
  missing: `UPDATE deliveries SET status = 'needs_action', caused_by = ?2, waiting_on = NULL, error_code = 'missing_record', error_message = ?3, error_hint = ?4, error_field = NULL, updated_at = ?5
        WHERE id = ?1 AND status = 'waiting'`,
  failedFor: `SELECT id FROM deliveries WHERE target = ?1 AND entity = ?2 AND key = ?3 AND ${OPEN} AND status = 'needs_action' LIMIT 1`,
  // A round's delivered pushes in one statement: ?1 a JSON array of {i: id, a: the lease's attempt, r: remote id, n: note,
  // l: latency ms}; each row written only while its lease is held; RETURNING the ids written. A materialized list joined
  // on plain columns, as in `lease`.
  done: `WITH pushed AS MATERIALIZED (SELECT CAST(json_extract(value, '$.i') AS BIGINT) AS id, CAST(json_extract(value, '$.a') AS BIGINT) AS attempt,
               json_extract(value, '$.r') AS remote_id, json_extract(value, '$.n') AS note, CAST(json_extract(value, '$.l') AS BIGINT) AS latency_ms
          FROM json_each(?1))
        UPDATE deliveries SET status = 'done', lease_until = NULL, lease_owner = NULL, uncertain = 0, remote_id = pushed.remote_id, note = pushed.note,
               done_at = ?2, updated_at = ?2, latency_ms = pushed.latency_ms, error_code = NULL, error_message = NULL, error_hint = NULL, error_field = NULL
          FROM pushed WHERE deliveries.id = pushed.id AND deliveries.status = 'in_flight' AND deliveries.attempts = pushed.attempt AND ${leaseHeldBy(3)}
        RETURNING deliveries.id`,
  // Whether a target has any delivery needing action, and any waiting: most rounds have neither, and then the
  // per-record statements that retire or wake them (retireOlder, wake) are not run at all. One statement for both.
  anyHeld: `SELECT EXISTS (SELECT 1 FROM deliveries WHERE target = ?1 AND status = 'needs_action' AND ${NOT_DONE}) AS needsAction,
               EXISTS (SELECT 1 FROM deliveries WHERE target = ?1 AND status = 'waiting' AND ${NOT_DONE}) AS waiting`,
  retireOlder: `UPDATE deliveries SET status = 'superseded', updated_at = ?5
        WHERE target = ?1 AND entity = ?2 AND key = ?3 AND ${OPEN} AND id < ?4 AND status = 'needs_action'`,
  newerOpen: `SELECT id FROM deliveries WHERE target = ?1 AND entity = ?2 AND key = ?3 AND ${OPEN} AND id > ?4 AND status IN ('pending', 'waiting') LIMIT 1`,
  supersedeOne: `UPDATE deliveries SET status = 'superseded', lease_until = NULL, lease_owner = NULL, updated_at = ?2 WHERE id = ?1 AND status = 'in_flight' AND attempts = ?3 AND ${leaseHeldBy(4)}`,
  markUncertain: `UPDATE deliveries SET uncertain = 1, updated_at = ?2 WHERE id = ?1`,
  // Any delivery of the record, finished ones too: by its events (deliveries_record holds only open ones).
  anyFor: `SELECT 1 AS found FROM events e JOIN deliveries d ON d.event_seq = e.seq WHERE e.entity = ?2 AND e.key = ?3 AND d.target = ?1 LIMIT 1`,
  retry: `UPDATE deliveries SET status = 'pending', lease_until = NULL, lease_owner = NULL, uncertain = ?2, next_attempt_at = ?3, updated_at = ?4,
        error_code = ?5, error_message = ?6, error_hint = ?7, error_field = ?8 WHERE id = ?1 AND status = 'in_flight' AND attempts = ?9 AND ${leaseHeldBy(10)}`,
  needsAction: `UPDATE deliveries SET status = 'needs_action', lease_until = NULL, lease_owner = NULL, uncertain = ?2, updated_at = ?3,
        error_code = ?4, error_message = ?5, error_hint = ?6, error_field = ?7, caused_by = ?8 WHERE id = ?1 AND status = 'in_flight' AND attempts = ?9 AND ${leaseHeldBy(10)}`,
  // The attempt's history row (the record page), next to the outcome it records.
  attempt: `INSERT INTO delivery_attempts (delivery_id, attempt, at, outcome, code, message, hint, remote_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)`,
  // A record the target no longer has (Problem.record.gone): its link stays (a later push looks it up by it, finds it
  // gone and creates it), but no version counts as sent there any more, nor does what master per entity saw of it.
  forgetSent: `UPDATE links SET payload_hash = '', updated_at = ?4 WHERE target = ?1 AND entity = ?2 AND key = ?3`,
  forgetSeen: `DELETE FROM master_records WHERE target = ?1 AND entity = ?2 AND key = ?3`,
  wake: `UPDATE deliveries SET status = 'pending', waiting_on = NULL, next_attempt_at = ?3, updated_at = ?3 WHERE target = ?1 AND status = 'waiting' AND waiting_on = ?2`,
  // ?2: 1 for every delivery in flight (at start, holding the instance lock), 0 for those whose lease ran out.
  interruptedExpired: `INSERT INTO delivery_attempts (delivery_id, attempt, at, outcome, message, hint)
           SELECT id, attempts, ?1, 'interrupted', ?3, ?4 FROM deliveries WHERE status = 'in_flight' AND ${NOT_DONE} AND (?2 = 1 OR lease_until < ?1)`,
  // Held (HELD_FROM): a write of the push may still be on its way to the target. ?3, ?4: why, as the attempt row says.
  recoverExpired: `UPDATE deliveries SET status = 'pending', uncertain = 1, lease_until = NULL, lease_owner = NULL, next_attempt_at = ${HELD_FROM},
            updated_at = ?1, error_code = 'interrupted', error_message = ?3, error_hint = ?4, error_field = NULL
            WHERE status = 'in_flight' AND ${NOT_DONE} AND (?2 = 1 OR lease_until < ?1)`,
  // Leases given up at shutdown (?2, a JSON array of ids) by the lease owner ?5 (?3 in releaseLeases): only those it still
  // holds; claimable again at once (?4 = 0: their pushes have ended) or once a write still on its way can have landed (?4 = 1,
  // HELD_FROM). A materialized list joined, as in `lease`: the one form for a list of ids (`id IN (SELECT CAST…)` walked a
  // tenant's rows under row-level security where PostgreSQL chose not to probe the key with it).
  interruptedReleased: `WITH released AS MATERIALIZED (SELECT DISTINCT CAST(value AS BIGINT) AS id FROM json_each(?2))
         INSERT INTO delivery_attempts (delivery_id, attempt, at, outcome, message, hint)
         SELECT deliveries.id, attempts, ?1, 'interrupted', ?3, ?4 FROM released JOIN deliveries ON deliveries.id = released.id
          WHERE status = 'in_flight' AND ${leaseHeldBy(5)}`,
  releaseLeases: `WITH released AS MATERIALIZED (SELECT DISTINCT CAST(value AS BIGINT) AS id FROM json_each(?2))
          UPDATE deliveries SET status = 'pending', uncertain = 1, lease_until = NULL, lease_owner = NULL,
            next_attempt_at = CASE WHEN ?4 = 1 THEN ${HELD_FROM} ELSE ?1 END, updated_at = ?1,
            error_code = 'interrupted', error_message = ?5, error_hint = ?6, error_field = NULL
            FROM released WHERE deliveries.id = released.id AND deliveries.status = 'in_flight' AND ${leaseHeldBy(3)}`,
  // Leases (?2, a JSON array of ids) taken ahead by the lease owner ?3 and never started: pending again as they were,
  // the attempt the lease counted taken back (nothing was sent under it). A materialized list joined, as in `lease`.
  releaseUnsent: `WITH unsent AS MATERIALIZED (SELECT CAST(value AS BIGINT) AS id FROM json_each(?2))
          UPDATE deliveries SET status = 'pending', lease_until = NULL, lease_owner = NULL, attempts = attempts - 1, updated_at = ?1
            FROM unsent WHERE deliveries.id = unsent.id AND deliveries.status = 'in_flight' AND ${leaseHeldBy(3)}`,
  // A target's leases of a lease owner (?5; ?3 in releaseOrphans) that none of its pushes holds (?2, a JSON array of the ids
  // it holds); releaseOrphans makes them claimable again once a write of their push can have landed (HELD_FROM).
  interruptedOrphans: `INSERT INTO delivery_attempts (delivery_id, attempt, at, outcome, message, hint)
         SELECT id, attempts, ?1, 'interrupted', ?3, ?4 FROM deliveries
          WHERE target = ?6 AND status = 'in_flight' AND ${NOT_DONE} AND ${leaseHeldBy(5)} AND id NOT IN (SELECT CAST(value AS BIGINT) FROM json_each(?2))`,
  releaseOrphans: `UPDATE deliveries SET status = 'pending', uncertain = 1, lease_until = NULL, lease_owner = NULL, next_attempt_at = ${HELD_FROM},
            updated_at = ?1, error_code = 'interrupted', error_message = ?5, error_hint = ?6, error_field = NULL
            WHERE target = ?4 AND status = 'in_flight' AND ${NOT_DONE} AND ${leaseHeldBy(3)} AND id NOT IN (SELECT CAST(value AS BIGINT) FROM json_each(?2))`,
  // After a restore (?2: the target, ?3: due no sooner than this): its pending deliveries, with why they wait (?4, ?5).
  holdRestored: `UPDATE deliveries SET next_attempt_at = CASE WHEN next_attempt_at > ?3 THEN next_attempt_at ELSE ?3 END, updated_at = ?1,
            error_code = 'restored', error_message = ?4, error_hint = ?5, error_field = NULL
            WHERE target = ?2 AND status = 'pending' AND ${NOT_DONE}`,
  // The clock went back (?2: now): a pending delivery last written later than now was given its due time by the clock as
  // it was. It is due as long after now as it was after that write (its backoff, Retry-After or late-answer hold, whole:
  // never shortened, as the time passed since that write is not known), and written now, so a second run (another
  // worker's) changes nothing. One range of deliveries_ready: the target's pending deliveries due after now.
  rescheduleAhead: `UPDATE deliveries SET next_attempt_at = ?2 + (next_attempt_at - updated_at), updated_at = ?2
            WHERE target = ?1 AND status = 'pending' AND ${NOT_DONE} AND next_attempt_at > ?2 AND updated_at > ?2`,
  statusOf: `SELECT status FROM deliveries WHERE id = ?1`,
  // A person's retry: only while the delivery is still retryable (RETRYABLE_DELIVERY_STATUSES) when written. On
  // PostgreSQL another worker may change it meanwhile (superseded by a newer version, leased by a dispatcher): such a
  // row is left as it is.
  retryNow: `UPDATE deliveries SET status = 'pending', next_attempt_at = ?2, waiting_on = NULL, updated_at = ?2
        WHERE id = ?1 AND status IN ('needs_action', 'pending', 'waiting')`,
  retryAllNeedingAction: `UPDATE deliveries SET status = 'pending', next_attempt_at = ?1, updated_at = ?1 WHERE status = 'needs_action' AND ${NOT_DONE} AND (CAST(?2 AS TEXT) IS NULL OR target = ?2)`,
  anyDeliveryTo: `SELECT 1 AS found FROM deliveries WHERE target = ?1 LIMIT 1`,
  nextDueAt: `SELECT min(next_attempt_at) AS t FROM deliveries WHERE target = ?1 AND status = 'pending' AND ${NOT_DONE}`,
  // PostgreSQL only (lockForUpdate runs nothing on SQLite): the lease owner's workers row, held until the round
  // commits; a DELETE (declaring it dead) waits for it, and a recoverer's SKIP LOCKED passes it by until then.
  ownerRegistered: `SELECT id FROM workers WHERE id = ?1 FOR KEY SHARE`,
};

/** A request's deliveries, a round's attempt rows and links: each in one statement (agent/db/multi-row.ts). */
const insertDeliveries = multiRowSql(
  "INSERT INTO deliveries (event_seq, target, entity, key, status, next_attempt_at, created_at, updated_at, uncertain)",
  9,
);
const insertAttempts = multiRowSql("INSERT INTO delivery_attempts (delivery_id, attempt, at, outcome, code, message, hint, remote_id)", 8);
const upsertLinks = multiRowSql(
  "INSERT INTO links (target, entity, key, remote_id, payload_hash, updated_at)",
  6,
  "ON CONFLICT (target, entity, key) DO UPDATE SET remote_id = excluded.remote_id, payload_hash = excluded.payload_hash, updated_at = excluded.updated_at",
);

export interface OutboxOptions {
  /**
   * The worker whose leases this outbox takes and answers (workers.id, agent/db/pg/workers.ts) when many workers
   * share PostgreSQL; null or absent on SQLite (one process).
   */
  leaseOwner?: number | null;
  /**
   * Runs in each claim's transaction, with its first read: false claims nothing (a hosted tenant's configuration changed
   * since this runtime started, so its targets may point at other accounts now; agent/hosted/tenant-runtime.ts).
   */
  claimGuard?: (tx: SqlRunner) => Promise<boolean>;
}

/** What a claim read of its records (Outbox.recordFacts). */
interface RecordFacts {
  /** factKey(entity, key, below): the record has an open delivery with an id below `below` (ANY_ID: any). */
  open: Set<string>;
  /** recordRef(entity, key): the record has a link at the target. */
  linked: Set<string>;
  /** recordRef of the dependencies whose delivery the claim created (open from then on). */
  added: Set<string>;
}

/** What intake's supersede step replaced (Outbox.supersedeOpen). */
interface ReplacedDeliveries {
  /** "target\0entity:key": a replaced delivery of the record may have reached the target. */
  uncertain: Set<string>;
  /** The replaced deliveries that were held (HELD): until when and why, as holdReplacing reads them. */
  held: { t: string; e: string; k: string; u: number; c: string; m: string; h: string | null }[];
}

/** An id above every delivery's: "any open delivery of the record". */
const ANY_ID = Number.MAX_SAFE_INTEGER;
const factKey = (entity: string, key: string, below: number) => `${entity}\u0000${key}\u0000${below}`;

export class Outbox {
  /** Per target: when waits for records the PSA never sent were last checked against the grace period. */
  private readonly lastMissingCheck = new Map<string, number>();
  /** Written into every lease this outbox takes; its outcomes land only on leases that still carry it. */
  readonly leaseOwner: number | null;
  private readonly claimGuard: ((tx: SqlRunner) => Promise<boolean>) | null;

  constructor(
    /** The storage the outbox runs on; public for the parts of a dispatcher round that share its transaction (target state). */
    readonly runner: SqlRunner,
    private readonly now: () => number = Date.now,
    /** How long a delivery may wait for a record the PSA has not sent before it needs action. */
    private readonly missingRecordGraceMs = 15 * 60_000,
    options: OutboxOptions = {},
  ) {
    this.leaseOwner = options.leaseOwner ?? null;
    this.claimGuard = options.claimGuard ?? null;
  }

  /**
   * Creates the deliveries of stored events, one per event and target, in the intake transaction `tx` (once per
   * request, in the order of its events): one multi-row INSERT for them all.
   */
  async enqueue(tx: SqlRunner, events: NewDeliveries[]): Promise<void> {
    if (events.length === 0) return;
    const now = this.now();
    // After a restore, records the restored database may have forgotten pushing are looked up first. The restore's
    // doubt is read with the targets' locks (one round trip on PostgreSQL).
    const [, lost] = await together([
      lockTargets(
        tx,
        events.flatMap((e) => e.targets),
        now,
      ),
      this.mayHaveBeenPushed(tx, events, now),
    ] as const);
    // Coalesce: an older delivery of the same record that has not started is replaced by this one.
    // If that one may already have reached the target, so may "this record" now: the flag carries over.
    // The older ones are replaced in one statement, before any of the group's deliveries is inserted.
    const replaced = await this.supersedeOpen(tx, events, now);
    const carried = new Map<string, boolean>();
    const rows: unknown[][] = [];
    for (const e of events) {
      for (const target of e.targets) {
        const ref = `${target}\u0000${recordRef(e.entity, e.key)}`;
        let uncertain = carried.get(ref);
        if (uncertain === undefined) carried.set(ref, (uncertain = replaced.uncertain.has(ref) || lost.has(ref)));
        rows.push([e.eventSeq, target, e.entity, e.key, e.superseded ? "superseded" : "pending", now, now, now, uncertain ? 1 : 0]);
      }
    }
    // Deliveries refused because of these records (an invoice whose customer's name was too long, or that
    // waited for it too long) are tried again now that the PSA has sent them. Sent with the insert: neither needs
    // the other's result, and the retried are needs_action, which the inserted are not.
    await together([
      insertDeliveries(tx, rows),
      tx.run(SQL.retryCausedBy, JSON.stringify([...new Set(events.map((e) => recordRef(e.entity, e.key)))]), now),
    ]);
    // A replaced delivery held until a write of an earlier push can have landed (a crash, a stop, a restore) hands its
    // hold on: the new version, due at once, would look the record up before that write lands and create its own.
    if (replaced.held.length > 0) await tx.run(SQL.holdReplacing, JSON.stringify(replaced.held), now);
  }

  /**
   * Brings the target's queue up to the records' newest versions: a delivery not started of a version older than its
   * record's newest is one whose newer versions the target missed while it was out of the configuration (removed or
   * disabled: intake queues for the configured targets only), and sent as it is, the target would get the older version
   * and never the PSA's newest. Each is replaced by a delivery of the newest version, as intake would have replaced it
   * (enqueue: the uncertain flag and a hold carry over). In `tx` when given, else its own transaction. Returns how many.
   */
  async catchUp(target: string, tx?: SqlRunner): Promise<number> {
    const run = async (tx: SqlRunner) => {
      const behind = await tx.all<{ seq: number; entity: Entity; key: string; occurredAt: number | null }>(SQL.behind, target);
      const events = behind.map((r) => ({ ...r, eventSeq: r.seq, targets: [target], seenBefore: true, superseded: false }));
      await this.enqueue(tx, events);
      return events.length;
    };
    return tx ? run(tx) : this.runner.transaction(run);
  }

  /**
   * Supersedes the open deliveries not yet started of the records stored before this request (seenBefore), in one
   * statement for the group. Returns the records ("target\0entity:key") of which a replaced one may have reached the
   * target, and the holds of the replaced ones that were held (HELD; usually none), for their records' new deliveries.
   */
  private async supersedeOpen(tx: SqlRunner, events: NewDeliveries[], now: number): Promise<ReplacedDeliveries> {
    const replaced: ReplacedDeliveries = { uncertain: new Set(), held: [] };
    const held = new Map<string, ReplacedDeliveries["held"][number]>();
    const asked = new Map<string, { t: string; e: string; k: string }>();
    for (const e of events) {
      if (!e.seenBefore) continue;
      for (const t of e.targets) asked.set(`${t}\u0000${recordRef(e.entity, e.key)}`, { t, e: e.entity, k: e.key });
    }
    if (asked.size === 0) return replaced;
    const rows = await tx.all<{ target: string; entity: string; key: string; uncertain: unknown; held: string | null }>(
      SQL.supersedeAll,
      JSON.stringify([...asked.values()]),
      now,
    );
    for (const r of rows) {
      const ref = `${r.target}\u0000${recordRef(r.entity, r.key)}`;
      if (r.uncertain) replaced.uncertain.add(ref);
      if (r.held === null) continue;
      const { until, code, message, hint } = JSON.parse(r.held) as { until: number; code: string; message: string; hint: string | null };
      // Two held ones of a record (rare): the later hold counts.
      if (Number(until) > (held.get(ref)?.u ?? -Infinity))
        held.set(ref, { t: r.target, e: r.entity, k: r.key, u: Number(until), c: code, m: message, h: hint });
    }
    replaced.held = [...held.values()];
    return replaced;
  }

  /**
   * The records ("target\0entity:key") of `events` whose push a detected restore cannot rule out: no link at
   * the target, and the event inside the restore's doubt (agent/restore.ts says the rule and what it costs).
   * Without a restore: one read of a setting.
   */
  private async mayHaveBeenPushed(tx: SqlRunner, events: NewDeliveries[], now: number): Promise<Set<string>> {
    const lost = new Set<string>();
    const doubt = await this.restoreDoubt(tx);
    const keys = new Map<string, Set<string>>(); // "target\0entity" → keys in doubt
    for (const e of events) {
      if (!mayHaveBeenPushed(doubt, e.occurredAt, now)) continue;
      for (const target of e.targets) {
        const group = `${target}\u0000${e.entity}`;
        keys.set(group, (keys.get(group) ?? new Set()).add(e.key));
      }
    }
    for (const [group, inDoubt] of keys) {
      const [target, entity] = group.split("\u0000") as [string, string];
      const linked = new Set(
        (await tx.all<{ key: string }>(SQL.linkedKeys, target, entity, JSON.stringify([...inDoubt]))).map((r) => r.key),
      );
      for (const key of inDoubt) if (!linked.has(key)) lost.add(`${target}\u0000${recordRef(entity, key)}`);
    }
    return lost;
  }

  /** The restore's doubt as stored (agent/restore.ts), or null when no restore was detected. */
  private async restoreDoubt(tx: SqlRunner): Promise<RestoreDoubt | null> {
    return restoreDoubt((await tx.get<{ value: string }>(RESTORE_SETTING_SQL))?.value);
  }

  /**
   * Leases up to `limit` ready deliveries of one target. A delivery whose record is still in flight, or
   * whose customer/project/product is not yet at the target, is parked as "waiting" instead.
   */
  claim(
    target: string,
    limit: number,
    leaseMs: number,
    supports: (e: Entity) => boolean,
    lateAnswerWaitMs = 0,
  ): Promise<ClaimedDelivery[]> {
    return this.runner.transaction((tx) => this.completeAndClaim(tx, [], target, limit, leaseMs, supports, lateAnswerWaitMs));
  }

  /** Writes the outcomes of finished pushes and releases their leases, in one transaction. */
  async complete(results: Completed[]): Promise<void> {
    if (results.length > 0) await this.runner.transaction((tx) => this.completeAndClaim(tx, results, "", 0, 0, () => false));
  }

  /**
   * A dispatcher round's work in its transaction `tx` (one fsync per round): record what finished, then lease
   * what is ready. A delivery whose record is still in flight, or whose customer/project/product is not yet at
   * the target, is parked as "waiting" instead of leased. An outcome whose lease is no longer held (taken back
   * from a worker declared dead, or given up) writes nothing, and nothing follows from it. `lateAnswerWaitMs`: the
   * target's late_answer_wait_ms, kept with each lease (HELD_FROM).
   */
  async completeAndClaim(
    tx: SqlRunner,
    results: Completed[],
    target: string,
    limit: number,
    leaseMs: number,
    supports: (e: Entity) => boolean,
    lateAnswerWaitMs = 0,
  ): Promise<ClaimedDelivery[]> {
    const now = this.now();
    await lockTargets(tx, target ? [target, ...results.map((r) => r.delivery.target)] : results.map((r) => r.delivery.target), now);
    // A worker declared dead leases nothing more: no one would take those leases back (it learns it at its next
    // heartbeat; agent/db/pg/workers.ts). Read before the outcomes are written, so a recovery under way is waited
    // for, not deadlocked with on the deliveries both write; the outcomes then find their leases taken back.
    // The claim's guard is sent with that read (one round trip on PostgreSQL), after the targets' locks.
    const [owners, current] = await together([
      this.leaseOwner === null ? Promise.resolve(null) : tx.lockForUpdate(SQL.ownerRegistered, this.leaseOwner),
      this.claimGuard && target && limit > 0 ? this.claimGuard(tx) : Promise.resolve(true),
    ] as const);
    const registered = owners !== 0;
    const delivered: Completed[] = [];
    /** The outcomes written: only they count. */
    const landed: Completed[] = [];
    for (const r of results) {
      if (r.outcome.kind === "done") delivered.push(r);
      else if (await this.applyOutcome(tx, r.delivery, r.outcome, now)) landed.push(r);
    }
    landed.push(...(await this.applyDone(tx, delivered, now)));
    if (landed.length > 0) await addDeliveryStats(tx, tallyOutcomes(landed, now));
    // Also while the target is paused (limit 0): a missing record is the PSA's to fix, not the target's.
    if (target) await this.expireMissingWaits(tx, target, now);
    if (limit <= 0 || !registered || !current) return [];
    const claimed: ClaimedDelivery[] = [];
    const ready = (await tx.all<any>(SQL.ready, target, now, limit)).map(({ linkRemoteId, linkPayloadHash, ...row }): ClaimedDelivery => {
      const link = linkRemoteId === null ? null : { remoteId: linkRemoteId, payloadHash: linkPayloadHash };
      return { ...row, uncertain: !!row.uncertain, payload: JSON.parse(row.payload), link };
    });
    const facts = await this.recordFacts(tx, target, ready, supports);
    const credits = await this.creditsUnderWay(tx, target, ready, now);
    const pictures = await this.creditPictures(tx, target, ready);
    for (const d of ready) {
      const blocker = (await this.blockerOf(tx, d, supports, facts)) ?? creditTurnBlocker(d, credits);
      if (blocker) {
        await tx.run(SQL.park, d.id, blocker.on, blocker.reason, now, blocker.missing ? now : null, "pending");
        continue;
      }
      const refused = overCreditOf(d, pictures);
      if (refused) {
        await tx.run(SQL.overCredit, d.id, refused.code, refused.message, refused.hint ?? null, refused.field ?? null, now);
        await this.recordAttempt(tx, d, now, "needs_action", refused.code, refused.message, refused.hint ?? null, null);
        // Its turn ends here, as at an outcome: the credit notes of its invoice waiting for it go on (checked themselves).
        const credited = creditedInvoiceOf(d.entity, d.payload);
        if (credited !== null && credits?.get(credited) === String(d.key)) credits.delete(credited);
        await tx.run(SQL.wake, d.target, recordRef(d.entity, d.key), now);
        continue;
      }
      d.attempts += 1;
      claimed.push(d);
      const credited = creditedInvoiceOf(d.entity, d.payload);
      if (credited !== null) credits?.set(credited, String(d.key));
    }
    if (claimed.length > 0)
      await tx.run(SQL.lease, JSON.stringify(claimed.map((d) => d.id)), now + leaseMs, now, this.leaseOwner, lateAnswerWaitMs);
    return claimed;
  }

  /**
   * Nothing waits silently: a delivery that has waited longer than the grace period for a record the PSA
   * never sent needs action, naming what is missing. Checked at most every few seconds per target.
   */
  private async expireMissingWaits(tx: SqlRunner, target: string, now: number): Promise<void> {
    const every = Math.min(30_000, Math.max(1_000, this.missingRecordGraceMs / 4));
    if (now - (this.lastMissingCheck.get(target) ?? 0) < every) return;
    this.lastMissingCheck.set(target, now);
    const overdue = await tx.all<{ id: number; entity: string; key: string; waitingOn: string }>(
      SQL.overdueWaits,
      target,
      now - this.missingRecordGraceMs,
    );
    for (const w of overdue) {
      const [entity, ...rest] = w.waitingOn.split(":");
      const key = rest.join(":");
      if (await tx.get(SQL.record, entity!, key)) {
        // The PSA has sent it meanwhile: check again now.
        await tx.run(SQL.park, w.id, w.waitingOn, `waiting for ${entity} ${key} to reach the target first`, now, null, "waiting");
        continue;
      }
      const minutes = Math.round(this.missingRecordGraceMs / 60_000);
      await tx.run(
        SQL.missing,
        w.id,
        w.waitingOn,
        `${capitalise(w.entity)} ${w.key} needs ${entity} ${key}, which the PSA has not sent (waited ${minutes} min).`,
        `Send ${entity} ${key} from the PSA, or correct the ${w.entity}'s reference to it; then this ${w.entity} goes by itself.`,
        now,
      );
    }
  }

  /**
   * What the claim of `ready` (deliveries to `target`) needs to know of their records, read in one statement: whether
   * each delivery's record has an older open delivery, and whether each of their dependencies has any open delivery
   * and a link at the target.
   */
  private async recordFacts(
    tx: SqlRunner,
    target: string,
    ready: ClaimedDelivery[],
    supports: (e: Entity) => boolean,
  ): Promise<RecordFacts> {
    const asked = new Map<string, { e: string; k: string; b: number }>();
    const ask = (e: string, k: string, b: number) => asked.set(factKey(e, k, b), { e, k, b });
    for (const d of ready) {
      ask(d.entity, String(d.key), d.id);
      for (const dep of dependenciesOf(d.entity, d.payload)) if (supports(dep.entity)) ask(dep.entity, String(dep.key), ANY_ID);
    }
    const facts: RecordFacts = { open: new Set(), linked: new Set(), added: new Set() };
    if (asked.size === 0) return facts;
    const rows = await tx.all<{ entity: string; key: string; below: number; open: number; linked: number }>(
      SQL.recordFacts,
      target,
      JSON.stringify([...asked.values()]),
    );
    for (const r of rows) {
      if (r.open) facts.open.add(factKey(r.entity, r.key, Number(r.below)));
      if (r.linked) facts.linked.add(recordRef(r.entity, r.key));
    }
    return facts;
  }

  /**
   * Credit notes of one invoice go to a target one at a time (creditTurnBlocker): per invoice credited by a credit note
   * among `ready`, the key of its credit note under way there. Null, and no statement, when `ready` has no credit note.
   */
  private async creditsUnderWay(tx: SqlRunner, target: string, ready: ClaimedDelivery[], now: number): Promise<Map<string, string> | null> {
    const invoices = new Set(ready.map((d) => creditedInvoiceOf(d.entity, d.payload)).filter((n) => n !== null));
    if (invoices.size === 0) return null;
    const rows = await tx.all<{ key: string; credited: string }>(SQL.creditsUnderWay, target, JSON.stringify([...invoices]), now);
    return new Map(rows.map((r) => [String(r.credited), String(r.key)]));
  }

  /**
   * Per invoice credited by a credit note among `ready` that is not booked at the target yet (no link): the invoice's
   * total and its credit notes booked there (overCreditOf). Null, and no statement, when there is none.
   */
  private async creditPictures(tx: SqlRunner, target: string, ready: ClaimedDelivery[]): Promise<Map<string, CreditPicture> | null> {
    const invoices = new Set(
      ready
        .filter((d) => !d.link)
        .map((d) => creditedInvoiceOf(d.entity, d.payload))
        .filter((n) => n !== null),
    );
    if (invoices.size === 0) return null;
    return creditPictures(await tx.all<PictureRow>(SQL.creditPicture, target, JSON.stringify([...invoices])));
  }

  /**
   * Why a delivery cannot go yet, or null. `missing`: it waits for a record the PSA has not sent. `facts`: what
   * recordFacts read for the claim; a dependency's delivery created here is added to it (open for the rest of the claim).
   */
  private async blockerOf(
    tx: SqlRunner,
    d: ClaimedDelivery,
    supports: (e: Entity) => boolean,
    facts: RecordFacts,
  ): Promise<{ on: string; reason: string; missing?: boolean } | null> {
    // An older delivery of the same record is still open (in flight): keep per-record order.
    if (facts.open.has(factKey(d.entity, String(d.key), d.id))) {
      return { on: recordRef(d.entity, d.key), reason: `waiting for an earlier change of ${d.entity} ${d.key} to finish` };
    }
    for (const dep of dependenciesOf(d.entity, d.payload)) {
      if (!supports(dep.entity)) continue;
      const ref = recordRef(dep.entity, dep.key);
      const open = facts.open.has(factKey(dep.entity, String(dep.key), ANY_ID)) || facts.added.has(ref);
      if (open) return { on: ref, reason: `waiting for ${dep.entity} ${dep.key} to reach the target first` };
      if (!facts.linked.has(ref)) {
        const known = await tx.get<{ seq: number; occurredAt: number | null }>(SQL.record, dep.entity, dep.key);
        if (dep.ifKnown && !known) continue;
        if (known && !(await tx.get(SQL.anyFor, d.target, dep.entity, dep.key))) {
          // The PSA sent it before this target was configured: send the latest version now, then follow it
          // (looked up first if a restore may have forgotten its push: it has no link).
          const now = this.now();
          const lost = mayHaveBeenPushed(await this.restoreDoubt(tx), known.occurredAt, now);
          await tx.run(SQL.insert, known.seq, d.target, dep.entity, dep.key, now, lost ? 1 : 0);
          facts.added.add(ref);
          return { on: ref, reason: `waiting for ${dep.entity} ${dep.key} to reach the target first` };
        }
        const failed = await tx.get<{ id: number }>(SQL.failedFor, d.target, dep.entity, dep.key);
        if (failed)
          return { on: ref, reason: `blocked: ${dep.entity} ${dep.key} needs action (delivery ${failed.id}); fix it and this follows` };
        return { on: ref, reason: `waiting for ${dep.entity} ${dep.key}, which the PSA has not sent yet`, missing: !known };
      }
    }
    return null;
  }

  /**
   * The round's delivered pushes, the common outcome, written with as few statements as the round allows: one
   * UPDATE for them all, then their attempt rows and links in multi-row statements. Returns those written (their
   * lease still held); only they link the record and wake what waits for it.
   */
  private async applyDone(tx: SqlRunner, delivered: Completed[], now: number): Promise<Completed[]> {
    if (delivered.length === 0) return [];
    const pushed = delivered.map(({ delivery: d, outcome, latencyMs }) => {
      const o = outcome as Extract<Outcome, { kind: "done" }>;
      return { i: d.id, a: d.attempts, r: o.remoteId, n: o.note ?? null, l: latencyMs === undefined ? null : Math.round(latencyMs) };
    });
    const landed = new Set(
      (await tx.all<{ id: number }>(SQL.done, JSON.stringify(pushed), now, this.leaseOwner)).map((row) => Number(row.id)),
    );
    const written: Completed[] = [];
    const attempts: unknown[][] = [];
    const links = new Map<string, unknown[]>();
    for (const r of delivered) {
      const { delivery: d } = r;
      const o = r.outcome as Extract<Outcome, { kind: "done" }>;
      if (!landed.has(d.id)) continue;
      written.push(r);
      attempts.push([d.id, d.attempts, now, "delivered", null, o.note ?? null, null, o.remoteId]);
      links.set(`${d.target}\u0000${recordRef(d.entity, d.key)}`, [d.target, d.entity, d.key, o.remoteId, o.payloadHash, now]);
    }
    if (written.length === 0) return written;
    await insertAttempts(tx, attempts);
    await upsertLinks(tx, [...links.values()]);
    // Read once per target of the round (retiring needs-action rows makes none wait, so reading both at once is as
    // reading each when first needed); a delivery of a target with neither costs no statement and no turn.
    const held = new Map<string, { needsAction: boolean; waiting: boolean }>();
    for (const { delivery: d } of written) {
      let h = held.get(d.target);
      if (h === undefined) {
        const row = await tx.get<{ needsAction: unknown; waiting: unknown }>(SQL.anyHeld, d.target);
        held.set(d.target, (h = { needsAction: !!row?.needsAction, waiting: !!row?.waiting }));
      }
      // Older versions of this record that needed action are moot now: retrying one would overwrite this.
      if (h.needsAction) await tx.run(SQL.retireOlder, d.target, d.entity, d.key, d.id, now);
      // Deliveries waiting for this record become ready again (they re-check their dependencies when claimed).
      if (h.waiting) await tx.run(SQL.wake, d.target, recordRef(d.entity, d.key), now);
    }
    return written;
  }

  /** Writes an outcome other than done; false, and nothing written, when its lease is no longer held. */
  private async applyOutcome(tx: SqlRunner, d: ClaimedDelivery, o: Exclude<Outcome, { kind: "done" }>, now: number): Promise<boolean> {
    const lease = [d.attempts, this.leaseOwner] as const;
    switch (o.kind) {
      case "retry":
      case "needs_action": {
        // A newer version of the record is already queued: it replaces this one (and inherits the doubt).
        const newer = await tx.get<{ id: number }>(SQL.newerOpen, d.target, d.entity, d.key, d.id);
        if (newer) {
          if ((await tx.run(SQL.supersedeOne, d.id, now, ...lease)).changes === 0) return false;
          await this.recordAttempt(tx, d, now, "superseded", o.problem.code, o.problem.message, o.problem.hint ?? null, null);
          if (o.uncertain) await tx.run(SQL.markUncertain, newer.id, now);
          break;
        }
        // The record it blames changed while this push was under way: the fix is already there, so try again now.
        const fixedMeanwhile =
          o.kind === "needs_action" &&
          o.problem.record &&
          ((await tx.get<{ seq: number }>(SQL.record, o.problem.record.entity, o.problem.record.key))?.seq ?? 0) > (d.claimSeq ?? Infinity);
        if (o.kind === "retry" || fixedMeanwhile) {
          const delayMs = o.kind === "retry" ? o.delayMs : 0;
          const written = await tx.run(
            SQL.retry,
            d.id,
            o.uncertain ? 1 : 0,
            now + delayMs,
            now,
            o.problem.code,
            o.problem.message,
            o.problem.hint ?? null,
            o.problem.field ?? null,
            ...lease,
          );
          if (written.changes === 0) return false;
          await this.recordAttempt(tx, d, now, "retry", o.problem.code, o.problem.message, o.problem.hint ?? null, null);
        } else {
          const written = await tx.run(
            SQL.needsAction,
            d.id,
            o.uncertain ? 1 : 0,
            now,
            o.problem.code,
            o.problem.message,
            o.problem.hint ?? null,
            o.problem.field ?? null,
            o.problem.record ? recordRef(o.problem.record.entity, o.problem.record.key) : null,
            ...lease,
          );
          if (written.changes === 0) return false;
          await this.recordAttempt(tx, d, now, "needs_action", o.problem.code, o.problem.message, o.problem.hint ?? null, null);
        }
        break;
      }
      case "wait":
        if ((await tx.run(SQL.parkOutcome, d.id, o.on, o.reason, now, ...lease)).changes === 0) return false;
        await this.recordAttempt(tx, d, now, "wait", null, o.reason, null, null);
        return true;
    }
    const gone = o.problem.record?.gone ? o.problem.record : null;
    if (gone) {
      await tx.run(SQL.forgetSent, d.target, gone.entity, gone.key, now);
      await tx.run(SQL.forgetSeen, d.target, gone.entity, gone.key);
    }
    // Deliveries waiting for this record become ready again (they re-check their dependencies when claimed).
    await tx.run(SQL.wake, d.target, recordRef(d.entity, d.key), now);
    return true;
  }

  /** One row of the delivery's attempt history (delivery_attempts), in the transaction that writes its outcome. */
  private async recordAttempt(
    tx: SqlRunner,
    d: ClaimedDelivery,
    now: number,
    outcome: AttemptOutcome,
    code: string | null,
    message: string | null,
    hint: string | null,
    remoteId: string | null,
  ): Promise<void> {
    await tx.run(SQL.attempt, d.id, d.attempts, now, outcome, code, message, hint, remoteId);
  }

  /**
   * After the clock went back (seen at a dispatcher's start or in its loop): the target's pending deliveries that were
   * scheduled by the clock as it was, ahead by as much, are due again as long after now as they were then (SQL
   * rescheduleAhead). In the dispatcher round's transaction `tx`. Returns how many.
   */
  async rescheduleAhead(tx: SqlRunner, target: string, now: number): Promise<number> {
    return (await tx.run(SQL.rescheduleAhead, target, now)).changes;
  }

  /**
   * Deliveries whose lease ran out (the agent died mid-push, or `all` at start when we hold the instance
   * lock) go back to pending, marked uncertain: the push may have reached the target.
   */
  recoverExpiredLeases(all = false): Promise<number> {
    const now = this.now();
    return this.runner.transaction(async (tx) => {
      await tx.run(SQL.interruptedExpired, now, all ? 1 : 0, ...HELD_NO_ANSWER);
      return (await tx.run(SQL.recoverExpired, now, all ? 1 : 0, ...HELD_NO_ANSWER)).changes;
    });
  }

  /**
   * Releases leases we hold without an answer (shutdown): pending again, uncertain. `stillSending`: their pushes are
   * still under way (a write may be on the wire), so they are claimable only once it can have landed (HELD_FROM);
   * else at once. Leases no longer ours are left alone.
   */
  async release(ids: number[], stillSending = false): Promise<void> {
    if (ids.length === 0) return;
    const now = this.now();
    await this.runner.transaction(async (tx) => {
      const why = stillSending ? HELD_NO_ANSWER : NO_ANSWER;
      await tx.run(SQL.interruptedReleased, now, JSON.stringify(ids), ...why, this.leaseOwner);
      await tx.run(SQL.releaseLeases, now, JSON.stringify(ids), this.leaseOwner, stillSending ? 1 : 0, ...why);
    });
  }

  /**
   * Gives back leases taken ahead that no push was started under (DispatcherOptions.ahead): pending again, not
   * uncertain, with no attempt row, and the attempt the lease counted taken back. Leases no longer ours are left
   * alone. In `tx` when given (a dispatcher round), else in a transaction of its own.
   */
  async releaseUnsent(ids: number[], tx?: SqlRunner): Promise<void> {
    if (ids.length === 0) return;
    const write = (t: SqlRunner) => t.run(SQL.releaseUnsent, this.now(), JSON.stringify(ids), this.leaseOwner);
    await (tx ? write(tx) : this.runner.transaction(write));
  }

  /**
   * Gives back the target's leases this outbox's owner holds but none of its pushes does (`held`: the ids of the
   * pushes under way or answered and not yet written): pending again, uncertain, with an 'interrupted' attempt row.
   * They come from a round whose COMMIT went through while its answer was lost (a connection cut, a failover: the
   * worker took the round for failed and sent nothing under them) or from a release at a tenant's restart that
   * failed. Nothing else takes back a live worker's lease on PostgreSQL, so without this the delivery, and every
   * change waiting behind it, would stay in flight for ever. Called by the target's dispatcher between its rounds
   * (never while one is under way, when a lease just committed may not be in `held` yet); claimable again after
   * the hold of HELD_FROM (a push of an earlier dispatcher may still have a request on the wire). Returns how many.
   */
  async releaseOrphans(target: string, held: Iterable<number>): Promise<number> {
    const now = this.now();
    const ids = JSON.stringify([...held]);
    return this.runner.transaction(async (tx) => {
      await tx.run(SQL.interruptedOrphans, now, ids, ...HELD_NO_ANSWER, this.leaseOwner, target);
      return (await tx.run(SQL.releaseOrphans, now, ids, this.leaseOwner, target, ...HELD_NO_ANSWER)).changes;
    });
  }

  /**
   * After a restore was detected: the restored database knows nothing of the pushes that ran after the backup, nor of
   * the holds they left (HELD_FROM), so a write of one may still be on its way to the target. The target's pending
   * deliveries are due no sooner than `lateAnswerWaitMs` from now, and say why. Returns how many.
   */
  async holdAfterRestore(target: string, lateAnswerWaitMs: number): Promise<number> {
    const now = this.now();
    return this.runner.transaction(
      async (tx) => (await tx.run(SQL.holdRestored, now, target, now + lateAnswerWaitMs, ...RESTORED_NO_ANSWER)).changes,
    );
  }

  /** A person pressed retry: try again now. Returns false if the delivery cannot be retried. */
  retry(id: number): Promise<{ ok: boolean; status?: DeliveryStatus }> {
    return this.runner.transaction(async (tx) => {
      if ((await tx.run(SQL.retryNow, id, this.now())).changes === 1) return { ok: true, status: "pending" as const };
      const row = await tx.get<{ status: DeliveryStatus }>(SQL.statusOf, id);
      return row ? { ok: false, status: row.status } : { ok: false };
    });
  }

  /** Retries every delivery that needs action (optionally for one target). */
  async retryAllNeedingAction(target?: string): Promise<number> {
    return (await this.runner.run(SQL.retryAllNeedingAction, this.now(), target ?? null)).changes;
  }

  /**
   * Whether any delivery, done ones too, has gone to `target`: a retry of a name none has gone to (a typo) must not read
   * as "nothing needed action there" (the API's 404, `kontobro retry --all --target`).
   */
  async anyDeliveryTo(target: string): Promise<boolean> {
    return (await this.runner.get(SQL.anyDeliveryTo, target)) !== null;
  }

  /** Earliest time a pending delivery of `target` becomes ready, or null. */
  async nextDueAt(target: string): Promise<number | null> {
    return (await this.runner.get<{ t: number | null }>(SQL.nextDueAt, target))?.t ?? null;
  }
}

/**
 * A credit note waits while another credit note of the same invoice is under way to the target (`credits`:
 * creditsUnderWay, with those leased by this claim): a target may make a credit note from the invoice as a draft that
 * the push marks as its own only later (Uni Micro's credit action), so two side by side take each other's drafts. It
 * waits for that credit note's record, and its outcome wakes it (as for an earlier change of its own record).
 */
function creditTurnBlocker(
  d: ClaimedDelivery,
  credits: Map<string, string> | null,
): { on: string; reason: string; missing?: boolean } | null {
  const invoice = creditedInvoiceOf(d.entity, d.payload);
  const other = invoice === null ? undefined : credits?.get(invoice);
  if (other === undefined || other === String(d.key)) return null;
  return {
    on: recordRef("invoice", other),
    reason: `waiting for credit note ${other} of invoice ${invoice} to finish: credit notes of one invoice go to the target one at a time`,
  };
}

/**
 * A credit note not yet booked at the target (no link) that credits a credit note, another customer's invoice or one in
 * another currency, or would credit more than its invoice with the credit notes of it booked there
 * (agent/credit-room.ts): the problem it needs action with. Null for anything else.
 */
function overCreditOf(d: ClaimedDelivery, pictures: Map<string, CreditPicture> | null): Problem | null {
  const invoice = creditedInvoiceOf(d.entity, d.payload);
  const picture = invoice === null || d.link ? undefined : pictures?.get(invoice);
  if (!picture) return null;
  return (
    creditedMismatch(String(d.key), d.payload, invoice!, picture, toTarget(d.target), d.uncertain) ??
    overCredit(String(d.key), invoice!, documentAmount(d.payload.lines ?? []), picture, toTarget(d.target), d.uncertain)
  );
}

/** An attempt whose answer never arrived: kontobro stopped (or lost the lease) while the push was under way. */
const NO_ANSWER = [
  "No answer was recorded: kontobro stopped, or its lease ran out, while this push was under way. It may have reached the target.",
  "Nothing to do: the next attempt looks the record up at the target first, so it is not created twice.",
] as const;

/** Why a pending delivery waits after a restore (holdAfterRestore). */
const RESTORED_NO_ANSWER = [
  `kontobro was restored from a backup: an attempt made after the backup was taken may have reached the target, ${STILL_LANDING}`,
  `Nothing to do: the next attempt looks the record up at the target first, so it is not created twice. ${RETRY_EARLY}`,
] as const;

/** The same, for a lease held until a write of its push can no longer land (HELD_FROM). */
const HELD_NO_ANSWER = [`${NO_ANSWER[0].slice(0, -1)}, ${STILL_LANDING}`, `${NO_ANSWER[1]} ${RETRY_EARLY}`] as const;
