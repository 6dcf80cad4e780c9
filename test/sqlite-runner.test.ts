// The SQLite runner (agent/db/pg/runner.ts) keeps a transaction to itself: it starts on a fresh turn of the event
// loop and awaits only its own statements, so code that uses the connection directly (the status page, readers
// not on the runner yet) never runs while it is open; one that awaits anything else is rolled back with a clear
// message; SQL run on the runner itself inside its own transaction fails at once instead of waiting forever.
// A real SQLite file.
import { describe, expect, test } from "bun:test";
import { renameSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { connect } from "../agent/db/index.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { tempDir } from "./helpers.ts";

function fileDb() {
  const c = connect(join(tempDir(), "k.db"));
  c.exec("CREATE TABLE t (a INTEGER)");
  return { c, runner: sqliteRunner(c) };
}
const count = (c: ReturnType<typeof connect>) => (c.query("SELECT count(*) AS n FROM t").get() as { n: number }).n;

describe("the SQLite runner's transactions", () => {
  test("code using the connection directly, in other async work under way, never sees a transaction open", async () => {
    const { c, runner } = fileDb();
    const seen: boolean[] = [];
    /** Other work of the agent: it awaits (microtasks) and reads the connection directly in between. */
    const readsAlongside = async (first: Promise<unknown>) => {
      await first;
      for (let i = 0; i < 500; i++) {
        await null;
        seen.push(c.inTransaction);
      }
    };
    const writes = (from: number) =>
      runner.transaction(async (tx) => {
        for (let i = from; i < from + 50; i++) await tx.run("INSERT INTO t VALUES (?1)", i);
      });
    // Work already under way when a transaction is asked for, and work whose statement ends just before the
    // next caller's transaction takes the connection.
    await Promise.all([readsAlongside(Promise.resolve()), writes(0), readsAlongside(runner.get("SELECT 1")), writes(50)]);
    expect(seen).toHaveLength(1000);
    expect(seen.filter(Boolean)).toEqual([]);
    expect(count(c)).toBe(100);
    runner.close();
  });

  test("a transaction that awaits something other than its statements is rolled back and says why", async () => {
    const { c, runner } = fileDb();
    const waiting = runner.transaction(async (tx) => {
      await tx.run("INSERT INTO t VALUES (1)");
      await Bun.sleep(5);
      await tx.run("INSERT INTO t VALUES (2)");
    });
    await expect(waiting).rejects.toThrow("awaited something other than its own statements");
    expect(c.inTransaction).toBe(false);
    expect(count(c)).toBe(0);
    // The connection is free again.
    await runner.run("INSERT INTO t VALUES (3)");
    expect(count(c)).toBe(1);
    runner.close();
  });

  test("SQL on the runner itself inside its transaction fails at once (it would wait for the transaction forever)", async () => {
    const { c, runner } = fileDb();
    const wrong = runner.transaction(async (tx) => {
      await tx.run("INSERT INTO t VALUES (1)");
      await runner.run("INSERT INTO t VALUES (2)");
    });
    await expect(wrong).rejects.toThrow("use the transaction's runner (tx)");
    expect(count(c)).toBe(0);
    runner.close();
  });

  test("that mistake is a rejected promise, not a throw, so a caller's .catch sees it", async () => {
    const { c, runner } = fileDb();
    let inner: Promise<unknown> | undefined;
    const wrong = runner.transaction(async (tx) => {
      await tx.run("INSERT INTO t VALUES (1)");
      inner = runner.run("INSERT INTO t VALUES (2)").catch((e: Error) => `caught: ${e.message}`);
    });
    await wrong;
    expect(await inner).toContain("caught: SQL run on the runner itself");
    expect(count(c)).toBe(1);
    runner.close();
  });

  // Other code (a timer callback) set going while a transaction is open must never find it open, and what it writes
  // directly must stay written. A transaction that awaits a timer is rolled back before any timer it set runs, and
  // its later statements fail; one that awaits work done off the thread (a file read, a digest) is rolled back the
  // same way, unless that work is back before the event loop's next timer: then nothing else ran, and it commits.
  const otherWork: Record<string, { wait: () => Promise<unknown>; rolledBack: boolean }> = {
    "a timer": { wait: () => Bun.sleep(5), rolledBack: true },
    "a timer of 0 ms": { wait: () => new Promise((resolve) => setTimeout(resolve, 0)), rolledBack: true },
    "a file read": { wait: () => readFile("/etc/hostname"), rolledBack: false },
    "a digest": { wait: () => crypto.subtle.digest("SHA-256", new Uint8Array(10)), rolledBack: false },
  };
  for (const [name, { wait, rolledBack }] of Object.entries(otherWork)) {
    test(`awaiting ${name}: other code never runs inside the transaction, and its direct write stays`, async () => {
      const { c, runner } = fileDb();
      const others: boolean[] = [];
      const wrong = runner.transaction(async (tx) => {
        await tx.run("INSERT INTO t VALUES (1)");
        // Other code on the same connection, set going while the transaction is open.
        setTimeout(() => {
          others.push(c.inTransaction);
          c.run("INSERT INTO t VALUES (99)");
        }, 0);
        await wait();
        await tx.run("INSERT INTO t VALUES (2)");
      });
      const error = await wrong.then(
        () => null,
        (e: Error) => e.message,
      );
      await Bun.sleep(20);
      expect(others).toEqual([false]);
      const rows = c.query("SELECT a FROM t ORDER BY a").all();
      if (rolledBack || error !== null) {
        expect(error).toContain("awaited something other than its own statements");
        expect(rows).toEqual([{ a: 99 }]);
      } else expect(rows).toEqual([{ a: 1 }, { a: 2 }, { a: 99 }]);
      runner.close();
    });
  }

  test("a transaction's runner fails once the transaction has ended", async () => {
    const { c, runner } = fileDb();
    let leaked: Parameters<Parameters<typeof runner.transaction>[0]>[0] | undefined;
    await runner.transaction(async (tx) => {
      leaked = tx;
      await tx.run("INSERT INTO t VALUES (1)");
    });
    await expect(leaked!.run("INSERT INTO t VALUES (2)")).rejects.toThrow("This transaction has ended");
    expect(count(c)).toBe(1);
    runner.close();
  });

  test("a durable transaction resolves once committed even if its WAL cannot be synced: only `durable` rejects", async () => {
    const dir = tempDir();
    const c = connect(join(dir, "k.db"));
    c.exec("CREATE TABLE t (a INTEGER)");
    const runner = sqliteRunner(c);
    // SQLite keeps its own descriptor; opening the WAL by name for the fsync fails (ENOENT, like EMFILE).
    renameSync(join(dir, "k.db-wal"), join(dir, "moved-wal"));
    const committed = await runner.transactionDurableLater(async (tx) => (await tx.run("INSERT INTO t VALUES (1)")).changes);
    expect(committed.result).toBe(1);
    await expect(committed.durable).rejects.toThrow("ENOENT");
    expect(count(c)).toBe(1);
    // The connection is at synchronous=FULL again and free.
    expect((c.prepare("PRAGMA synchronous").get() as { synchronous: number }).synchronous).toBe(2);
    await runner.run("INSERT INTO t VALUES (2)");
    expect(count(c)).toBe(2);
    renameSync(join(dir, "moved-wal"), join(dir, "k.db-wal"));
    runner.close();
  });

  test("one runner per connection, so every module's transactions wait for each other", async () => {
    const { c, runner } = fileDb();
    expect(sqliteRunner(c)).toBe(runner);
    const order: string[] = [];
    const a = runner.transaction(async (tx) => {
      order.push("a begins");
      await tx.run("INSERT INTO t VALUES (1)");
      order.push("a ends");
    });
    const b = sqliteRunner(c).transaction(async (tx) => {
      order.push("b begins");
      await tx.run("INSERT INTO t VALUES (2)");
      order.push("b ends");
    });
    await Promise.all([a, b]);
    expect(order).toEqual(["a begins", "a ends", "b begins", "b ends"]);
    runner.close();
  });
});
