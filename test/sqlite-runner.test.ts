// The SQLite runner (agent/db/pg/runner.ts) keeps a transaction to itself: it starts on a fresh turn of the event
// loop and awaits only its own statements, so code that uses the connection directly (the status page, readers
// not on the runner yet) never runs while it is open; one that awaits anything else is rolled back with a clear
// message; SQL run on the runner itself inside its own transaction fails at once instead of waiting forever.
// A real SQLite file.
import { describe, expect, test } from "bun:test";
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
