// Tables of the pull side (target → PSA): the inbox, the watermarks, status snapshots and the job log.
// drizzle-kit reads every agent/db/schema*.ts; migrations are generated and embedded as usual.
import { sql } from "drizzle-orm";
import { blob, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { INBOX_STATES, RUN_STATUSES, RUN_TRIGGERS } from "../states.ts";

/**
 * What was pulled for the PSA, once per (target, remote id) of the target's account. `seq` is the feed position: strictly
 * increasing in commit order, and moved to the end when an item becomes deliverable later (its project
 * arrived), so a feed reader sees it again. State: new → delivered, or ignored_unknown_project.
 */
export const inbox = sqliteTable(
  "inbox",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    seq: integer("seq").notNull(),
    target: text("target").notNull(),
    stream: text("stream").notNull(),
    remoteId: text("remote_id").notNull(),
    type: text("type").notNull(),
    state: text("state", { enum: INBOX_STATES }).notNull(),
    /** The PSA record the item needs ("entity:key"), e.g. "project:4711". */
    requires: text("requires"),
    /** The PSA record the item is about ("entity:key"): the project of an expense, the invoice of a payment status. */
    record: text("record"),
    payload: text("payload").notNull(),
    attachmentName: text("attachment_name"),
    attachmentType: text("attachment_type"),
    attachment: blob("attachment", { mode: "buffer" }),
    /** Delivery to the PSA webhook. */
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: integer("next_attempt_at").notNull().default(0),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    errorHint: text("error_hint"),
    deliveredVia: text("delivered_via"),
    /**
     * While a webhook request carries the item: no other worker sends it before this time (the request's timeout
     * and a margin). Null when no request carries it; SQLite, one process, clears leftovers at start.
     */
    leaseUntil: integer("lease_until"),
    /**
     * When the target was pointed at another account and its ids forgotten (agent/target-account.ts): the item came
     * from the old account. It stays (and is delivered if it was not yet), but no longer stands for what the target
     * now holds: the new account's items with the same remote ids are new ones. Null: the target's current account.
     */
    forgottenAt: integer("forgotten_at"),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
    deliveredAt: integer("delivered_at"),
  },
  (t) => [
    // Once per (target, remote id) of the target's current account.
    uniqueIndex("inbox_remote").on(t.target, t.remoteId).where(sql`forgotten_at IS NULL`),
    uniqueIndex("inbox_seq").on(t.seq),
    index("inbox_state").on(t.state, t.seq),
    // What was pulled for one record (the status page's record page).
    index("inbox_record").on(t.record).where(sql`record IS NOT NULL`),
  ],
);

/** Watermark per (target, stream): written only in the transaction that stores its batch. */
export const cursors = sqliteTable(
  "cursors",
  {
    target: text("target").notNull(),
    stream: text("stream").notNull(),
    value: text("value").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.target, t.stream] })],
);

/** Last state seen per record of a status stream (e.g. an invoice's payment status). */
export const pullStatus = sqliteTable(
  "pull_status",
  {
    target: text("target").notNull(),
    entity: text("entity").notNull(),
    key: text("key").notNull(),
    value: text("value").notNull(),
    final: integer("final", { mode: "boolean" }).notNull().default(false),
    changes: integer("changes").notNull().default(0),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.target, t.entity, t.key] })],
);

/** Every run of a pull job: why it started, when, what it did, and what went wrong. */
export const jobRuns = sqliteTable(
  "job_runs",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    target: text("target").notNull(),
    stream: text("stream").notNull(),
    trigger: text("trigger", { enum: RUN_TRIGGERS }).notNull(),
    status: text("status", { enum: RUN_STATUSES }).notNull(),
    startedAt: integer("started_at").notNull(),
    finishedAt: integer("finished_at"),
    pages: integer("pages").notNull().default(0),
    fetched: integer("fetched").notNull().default(0),
    imported: integer("imported").notNull().default(0),
    duplicates: integer("duplicates").notNull().default(0),
    ignored: integer("ignored").notNull().default(0),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    errorHint: text("error_hint"),
    pid: integer("pid"),
    /** The schedule time a scheduled or catch-up run is for (epoch ms); null for runs asked for (run now, webhook, CLI). */
    slot: integer("slot"),
    /** The worker running it (workers.id, PostgreSQL); null on SQLite, where one process holds the job's file lock. */
    worker: integer("worker"),
  },
  (t) => [
    index("job_runs_job").on(t.target, t.stream, t.startedAt),
    // Retention's hourly prune (agent/retention.ts PRUNE_JOB_RUNS) reads only the runs that finished before its cut-off,
    // not every run kept (on PostgreSQL, each worker for each tenant).
    index("job_runs_finished").on(t.finishedAt),
    // Once per schedule across workers: the first to insert a slot's run runs it; a failed or interrupted one may be
    // run again (a catch-up), a running or good one not.
    uniqueIndex("job_runs_slot").on(t.target, t.stream, t.slot).where(sql`slot IS NOT NULL AND status IN ('running', 'ok')`),
    // A job never has two runs at once, whoever asked for them.
    uniqueIndex("job_runs_running").on(t.target, t.stream).where(sql`status = 'running'`),
  ],
);
