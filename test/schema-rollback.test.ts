// Rolling back: an older kontobro started on a database a newer one has migrated refuses, naming the version the
// database needs, and writes nothing (drizzle's migrator alone skips every migration it knows and runs on).
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase, StorageError } from "../agent/db/index.ts";
import { embeddedMigrations } from "../agent/db/migrations.generated.ts";
import { backupDatabase, restoreDatabase } from "../agent/restore-sqlite.ts";
import { VERSION } from "../agent/version.ts";
import { tempDir } from "./helpers.ts";

const MAIN = join(import.meta.dir, "../agent/main.ts");
const NEWEST = embeddedMigrations[embeddedMigrations.length - 1]!;

/** A database as a newer kontobro leaves it: one migration more (a column this binary does not know). */
function migratedByNewer(path: string, writer: { version: string; migration: string } | null): void {
  openDatabase(path).$client.close();
  const c = new Database(path);
  c.run("INSERT INTO settings (name, value) VALUES ('installation_id', 'newer-install')");
  c.run("ALTER TABLE deliveries ADD future_rule text");
  c.run("INSERT INTO __drizzle_migrations (hash, created_at) VALUES ('future', ?1)", [NEWEST.when + 86_400_000]);
  if (writer) c.run("UPDATE settings SET value = ?1 WHERE name = 'schema_written_by'", [JSON.stringify(writer)]);
  else c.run("DELETE FROM settings WHERE name = 'schema_written_by'");
  c.close();
}

function refusal(path: string): StorageError {
  try {
    openDatabase(path).$client.close();
  } catch (e) {
    if (e instanceof StorageError) return e;
    throw e;
  }
  throw new Error("expected the database to be refused");
}

const settingOf = (path: string, name: string) => {
  const c = new Database(path, { readonly: true });
  const row = c.query("SELECT value FROM settings WHERE name = ?1").get(name) as { value: string } | null;
  c.close();
  return row?.value ?? null;
};

describe("a database migrated by a newer kontobro", () => {
  test("a database names the kontobro that migrated it", () => {
    const path = join(tempDir(), "kontobro.db");
    openDatabase(path).$client.close();
    expect(JSON.parse(settingOf(path, "schema_written_by")!)).toEqual({ version: VERSION, migration: NEWEST.tag });
  });

  test("is refused with the version it needs, and left as it was", () => {
    const path = join(tempDir(), "kontobro.db");
    migratedByNewer(path, { version: "9.1.0", migration: "0099_future_rule" });
    const e = refusal(path);
    expect(e.message).toContain(`The database ${path} was upgraded by kontobro 9.1.0 (schema 0099_future_rule)`);
    expect(e.message).toContain(`this kontobro ${VERSION} knows the schema only up to ${NEWEST.tag}`);
    expect(e.hint).toContain("Install kontobro 9.1.0 or newer again");
    expect(e.hint).toContain("restore the backup taken before the upgrade");
    expect(JSON.parse(settingOf(path, "schema_written_by")!).version).toBe("9.1.0");
  });

  test("without a record of its writer, says how many migrations it does not know", () => {
    const path = join(tempDir(), "kontobro.db");
    migratedByNewer(path, null);
    const e = refusal(path);
    expect(e.message).toContain("was upgraded by a newer kontobro (1 migration(s) this one does not know");
    expect(settingOf(path, "schema_written_by")).toBeNull();
  });

  test("kontobro run stops at start with the message and the fix", async () => {
    const dir = tempDir();
    const data = join(dir, "data");
    migratedByNewer(join(data, "kontobro.db"), { version: "9.1.0", migration: "0099_future_rule" });
    const config = join(dir, "kontobro.toml");
    writeFileSync(config, `[agent]\ndata_dir = "${data}"\n[http]\nport = 0\n`, { mode: 0o600 });
    const proc = Bun.spawn([process.execPath, MAIN, "run", "--config", config], {
      cwd: dir,
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, KONTOBRO_CONFIG: "" },
    });
    const [err, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    expect(code).toBe(1);
    expect(err).toContain("was upgraded by kontobro 9.1.0");
    expect(err).toContain("Install kontobro 9.1.0 or newer again");
  });

  test("kontobro restore refuses a backup a newer kontobro made, keeping the database in place", () => {
    const dir = tempDir();
    const newer = join(dir, "newer.db");
    migratedByNewer(newer, { version: "9.1.0", migration: "0099_future_rule" });
    const backup = join(dir, "newer-backup.db");
    backupDatabase(newer, backup);
    const current = join(dir, "data", "kontobro.db");
    openDatabase(current).$client.close();
    expect(() => restoreDatabase(join(dir, "data"), current, backup)).toThrow("was upgraded by kontobro 9.1.0");
    expect(existsSync(current)).toBe(true);
    expect(JSON.parse(settingOf(current, "schema_written_by")!).version).toBe(VERSION);
  });
});
