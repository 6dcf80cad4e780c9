// A dispatcher round's transaction (the runner's transactionDurableLater, agent/db/wal-sync.ts): it commits at
// once with synchronous=NORMAL, its WAL is fsynced off the event loop, and `durable` resolves only after that
// fsync; every other transaction on the connection still commits with synchronous=FULL. A real SQLite file in
// WAL mode.
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { symlinkSync } from "node:fs";
import { join } from "node:path";
import { connect } from "../agent/db/index.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { tempDir } from "./helpers.ts";

/** The connection's setting now (a fresh statement: a cached one answers with the setting it was compiled under). */
const synchronous = (c: Database) => (c.prepare("PRAGMA synchronous").get() as { synchronous: number }).synchronous;
const FULL = 2;
const NORMAL = 1;

function fileDbAt(path: string): Database {
  const c = connect(path);
  c.exec("CREATE TABLE t (a INTEGER)");
  return c;
}

const fileDb = () => fileDbAt(join(tempDir(), "k.db"));

describe("a durable-later transaction (WalSync through the SQLite runner)", () => {
  test("commits at once without the fsync (NORMAL), is back at FULL after, and is durable once the WAL is synced", async () => {
    const c = fileDb();
    const runner = sqliteRunner(c);
    const { result, durable } = await runner.transactionDurableLater(async (tx) => {
      await tx.run("INSERT INTO t VALUES (1)");
      return synchronous(c);
    });
    expect(result).toBe(NORMAL);
    expect(synchronous(c)).toBe(FULL);
    // Committed: another connection sees it before the fsync has returned.
    const other = new Database(c.filename, { readonly: true });
    expect((other.query("SELECT count(*) AS n FROM t").get() as { n: number }).n).toBe(1);
    await durable;
    other.close();
    runner.close();
  });

  test("a transaction that fails writes nothing and leaves the connection at FULL", async () => {
    const c = fileDb();
    const runner = sqliteRunner(c);
    const failing = runner.transactionDurableLater(async (tx) => {
      await tx.run("INSERT INTO t VALUES (1)");
      throw new Error("busy");
    });
    await expect(failing).rejects.toThrow("busy");
    expect(synchronous(c)).toBe(FULL);
    expect((c.query("SELECT count(*) AS n FROM t").get() as { n: number }).n).toBe(0);
    runner.close();
  });

  test("a database opened by a symbolic link: the WAL synced is SQLite's, beside the file the link names", async () => {
    const real = join(tempDir(), "k.db");
    fileDbAt(real).close();
    const link = join(tempDir(), "k.db");
    symlinkSync(real, link);
    const runner = sqliteRunner(connect(link));
    const { durable } = await runner.transactionDurableLater((tx) => tx.run("INSERT INTO t VALUES (1)"));
    await durable;
    runner.close();
  });

  test("inside another transaction it is part of that one, and an in-memory database has no WAL to sync", async () => {
    const c = fileDb();
    const runner = sqliteRunner(c);
    const inner = await runner.transaction((tx) => tx.transactionDurableLater(async () => synchronous(c)));
    expect(inner.result).toBe(FULL);
    await inner.durable;
    const memory = new Database(":memory:");
    memory.exec("PRAGMA synchronous = FULL; CREATE TABLE t (a INTEGER)");
    const plain = await sqliteRunner(memory).transactionDurableLater(async (tx) => (await tx.run("INSERT INTO t VALUES (1)")).changes);
    expect(plain.result).toBe(1);
    await plain.durable;
    runner.close();
  });
});
