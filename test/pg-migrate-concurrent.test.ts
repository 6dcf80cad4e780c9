// Upgrading a PostgreSQL database whose tables hold rows builds and drops their indexes CONCURRENTLY, outside the
// migration's transaction (agent/db/pg/migrate.ts, index-steps.ts), on a real server (test/pg-server.ts): the upgrade
// from the schema of migration 0012 (before the deliveries indexes of 0013-0015) gives the indexes a fresh install
// has; a build interrupted (its backend terminated) leaves an INVALID index that the next start builds again; two
// starting at once build each index once; and intake is answered while a build is under way. A migration's ALTER TABLE
// held up by a long transaction gives up after lock_timeout and is tried again, so intake does not queue behind it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { AgentConfig } from "../agent/config.ts";
import { type EmbeddedMigration, MIGRATION_LOCK, MigrationStopped, migratePostgres, STEPS_LOCK } from "../agent/db/pg/migrate.ts";
import type { IndexStep } from "../agent/db/pg/index-steps.ts";
import { describeLockTimeout, describeSlowStep, type LockTimeout, type LockWait, type SlowStep } from "../agent/db/pg/migrate-report.ts";
import { embeddedMigrations } from "../agent/db/pg/migrations.generated.ts";
import { StorageError } from "../agent/db/index.ts";
import { openPostgres } from "../agent/db/pg/open.ts";
import { Worker } from "../agent/db/pg/workers.ts";
import { startTenantRuntime } from "../agent/hosted/tenant-runtime.ts";
import { silentLogger } from "../agent/log.ts";
import { Metrics } from "../agent/metrics.ts";
import { TenantStore } from "../agent/tenants/store.ts";
import { customerEvents } from "./hosted-in-process.ts";
import { waitFor } from "./helpers.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

const unavailable = pgUnavailable();
if (unavailable) console.warn(`pg-migrate-concurrent skipped: ${unavailable}`);
/** The migrations up to 0012: the schema a worker of that time left. */
const BEFORE = embeddedMigrations.slice(
  0,
  embeddedMigrations.findIndex((m) => m.tag.startsWith("0013_")),
);
const ROWS = 20_000;
const target = { name: "books", kind: "economic", app_secret_token: "x", agreement_grant_token: "y", paused: true };

let server: PgServer;
let freshIndexes: IndexRow[];
const clients: SQL[] = [];
const client = (url: string, max = 2) => {
  const c = new SQL({ url, max });
  clients.push(c);
  return c;
};

interface IndexRow {
  tablename: string;
  indexname: string;
  indexdef: string;
}
const adminUrl = (url: string) => url.replace("kontobro@", "postgres@");
async function indexesOf(url: string): Promise<{ indexes: IndexRow[]; invalid: string[]; steps: number }> {
  const admin = client(adminUrl(url), 1);
  const indexes = (await admin.unsafe(
    `SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`,
  )) as IndexRow[];
  const invalid = (
    (await admin.unsafe(`SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid WHERE NOT x.indisvalid`)) as {
      relname: string;
    }[]
  ).map((r) => r.relname);
  const [{ n }] = (await admin.unsafe(`SELECT count(*)::int AS n FROM drizzle.kontobro_index_steps`)) as { n: number }[];
  return { indexes: [...indexes], invalid, steps: n };
}

/** A database migrated to 0012 with three tenants and ROWS deliveries (most done) among them. */
async function oldDatabase(name: string): Promise<string> {
  const url = await server.createDatabase(name);
  const c = client(url);
  await migratePostgres(c, BEFORE);
  const store = new TenantStore(c);
  for (const slug of ["acme", "globex", "initech"]) await store.add({ slug, config: { targets: [target] } }, {});
  const admin = client(adminUrl(url), 1);
  await admin.unsafe(`INSERT INTO events (tenant_id, event_id, type, entity, key, payload, received_at)
    SELECT 1 + g % 3, 'fill-' || g, 'customer.upserted', 'customer', 'c' || (g % 5000), '{}', 0 FROM generate_series(1, ${ROWS}) g`);
  await admin.unsafe(`INSERT INTO deliveries (tenant_id, event_seq, target, entity, key, status, next_attempt_at, created_at, updated_at)
    SELECT tenant_id, seq, 'books', entity, key, CASE WHEN seq % 10 = 0 THEN 'pending' ELSE 'done' END, 0, 0, 0 FROM events`);
  return url;
}

/**
 * A transaction of `sql` that ran `statement` on deliveries and stays open until `release()`: a concurrent build waits for
 * it, as for a long one. Resolves once the statement has run, with the session's pid.
 */
