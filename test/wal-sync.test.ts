// A dispatcher round's transaction (the runner's transactionDurableLater, agent/db/wal-sync.ts): it commits at
// once with synchronous=NORMAL, its WAL is fsynced off the event loop, and `durable` resolves only after that
// fsync; every other transaction on the connection still commits with synchronous=FULL. A real SQLite file in
// WAL mode.
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { renameSync, rmSync, symlinkSync } from "node:fs";
import { execFileSync } from "node:child_process";
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

  test("after a failed fsync nothing more is made durable on the connection, not even once the WAL could be synced again", async () => {
    const c = fileDb(); // SQLite has its WAL open
    const wal = `${c.filename}-wal`;
    // The name now leads to a FIFO: the first sync opens it, and fsync fails (EINVAL), as a write-back error (EIO) would.
    renameSync(wal, `${wal}.real`);
    execFileSync("mkfifo", [wal]);
    const reopened = sqliteRunner(c);
    const failing = await reopened.transactionDurableLater((tx) => tx.run("INSERT INTO t VALUES (2)"));
    await expect(failing.durable).rejects.toThrow();
    rmSync(wal);
    renameSync(`${wal}.real`, wal);
    // The WAL can be synced again, but the failed commit's frames may not be on the disk and every later one is behind
    // them: it is refused before it begins (nothing of it written), and says what to do.
    let ran = false;
    await expect(
      reopened.transactionDurableLater(async (tx) => {
        ran = true;
        return tx.run("INSERT INTO t VALUES (3)");
      }),
    ).rejects.toThrow(/An earlier fsync of the database's WAL failed .*restart kontobro/);
    expect(ran).toBe(false);
    expect(c.query("SELECT count(*) AS n FROM t WHERE a = 3").get()).toEqual({ n: 0 });
    reopened.close();
  });
});
