// A hosted tenant's delivery statistics are pruned as the SQLite agent's are (issue 17's leftovers: delivery_stats
// grew for good on PostgreSQL): the tenant runtime prunes the hours older than STATS_KEPT_DAYS when it starts and
// every hour, adding them into each target's hour 0 first, so /t/<slug>/metrics' counters (sums over all hours) never
// fall; two workers pruning at once add them once; another tenant's hours are not touched; retention_days = 0 keeps
// everything. Real parts: a real PostgreSQL server, the tenant store, the tenant runtime as a hosted worker starts it.
import { describe, expect, test } from "bun:test";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { Worker } from "../agent/db/pg/workers.ts";
import { DAY_MS, hourOf, pruneTenantDeliveryStats } from "../agent/delivery-stats.ts";
import { TenantStore } from "../agent/tenants/store.ts";
import { waitFor } from "./helpers.ts";
import { hostedInProcess } from "./hosted-in-process.ts";
import { openPostgres } from "../agent/db/pg/open.ts";
import { getFile, getFileBytes, insertFile, insertRun } from "../agent/exports/store.ts";

const hosted = hostedInProcess("hosted delivery statistics pruning");
const tenants = () => new TenantStore(hosted.storage.client);

const NOW = hourOf(Date.now());
const daysAgo = (days: number) => NOW - days * DAY_MS;

/** A tenant with no targets (its runtime starts no dispatcher), and its runner. */
async function tenant(slug: string): Promise<SqlRunner> {
  const { tenant } = await tenants().add({ slug, config: {} }, {});
  return hosted.storage.runner(tenant.id);
}

async function hours(runner: SqlRunner, target: string, ...rows: [hour: number, delivered: number, retried: number][]) {
  for (const [hour, delivered, retried] of rows)
    await runner.run(
      `INSERT INTO delivery_stats (target, hour, delivered, retried, needs_action, latency_le_50ms, delivered_latency_ms) VALUES (?1, ?2, ?3, ?4, 0, ?3, ?5)`,
      target,
      hour,
      delivered,
      retried,
      delivered * 40,
    );
}

const stored = (runner: SqlRunner) =>
  runner.all<{ target: string; hour: number; delivered: number; retried: number; fast: number; latencyMs: number }>(
    `SELECT target, hour, delivered, retried, latency_le_50ms AS fast, delivered_latency_ms AS "latencyMs" FROM delivery_stats ORDER BY target, hour`,
  );

/** What /t/<slug>/metrics sums, per target. */
const totals = (runner: SqlRunner) =>
  runner.all<{ target: string; delivered: number; retried: number }>(
    `SELECT target, sum(delivered) AS delivered, sum(retried) AS retried FROM delivery_stats GROUP BY target ORDER BY target`,
  );

/** `runner` whose transactions stop before their DELETE until `gate` resolves. */
function stoppingBeforeDelete(runner: SqlRunner, reached: () => void, gate: Promise<void>): SqlRunner {
  return {
    ...runner,
    transaction: (fn) =>
      runner.transaction((tx) =>
        fn(
          new Proxy(tx, {
            get(target, prop) {
              const value = Reflect.get(target, prop, target);
              if (prop !== "run") return typeof value === "function" ? value.bind(target) : value;
              return async (text: string, ...params: unknown[]) => {
                if (text.startsWith("DELETE")) {
                  reached();
                  await gate;
                }
                return target.run(text, ...params);
              };
            },
          }),
        ),
      ),
  };
}

