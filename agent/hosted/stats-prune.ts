// A hosted tenant's delivery statistics are pruned as the SQLite agent's are (agent/retention.ts): when its runtime
// starts on a worker, then every hour, the hours older than STATS_KEPT_DAYS go (pruneTenantDeliveryStats: added
// into each target's hour 0 first, so the tenant's counters never fall). Every worker runs it for every tenant it
// runs; a prune that finds nothing old costs one statement on the tenant's index. `retention_days = 0` keeps
// everything, as on SQLite. The rest of retention (events, deliveries, attempts, inbox, runs) is not on PostgreSQL yet.
import type { SqlRunner } from "../db/pg/runner.ts";
import { pruneTenantDeliveryStats } from "../delivery-stats.ts";
import type { Logger } from "../log.ts";
import { type Periodic, startPeriodic } from "../periodic.ts";

export interface StatsPruneOptions {
  retentionDays: number;
  log: Logger;
  /** The database's clock as this worker knows it. */
  now: () => number;
  intervalMs?: number;
}

/** Starts the tenant's prune (the first at once); stop() waits for one under way. */
export function startStatsPrune(runner: SqlRunner, o: StatsPruneOptions): Periodic {
  if (o.retentionDays <= 0) return { stop: async () => {} };
  return startPeriodic(async () => {
    try {
      const hours = await pruneTenantDeliveryStats(runner, o.now());
      if (hours > 0) o.log.info(`pruned ${hours} hour(s) of delivery statistics (added into their targets' totals)`);
    } catch (e) {
      o.log.warn("pruning delivery statistics failed; it is tried again at the next interval", { error: (e as Error).message });
    }
  }, o.intervalMs ?? 3_600_000);
}
