// The client path for PostgreSQL (issue 17): drizzle-orm's bun-sql driver over Bun's built-in SQL client, on a
// real server (test/pg-server.ts). What many workers rely on: transactions that commit or roll back whole,
// claims with FOR UPDATE SKIP LOCKED that never hand a row to two workers, advisory locks (once per schedule,
// freed when a worker's connection dies), and LISTEN/NOTIFY to wake workers when work is committed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { and, asc, eq, inArray, lte, sql } from "drizzle-orm";
import { drizzle, type BunSQLDatabase } from "drizzle-orm/bun-sql";
import { bigint, integer, pgTable, text } from "drizzle-orm/pg-core";
import { waitFor } from "./helpers.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

const jobs = pgTable("jobs", {
  id: integer("id").primaryKey(),
  state: text("state", { enum: ["pending", "claimed", "done"] }).notNull(),
  owner: text("owner"),
  dueAt: bigint("due_at", { mode: "number" }).notNull(),
});

const unavailable = pgUnavailable();
if (unavailable) console.warn(`PostgreSQL client tests skipped: ${unavailable}`);

let server: PgServer;
let client: SQL;
let db: BunSQLDatabase;

beforeAll(async () => {
  if (unavailable) return;
  server = await startPgServer();
  client = new SQL({ url: server.url, max: 8 });
  db = drizzle({ client });
  await db.execute(sql`CREATE TABLE jobs (id integer PRIMARY KEY, state text NOT NULL, owner text, due_at bigint NOT NULL)`);
}, 120_000);
afterAll(async () => {
  await client?.close();
  await server?.stop();
});

const fill = async (n: number) => {
  await db.delete(jobs);
  await db
    .insert(jobs)
    .values(Array.from({ length: n }, (_, i) => ({ id: i + 1, state: "pending" as const, dueAt: 1_700_000_000_000 + i })));
};