describe.skipIf(!!hosted.unavailable)("a hosted tenant's delivery statistics", () => {
  test("the hours older than 31 days go, added into their target's hour 0: the sums stay", async () => {
    const acme = await tenant("acme");
    const globex = await tenant("globex");
    await hours(acme, "books", [daysAgo(40), 3, 0], [daysAgo(35), 2, 1], [daysAgo(1), 5, 0]);
    await hours(acme, "ledger", [daysAgo(32), 7, 2]);
    await hours(globex, "books", [daysAgo(40), 11, 0]);
    const before = await totals(acme);

    expect(await pruneTenantDeliveryStats(acme, NOW)).toBe(3);
    expect(await stored(acme)).toEqual([
      { target: "books", hour: 0, delivered: 5, retried: 1, fast: 5, latencyMs: 200 },
      { target: "books", hour: daysAgo(1), delivered: 5, retried: 0, fast: 5, latencyMs: 200 },
      { target: "ledger", hour: 0, delivered: 7, retried: 2, fast: 7, latencyMs: 280 },
    ]);
    expect(await totals(acme)).toEqual(before);
    // Another tenant's hours stay (row-level security).
    expect((await stored(globex)).map((r) => r.hour)).toEqual([daysAgo(40)]);

    // A month later the last hour is out too: added to what hour 0 holds; a prune with nothing old changes nothing.
    expect(await pruneTenantDeliveryStats(acme, NOW + 31 * DAY_MS)).toBe(1);
    expect(await pruneTenantDeliveryStats(acme, NOW + 31 * DAY_MS)).toBe(0);
    expect(await stored(acme)).toEqual([
      { target: "books", hour: 0, delivered: 10, retried: 1, fast: 10, latencyMs: 400 },
      { target: "ledger", hour: 0, delivered: 7, retried: 2, fast: 7, latencyMs: 280 },
    ]);
    expect(await totals(acme)).toEqual(before);
  });

  test("two workers pruning at once add the old hours once", async () => {
    const initech = await tenant("initech");
    await hours(initech, "books", [daysAgo(40), 3, 0], [daysAgo(1), 1, 0]);
    const other = await openPostgres(hosted.server.url, { max: 2 });
    try {
      let reached!: () => void;
      const atDelete = new Promise<void>((r) => (reached = r));
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      // The first has added the old hour into hour 0 and not yet deleted it; the second starts meanwhile.
      const first = pruneTenantDeliveryStats(stoppingBeforeDelete(initech, reached, gate), NOW);
      await atDelete;
      const second = pruneTenantDeliveryStats(other.runner((await tenants().get("initech"))!.id), NOW);
      await Bun.sleep(300);
      release();
      expect((await Promise.all([first, second])).sort()).toEqual([0, 1]);
      expect(await totals(initech)).toEqual([{ target: "books", delivered: 4, retried: 0 }]);
    } finally {
      await other.close();
    }
  });

  test("a tenant's runtime prunes them when it starts; retention_days = 0 keeps them", async () => {
    const worker = await Worker.register(hosted.storage.client);
    const start = async (slug: string, retention: number) =>
      hosted.start((await tenants().get(slug))!, worker.id, slug, { agent: { retention_days: retention } });
    const kept = await tenant("kept");
    const pruned = await tenant("pruned");
    for (const runner of [kept, pruned]) await hours(runner, "books", [daysAgo(40), 3, 0], [daysAgo(1), 1, 0]);
    await start("kept", 0);
    await start("pruned", 90);
    await waitFor("the runtime's first prune", async () => (await stored(pruned)).every((r) => r.hour !== daysAgo(40)));
    expect((await stored(pruned)).map((r) => [r.hour, r.delivered])).toEqual([
      [0, 3],
      [daysAgo(1), 1],
    ]);
    await Bun.sleep(200);
    expect((await stored(kept)).map((r) => r.hour)).toEqual([daysAgo(40), daysAgo(1)]);
    await worker.stop();
  });

  test("a tenant's runtime removes the content of its export files older than retention_days; rows and newer files stay", async () => {
    const worker = await Worker.register(hosted.storage.client);
    const runner = await tenant("exports");
    const file = async (daysOld: number, toDeliver: boolean) => {
      const runId = await insertRun(runner, {
        kind: "sie4",
        template: null,
        dataType: "invoices",
        periodFrom: null,
        periodTo: null,
        rowCount: 1,
        invoiceCount: 1,
        warnings: [],
        requestedBy: "cli",
        createdAt: Date.now() - daysOld * DAY_MS,
      });
      return insertFile(runner, {
        runId,
        fileName: `f${daysOld}-${toDeliver}.SI`,
        format: "sie4i",
        encoding: "cp437",
        periodFrom: null,
        periodTo: null,
        bytes: new Uint8Array(5000).fill(65),
        sha256: "x",
        rowCount: 1,
        createdAt: Date.now() - daysOld * DAY_MS,
        toDeliver,
      });
    };
    const old = await file(100, false);
    const waiting = await file(100, true);
    const recent = await file(10, false);
    await hosted.start((await tenants().get("exports"))!, worker.id, "exports");
    // Before: export files were never pruned on PostgreSQL either.
    await waitFor("the runtime's first prune", async () => (await getFileBytes(runner, old))!.pruned);
    expect((await getFileBytes(runner, old))!.bytes.length).toBe(0);
    expect((await getFile(runner, old))!.size).toBe(5000);
    expect((await getFileBytes(runner, waiting))!.bytes.length).toBe(5000);
    expect((await getFileBytes(runner, recent))!.bytes.length).toBe(5000);
    await worker.stop();
  });

  test("a tenant's runtime prunes pull runs and delivery attempts older than retention_days; each job's last and last good run stay", async () => {
    const worker = await Worker.register(hosted.storage.client);
    const runner = await tenant("runs");
    const run = (stream: string, status: string, daysOld: number) =>
      runner.run(
        `INSERT INTO job_runs (target, stream, trigger, status, started_at, finished_at) VALUES ('books', ?1, 'schedule', ?2, ?3, ?3)`,
        stream,
        status,
        Date.now() - daysOld * DAY_MS,
      );
    await run("payments", "ok", 200); // old
    await run("payments", "ok", 150); // the last good run: stays
    await run("payments", "failed", 120); // the last run: stays
    await run("expenses", "ok", 100); // old
    await run("expenses", "ok", 5);
    const attempt = (deliveryId: number, daysOld: number) =>
      runner.run(
        `INSERT INTO delivery_attempts (delivery_id, attempt, at, outcome) VALUES (?1, 1, ?2, 'failed')`,
        deliveryId,
        Date.now() - daysOld * DAY_MS,
      );
    await attempt(1, 120);
    await attempt(2, 100);
    await attempt(3, 3);
    await hosted.start((await tenants().get("runs"))!, worker.id, "runs");
    const runs = () => runner.all<{ stream: string; status: string }>(`SELECT stream, status FROM job_runs ORDER BY id`);
    // Before: neither was ever pruned on PostgreSQL.
    await waitFor("the runtime's first prune", async () => (await runs()).length === 3);
    expect(await runs()).toEqual([
      { stream: "payments", status: "ok" },
      { stream: "payments", status: "failed" },
      { stream: "expenses", status: "ok" },
    ]);
    await waitFor("attempts pruned", async () => (await runner.all(`SELECT id FROM delivery_attempts`)).length === 1);
    expect(await runner.all(`SELECT delivery_id AS d FROM delivery_attempts`)).toEqual([{ d: 3 }]);
    await worker.stop();
  });
});
