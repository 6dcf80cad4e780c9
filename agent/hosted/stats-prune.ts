// A hosted tenant's delivery statistics are pruned as the SQLite agent's are (agent/retention.ts): when its runtime
// starts on a worker, then every hour, the hours older than STATS_KEPT_DAYS go (pruneTenantDeliveryStats: added
// into each target's hour 0 first, so the tenant's counters never fall). Every worker runs it for every tenant it
// runs; a prune that finds nothing old costs one statement on the tenant's index. `retention_days = 0` keeps
// everything, as on SQLite. The content of export files older than retention_days goes too, with the SQLite agent's
// statement (agent/exports/store.ts pruneExportFileBytes). The rest of retention (events, deliveries, attempts, inbox,
// runs) is not on PostgreSQL yet.
import type { SqlRunner } from "../db/pg/runner.ts";
import { pruneTenantDeliveryStats } from "../delivery-stats.ts";
import { EXPORT_FILES_PER_STATEMENT, pruneExportFileBytes } from "../exports/store.ts";
import type { Logger } from "../log.ts";
import { type Periodic, startPeriodic } from "../periodic.ts";

const DAY_MS = 86_400_000;

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
      const files = await pruneExportFiles(runner, o.now() - o.retentionDays * DAY_MS);
      if (files > 0) o.log.info(`removed the content of ${files} export file(s) older than ${o.retentionDays} days (their rows stay)`);
    } catch (e) {
      o.log.warn("pruning delivery statistics failed; it is tried again at the next interval", { error: (e as Error).message });
    }
  }, o.intervalMs ?? 3_600_000);
}

/** Every old file's content, a few files per statement (each may hold megabytes). */
async function pruneExportFiles(runner: SqlRunner, cutoff: number): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await pruneExportFileBytes(runner, cutoff, EXPORT_FILES_PER_STATEMENT);
    total += n;
    if (n < EXPORT_FILES_PER_STATEMENT) return total;
  }
}
