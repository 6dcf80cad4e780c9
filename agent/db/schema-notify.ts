// Alerts (agent/notify/): the problems kontobro has told people about, and the mails and webhook calls
// that tell them, kept until sent (the mail server may be down for days: nothing is lost).
import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/**
 * One problem that needs a person: a record that needs action at a target, a failed pull, refused
 * credentials. Opened when first seen, resolved when it is gone; each change is announced once.
 */
export const alerts = sqliteTable(
  "alerts",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    target: text("target").notNull(),
    /** delivery | pull | credentials */
    kind: text("kind").notNull(),
    /** What it is about within the target: "invoice:20001", the pull's stream, "" for credentials. */
    subject: text("subject").notNull(),
    code: text("code"),
    message: text("message").notNull(),
    hint: text("hint"),
    /** JSON: the delivery id and attempts, the pull run, … */
    detail: text("detail").notNull().default("{}"),
    openedAt: integer("opened_at").notNull(),
    resolvedAt: integer("resolved_at"),
    /** How it was resolved, in plain words ("delivered", "the pull succeeded"). */
    resolution: text("resolution"),
    /** The notification batch that announced the problem (0: never announced, it went before the next mail). */
    openedBatch: integer("opened_batch"),
    /** The notification batch that announced that it was resolved. */
    resolvedBatch: integer("resolved_batch"),
  },
  (t) => [
    uniqueIndex("alerts_open").on(t.target, t.kind, t.subject).where(sql`resolved_at IS NULL`),
    index("alerts_unannounced").on(t.target).where(sql`opened_batch IS NULL OR (resolved_at IS NOT NULL AND resolved_batch IS NULL)`),
  ],
);

/** One mail or webhook call, per channel; a batch is one composed notice for one target. */
export const notifications = sqliteTable(
  "notifications",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    batch: integer("batch").notNull(),
    target: text("target").notNull(),
    /** email | webhook */
    channel: text("channel").notNull(),
    /** JSON array of addresses (email); null for the webhook. */
    recipients: text("recipients"),
    subject: text("subject").notNull(),
    body: text("body").notNull(),
    /** JSON: the structured notice (the webhook's body). */
    payload: text("payload").notNull(),
    /** pending (not sent yet; last_error says why when an attempt failed) | sent */
    status: text("status").notNull(),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: integer("next_attempt_at").notNull(),
    lastError: text("last_error"),
    createdAt: integer("created_at").notNull(),
    sentAt: integer("sent_at"),
  },
  (t) => [index("notifications_due").on(t.status, t.nextAttemptAt), index("notifications_target").on(t.target, t.createdAt)],
);
