// A hosted tenant's delivery statistics are pruned as the SQLite agent's are (agent/retention.ts): when its runtime
// starts on a worker, then every hour, the hours older than STATS_KEPT_DAYS go (pruneTenantDeliveryStats: added
// into each target's hour 0 first, so the tenant's counters never fall). Every worker runs it for every tenant it
// runs; a prune that finds nothing old costs one statement on the tenant's index. `retention_days = 0` keeps
// everything, as on SQLite. Pull runs, delivery attempts and the content of export files older than retention_days go
// too, with the SQLite agent's statements (agent/retention.ts, agent/exports/store.ts pruneExportFileBytes), and so do
// event payloads, finished deliveries and inbox content (agent/hosted/finished-work-prune.ts). A tenant that stops
// ends its prune between two transactions; the next start continues.
import type { SqlRunner } from "../db/pg/runner.ts";
import { pruneTenantDeliveryStats } from "../delivery-stats.ts";
import { EXPORT_FILES_PER_STATEMENT, pruneExportFileBytes } from "../exports/store.ts";
import type { Logger } from "../log.ts";
import { pruneFinishedWork } from "./finished-work-prune.ts";
import { type Periodic, startPeriodic } from "../periodic.ts";
import { DELETE_ATTEMPTS, OLDEST_ATTEMPTS, PRUNE_JOB_RUNS } from "../retention.ts";

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
  return startPeriodic(async (stopped) => {
    try {
      const hours = await pruneTenantDeliveryStats(runner, o.now());
      if (hours > 0) o.log.info(`pruned ${hours} hour(s) of delivery statistics (added into their targets' totals)`);
      const cutoff = o.now() - o.retentionDays * DAY_MS;
      const work = await pruneFinishedWork(runner, cutoff, stopped);
      if (work.events + work.deliveries + work.inboxItems > 0)
        o.log.info(
          `pruned ${work.events} event payload(s), ${work.deliveries} finished deliveries and ${work.inboxItems} inbox item(s)' content older than ${o.retentionDays} days (their slim rows stay)`,
          { ...work },
        );
      if (stopped()) return;
      const files = await pruneExportFiles(runner, cutoff);
      if (files > 0) o.log.info(`removed the content of ${files} export file(s) older than ${o.retentionDays} days (their rows stay)`);
      const runs = await pruneJobRuns(runner, cutoff);
      const attempts = await pruneAttempts(runner, cutoff);
      if (runs + attempts > 0)
        o.log.info(`pruned ${runs} pull run(s) and ${attempts} delivery attempt(s) older than ${o.retentionDays} days`);
    } catch (e) {
      o.log.warn("pruning finished work failed; it is tried again at the next interval", { error: (e as Error).message });
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

/** Rows per statement for pull runs and delivery attempts, as on SQLite. */
const BATCH = 200;

/** Pull runs that finished before the cut-off; each job's last run and last good run stay (the scheduler's catch-up). */
async function pruneJobRuns(runner: SqlRunner, cutoff: number): Promise<number> {
  let total = 0;
  for (;;) {
    const n = (await runner.run(PRUNE_JOB_RUNS, cutoff, BATCH)).changes;
    total += n;
    if (n < BATCH) return total;
  }
}

/** Delivery attempts (the record pages' history) from before the cut-off: the oldest ids, up to the first newer one. */
async function pruneAttempts(runner: SqlRunner, cutoff: number): Promise<number> {
  let total = 0;
  for (;;) {
    const rows = await runner.all<{ id: number; at: number }>(OLDEST_ATTEMPTS, BATCH);
    const end = rows.findIndex((r) => Number(r.at) >= cutoff);
    const old = end < 0 ? rows : rows.slice(0, end);
    if (old.length > 0) total += (await runner.run(DELETE_ATTEMPTS, old[old.length - 1]!.id, cutoff)).changes;
    if (old.length < BATCH) return total;
  }
}
