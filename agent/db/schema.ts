// The database schema. drizzle-kit generates SQL migrations from this file (npm run db:generate).
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { ATTEMPT_OUTCOMES, DELIVERY_STATUSES } from "../states.ts";
import { NOT_DONE } from "./open-deliveries.ts";

/** Everything the PSA sent, once per source event id. */
export const events = sqliteTable(
  "events",
  {
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
  },
  (t) => [
    uniqueIndex("events_event_id").on(t.eventId),
    // A record's story on the status page: its events in order (seq is the rowid, so it is in the index).
    index("events_record").on(t.entity, t.key),
  ],
);

/** The latest canonical payload per record. */
export const records = sqliteTable(
  "records",
  {
    entity: text("entity").notNull(),
    key: text("key").notNull(),
    payload: text("payload").notNull(),
    version: integer("version").notNull(),
    lastEventSeq: integer("last_event_seq").notNull(),
    /** occurredAt (ms) of the stored version, when the PSA sent one. */
    occurredAt: integer("occurred_at"),
    /** Invoices and credit notes: the PSA's id of the document (one number per PSA id, checked at intake). */
    psaId: text("psa_id"),
    /** Credit notes: the number of the invoice it credits (a push adds up what the invoice's credit notes credit). */
    credits: text("credits"),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.entity, t.key] }),
    index("records_psa_id").on(t.psaId).where(sql`psa_id IS NOT NULL`),
    index("records_credits").on(t.credits).where(sql`credits IS NOT NULL`),
  ],
);

/**
 * One per (event, target). Status: pending → in_flight → done | needs_action | superseded;
 * waiting while a record it depends on (or an older delivery of the same record) is not yet at the target.
 */
export const deliveries = sqliteTable(
  "deliveries",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    eventSeq: integer("event_seq")
      .notNull()
      .references(() => events.seq),
    target: text("target").notNull(),
    entity: text("entity").notNull(),
    key: text("key").notNull(),
    status: text("status", { enum: DELIVERY_STATUSES }).notNull(),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: integer("next_attempt_at").notNull(),
    leaseUntil: integer("lease_until"),
    /**
     * PostgreSQL, many workers: workers.id of the worker holding the lease (agent/db/pg/workers.ts), and an outcome
     * lands only while it still does (agent/db/lease-owner.ts). SQLite (one process) never sets it: always NULL.
     */
    leaseOwner: integer("lease_owner"),
    /**
     * The target's late_answer_wait_ms when the lease was taken: a write sent under it may land at the target up to this
     * long after it was sent. A lease taken back without its answer (a crash, a worker declared dead, a stop) makes the
     * delivery due no sooner than this long after, so no attempt looks the record up before that write can have landed.
     * NULL (leases of an older version): no hold.
     */
    lateAnswerWaitMs: integer("late_answer_wait_ms"),
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
  },
  (t) => [
    // Done rows, most of a long-running database, are in none of the next three: a delivery that is done leaves them
    // with one delete each (issue 16). A query reading them has the index's condition in its WHERE as written
    // (agent/db/open-deliveries.ts); done ones are found by deliveries_done, deliveries_done_id or deliveries_event.
    index("deliveries_ready").on(t.target, t.status, t.nextAttemptAt).where(sql.raw(NOT_DONE)),
    // A record's deliveries, finished ones (done, superseded) apart from the rest: OPEN is how a query asks for the rest.
    // Keyed by that expression, not partial: a lease (pending → in_flight) changes no key of it, and SQLite's UPDATE left
    // it alone; as a partial index whose condition names the status, every lease rewrote it (the lease of 50 with its
    // commit about 2 ms instead of 0.5-0.8 with 1,000,000 pending, issue 16's claim figure). Finished ones stay in it,
    // moving within it once. (No comma in the expression: drizzle-kit would split it.)
    index("deliveries_record").on(t.target, t.entity, t.key, sql`(status = 'done' OR status = 'superseded')`),
    index("deliveries_waiting").on(t.target, t.waitingOn).where(sql`status = 'waiting'`),
    // Listing by status, newest first (the API and the status page); done ones by deliveries_done_id.
    index("deliveries_status_id").on(t.status, t.id).where(sql.raw(NOT_DONE)),
    // "Last successful delivery" per target without scanning every delivered row.
    index("deliveries_done").on(t.target, t.doneAt).where(sql`status = 'done'`),
    // Done ones newest first (GET /api/v1/deliveries?status=done): an index range, not a walk back through the backlog
    // above them on the primary key, nor every done row read and sorted (they left deliveries_status_id).
    index("deliveries_done_id").on(t.id).where(sql`status = 'done'`),
    // Retention: "does this event still have deliveries".
    index("deliveries_event").on(t.eventSeq),
    // A new version of a record retries the deliveries refused because of it.
    index("deliveries_caused_by").on(t.causedBy).where(sql`status = 'needs_action'`),
  ],
);

