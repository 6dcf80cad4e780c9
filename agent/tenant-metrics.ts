// A hosted tenant's /metrics (`/t/<slug>/metrics`, issue 17): Prometheus text read from the database only, through the
// tenant's runner (row-level security holds every statement to its rows), so any worker answers a scrape with the same
// figures. Names and labels are the SQLite agent's (agent/metrics.ts) where they mean the same. What a worker counts
// in its own memory (events received since its start, push durations, pauses asked for) is not per tenant: a load
// balancer sends each scrape to any worker; it is on each worker's own /metrics (Metrics.renderWorker).
import type { SqlRunner } from "./db/pg/runner.ts";
import { LATENCY_BUCKETS } from "./delivery-stats.ts";
import { type Gauge, renderGauges, renderInfo } from "./metrics.ts";
import { alertGauges } from "./notify/gauges.ts";
import { deliveryCounts, pullGauges } from "./queries.ts";
import { TargetStateStore } from "./target-state.ts";

/** Every hour a target's pushes came to, summed (delivery_stats keeps a row per target and hour). */
const STATS_TOTALS = `SELECT target, sum(delivered) AS delivered, sum(retried) AS retried, sum(needs_action) AS needs_action,
  ${LATENCY_BUCKETS.map((b) => `sum(${b.column}) AS ${b.column}`).join(", ")}, sum(delivered_latency_ms) AS delivered_latency_ms
  FROM delivery_stats GROUP BY target ORDER BY target`;

type Totals = Record<string, number> & { target: string };

/** One family's lines: HELP, TYPE, then its series. Label values escaped as the format wants. */
export function family(name: string, type: string, help: string, series: { labels?: Record<string, string>; value: number }[]): string[] {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...series.map((s) => `${name}${labelText(s.labels)} ${s.value}`)];
}

const labelText = (labels: Record<string, string> | undefined) =>
  labels && Object.keys(labels).length > 0
    ? `{${Object.entries(labels)
        .map(([k, v]) => `${k}="${esc(v)}"`)
        .join(",")}}`
    : "";

/**
 * The delivery_stats sums as Prometheus families: pushes by outcome (done, retry, needs_action: the agent's
 * kontobro_pushes_total without wait and held, which the table does not count) and the latency from an event's
 * arrival to its delivery as a histogram (buckets of the table's columns, cumulated; the sum from delivered_latency_ms,
 * which hours written before that column came count as 0).
 * Counters: on PostgreSQL a pruned hour is added into its target's hour 0 (pruneTenantDeliveryStats), so the sums only grow. Pure.
 */
export function statsFamilies(totals: Totals[]): string[] {
  const num = (v: unknown) => Number(v ?? 0);
  const pushes = totals.flatMap((t) => [
    { labels: { target: t.target, outcome: "done" }, value: num(t.delivered) },
    { labels: { target: t.target, outcome: "retry" }, value: num(t.retried) },
    { labels: { target: t.target, outcome: "needs_action" }, value: num(t.needs_action) },
  ]);
  const latency: string[] = [];
  for (const t of totals) {
    let cumulated = 0;
    for (const b of LATENCY_BUCKETS) {
      cumulated += num(t[b.column]);
      if (b.upToMs === Number.POSITIVE_INFINITY) continue;
      latency.push(`kontobro_delivery_latency_seconds_bucket{target="${esc(t.target)}",le="${b.upToMs / 1000}"} ${cumulated}`);
    }
    latency.push(`kontobro_delivery_latency_seconds_bucket{target="${esc(t.target)}",le="+Inf"} ${cumulated}`);
    latency.push(`kontobro_delivery_latency_seconds_sum{target="${esc(t.target)}"} ${num(t.delivered_latency_ms) / 1000}`);
    latency.push(`kontobro_delivery_latency_seconds_count{target="${esc(t.target)}"} ${cumulated}`);
  }
  return [
    ...family(
      "kontobro_pushes_total",
      "counter",
      "Pushes by target and outcome, by all workers: done, retry (failed, tried again later), needs_action.",
      pushes,
    ),
    "# HELP kontobro_delivery_latency_seconds Time from an event's arrival to its delivery at the target, by all workers.",
    "# TYPE kontobro_delivery_latency_seconds histogram",
    ...latency,
  ];
}

const esc = (s: string) => s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

/** The target's stored pause and circuit breaker (target_state, shared by all workers), as the agent names them. */
async function targetStateFamilies(runner: SqlRunner, targets: readonly string[], now: number): Promise<string[]> {
  const store = new TargetStateStore(runner);
  const states = await Promise.all(targets.map(async (t) => ({ target: t, s: await store.get(t) })));
  return [
    ...family(
      "kontobro_target_paused_until_seconds",
      "gauge",
      "Paused by the target (429/503 Retry-After) until this Unix time; 0 when not paused.",
      states.map(({ target, s }) => ({
        labels: { target },
        value: s.pausedUntil !== null && s.pausedUntil > now ? Math.ceil(s.pausedUntil / 1000) : 0,
      })),
    ),
    ...family(
      "kontobro_target_breaker_state",
      "gauge",
      "Circuit breaker per target: 1 for its current state (closed, open, half_open).",
      states.flatMap(({ target, s }) =>
        ["closed", "open", "half_open"].map((state) => ({ labels: { target, state }, value: s.breaker === state ? 1 : 0 })),
      ),
    ),
    ...family(
      "kontobro_target_consecutive_failures",
      "gauge",
      "5xx answers, timeouts and broken connections in a row per target (the breaker opens at [dispatch] breaker_failures).",
      states.map(({ target, s }) => ({ labels: { target }, value: s.failures })),
    ),
  ];
}

/**
 * The tenant's metrics, all read in one transaction of its runner. `targets`: the tenant's targets (as its stored
 * configuration names them), for the per-target gauges that have a row per target whether or not it has state yet.
 */
export async function renderTenantMetrics(runner: SqlRunner, targets: readonly string[], now = Date.now()): Promise<string> {
  return runner.transaction(async (tx) => {
    const stored = (await tx.get<{ n: number }>(`SELECT count(*) AS n FROM events`))!.n;
    const gauges: Gauge[] = [...(await pullGauges(tx)), ...(await alertGauges(tx, [...targets]))];
    const out = [
      ...renderInfo(),
      ...renderGauges(gauges),
      ...family("kontobro_events_stored_total", "counter", "Events ever stored for this tenant (rows are kept, so this only grows).", [
        { value: Number(stored) },
      ]),
      ...family(
        "kontobro_deliveries",
        "gauge",
        "Deliveries by target and status.",
        (await deliveryCounts(tx)).map((r) => ({ labels: { target: r.target, status: r.status }, value: Number(r.n) })),
      ),
      ...statsFamilies(await tx.all<Totals>(STATS_TOTALS)),
      ...(await targetStateFamilies(tx, targets, now)),
    ];
    return `${out.join("\n")}\n`;
  });
}
