// What the PSA is told when intake's transaction fails: the error SQLite gives (on the writer's thread, passed on as its
// message alone, agent/intake-thread.ts) decides the words and the Retry-After of the 503. The errors are made by real
// SQLite files, except the I/O error (a failing disk or fsync), whose message is SQLite's own.
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { closeSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { describeWriteError, IntakeUnavailable } from "../agent/intake.ts";
import { tempDir } from "./helpers.ts";

/** A database file with one table of 100 rows. */
function filled(): { path: string; db: Database } {
  const path = join(tempDir(), "kontobro.db");
  const db = new Database(path);
  db.run("CREATE TABLE t (x TEXT)");
  for (let i = 0; i < 100; i++) db.run("INSERT INTO t VALUES (?1)", ["y".repeat(1000)]);
  return { path, db };
}

function messageOf(write: () => void): string {
  try {
    write();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("the write did not fail");
}

function told(message: string): IntakeUnavailable {
  const e = describeWriteError(new Error(message));
  expect(e).toBeInstanceOf(IntakeUnavailable);
  return e as IntakeUnavailable;
}

describe("a failed intake write, in plain language", () => {
  test("a full disk is said to be one", () => {
    const { db } = filled();
    db.run(`PRAGMA max_page_count = ${(db.query("PRAGMA page_count").get() as { page_count: number }).page_count}`);
    const full = messageOf(() => db.run("INSERT INTO t VALUES (?1)", ["z".repeat(100_000)]));
    db.close();
    expect(told(full).message).toContain("The disk is full");
  });

  test("a read-only database is said to be one", () => {
    const { db } = filled();
    db.run("PRAGMA query_only = 1");
    const readOnly = messageOf(() => db.run("INSERT INTO t VALUES ('z')"));
    db.close();
    expect(told(readOnly).message).toContain("read-only");
  });

  test("a damaged database is said to be damaged, not a full disk", () => {
    const { path, db } = filled();
    db.close();
    const fd = openSync(path, "r+");
    writeSync(fd, Buffer.alloc(4096, 0xff), 0, 4096, 4096 * 2);
    closeSync(fd);
    const again = new Database(path);
    const damaged = messageOf(() => again.run("DELETE FROM t"));
    again.close();
    expect(damaged).toBe("database disk image is malformed");
    // Before: "The disk is full; … Free disk space", and the PSA sent again every 30 s into a database that cannot heal.
    const e = told(damaged);
    expect(e.message).not.toContain("full");
    expect(e.message).toContain("damaged");
    expect(e.message).toContain("kontobro restore");
  });

  test("an I/O error (a failing disk, a failed fsync) is not said to be a full disk", () => {
    const e = told("disk I/O error");
    expect(e.message).not.toContain("full");
    expect(e.message).toContain("could not be written");
  });
});
