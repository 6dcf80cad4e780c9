// Delivery statistics per target and hour (table delivery_stats, agent/db/schema-stats.ts), for the status
// page's charts. The outcomes of a dispatcher round are tallied here and added by one upsert in the
// transaction that writes them (agent/outbox.ts), so the counts are exactly what was committed. Rows older
// than STATS_KEPT_DAYS are pruned with the rest of the finished work (agent/retention.ts); a hosted tenant's by its
// runtime on each worker (agent/hosted/stats-prune.ts), into each target's hour 0.
import type { Database } from "bun:sqlite";
import { TARGET_PAUSED } from "../connectors/http.ts";
import type { SqlRunner } from "./db/pg/runner.ts";
import type { Completed } from "./outbox.ts";

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
/** The charts show 30 days; one more so the oldest day is whole whatever the hour. */
export const STATS_KEPT_DAYS = 31;

/** The latency histogram's buckets, in column order: each counts deliveries that took at most `upToMs`. */
export const LATENCY_BUCKETS = [
  { column: "latency_le_50ms", upToMs: 50 },
  { column: "latency_le_100ms", upToMs: 100 },
  { column: "latency_le_250ms", upToMs: 250 },
  { column: "latency_le_500ms", upToMs: 500 },
  { column: "latency_le_1s", upToMs: 1_000 },
  { column: "latency_le_2500ms", upToMs: 2_500 },
  { column: "latency_le_5s", upToMs: 5_000 },
  { column: "latency_le_10s", upToMs: 10_000 },
  { column: "latency_le_30s", upToMs: 30_000 },
  { column: "latency_le_1m", upToMs: 60_000 },
  { column: "latency_le_5m", upToMs: 300_000 },
  { column: "latency_le_30m", upToMs: 1_800_000 },
  { column: "latency_over_30m", upToMs: Number.POSITIVE_INFINITY },
] as const;

/** One target's pushes in one hour. `latency[i]` counts deliveries in LATENCY_BUCKETS[i]. */
export interface HourStats {
  target: string;
  /** Start of the hour, ms (UTC). */
  hour: number;
  delivered: number;
  retried: number;
  needsAction: number;
  latency: number[];
  /** The latencies counted in `latency`, added up (ms). */
  latencySumMs: number;
}

export const hourOf = (ms: number) => Math.floor(ms / HOUR_MS) * HOUR_MS;

/** Index into LATENCY_BUCKETS of a latency. */
export const latencyBucket = (ms: number) => LATENCY_BUCKETS.findIndex((b) => ms <= b.upToMs);

export const emptyHour = (target: string, hour: number): HourStats => ({
  target,
  hour,
  delivered: 0,
  retried: 0,
  needsAction: 0,
  latency: LATENCY_BUCKETS.map(() => 0),
  latencySumMs: 0,
});

/**
 * The outcomes of one round, per target, in the hour `now` falls in. A push the target asked us to hold
 * back (its pause) sent nothing and is not counted; "wait" (a dependency first) is no attempt either.
 * `latencyMs` of a delivered one is the time from the event's arrival to its delivery.
 */
export function tallyOutcomes(results: Completed[], now: number): HourStats[] {
  const byTarget = new Map<string, HourStats>();
  const of = (target: string) => {
    let s = byTarget.get(target);
    if (!s) byTarget.set(target, (s = emptyHour(target, hourOf(now))));
    return s;
  };
  for (const { delivery, outcome, latencyMs } of results) {
    if (outcome.kind === "done") {
      const s = of(delivery.target);
      s.delivered += 1;
      if (latencyMs !== undefined) {
        s.latency[latencyBucket(Math.max(0, latencyMs))]! += 1;
        s.latencySumMs += Math.max(0, Math.round(latencyMs));
      }
    } else if (outcome.kind === "retry" && outcome.problem.code !== TARGET_PAUSED) of(delivery.target).retried += 1;
    else if (outcome.kind === "needs_action") of(delivery.target).needsAction += 1;
  }
  return [...byTarget.values()];
}