async function holdOpen(sql: SQL, statement: string): Promise<{ pid: number; release: () => Promise<void> }> {
  let letGo!: () => void;
  const held = new Promise<void>((go) => (letGo = go));
  let holding!: (pid: number) => void;
  const pid = new Promise<number>((ok) => (holding = ok));
  const open = sql.begin(async (tx) => {
    await tx.unsafe(statement);
    const [row] = (await tx.unsafe(`SELECT pg_backend_pid() AS pid`)) as { pid: number }[];
    holding(row!.pid);
    await held;
  });
  const first = await Promise.race([pid, open.then(() => null)]);
  if (first === null) throw new Error(`the transaction ended before it held: ${statement}`);
  return {
    pid: first,
    release: async () => {
      letGo();
      await open;
    },
  };
}

const stepNames = (steps: IndexStep[]) => steps.map((s) => (s.op === "rename" ? `rename ${s.from}` : `${s.op} ${s.name}`));

describe.skipIf(!!unavailable)("PostgreSQL upgrades build indexes on tables with rows CONCURRENTLY", () => {
  beforeAll(async () => {
    server = await startPgServer();
    const fresh = await server.createDatabase("fresh");
    const steps: IndexStep[] = [];
    await migratePostgres(client(fresh), embeddedMigrations, { onStep: (s) => steps.push(s) });
    // A fresh install's tables are empty after 0000: every index is built in its migration's transaction.
    expect(steps).toEqual([]);
    ({ indexes: freshIndexes } = await indexesOf(fresh));
    expect(freshIndexes.map((i) => i.indexname)).toContain("deliveries_done_id");
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await server?.stop();
  });

  test("the upgrade from 0012 gives a fresh install's indexes, each built on deliveries with CONCURRENTLY", async () => {
    const url = await oldDatabase("upgrade");
    const steps: IndexStep[] = [];
    await migratePostgres(client(url), embeddedMigrations, { onStep: (s) => steps.push(s) });
    const after = await indexesOf(url);
    expect(after.indexes).toEqual(freshIndexes);
    expect(after.invalid).toEqual([]);
    expect(after.steps).toBe(0);
    expect(stepNames(steps)).toContain("create deliveries_done_id");
    expect(stepNames(steps)).toContain("create deliveries_record_kb_build");
    for (const s of steps) if (s.op === "create") expect(s.sql).toContain("INDEX CONCURRENTLY");
    // Started again: nothing left to do.
    const again: IndexStep[] = [];
    await migratePostgres(client(url), embeddedMigrations, { onStep: (s) => again.push(s) });
    expect(again).toEqual([]);
  }, 120_000);

  test("intake is answered during a build; a build interrupted is built again at the next start", async () => {
    const url = await oldDatabase("interrupted");
    // A worker of the old schema, taking a tenant's events.
    const storage = await openPostgres(url, { max: 4, migrations: BEFORE });
    const admin = client(adminUrl(url), 2);
    try {
      const [tenant] = await new TenantStore(storage.client).list();
      const worker = await Worker.register(storage.client);
      const runtime = await startTenantRuntime(tenant!, storage.runner(tenant!.id), {
        config: AgentConfig.parse({}),
        workerId: worker.id,
        epoch: "e1",
        metrics: new Metrics(),
        log: silentLogger,
      });
      try {
        // A transaction that wrote to deliveries and stays open: a concurrent build waits for it, as for a long one.
        const blocker = await holdOpen(admin, `UPDATE deliveries SET note = note WHERE id = 1`);
        const building = () =>
          admin.unsafe(
            `SELECT pid FROM pg_stat_activity WHERE query LIKE 'CREATE%INDEX CONCURRENTLY%' AND datname = 'interrupted'`,
          ) as Promise<{ pid: number }[]>;
        const upgrade = migratePostgres(client(url), embeddedMigrations);
        let failed: unknown = null;
        const ended = upgrade.catch((e) => (failed = e));
        await waitFor("a concurrent build under way", async () => (await building()).length === 1, 30_000);

        const started = performance.now();
        const stored = await runtime.intake.submit(customerEvents(9001, 9002));
        const tookMs = performance.now() - started;
        expect(stored.map((r) => r.status)).toEqual(["accepted", "accepted"]);
        expect(tookMs).toBeLessThan(5_000);
        expect(await building()).toHaveLength(1);

        // The migrating worker dies mid-build: the index it was building is left INVALID, its step kept.
        await admin.unsafe(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'CREATE%INDEX CONCURRENTLY%' AND datname = 'interrupted'`,
        );
        await ended;
        expect(failed).not.toBeNull();
        await blocker.release();
        const broken = await indexesOf(url);
        expect(broken.invalid).toEqual(["deliveries_ready_kb_build"]);
        expect(broken.steps).toBeGreaterThan(0);

        // The next start drops it and builds it again, then goes on.
        const steps: IndexStep[] = [];
        await migratePostgres(client(url), embeddedMigrations, { onStep: (s) => steps.push(s) });
        expect(stepNames(steps)[0]).toBe("create deliveries_ready_kb_build");
        const repaired = await indexesOf(url);
        expect(repaired.invalid).toEqual([]);
        expect(repaired.steps).toBe(0);
        expect(repaired.indexes).toEqual(freshIndexes);
        const [{ n }] = (await admin.unsafe(`SELECT count(*)::int AS n FROM events WHERE event_id NOT LIKE 'fill-%'`)) as { n: number }[];
        expect(n).toBe(2);
      } finally {
        await runtime.stop();
      }
    } finally {
      await storage.close();
    }
  }, 120_000);

  test("two workers starting at once: one builds each index, the other waits and finds nothing left", async () => {
    const url = await oldDatabase("together");
    const a: IndexStep[] = [];
    const b: IndexStep[] = [];
    let waited = 0;
    await Promise.all([
      migratePostgres(client(url), embeddedMigrations, { onStep: (s) => a.push(s), onWait: () => waited++, pollMs: 20 }),
      migratePostgres(client(url), embeddedMigrations, { onStep: (s) => b.push(s), onWait: () => waited++, pollMs: 20 }),
    ]);
    // The one that waited was told once (the worker logs it), however often it asked for the lock.
    expect(waited).toBe(1);
    // One of them ran every step (0013-0015 on deliveries, 0018 on events); the other, waiting for the lock, found none left.
    const ran = [a, b].sort((x, y) => y.length - x.length);
    expect(ran[1]).toEqual([]);
    expect(stepNames(ran[0]!).filter((n) => n.startsWith("create"))).toEqual([
      "create deliveries_ready_kb_build",
      "create deliveries_record_kb_build",
      "create deliveries_status_id_kb_build",
      "create deliveries_done_id",
      "create deliveries_record_kb_build",
      "create events_unpruned",
    ]);
    const after = await indexesOf(url);
    expect(after.indexes).toEqual(freshIndexes);
    expect(after.invalid).toEqual([]);
  }, 120_000);

  test("a worker of an older version starting during a build (drizzle's migrator, waiting in pg_advisory_lock) starts; the build goes on", async () => {
    const url = await oldDatabase("older");
    const admin = client(adminUrl(url), 2);
    // A transaction open on deliveries holds the first build back, so the older worker comes while it waits.
    const blocker = await holdOpen(admin, `UPDATE deliveries SET note = note WHERE id = 1`);
    let failed: unknown = null;
    const upgrade = migratePostgres(client(url), embeddedMigrations).catch((e) => (failed = e));
    await waitFor(
      "a concurrent build under way",
      async () =>
        (await admin.unsafe(`SELECT 1 FROM pg_stat_activity WHERE query LIKE 'CREATE%INDEX CONCURRENTLY%' AND datname = 'older'`))
          .length === 1,
      30_000,
    );
    // The older version's start, as drizzle's migrator did it before 82f7194: a blocking pg_advisory_lock, then its
    // look at what is applied (nothing of its own left), then the unlock.
    const older = client(url, 1);
    let olderGot: number | null = null;
    let olderFailed: unknown = null;
    const olderStart = (async () => {
      await older`SELECT pg_advisory_lock(${MIGRATION_LOCK})`;
      await older.begin((tx) => tx.unsafe(`SELECT created_at FROM drizzle.__drizzle_migrations ORDER BY created_at DESC LIMIT 1`));
      olderGot = performance.now();
      await older`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`;
    })().catch((e) => (olderFailed = e));
    // Longer than deadlock_timeout (1 s) before the build goes on and waits for older snapshots.
    await Bun.sleep(1_500);
    await blocker.release();
    await Promise.all([upgrade, olderStart]);
    expect(String(olderFailed ?? "")).toBe("");
    expect(String(failed ?? "")).toBe("");
    expect(olderGot).not.toBeNull();
    const after = await indexesOf(url);
    expect(after.invalid).toEqual([]);
    expect(after.steps).toBe(0);
    expect(after.indexes).toEqual(freshIndexes);
  }, 120_000);

  // A version from before 82f7194 that knows migrations after 0013 applies them the way drizzle's migrator did: under
  // MIGRATION_LOCK, every pending one in one transaction, its plain SQL, a row each in drizzle's table, and the steps
  // table ignored (simulated here: that version's migrator is not in this tree).
  async function olderVersionMigrates(url: string, upTo: string) {
    const older = client(url, 1);
    await older`SELECT pg_advisory_lock(${MIGRATION_LOCK})`;
    try {
      const [last] = (await older.unsafe(`SELECT created_at FROM drizzle.__drizzle_migrations ORDER BY created_at DESC LIMIT 1`)) as {
        created_at: string;
      }[];
      const known = embeddedMigrations.slice(0, embeddedMigrations.findIndex((m) => m.tag.startsWith(upTo)) + 1);
      await older.begin(async (tx) => {
        for (const m of known.filter((m) => m.when > Number(last!.created_at))) {
          for (const sql of m.sql.split("--> statement-breakpoint")) if (sql.trim()) await tx.unsafe(sql);
          await tx.unsafe(`INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ($1, $2)`, [m.hash, m.when]);
        }
      });
    } finally {
      await older`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`;
    }
  }

  for (const at of ["create deliveries_ready_kb_build", "drop deliveries_record"])
    test(`0013's steps interrupted before '${at}', 0014-0015 applied by an older version, then this one: a fresh install's indexes (0015's deliveries_record)`, async () => {
      const url = await oldDatabase(`rollback_${at.split(" ")[1]}`);
      // This version applies 0013 and is stopped (killed, or the rollback's restart) before that step.
      const stopped = await migratePostgres(client(url), embeddedMigrations, {
        onStep: (s) => {
          if (stepNames([s])[0] === at) throw new Error("stopped");
        },
      }).catch((e) => e);
      expect(String(stopped)).toContain("stopped");
      const left = await indexesOf(url);
      expect(left.steps).toBeGreaterThan(0);
      // Rolled back: an older version applies 0014 and 0015, its 0015 dropping deliveries_record and building 0015's.
      await olderVersionMigrates(url, "0015_");
      // This version again: the left steps of 0013 on deliveries_record are not run, its building index is dropped.
      const steps: IndexStep[] = [];
      await migratePostgres(client(url), embeddedMigrations, { onStep: (s) => steps.push(s) });
      const after = await indexesOf(url);
      expect(after.indexes).toEqual(freshIndexes);
      expect(after.steps).toBe(0);
      expect(after.invalid).toEqual([]);
      expect(stepNames(steps)).not.toContain("drop deliveries_record");
      expect(stepNames(steps)).not.toContain("create deliveries_record_kb_build");
      // The index 0013 had built beside it, if any, is dropped.
      if (at === "drop deliveries_record") expect(stepNames(steps)[0]).toBe("drop deliveries_record_kb_build");
    }, 120_000);

  test("a build held up by a session left in a transaction says so every reportEveryMs, naming it; a worker waiting for the migration says so again too", async () => {
    const url = await oldDatabase("held");
    // An operator's psql left in a transaction on deliveries (as the role kontobro connects as, so its state is visible).
    const psql = new SQL({ url, max: 1, connection: { application_name: "psql" } });
    clients.push(psql);
    const blocker = await holdOpen(psql, `LOCK TABLE deliveries IN ROW EXCLUSIVE MODE`);
    const pid = blocker.pid;
    const slow: SlowStep[] = [];
    const waits: LockWait[] = [];
    // lock_timeout is the migrations' transactions' alone: the steps, outside them, wait as long as they need to.
    const migrating = migratePostgres(client(url), embeddedMigrations, {
      reportEveryMs: 300,
      onSlowStep: (r) => slow.push(r),
      lockTimeoutMs: 100,
    });
    await waitFor("a step told slow", () => slow.length > 0, 30_000);
    const waiting = migratePostgres(client(url), embeddedMigrations, { reportEveryMs: 300, pollMs: 20, onWait: (w) => waits.push(w) });
    await waitFor("two slow reports and two waits told", () => slow.length >= 3 && waits.length >= 2, 30_000);
    await blocker.release();
    await Promise.all([migrating, waiting]);

    const report = slow.at(-1)!;
    expect(report.step).toMatchObject({ op: "create", name: "deliveries_ready_kb_build" });
    expect(report.migration).toStartWith("0013_");
    expect(report.runningMs).toBeGreaterThan(slow[0]!.runningMs);
    expect(report.blockers).toEqual([
      expect.objectContaining({ pid, application: "psql", user: "kontobro", state: "idle in transaction" }),
    ]);
    expect(report.blockers[0]!.transactionMs).toBeGreaterThan(report.runningMs - 100);
    const { msg } = describeSlowStep(report);
    expect(msg).toContain(`building an index (CONCURRENTLY) deliveries_ready_kb_build (migration ${report.migration})`);
    expect(msg).toContain(`pid ${pid} (application_name psql, role kontobro, idle in transaction, its transaction open`);
    expect(msg).toContain("pg_terminate_backend");
    // The waiting one: told at once, then again while the other still held the lock, with what the other was doing.
    expect(waits[0]!.waitedMs).toBeLessThan(300);
    expect(waits[1]!.waitedMs).toBeGreaterThanOrEqual(300);
    expect(waits[1]!.holder?.query).toContain("INDEX CONCURRENTLY");
    const after = await indexesOf(url);
    expect(after.indexes).toEqual(freshIndexes);
    expect(after.steps).toBe(0);
  }, 120_000);

  test("a unique index whose build fails: the error names the index, its migration and the duplicate, and the next start builds it", async () => {
    const url = await server.createDatabase("duplicates");
    const last = embeddedMigrations.at(-1)!.when;
    const table: EmbeddedMigration = {
      tag: "9001_t",
      when: last + 1,
      breakpoints: true,
      hash: "t",
      sql: `CREATE TABLE "t" ("id" serial PRIMARY KEY, "k" text NOT NULL);`,
    };
    const unique: EmbeddedMigration = {
      tag: "9002_t_k",
      when: last + 2,
      breakpoints: true,
      hash: "t_k",
      sql: `ALTER TABLE "t" ADD COLUMN "z" integer;--> statement-breakpoint\nCREATE UNIQUE INDEX "t_k" ON "t" USING btree ("k");`,
    };
    await migratePostgres(client(url), [...embeddedMigrations, table]);
    const admin = client(adminUrl(url), 1);
    await admin.unsafe(`INSERT INTO t (k) VALUES ('a'), ('a'), ('b')`);
    const error = await openPostgres(url, { migrations: [...embeddedMigrations, table, unique], max: 2 }).then(
      (s) => s.close().then(() => null),
      (e) => e,
    );
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toContain('t_k for migration 9002_t_k failed: could not create unique index "t_k" (Key (k)=(a) is duplicated)');
    // Its migration's transaction was committed: the hint says so, not that nothing was done.
    expect(error.hint).toContain("Migration 9002_t_k is applied");
    expect(error.hint).toContain("Remove the duplicated rows");
    expect((await indexesOf(url)).steps).toBe(1);
    await admin.unsafe(`DELETE FROM t WHERE id = 2`);
    const storage = await openPostgres(url, { migrations: [...embeddedMigrations, table, unique], max: 2 });
    await storage.close();
    const after = await indexesOf(url);
    expect(after.steps).toBe(0);
    expect(after.invalid).toEqual([]);
    expect(after.indexes.find((i) => i.indexname === "t_k")?.indexdef).toContain("CREATE UNIQUE INDEX t_k");
  }, 120_000);

  test("a migration's ALTER TABLE behind a long transaction gives up after lock_timeout, naming it, and is tried again: intake does not queue behind it, and it lands once that transaction ends", async () => {
    const url = await server.createDatabase("lock_timeout");
    const addColumn: EmbeddedMigration = {
      tag: "9001_deliveries_z",
      when: embeddedMigrations.at(-1)!.when + 1,
      breakpoints: true,
      hash: "deliveries_z",
      sql: `ALTER TABLE "deliveries" ADD COLUMN "z" integer;--> statement-breakpoint\nCREATE TABLE "t" ("id" serial PRIMARY KEY);`,
    };
    // A worker of the version before it, taking a tenant's events.
    const storage = await openPostgres(url, { max: 4 });
    const admin = client(adminUrl(url), 2);
    const columns = async () =>
      (
        (await admin.unsafe(
          `SELECT column_name FROM information_schema.columns WHERE table_name = 'deliveries' AND column_name = 'z'`,
        )) as {
          column_name: string;
        }[]
      ).length;
    try {
      await new TenantStore(storage.client).add({ slug: "acme", config: { targets: [target] } }, {});
      const [tenant] = await new TenantStore(storage.client).list();
      const worker = await Worker.register(storage.client);
      const runtime = await startTenantRuntime(tenant!, storage.runner(tenant!.id), {
        config: AgentConfig.parse({}),
        workerId: worker.id,
        epoch: "e1",
        metrics: new Metrics(),
        log: silentLogger,
      });
      const accepted = async (...numbers: number[]) => {
        const started = performance.now();
        const stored = await Promise.race([runtime.intake.submit(customerEvents(...numbers)), Bun.sleep(10_000).then(() => null)]);
        return { statuses: stored?.map((r) => r.status) ?? "no answer in 10 s", ms: performance.now() - started };
      };
      try {
        expect((await accepted(9000)).statuses).toEqual(["accepted"]);
        // A report left open by an operator (the ACCESS SHARE lock of its read of deliveries, until it ends), as the role
        // kontobro connects as.
        const psql = new SQL({ url, max: 1, connection: { application_name: "psql" } });
        clients.push(psql);
        const blocker = await holdOpen(psql, `LOCK TABLE deliveries IN ACCESS SHARE MODE`);
        const timeouts: LockTimeout[] = [];
        const LOCK_TIMEOUT = 1_000;
        let failed: unknown = null;
        const upgrade = migratePostgres(client(url), [...embeddedMigrations, addColumn], {
          lockTimeoutMs: LOCK_TIMEOUT,
          retryPauseMs: 300,
          maxRetryPauseMs: 600,
          onLockTimeout: (t) => timeouts.push(t),
        }).catch((e) => (failed = e));
        try {
          await waitFor(
            "the ALTER TABLE waiting for its lock",
            async () =>
              (
                await admin.unsafe(
                  `SELECT 1 FROM pg_stat_activity WHERE query LIKE 'ALTER TABLE "deliveries"%' AND wait_event_type = 'Lock' AND datname = 'lock_timeout'`,
                )
              ).length === 1,
            30_000,
          );
          // Intake's insert into deliveries queues behind the waiting ALTER TABLE, for lock_timeout at most.
          const during = await accepted(9001, 9002);
          expect(during.statuses).toEqual(["accepted", "accepted"]);
          expect(during.ms).toBeLessThan(LOCK_TIMEOUT + 2_000);
          await waitFor("two lock timeouts told", () => timeouts.length >= 2, 30_000);
          // Each attempt was rolled back whole: neither the column nor the migration's table.
          expect(await columns()).toBe(0);
          expect(await admin.unsafe(`SELECT 1 FROM pg_class WHERE relname = 't'`)).toHaveLength(0);
        } finally {
          await blocker.release();
        }
        await upgrade;
        expect(String(failed ?? "")).toBe("");
        const first = timeouts[0]!;
        expect(first).toMatchObject({
          what: "migration 9001_deliveries_z",
          attempts: 1,
          lockTimeoutMs: LOCK_TIMEOUT,
          retryInMs: 300,
          lock: { relation: "deliveries", mode: "AccessExclusiveLock", locktype: "relation" },
        });
        expect(first.blockers).toEqual([
          expect.objectContaining({ pid: blocker.pid, application: "psql", user: "kontobro", state: "idle in transaction" }),
        ]);
        expect(timeouts[1]).toMatchObject({ attempts: 2, retryInMs: 600 });
        expect(describeLockTimeout(timeouts[1]!).msg).toContain("nothing of it applied; attempt 3 in 1 s");
        // The holder is named from a sample taken while the lock is waited for (every third of lock_timeout): the first
        // attempt's, asserted above to have seen it (a later attempt's sample can miss on a loaded machine: the full run).
        const { msg } = describeLockTimeout(first);
        expect(msg).toContain("migration 9001_deliveries_z could not take AccessExclusiveLock on deliveries within 1000 ms");
        expect(msg).toContain(`held by pid ${blocker.pid} (application_name psql, role kontobro, idle in transaction`);
        expect(msg).toContain("pg_terminate_backend");
        // Landed once the report ended; the worker of the version before goes on taking events.
        expect(await columns()).toBe(1);
        expect(await admin.unsafe(`SELECT 1 FROM pg_class WHERE relname = 't'`)).toHaveLength(1);
        expect((await accepted(9003)).statuses).toEqual(["accepted"]);
      } finally {
        await runtime.stop();
      }
    } finally {
      await storage.close();
    }
  }, 120_000);

  test("a migration that meets a worker's transaction in a deadlock (ended by PostgreSQL's check after deadlock_timeout, before lock_timeout) is rolled back and tried again, naming that session, and lands once it ends", async () => {
    const url = await server.createDatabase("deadlock");
    await migratePostgres(client(url), embeddedMigrations);
    const twoTables: EmbeddedMigration = {
      tag: "9002_two_tables",
      when: embeddedMigrations.at(-1)!.when + 1,
      breakpoints: true,
      hash: "two_tables",
      sql: `ALTER TABLE "events" ADD COLUMN "z" integer;--> statement-breakpoint\nALTER TABLE "deliveries" ADD COLUMN "z" integer;`,
    };
    // A running worker's transaction, as a round that reads deliveries, then the events they are for.
    const worker = await new SQL({ url, max: 1, connection: { application_name: "kontobro-old" } }).reserve();
    const admin = client(adminUrl(url), 1);
    try {
      await worker`BEGIN`;
      await worker`SELECT set_config('kontobro.tenant', '1', true)`;
      await worker`SELECT count(*) FROM deliveries`;
      const [{ pid }] = (await worker`SELECT pg_backend_pid() AS pid`) as { pid: number }[];
      const timeouts: LockTimeout[] = [];
      let failed: unknown = null;
      // lock_timeout at its default (3 s): the deadlock check (1 s) ends the migration's transaction first.
      const upgrade = migratePostgres(client(url), [...embeddedMigrations, twoTables], {
        retryPauseMs: 200,
        onLockTimeout: (t) => timeouts.push(t),
      }).catch((e) => (failed = e));
      // The migration holds events and waits for deliveries; the worker now waits for events: a cycle.
      await waitFor(
        "the ALTER TABLE on deliveries waiting for its lock",
        async () =>
          (
            await admin.unsafe(
              `SELECT 1 FROM pg_stat_activity WHERE query LIKE '%ALTER TABLE "deliveries"%' AND wait_event_type = 'Lock' AND datname = 'deadlock'`,
            )
          ).length === 1,
        30_000,
      );
      await worker`SELECT count(*) FROM events`;
      await waitFor("a deadlock told", () => timeouts.length >= 1 || failed !== null, 30_000);
      expect(String(failed ?? "")).toBe("");
      await worker`ROLLBACK`;
      await upgrade;
      expect(String(failed ?? "")).toBe("");
      expect(timeouts[0]).toMatchObject({
        what: "migration 9002_two_tables",
        reason: "deadlock",
        statements: 2,
        attempts: 1,
        retryInMs: 200,
        lock: { relation: "deliveries", mode: "AccessExclusiveLock", locktype: "relation" },
      });
      expect(timeouts[0]!.blockers).toEqual([expect.objectContaining({ pid, application: "kontobro-old", user: "kontobro" })]);
      const { msg } = describeLockTimeout(timeouts[0]!);
      // The session's state is read as the deadlock is told: "active" while its SELECT still waits for the lock the
      // migration gave up, "idle in transaction" once that SELECT got it (CI saw both).
      expect(msg).toMatch(
        new RegExp(
          `^migration 9002_two_tables met pid ${pid} \\(application_name kontobro-old, role kontobro, (idle in transaction|active), its transaction open`,
        ),
      );
      expect(msg).toContain("in a deadlock while waiting for AccessExclusiveLock on deliveries");
      expect(msg).toContain("nothing of it applied; attempt 2 in 0 s");
      const added = (await admin.unsafe(
        `SELECT table_name FROM information_schema.columns WHERE column_name = 'z' AND table_name IN ('events', 'deliveries') ORDER BY 1`,
      )) as { table_name: string }[];
      expect(added.map((r) => r.table_name)).toEqual(["deliveries", "events"]);
    } finally {
      worker.release();
    }
  }, 120_000);

  test("a SIGTERM during an attempt that then lands: the worker stops before the next migration, not after the whole upgrade", async () => {
    const url = await server.createDatabase("stop_after_attempt");
    await migratePostgres(client(url), embeddedMigrations);
    const when = embeddedMigrations.at(-1)!.when;
    const addColumn: EmbeddedMigration = {
      tag: "9003_add_column",
      when: when + 1,
      breakpoints: true,
      hash: "add_column",
      sql: `ALTER TABLE "events" ADD COLUMN "y" integer;`,
    };
    const newTable: EmbeddedMigration = {
      tag: "9004_new_table",
      when: when + 2,
      breakpoints: true,
      hash: "new_table",
      sql: `CREATE TABLE "later" ("a" integer);`,
    };
    const admin = client(adminUrl(url), 1);
    // A report left open on events: the first attempt of 9003 waits for it (lock_timeout long enough).
    const report = await client(url, 1).reserve();
    await report`BEGIN`;
    await report`LOCK TABLE events IN ACCESS SHARE MODE`;
    const stop = new AbortController();
    const upgrade = migratePostgres(client(url), [...embeddedMigrations, addColumn, newTable], {
      lockTimeoutMs: 30_000,
      signal: stop.signal,
    }).then(
      () => "migrated",
      (e) => e,
    );
    try {
      await waitFor(
        "9003's ALTER TABLE waiting for its lock",
        async () =>
          (
            await admin.unsafe(
              `SELECT 1 FROM pg_stat_activity WHERE query LIKE '%ALTER TABLE "events"%' AND wait_event_type = 'Lock' AND datname = 'stop_after_attempt'`,
            )
          ).length === 1,
        30_000,
      );
      stop.abort("SIGTERM");
    } finally {
      await report`ROLLBACK`;
      report.release();
    }
    const outcome = await upgrade;
    expect(outcome).toBeInstanceOf(MigrationStopped);
    expect((outcome as Error).message).toBe(
      "stopped during the upgrade (SIGTERM); nothing of migration 9004_new_table applied (the next start applies it)",
    );
    const tags = (await admin.unsafe(`SELECT hash FROM drizzle.__drizzle_migrations WHERE created_at > $1 ORDER BY created_at`, [
      when,
    ])) as {
      hash: string;
    }[];
    expect(tags.map((t) => t.hash)).toEqual(["add_column"]);
    const [{ later }] = (await admin.unsafe(`SELECT to_regclass('later') IS NOT NULL AS later`)) as { later: boolean }[];
    expect(later).toBe(false);
  }, 60_000);

  test("a SIGTERM during an attempt that then lands with an index step: the worker stops before the step, which the next start runs", async () => {
    const url = await server.createDatabase("stop_before_step");
    await migratePostgres(client(url), embeddedMigrations);
    await new TenantStore(client(url)).add({ slug: "acme", config: { targets: [target] } }, {});
    const admin = client(adminUrl(url), 1);
    await admin.unsafe(`INSERT INTO events (tenant_id, event_id, type, entity, key, payload, received_at)
      VALUES (1, 'e1', 'customer.upserted', 'customer', 'c1', '{}', 0)`);
    const withIndex: EmbeddedMigration = {
      tag: "9005_with_index",
      when: embeddedMigrations.at(-1)!.when + 1,
      breakpoints: true,
      hash: "with_index",
      sql: `ALTER TABLE "events" ADD COLUMN "y" integer;--> statement-breakpoint\nCREATE INDEX "events_y" ON "events" USING btree ("y");`,
    };
    const report = await client(url, 1).reserve();
    await report`BEGIN`;
    await report`LOCK TABLE events IN ACCESS SHARE MODE`;
    const stop = new AbortController();
    const steps: IndexStep[] = [];
    const upgrade = migratePostgres(client(url), [...embeddedMigrations, withIndex], {
      lockTimeoutMs: 30_000,
      signal: stop.signal,
      onStep: (step) => steps.push(step),
    }).then(
      () => "migrated",
      (e) => e,
    );
    try {
      await waitFor(
        "9005's ALTER TABLE waiting for its lock",
        async () =>
          (
            await admin.unsafe(
              `SELECT 1 FROM pg_stat_activity WHERE query LIKE '%ALTER TABLE "events"%' AND wait_event_type = 'Lock' AND datname = 'stop_before_step'`,
            )
          ).length === 1,
        30_000,
      );
      stop.abort("SIGTERM");
    } finally {
      await report`ROLLBACK`;
      report.release();
    }
    const outcome = await upgrade;
    expect(outcome).toBeInstanceOf(MigrationStopped);
    expect((outcome as Error).message).toBe(
      "stopped during the upgrade (SIGTERM); migration 9005_with_index is applied, building an index (CONCURRENTLY) events_y is left to the next start",
    );
    expect(steps).toEqual([]);
    expect((await indexesOf(url)).steps).toBe(1);
    // The next start builds it.
    await migratePostgres(client(url), [...embeddedMigrations, withIndex]);
    const after = await indexesOf(url);
    expect(after.steps).toBe(0);
    expect(after.indexes.map((i) => i.indexname)).toContain("events_y");
  }, 60_000);

  test("a process waiting for another's migration stops at once when its signal is aborted (SIGTERM), having migrated nothing", async () => {
    const url = await server.createDatabase("stop_waiting");
    await migratePostgres(client(url), embeddedMigrations.slice(0, -1));
    // Another process migrating: it holds the lock this one polls.
    const other = await client(url, 1).reserve();
    await other`SELECT pg_advisory_lock(${STEPS_LOCK})`;
    try {
      const stop = new AbortController();
      const waits: LockWait[] = [];
      const upgrade = migratePostgres(client(url), embeddedMigrations, {
        pollMs: 5_000,
        onWait: (w) => waits.push(w),
        signal: stop.signal,
      }).then(
        () => "migrated",
        (e) => e,
      );
      await waitFor("the wait told", () => waits.length === 1, 10_000);
      const aborted = performance.now();
      stop.abort("SIGTERM");
      const outcome = await upgrade;
      expect(performance.now() - aborted).toBeLessThan(1_000);
      expect(outcome).toBeInstanceOf(MigrationStopped);
      expect((outcome as Error).message).toBe("stopped (SIGTERM) while waiting for another kontobro process's migration");
      const [{ n }] = (await client(url, 1)`SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations`) as { n: number }[];
      expect(n).toBe(embeddedMigrations.length - 1);
    } finally {
      await other`SELECT pg_advisory_unlock(${STEPS_LOCK})`;
      other.release();
    }
  }, 60_000);
});
