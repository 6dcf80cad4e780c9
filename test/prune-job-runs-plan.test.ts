// Retention's prune of pull runs (agent/retention.ts PRUNE_JOB_RUNS) runs every hour: on SQLite once, on PostgreSQL on
// every worker for every tenant (agent/hosted/stats-prune.ts). Once the old runs are gone it must read only those that
// finished before its cut-off (none), not every run kept: a pull every 5 minutes on 3 streams keeps 78,000 runs in 90 days,
// and reading them all took 100-150 ms per tenant and worker on PostgreSQL. Real SQLite file, real server.
import { describe, expect, test } from "bun:test";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { PRUNE_JOB_RUNS } from "../agent/retention.ts";
import { workerEngines } from "./engines.ts";
import { planRows } from "./plan-rows.ts";

const { engines, open } = workerEngines("the pull-run prune's plan");

const DAY_MS = 86_400_000;
const NOW = Date.now();
const CUTOFF = NOW - 90 * DAY_MS;
const KEPT = 3_000;
const OLD = 40;

/** KEPT runs within retention on 3 streams, made in time order, and before them OLD that finished before the cut-off. */
async function fill(runner: SqlRunner): Promise<void> {
  const numbers = `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ${KEPT + OLD})`;
  await runner.run(
    `${numbers} INSERT INTO job_runs (target, stream, trigger, status, started_at, finished_at)
     SELECT 't', 's' || CAST(n % 3 AS TEXT), 'schedule', 'ok', ?1 + n * 60000, ?1 + n * 60000 + 500 FROM g`,
    CUTOFF + DAY_MS,
  );
  await runner.run(
    `UPDATE job_runs SET started_at = started_at - ?1, finished_at = finished_at - ?1 WHERE id IN (SELECT id FROM job_runs ORDER BY id LIMIT ?2)`,
    2 * DAY_MS,
    OLD,
  );
  await runner.run("ANALYZE");
}

describe.each(engines)("on %s, the hourly prune of pull runs", (engine) => {
  test("reads the runs that finished before the cut-off, not every run kept", async () => {
    const s = await open(engine);
    await fill(s.storage);
    const old = await s.storage.get<{ n: number }>(`SELECT count(*) AS n FROM job_runs WHERE finished_at < ?1`, CUTOFF);
    expect(Number(old!.n)).toBe(OLD);
    if (engine === "sqlite") {
      const plan = (s.db.$client.query(`EXPLAIN QUERY PLAN ${PRUNE_JOB_RUNS}`).all(CUTOFF, 200) as { detail: string }[])
        .map((r) => r.detail)
        .join("\n");
      expect(plan).not.toMatch(/^SCAN j$/m);
    } else {
      const rows = await s.storage.transaction((tx) => planRows(tx, PRUNE_JOB_RUNS, [CUTOFF, 200]));
      // The old runs and, per run, its job's last and last good run (one probe each); never the KEPT ones walked.
      expect(rows.get("job_runs") ?? 0).toBeLessThan(KEPT / 4);
    }
    // And it prunes them, keeping each job's last and last good run.
    expect((await s.storage.run(PRUNE_JOB_RUNS, CUTOFF, 200)).changes).toBe(OLD);
  }, 60_000);
});
