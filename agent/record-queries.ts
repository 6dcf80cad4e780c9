// Read-only queries behind the status page's search and record page (agent/http/status-record.ts): a record,
// its events, its deliveries with every attempt, what was pulled for it. Each reads through an index, through the
// SqlRunner: the same text on SQLite and on a hosted tenant's PostgreSQL.
import type { SqlRunner } from "./db/pg/runner.ts";
import type { Entity } from "./model.ts";
import { recordRef } from "./outbox.ts";
import { statusValue } from "./pulls/inbox.ts";
import { entityOfKind, kindOf, type SearchRequest, type StoredEvent } from "./record-story.ts";
import type { AttemptOutcome, DeliveryStatus, InboxState } from "./states.ts";

export interface StoredRecord {
  entity: Entity;
  key: string;
  payload: any;
  version: number;
  updatedAt: number;
}

const RECORD_COLUMNS = `entity, key, payload, version, updated_at AS updatedAt`;
const toRecord = (r: any): StoredRecord => ({ ...r, payload: JSON.parse(r.payload) });

const BY_KEY = `SELECT ${RECORD_COLUMNS} FROM records WHERE entity = ?1 AND key = ?2`;
const BY_PSA_ID = `SELECT ${RECORD_COLUMNS} FROM records WHERE psa_id = ?1 AND entity = 'invoice'`;

export async function getRecord(runner: SqlRunner, entity: Entity, key: string): Promise<StoredRecord | null> {
  const row = await runner.get(BY_KEY, entity, key);
  return row ? toRecord(row) : null;
}

/** Records whose number (key) is one of the request's keys, and invoices or credit notes whose PSA id it is. */
export async function findRecords(runner: SqlRunner, req: SearchRequest, entities: readonly Entity[]): Promise<StoredRecord[]> {
  const wanted = req.kind ? [entityOfKind(req.kind)] : entities;
  const found = new Map<string, StoredRecord>();
  const add = (row: unknown) => {
    if (!row) return;
    const r = toRecord(row);
    if (req.kind && kindOf(r.entity, r.payload) !== req.kind) return;
    found.set(recordRef(r.entity, r.key), r);
  };
  for (const entity of wanted) for (const key of req.keys) add(await runner.get(BY_KEY, entity, key));
  if (wanted.includes("invoice")) for (const key of req.keys) for (const row of await runner.all(BY_PSA_ID, key)) add(row);
  return [...found.values()];
}

/**
 * The newest `limit` events of a record in arrival order, the one just before them (to compare the first
 * with), and how many there are in all.
 */
export async function recordEvents(
  runner: SqlRunner,
  entity: Entity,
  key: string,
  limit = 100,
): Promise<{ events: StoredEvent[]; before?: StoredEvent; total: number }> {
  const rows = await runner.all<any>(
    `SELECT seq, event_id AS eventId, type, payload, received_at AS receivedAt, occurred_at AS occurredAt, stale
       FROM events WHERE entity = ?1 AND key = ?2 ORDER BY seq DESC LIMIT ?3`,
    entity,
    key,
    limit + 1,
  );
  const total = (await runner.get<{ n: number }>(`SELECT count(*) AS n FROM events WHERE entity = ?1 AND key = ?2`, entity, key))!.n;
  const events: StoredEvent[] = rows.map((r) => ({ ...r, stale: !!r.stale })).reverse();
  const before = events.length > limit ? events.shift() : undefined;
  return { events, before, total };
}

export interface RecordDelivery {
  id: number;
  target: string;
  status: DeliveryStatus;
  attempts: number;
  eventId: string;
  eventSeq: number;
  errorMessage: string | null;
  errorHint: string | null;
  remoteId: string | null;
  note: string | null;
  nextAttemptAt: number;
  createdAt: number;
  updatedAt: number;
  doneAt: number | null;
}

/**
 * The record's newest `limit` deliveries to `target`, oldest first. Found by the record's events (events_record, then
 * deliveries_event): deliveries_record holds only open deliveries, and most of a record's are done.
 */
