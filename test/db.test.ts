import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, StorageError } from "../agent/db/index.ts";
import { acquireInstanceLock } from "../agent/lock.ts";
import { renderEmbeddedMigrations } from "../scripts/embed-migrations.ts";

const tmp = () => mkdtempSync(join(tmpdir(), "kontobro-db-"));

describe("database", () => {
  test("a fresh file is migrated, durable and WAL", () => {
    const db = openDatabase(join(tmp(), "k.db"));
    const c = db.$client;
    expect((c.query("PRAGMA journal_mode").get() as any).journal_mode).toBe("wal");
    expect((c.query("PRAGMA synchronous").get() as any).synchronous).toBe(2); // FULL
    expect((c.query("PRAGMA foreign_keys").get() as any).foreign_keys).toBe(1);
    const tables = (c.query("SELECT name FROM sqlite_master WHERE type='table'").all() as any[]).map((r) => r.name);
    expect(tables).toEqual(expect.arrayContaining(["events", "records", "deliveries", "links", "settings", "__drizzle_migrations"]));
    c.close();
  });

  test("migrating twice is a no-op", () => {
    const path = join(tmp(), "k.db");
    openDatabase(path).$client.close();
    const db = openDatabase(path);
    expect((db.$client.query("SELECT count(*) AS n FROM __drizzle_migrations").get() as any).n).toBe(embeddedMigrations());
    db.$client.close();
  });

  test("an open waits for a lock held elsewhere (a connection's last checkpoint) instead of failing at once", async () => {
    const path = join(tmp(), "k.db");
    // Another process holds the file exclusively for a moment, as the last connection closing does while it checkpoints.
    const holder = Bun.spawn(
      [
        process.execPath,
        "-e",
        `const { Database } = require("bun:sqlite"); const db = new Database(${JSON.stringify(path)});
         db.exec("PRAGMA journal_mode = WAL"); db.exec("PRAGMA locking_mode = EXCLUSIVE");
         db.exec("CREATE TABLE held (x)"); db.exec("INSERT INTO held VALUES (1)");
         console.log("held"); setTimeout(() => db.close(), 300);`,
      ],
      { stdout: "pipe" },
    );
    const { value } = await holder.stdout.getReader().read();
    expect(new TextDecoder().decode(value).trim()).toBe("held");
    const db = openDatabase(path); // before: StorageError "locked by another program", at once
    expect((db.$client.query("SELECT count(*) AS n FROM held").get() as any).n).toBe(1);
    db.$client.close();
    expect(await holder.exited).toBe(0);
  });

  test("the embedded migrations match the drizzle-kit folder", () => {
    const generated = readFileSync(join(import.meta.dir, "../agent/db/migrations.generated.ts"), "utf8");
    expect(generated).toBe(renderEmbeddedMigrations(join(import.meta.dir, "../agent/db/migrations")));
  });

  test("a corrupt file is refused with a clear message", () => {
    const path = join(tmp(), "k.db");
    writeFileSync(path, "this is not sqlite at all, just some text that is long enough to be a header".repeat(100));
    try {
      openDatabase(path);
      throw new Error("should have failed");
    } catch (e) {
      expect(e).toBeInstanceOf(StorageError);
      expect((e as StorageError).message).toContain("damaged");
      expect((e as StorageError).hint).toContain("backup");
    }
  });

  test("a second agent on the same data directory is refused", () => {
    const dir = tmp();
    const first = acquireInstanceLock(dir);
    expect(() => acquireInstanceLock(dir)).toThrow(/already running/);
    first.release();
    acquireInstanceLock(dir).release();
  });
});

function embeddedMigrations(): number {
  const journal = JSON.parse(readFileSync(join(import.meta.dir, "../agent/db/migrations/meta/_journal.json"), "utf8"));
  return journal.entries.length;
}
