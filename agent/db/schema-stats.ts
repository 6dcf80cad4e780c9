// Delivery statistics for the status page's charts (agent/delivery-stats.ts): one row per target and hour,
// added to in the transaction that writes the push outcomes, kept 31 days (agent/retention.ts).
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
  },
  (t) => [primaryKey({ columns: [t.target, t.hour] })],
);
