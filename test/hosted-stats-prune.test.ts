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
import { customerEvent, waitFor } from "./helpers.ts";
import { IntakeStore, prepareEvents } from "../agent/intake-store.ts";
import { parseEvents } from "../agent/intake.ts";
import { Outbox } from "../agent/outbox.ts";
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

describe.skipIf(!!hosted.unavailable)("a hosted tenant's finished work older than retention_days", () => {
  const prepared = (raw: unknown[]) => {
    const parsed = parseEvents(raw);
    if (!parsed.ok) throw new Error(`fixture: ${JSON.stringify(parsed)}`);
    return prepareEvents(parsed.events);
  };
  /** Intake as the PSA's requests reach it, `daysOld` days ago; deliveries to target "books". */
  const intake = (runner: SqlRunner, daysOld: number, ...events: unknown[]) =>
    new IntakeStore(
      new Outbox(runner),
      () => ["books"],
      () => Date.now() - daysOld * DAY_MS,
    ).storeGroup([prepared(events)]);
  const finish = (runner: SqlRunner, eventId: string, status: string, daysOld: number) =>
    runner.run(
      `UPDATE deliveries SET status = ?2, updated_at = ?3, done_at = ?3 WHERE event_seq = (SELECT seq FROM events WHERE event_id = ?1)`,
      eventId,
      status,
      Date.now() - daysOld * DAY_MS,
    );
  const payloads = (runner: SqlRunner) =>
    runner.all<{ id: string; pruned: number }>(
      `SELECT event_id AS id, CASE WHEN payload = '' THEN 1 ELSE 0 END AS pruned FROM events ORDER BY event_id`,
    );
  const deliveries = (runner: SqlRunner) =>
    runner.all<{ id: string; status: string }>(
      `SELECT e.event_id AS id, d.status FROM deliveries d JOIN events e ON e.seq = d.event_seq ORDER BY e.event_id`,
    );

  test("event payloads, finished deliveries and inbox content go; latest versions, open deliveries and slim rows stay; a resent old event id is still a duplicate", async () => {
    const worker = await Worker.register(hosted.storage.client);
    const runner = await tenant("finished");
    const other = await tenant("finished-other");
    // c1: an old version delivered long ago (pruned with its delivery) and its latest version (kept, old as it is).
    await intake(runner, 200, customerEvent(1, { name: "One" }, "c1-v1"));
    await finish(runner, "c1-v1", "done", 199);
    await intake(runner, 150, customerEvent(1, { name: "One B" }, "c1-v2"));
    await finish(runner, "c1-v2", "done", 149);
    // c2: an old version whose delivery needs action (kept, with its delivery), then a newer one.
    await intake(runner, 200, customerEvent(2, { name: "Two" }, "c2-v1"));
    await intake(runner, 150, customerEvent(2, { name: "Two B" }, "c2-v2"));
    await finish(runner, "c2-v1", "needs_action", 149);
    // c4: an old version whose delivery finished after the cut-off (done late): kept until that is old too.
    await intake(runner, 200, customerEvent(4, { name: "Four" }, "c4-v1"));
    await finish(runner, "c4-v1", "done", 10);
    await intake(runner, 150, customerEvent(4, { name: "Four B" }, "c4-v2"));
    // c3: a version superseded long ago (pruned), a recent version superseded lately (kept), and the latest.
    await intake(runner, 200, customerEvent(3, { name: "Three" }, "c3-v1"));
    await finish(runner, "c3-v1", "superseded", 199);
    await intake(runner, 10, customerEvent(3, { name: "Three B" }, "c3-v2"));
    await finish(runner, "c3-v2", "superseded", 9);
    await intake(runner, 5, customerEvent(3, { name: "Three C" }, "c3-v3"));
    // Another tenant's old version delivered long ago: not this tenant's prune (row-level security; its runtime is not started).
    await intake(other, 200, customerEvent(1, { name: "One" }, "c1-v1"));
    await finish(other, "c1-v1", "done", 199);
    await intake(other, 150, customerEvent(1, { name: "One B" }, "c1-v2"));
    const item = (seq: number, state: string, daysOld: number) =>
      runner.run(
        `INSERT INTO inbox (seq, target, stream, remote_id, type, state, payload, attachment_name, attachment_type, attachment, created_at, updated_at, delivered_at)
         VALUES (?1, 'books', 'expenses', ?2, 'expense', ?3, '{"amount":12}', 'r.pdf', 'application/pdf', ?4, ?5, ?5, ?6)`,
        seq,
        `r${seq}`,
        state,
        new Uint8Array(3000).fill(7),
        Date.now() - daysOld * DAY_MS,
        state === "delivered" ? Date.now() - daysOld * DAY_MS : null,
      );
    await item(1, "delivered", 120); // old and delivered: slim
    await item(2, "new", 120); // old, not delivered: kept
    await item(3, "delivered", 10); // recent: kept

    await hosted.start((await tenants().get("finished"))!, worker.id, "finished", { agent: { retention_days: 90 } });
    // Before: nothing of this was ever pruned on PostgreSQL.
    await waitFor("the runtime's first prune", async () => (await payloads(runner)).some((p) => p.pruned === 1));
    await waitFor(
      "inbox pruned",
      async () => (await runner.get<{ n: number }>(`SELECT count(*) AS n FROM inbox WHERE payload = '{}'`))!.n === 1,
    );
    expect(await payloads(runner)).toEqual([
      { id: "c1-v1", pruned: 1 },
      { id: "c1-v2", pruned: 0 },
      { id: "c2-v1", pruned: 0 },
      { id: "c2-v2", pruned: 0 },
      { id: "c3-v1", pruned: 1 },
      { id: "c3-v2", pruned: 0 },
      { id: "c3-v3", pruned: 0 },
      { id: "c4-v1", pruned: 0 },
      { id: "c4-v2", pruned: 0 },
    ]);
    expect(await deliveries(runner)).toEqual([
      { id: "c1-v2", status: "done" },
      { id: "c2-v1", status: "needs_action" },
      { id: "c2-v2", status: "pending" },
      { id: "c3-v2", status: "superseded" },
      { id: "c3-v3", status: "pending" },
      { id: "c4-v1", status: "done" },
      { id: "c4-v2", status: "pending" },
    ]);
    expect(
      await runner.all(`SELECT remote_id AS id, payload, attachment IS NULL AS gone, attachment_name AS name FROM inbox ORDER BY seq`),
    ).toEqual([
      { id: "r1", payload: "{}", gone: true, name: null },
      { id: "r2", payload: '{"amount":12}', gone: false, name: "r.pdf" },
      { id: "r3", payload: '{"amount":12}', gone: false, name: "r.pdf" },
    ]);
    expect(await payloads(other)).toEqual([
      { id: "c1-v1", pruned: 0 },
      { id: "c1-v2", pruned: 0 },
    ]);
    // The PSA re-sends the pruned event: still a duplicate (its content can no longer be compared), nothing stored or pushed.
    expect(await intake(runner, 0, customerEvent(1, { name: "One" }, "c1-v1"))).toEqual([
      { stored: [{ id: "c1-v1", status: "duplicate" }] },
    ]);
    expect((await deliveries(runner)).length).toBe(7);
    await worker.stop();
  });
});
