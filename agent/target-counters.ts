// Durable counters per target that restart with each period (the connector contract's PeriodCounters), for
// quotas a target counts against us (e.g. server calls per day). One settings row per (target, name)
// holds "<period>:<value>", changed in one statement, so every process of the agent adds to the same count.
import type { PeriodCounters, TargetBudget } from "../connectors/contract.ts";
import type { Db } from "./db/index.ts";
import type { Gauge } from "./metrics.ts";

export function periodCounters(db: Db, target: string): PeriodCounters {
  const c = db.$client;
  const add = c.prepare(`INSERT INTO settings (name, value) VALUES (?1, ?2 || ':' || ?3)
    ON CONFLICT (name) DO UPDATE SET value = CASE WHEN substr(settings.value, 1, length(?2) + 1) = ?2 || ':'
      THEN ?2 || ':' || (CAST(substr(settings.value, length(?2) + 2) AS BIGINT) + CAST(?3 AS BIGINT)) ELSE ?2 || ':' || ?3 END
    RETURNING value`);
  const get = c.prepare(`SELECT value FROM settings WHERE name = ?1`);
  const key = (name: string) => `counter:${target}:${name}`;
  const valueIn = (stored: string | undefined, period: string) =>
    stored?.startsWith(`${period}:`) ? Number(stored.slice(period.length + 1)) || 0 : 0;
  return {
    add: (name, period, by) => valueIn((add.get(key(name), period, Math.trunc(by)) as { value: string }).value, period),
    get: (name, period) => valueIn((get.get(key(name)) as { value: string } | null)?.value, period),
  };
}

/** The connectors' budgets as /metrics gauges: used and limit per target and budget. */
export function budgetGauges(connectors: Map<string, { budgets?(): TargetBudget[] }>): Gauge[] {
  const rows: { target: string; b: TargetBudget }[] = [];
  for (const [target, c] of connectors) {
    try {
      for (const b of c.budgets?.() ?? []) rows.push({ target, b });
    } catch {
      /* a budget that cannot be read is left out */
    }
  }
  if (rows.length === 0) return [];
  const labels = (r: { target: string; b: TargetBudget }) => ({ target: r.target, budget: r.b.name });
  return [
    {
      name: "kontobro_target_budget_used",
      help: "Calls (or other units) of a target's quota used in the current period, e.g. a target's server calls today.",
      rows: rows.map((r) => ({ labels: labels(r), value: r.b.used })),
    },
    {
      name: "kontobro_target_budget_limit",
      help: "A target's quota per period (kontobro never exceeds it).",
      rows: rows.map((r) => ({ labels: labels(r), value: r.b.limit })),
    },
  ];
}
