// The database holds the targets' OAuth refresh and access tokens and the PSA's invoices: no other user of the machine
// may read it, or a backup of it, whatever the umask (the usual 022 made them 0644: readable by everyone).
import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { backupDatabase } from "../agent/restore-sqlite.ts";
import { tempDir } from "./helpers.ts";

const modeOf = (path: string) => (statSync(path).mode & 0o777).toString(8);

/** Every file in `dir` whose name starts with `prefix`, with its mode. */
const modes = (dir: string, prefix: string) =>
  Object.fromEntries(
    readdirSync(dir)
      .filter((f) => f.startsWith(prefix))
      .map((f) => [f, modeOf(join(dir, f))]),
  );

const ownerOnly = { "kontobro.db": "600", "kontobro.db-wal": "600", "kontobro.db-shm": "600" };

/** Runs `f` under umask 022, the usual one, whatever the test runner's is. */
function underUsualUmask(f: () => void): void {
  const before = process.umask(0o022);
  try {
    f();
  } finally {
    process.umask(before);
  }
}

describe.skipIf(process.platform === "win32")("the database's file permissions", () => {
  test("a new database and its write-ahead log are readable by their owner only", () =>
    underUsualUmask(() => {
      const dir = join(tempDir(), "data");
      const db = openDatabase(join(dir, "kontobro.db"));
      expect(modes(dir, "kontobro.db")).toEqual(ownerOnly);
      db.$client.close();
    }));

  test("a database others can read (made before this version, or by hand) is made owner-only when opened", () =>
    underUsualUmask(() => {
      const dir = tempDir();
      const path = join(dir, "kontobro.db");
      openDatabase(path).$client.close();
      for (const file of Object.keys(modes(dir, "kontobro.db"))) chmodSync(join(dir, file), 0o644);
      const db = openDatabase(path);
      expect(modes(dir, "kontobro.db")).toEqual(ownerOnly);
      db.$client.close();
    }));

  test("kontobro backup writes a file readable by its owner only", () =>
    underUsualUmask(() => {
      const dir = tempDir();
      openDatabase(join(dir, "kontobro.db")).$client.close();
      backupDatabase(join(dir, "kontobro.db"), join(dir, "nightly.db"));
      expect(modeOf(join(dir, "nightly.db"))).toBe("600");
    }));
});

describe("kontobro backup that cannot be made", () => {
  // The database unreadable for the user running the backup (now that it is owner-only, a backup run as another
  // user), here a folder where the file should be: SQLite cannot open it.
  test("leaves no empty file behind to be taken for a backup, or to block the next one", () => {
    const dir = tempDir();
    const unreadable = join(dir, "kontobro.db");
    mkdirSync(unreadable);
    const file = join(dir, "nightly.db");
    expect(() => backupDatabase(unreadable, file)).toThrow(/cannot be read for a backup/);
    expect(existsSync(file)).toBe(false);
  });

  test("into a folder that does not exist: says which file cannot be created and what to check", () => {
    const dir = tempDir();
    openDatabase(join(dir, "kontobro.db")).$client.close();
    expect(() => backupDatabase(join(dir, "kontobro.db"), join(dir, "no-such-folder", "nightly.db"))).toThrow(
      /backup file .*nightly\.db cannot be created/,
    );
  });
});
