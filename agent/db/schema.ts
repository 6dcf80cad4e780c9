// The database schema. drizzle-kit generates SQL migrations from this file (npm run db:generate).
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { DELIVERY_STATUSES } from "../states.ts";

/** Everything the PSA sent, once per source event id. */
export const events = sqliteTable("events", {
  seq: integer("seq").primaryKey({ autoIncrement: true }),
  eventId: text("event_id").notNull(),
  type: text("type").notNull(),
  entity: text("entity").notNull(),
  key: text("key").notNull(),
  /** The canonical payload; '' once retention has pruned it (the row stays so a re-sent id is a duplicate). */
  payload: text("payload").notNull(),
  receivedAt: integer("received_at").notNull(),
  /** The PSA's occurredAt (ms), when it sent one: orders versions of a record. */
  occurredAt: integer("occurred_at"),
  /** Older (by occurredAt) than the version already stored: acknowledged, never pushed. */
  stale: integer("stale", { mode: "boolean" }).notNull().default(false),
}, (t) => [uniqueIndex("events_event_id").on(t.eventId)]);

/** The latest canonical payload per record. */
export const records = sqliteTable("records", {
  entity: text("entity").notNull(),
  key: text("key").notNull(),
  payload: text("payload").notNull(),
  version: integer("version").notNull(),
  lastEventSeq: integer("last_event_seq").notNull(),
  /** occurredAt (ms) of the stored version, when the PSA sent one. */
  occurredAt: integer("occurred_at"),
  /** Invoices and credit notes: the PSA's id of the document (one number per PSA id, checked at intake). */
  psaId: text("psa_id"),
  updatedAt: integer("updated_at").notNull(),
}, (t) => [primaryKey({ columns: [t.entity, t.key] }), index("records_psa_id").on(t.psaId).where(sql`psa_id IS NOT NULL`)]);

/**
 * One per (event, target). Status: pending → in_flight → done | needs_action | superseded;
 * waiting while a record it depends on (or an older delivery of the same record) is not yet at the target.
 */
export const deliveries = sqliteTable("deliveries", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  eventSeq: integer("event_seq").notNull().references(() => events.seq),
  target: text("target").notNull(),
  entity: text("entity").notNull(),
  key: text("key").notNull(),
  status: text("status", { enum: DELIVERY_STATUSES }).notNull(),
  attempts: integer("attempts").notNull().default(0),
  nextAttemptAt: integer("next_attempt_at").notNull(),
  leaseUntil: integer("lease_until"),
  /** An earlier attempt may have reached the target: look up before creating. */
  uncertain: integer("uncertain", { mode: "boolean" }).notNull().default(false),
  /** "entity:key" this delivery waits for, while status = waiting. */
  waitingOn: text("waiting_on"),
  /** When it started waiting for a record the PSA has not sent (the grace period counts from here). */
  waitingSince: integer("waiting_since"),
  /** "entity:key" of another record the user must change (needs_action): a new version of it retries this. */
  causedBy: text("caused_by"),
  errorCode: text("error_code"),
  errorMessage: text("error_message"),
  errorHint: text("error_hint"),
  errorField: text("error_field"),
  note: text("note"),
  remoteId: text("remote_id"),
  createdAt: integer("created_at").notNull(),
  updatedAt: integer("updated_at").notNull(),
  doneAt: integer("done_at"),
  latencyMs: integer("latency_ms"),
}, (t) => [
  index("deliveries_ready").on(t.target, t.status, t.nextAttemptAt),
  index("deliveries_record").on(t.target, t.entity, t.key, t.status),
  index("deliveries_waiting").on(t.target, t.waitingOn).where(sql`status = 'waiting'`),
  // Listing by status, newest first (the API and the status page).
  index("deliveries_status_id").on(t.status, t.id),
  // "Last successful delivery" per target without scanning every delivered row.
  index("deliveries_done").on(t.target, t.doneAt).where(sql`status = 'done'`),
  // Retention: "does this event still have deliveries".
  index("deliveries_event").on(t.eventSeq),
  // A new version of a record retries the deliveries refused because of it.
  index("deliveries_caused_by").on(t.causedBy).where(sql`status = 'needs_action'`),
]);

/** What a record is called at a target, and the hash of what we last pushed (skip no-op updates). */
export const links = sqliteTable("links", {
  target: text("target").notNull(),
  entity: text("entity").notNull(),
  key: text("key").notNull(),
  remoteId: text("remote_id").notNull(),
  payloadHash: text("payload_hash").notNull(),
  updatedAt: integer("updated_at").notNull(),
}, (t) => [primaryKey({ columns: [t.target, t.entity, t.key] })]);

/** Small durable settings the agent generates itself (API token in demo mode, webhook tokens, …). */
export const settings = sqliteTable("settings", {
  name: text("name").primaryKey(),
  value: text("value").notNull(),
});

/**
 * Backpressure that belongs to a target, not to one delivery: a Retry-After pause and the circuit
 * breaker. Stored, so a restart (and, later, every worker) honours it.
 */
export const targetState = sqliteTable("target_state", {
  target: text("target").primaryKey(),
  pausedUntil: integer("paused_until"),
  pauseReason: text("pause_reason"),
  /** closed | open | half_open */
  breaker: text("breaker").notNull().default("closed"),
  failures: integer("failures").notNull().default(0),
  probeDelayMs: integer("probe_delay_ms"),
  nextProbeAt: integer("next_probe_at"),
  updatedAt: integer("updated_at").notNull(),
});