describe.skipIf(!!unavailable)("drizzle-orm/bun-sql on PostgreSQL", () => {
  test("a transaction commits whole, or rolls back whole when its callback throws", async () => {
    await fill(3);
    await db.transaction(async (tx) => {
      await tx.update(jobs).set({ state: "done" }).where(eq(jobs.id, 1));
      await tx.update(jobs).set({ state: "done" }).where(eq(jobs.id, 2));
    });
    const failed = await db
      .transaction(async (tx) => {
        await tx.update(jobs).set({ state: "done" }).where(eq(jobs.id, 3));
        throw new Error("the push's outcome could not be written");
      })
      .catch((e: Error) => e.message);
    expect(failed).toBe("the push's outcome could not be written");
    expect(await db.select({ id: jobs.id, state: jobs.state, dueAt: jobs.dueAt }).from(jobs).orderBy(asc(jobs.id))).toEqual([
      { id: 1, state: "done", dueAt: 1_700_000_000_000 },
      { id: 2, state: "done", dueAt: 1_700_000_000_001 },
      { id: 3, state: "pending", dueAt: 1_700_000_000_002 },
    ]);
  });

  test("four workers claiming batches with FOR UPDATE SKIP LOCKED at once: every job claimed exactly once", async () => {
    await fill(400);
    const claimBatch = (worker: string) =>
      db.transaction(async (tx) => {
        const ready = await tx
          .select({ id: jobs.id })
          .from(jobs)
          .where(and(eq(jobs.state, "pending"), lte(jobs.dueAt, 1_800_000_000_000)))
          .orderBy(asc(jobs.dueAt))
          .limit(25)
          .for("update", { skipLocked: true });
        if (ready.length === 0) return 0;
        const ids = ready.map((r) => r.id);
        await tx
          .update(jobs)
          .set({ state: "claimed", owner: worker })
          .where(and(inArray(jobs.id, ids), eq(jobs.state, "pending")));
        return ids.length;
      });
    const worker = async (name: string) => {
      let total = 0;
      for (let n = await claimBatch(name); n > 0; n = await claimBatch(name)) total += n;
      return total;
    };
    const claimed = await Promise.all(["w1", "w2", "w3", "w4"].map(worker));
    // Counted from what each worker selected: a job handed to two workers would count twice.
    expect(claimed.reduce((a, b) => a + b, 0)).toBe(400);
    const byState = await db.execute(sql`SELECT state, count(*)::int AS n, count(DISTINCT owner)::int AS owners FROM jobs GROUP BY state`);
    expect([...byState]).toEqual([{ state: "claimed", n: 400, owners: expect.any(Number) }]);
    // The workers ran side by side: more than one of them got work.
    expect(claimed.filter((n) => n > 0).length).toBeGreaterThan(1);
  });

  test("a transaction-scoped advisory lock lets one of many workers run a schedule's slot; it ends with the transaction", async () => {
    const slotKey = (tenant: number, job: string) => sql`hashtextextended(${`${tenant}:${job}`}, 0)`;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let tookIt!: () => void;
    const taken = new Promise<void>((r) => (tookIt = r));
    const first = db.transaction(async (tx) => {
      const [row] = await tx.execute<{ got: boolean }>(sql`SELECT pg_try_advisory_xact_lock(${slotKey(7, "pull:expenses")}) AS got`);
      tookIt();
      await held;
      return row!.got;
    });
    await taken;
    const others = await Promise.all(
      [1, 2, 3].map(() =>
        db.transaction(
          async (tx) =>
            (await tx.execute<{ got: boolean }>(sql`SELECT pg_try_advisory_xact_lock(${slotKey(7, "pull:expenses")}) AS got`))[0]!.got,
        ),
      ),
    );
    // Another tenant's slot of the same job is a lock of its own.
    const otherTenant = await db.transaction(
      async (tx) =>
        (await tx.execute<{ got: boolean }>(sql`SELECT pg_try_advisory_xact_lock(${slotKey(8, "pull:expenses")}) AS got`))[0]!.got,
    );
    release();
    expect(await first).toBe(true);
    expect(others).toEqual([false, false, false]);
    expect(otherTenant).toBe(true);
    const after = await db.transaction(
      async (tx) =>
        (await tx.execute<{ got: boolean }>(sql`SELECT pg_try_advisory_xact_lock(${slotKey(7, "pull:expenses")}) AS got`))[0]!.got,
    );
    expect(after).toBe(true);
  });

  test("a session advisory lock held on a reserved connection is freed when that worker's connection dies", async () => {
    const worker = new SQL({ url: server.url, max: 1 });
    const conn = await worker.reserve();
    expect(await conn`SELECT pg_try_advisory_lock(42) AS got`).toEqual([{ got: true }]);
    expect(await client`SELECT pg_try_advisory_lock(42) AS got`.then((r) => [...r])).toEqual([{ got: false }]);
    const [{ pid }] = await conn`SELECT pg_backend_pid() AS pid`;
    // The worker is killed: its backend goes with its connection.
    expect(await client`SELECT pg_terminate_backend(${pid}) AS ended`.then((r) => [...r])).toEqual([{ ended: true }]);
    await waitFor("the lock to be free again", async () => {
      const [row] = await client`SELECT pg_try_advisory_lock(42) AS got`;
      if (row.got) await client`SELECT pg_advisory_unlock(42)`;
      return row.got;
    });
    await worker.close().catch(() => {});
  });

  test("LISTEN/NOTIFY wakes another connection when work is committed, and not for a rolled-back transaction", async () => {
    const listener = new SQL({ url: server.url, max: 1 });
    const heard: string[] = [];
    const subscription = await listener.listen("kontobro_work", (payload: string) => heard.push(payload));
    try {
      await db
        .transaction(async (tx) => {
          await tx.execute(sql`SELECT pg_notify('kontobro_work', 'tenant 7: rolled back')`);
          throw new Error("rolled back");
        })
        .catch(() => {});
      await db.transaction(async (tx) => {
        await tx.execute(sql`SELECT pg_notify('kontobro_work', 'tenant 7: ledger')`);
      });
      await waitFor("the notification", () => heard.length > 0);
      await client`SELECT pg_notify('kontobro_work', 'flush')`;
      await waitFor("the second notification", () => heard.includes("flush"));
      expect(heard).toEqual(["tenant 7: ledger", "flush"]);
    } finally {
      await subscription.unlisten();
      await listener.close();
    }
  });
});