/**
 * Every attempt to push a delivery and how it ended (the deliveries row keeps only the latest state), written in
 * the transaction that writes the outcome. The record page shows them; retention prunes those older than
 * retention_days (a delivery pruned with its event is older still). No foreign key: deliveries are pruned first.
 */
export const deliveryAttempts = sqliteTable(
  "delivery_attempts",
  {
    id: integer("id").primaryKey(),
    deliveryId: integer("delivery_id").notNull(),
    /** Which attempt of the delivery this was (deliveries.attempts when it was made). */
    attempt: integer("attempt").notNull(),
    at: integer("at").notNull(),
    outcome: text("outcome", { enum: ATTEMPT_OUTCOMES }).notNull(),
    code: text("code"),
    /** What went wrong, why it was held back, or the note of a delivered push. */
    message: text("message"),
    hint: text("hint"),
    remoteId: text("remote_id"),
  },
  (t) => [index("delivery_attempts_delivery").on(t.deliveryId)],
);

/** What a record is called at a target, and the hash of what we last pushed (skip no-op updates). */
export const links = sqliteTable(
  "links",
  {
    target: text("target").notNull(),
    entity: text("entity").notNull(),
    key: text("key").notNull(),
    remoteId: text("remote_id").notNull(),
    payloadHash: text("payload_hash").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.target, t.entity, t.key] })],
);

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
  /**
   * half_open: the worker whose probe is out (workers.id, PostgreSQL); the recovery of a dead worker frees its probe
   * (agent/db/pg/dead-workers.ts). NULL when no probe is out, and always on SQLite (one process).
   */
  probeOwner: integer("probe_owner"),
  updatedAt: integer("updated_at").notNull(),
});

/**
 * OAuth credentials per target (e.g. rotating refresh tokens): a refreshed token is written here,
 * committed durably, before it is used (agent/credentials.ts). state "reconnect": the target refused the
 * refresh token; `kontobro connect` replaces the row.
 */
export const credentials = sqliteTable("credentials", {
  target: text("target").primaryKey(),
  /** The token endpoint the tokens belong to: tokens of another server (a sandbox, another app) are not used. */
  issuer: text("issuer").notNull(),
  clientId: text("client_id").notNull(),
  refreshToken: text("refresh_token"),
  accessToken: text("access_token"),
  accessExpiresAt: integer("access_expires_at"),
  scope: text("scope"),
  state: text("state", { enum: ["connected", "reconnect"] }).notNull(),
  problem: text("problem"),
  updatedAt: integer("updated_at").notNull(),
});

/**
 * Master per entity (agent/master/): a master-data record as kontobro last saw it at a target, keyed by the PSA's
 * key and found by the target's id. `fingerprint`: the record's fields as both systems hold them; `pending`: what a
 * push under way will make it (so the push coming back in a pull is never taken for a change).
 */
export const masterRecords = sqliteTable(
  "master_records",
  {
    target: text("target").notNull(),
    entity: text("entity").notNull(),
    key: text("key").notNull(),
    remoteId: text("remote_id").notNull(),
    name: text("name"),
    fingerprint: text("fingerprint"),
    pending: text("pending_fingerprint"),
    modifiedAt: text("modified_at"),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.target, t.entity, t.key] }),
    uniqueIndex("master_records_remote").on(t.target, t.entity, t.remoteId),
    // Another target's record of the same number (a new record pulled from one target is checked against them).
    index("master_records_key").on(t.entity, t.key),
  ],
);

/**
 * What master per entity tells a person, once per record and kind until it is resolved: a change made in the
 * non-master system, a number whose name does not match, a renumbering or rename in one system only, an article
 * whose coding to check.
 */
export const masterReports = sqliteTable(
  "master_reports",
  {
    target: text("target").notNull(),
    entity: text("entity").notNull(),
    key: text("key").notNull(),
    kind: text("kind").notNull(),
    /** Where it happened: psa or target. */
    side: text("side").notNull(),
    message: text("message").notNull(),
    hint: text("hint"),
    count: integer("count").notNull().default(1),
    firstAt: integer("first_at").notNull(),
    lastAt: integer("last_at").notNull(),
    resolvedAt: integer("resolved_at"),
  },
  (t) => [
    primaryKey({ columns: [t.target, t.entity, t.key, t.kind] }),
    index("master_reports_open").on(t.target, t.lastAt).where(sql`resolved_at IS NULL`),
  ],
);
