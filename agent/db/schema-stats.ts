// Delivery statistics for the status page's charts (agent/delivery-stats.ts): one row per target and hour,
// added to in the transaction that writes the push outcomes, kept 31 days (agent/retention.ts). And long work under
// way (exports, pulls) as a hosted worker reports it for every worker to show (agent/running-work-sql.ts).
import { integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * What the pushes of one hour came to at one target: deliveries done, failed attempts (retried later, or
 * needing action), and how long the delivered ones took from the event's arrival, as a histogram whose
 * columns are agent/delivery-stats.ts's LATENCY_BUCKETS in order (each counts latencies up to its bound).
 */
export const deliveryStats = sqliteTable(
  "delivery_stats",
  {
    target: text("target").notNull(),
    /** Start of the hour (ms since the epoch, UTC). */
    hour: integer("hour").notNull(),
    delivered: integer("delivered").notNull().default(0),
    /** Attempts that failed and are tried again by themselves. */
    retried: integer("retried").notNull().default(0),
    /** Attempts that ended in "needs action". */
    needsAction: integer("needs_action").notNull().default(0),
    latencyLe50ms: integer("latency_le_50ms").notNull().default(0),
    latencyLe100ms: integer("latency_le_100ms").notNull().default(0),
    latencyLe250ms: integer("latency_le_250ms").notNull().default(0),
    latencyLe500ms: integer("latency_le_500ms").notNull().default(0),
    latencyLe1s: integer("latency_le_1s").notNull().default(0),
    latencyLe2500ms: integer("latency_le_2500ms").notNull().default(0),
    latencyLe5s: integer("latency_le_5s").notNull().default(0),
    latencyLe10s: integer("latency_le_10s").notNull().default(0),
    latencyLe30s: integer("latency_le_30s").notNull().default(0),
    latencyLe1m: integer("latency_le_1m").notNull().default(0),
    latencyLe5m: integer("latency_le_5m").notNull().default(0),
    latencyLe30m: integer("latency_le_30m").notNull().default(0),
    latencyOver30m: integer("latency_over_30m").notNull().default(0),
    /** The delivered ones' latencies added up (ms): with `delivered`, their mean (the histogram's sum in /metrics). */
    deliveredLatencyMs: integer("delivered_latency_ms").notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.target, t.hour] })],
);

/**
 * An export or a pull under way, or just finished, as the worker running it last reported it (at most once a second):
 * a hosted tenant's "In progress", shown by whichever worker serves its page. The SQLite agent reports to files in its
 * data directory instead (agent/running-work.ts: an export there is one write transaction, which would hold back its own
 * progress rows). Rows are removed once no longer shown.
 */
export const runningWork = sqliteTable("running_work", {
  /** The work's id (agent/running-work.ts WorkEntry.id). */
  id: text("id").primaryKey(),
  /** workers.id of the worker running it (null where there are no workers): gone from workers, the work was cut off. */
  worker: integer("worker"),
  startedAt: integer("started_at").notNull(),
  updatedAt: integer("updated_at").notNull(),
  finishedAt: integer("finished_at"),
  /** The WorkEntry as JSON. */
  entry: text("entry").notNull(),
});