export async function recordDeliveries(
  runner: SqlRunner,
  target: string,
  entity: Entity,
  key: string,
  limit = 50,
): Promise<RecordDelivery[]> {
  const rows = await runner.all<RecordDelivery>(
    `SELECT d.id, d.target, d.status, d.attempts, e.event_id AS eventId, d.event_seq AS eventSeq, d.error_message AS errorMessage,
          d.error_hint AS errorHint, d.remote_id AS remoteId, d.note, d.next_attempt_at AS nextAttemptAt, d.created_at AS createdAt,
          d.updated_at AS updatedAt, d.done_at AS doneAt
         FROM events e JOIN deliveries d ON d.event_seq = e.seq
        WHERE e.entity = ?2 AND e.key = ?3 AND d.target = ?1 ORDER BY d.id DESC LIMIT ?4`,
    target,
    entity,
    key,
    limit,
  );
  return rows.reverse();
}

export interface AttemptRow {
  id: number;
  deliveryId: number;
  attempt: number;
  at: number;
  outcome: AttemptOutcome;
  code: string | null;
  message: string | null;
  hint: string | null;
  remoteId: string | null;
}

/**
 * Every stored attempt of these deliveries, in the order they were made. The ids' list is joined MATERIALIZED: a join
 * on CAST(value AS BIGINT) (not leakproof) is kept above row-level security's filter on PostgreSQL, which then walks
 * all of the tenant's attempts; on a plain column it probes the index per delivery.
 */
export async function deliveryAttempts(runner: SqlRunner, deliveryIds: number[]): Promise<AttemptRow[]> {
  if (deliveryIds.length === 0) return [];
  return runner.all<AttemptRow>(
    `WITH listed AS MATERIALIZED (SELECT DISTINCT CAST(value AS BIGINT) AS id FROM json_each(?1))
     SELECT a.id, a.delivery_id AS deliveryId, a.attempt, a.at, a.outcome, a.code, a.message, a.hint, a.remote_id AS remoteId
       FROM delivery_attempts a JOIN listed ON a.delivery_id = listed.id ORDER BY a.id`,
    JSON.stringify(deliveryIds),
  );
}

/** What the record is called at a target (links), when it has been delivered there. */
export async function remoteIdAt(runner: SqlRunner, target: string, entity: Entity, key: string): Promise<string | null> {
  const row = await runner.get<{ remoteId: string }>(
    `SELECT remote_id AS remoteId FROM links WHERE target = ?1 AND entity = ?2 AND key = ?3`,
    target,
    entity,
    key,
  );
  return row?.remoteId ?? null;
}

export interface PulledItem {
  id: number;
  target: string;
  stream: string;
  remoteId: string;
  type: string;
  state: InboxState;
  payload: string;
  attachmentName: string | null;
  createdAt: number;
  deliveredAt: number | null;
}

/** Items pulled for the record (an invoice's payment status changes, a project's expenses), newest first. */
export function pulledFor(runner: SqlRunner, entity: Entity, key: string, limit = 100): Promise<PulledItem[]> {
  return runner.all<PulledItem>(
    `SELECT id, target, stream, remote_id AS remoteId, type, state, payload, attachment_name AS attachmentName,
        created_at AS createdAt, delivered_at AS deliveredAt
       FROM inbox WHERE record = ?1 ORDER BY seq DESC LIMIT ?2`,
    recordRef(entity, key),
    limit,
  );
}

/** The last state a status stream saw for the record at `target` (an invoice's payment status), if any. */
export async function pulledStatus(
  runner: SqlRunner,
  target: string,
  entity: Entity,
  key: string,
): Promise<{ value: string; final: boolean; updatedAt: number } | null> {
  const row = await runner.get<{ value: string; final: number; updatedAt: number }>(
    `SELECT value, final, updated_at AS updatedAt FROM pull_status WHERE target = ?1 AND entity = ?2 AND key = ?3`,
    target,
    entity,
    key,
  );
  return row ? { ...row, value: statusValue(row.value), final: !!row.final } : null;
}