const COUNT_COLUMNS = ["delivered", "retried", "needs_action", ...LATENCY_BUCKETS.map((b) => b.column), "delivered_latency_ms"];

const UPSERT = `INSERT INTO delivery_stats (target, hour, ${COUNT_COLUMNS.join(", ")}) VALUES (?, ?, ${COUNT_COLUMNS.map(() => "?").join(", ")})
  ON CONFLICT (target, hour) DO UPDATE SET ${COUNT_COLUMNS.map((c) => `${c} = delivery_stats.${c} + excluded.${c}`).join(", ")}`;

/** Adds tallies to their hours' rows: one statement per target and hour, through the outcome transaction's `tx`. */
export async function addDeliveryStats(tx: SqlRunner, rows: HourStats[]): Promise<void> {
  for (const r of rows) await tx.run(UPSERT, r.target, r.hour, r.delivered, r.retried, r.needsAction, ...r.latency, r.latencySumMs);
}

/** One target's hours from `fromHour` on, oldest first. */
export async function readDeliveryStats(runner: SqlRunner, target: string, fromHour: number): Promise<HourStats[]> {
  const rows = await runner.all<Record<string, number>>(
    `SELECT hour, ${COUNT_COLUMNS.join(", ")} FROM delivery_stats WHERE target = ?1 AND hour >= ?2 ORDER BY hour`,
    target,
    fromHour,
  );
  return rows.map((r) => ({
    target,
    hour: r.hour!,
    delivered: r.delivered!,
    retried: r.retried!,
    needsAction: r.needs_action!,
    latency: LATENCY_BUCKETS.map((b) => r[b.column]!),
    latencySumMs: r.delivered_latency_ms!,
  }));
}

/** The oldest hour kept: the ones before it are older than STATS_KEPT_DAYS. Pure. */
export const statsKeptFrom = (now: number) => hourOf(now) - STATS_KEPT_DAYS * DAY_MS;

/** Drops the hours older than STATS_KEPT_DAYS; returns how many rows went. */
export function pruneDeliveryStats(client: Database, now: number): number {
  return client.run(`DELETE FROM delivery_stats WHERE hour < ?1`, [statsKeptFrom(now)]).changes;
}

/** Hour 0 of a target: its hours pruned so far, added up (never a real hour: the charts read the recent ones). */
const PRUNED = `hour > 0 AND hour < ?1`;
const FOLD_PRUNED = `INSERT INTO delivery_stats (target, hour, ${COUNT_COLUMNS.join(", ")})
  SELECT target, 0, ${COUNT_COLUMNS.map((c) => `sum(${c})`).join(", ")} FROM delivery_stats WHERE ${PRUNED} GROUP BY target
  ON CONFLICT (target, hour) DO UPDATE SET ${COUNT_COLUMNS.map((c) => `${c} = delivery_stats.${c} + excluded.${c}`).join(", ")}`;

/**
 * A hosted tenant's prune (PostgreSQL; its rows only, row-level security): the hours older than STATS_KEPT_DAYS go,
 * as on SQLite, but are first added into the target's hour 0, so what /t/<slug>/metrics sums over all hours (its
 * counters) never falls: a counter that fell would be taken by Prometheus for a reset. Their rows are locked first, so
 * of two workers pruning the tenant at once the second waits and then finds nothing left to add. Returns the hours
 * that went.
 */
export async function pruneTenantDeliveryStats(runner: SqlRunner, now: number): Promise<number> {
  const from = statsKeptFrom(now);
  return runner.transaction(async (tx) => {
    await tx.lockForUpdate(`SELECT target FROM delivery_stats WHERE ${PRUNED} FOR UPDATE`, from);
    await tx.run(FOLD_PRUNED, from);
    return (await tx.run(`DELETE FROM delivery_stats WHERE ${PRUNED}`, from)).changes;
  });
}
