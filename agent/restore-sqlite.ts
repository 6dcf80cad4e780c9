// Backups and restores of the SQLite data directory, and noticing a restore nobody told us about (what follows one,
// on either engine, is agent/restore.ts).
//
// Why it matters: after a restore the database has forgotten what it sent after the backup was taken.
// Without care, delivery ids (and so idempotency keys and create-guids) repeat for other content, and
// the PSA feed hands out item ids the PSA has already seen for other items. So:
// - every start gets a random epoch that is part of every idempotency key (keys never repeat, whatever
//   happens to the data directory, a VM snapshot included);
// - a restore is detected at start: the database is a copy made by `kontobro backup` (it carries a
//   backup marker), or it is older than the high-water marks this data directory wrote beside it
//   (kontobro.highwater.json: a start counter and the largest ids, refreshed every few seconds);
// - then every open delivery is treated as uncertain (looked up at the target before any create), and
//   the status page and log say so. The PSA feed needs no help: an item's id follows from what it is,
//   and its position grows with the clock (agent/pulls/inbox.ts), restored or not.
//
import { Database } from "bun:sqlite";
import { closeSync, copyFileSync, existsSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Db } from "./db/index.ts";
import { newerSchemaProblem, StorageError } from "./db/index.ts";
import { syncWritten } from "./fsync.ts";
import { OPEN_DELIVERIES_UNCERTAIN, PUT_RESTORE_SETTING, RESTORE_SETTING_SQL, restoreInfo, type RestoreInfo } from "./restore.ts";

export const HIGHWATER_FILE = "kontobro.highwater.json";

/** The largest ids and the start counter: what a restored database would be behind on. */
export interface Marks {
  installationId: string;
  generation: number;
  maxEventSeq: number;
  maxDeliveryId: number;
  maxInboxId: number;
  maxInboxSeq: number;
}

const setting = (db: Database, name: string): string | null =>
  (db.query("SELECT value FROM settings WHERE name = ?1").get(name) as { value: string } | null)?.value ?? null;
const putSetting = (db: Database, name: string, value: string) =>
  db.run("INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value", [name, value]);
const maxOf = (db: Database, sql: string) => (db.query(sql).get() as { n: number | null }).n ?? 0;

export function readMarks(db: Database): Marks {
  return {
    installationId: setting(db, "installation_id") ?? "",
    generation: Number(setting(db, "generation") ?? 0),
    maxEventSeq: maxOf(db, "SELECT max(seq) AS n FROM events"),
    maxDeliveryId: maxOf(db, "SELECT max(id) AS n FROM deliveries"),
    maxInboxId: maxOf(db, "SELECT max(id) AS n FROM inbox"),
    maxInboxSeq: maxOf(db, "SELECT max(seq) AS n FROM inbox"),
  };
}

function readHighwater(dataDir: string): Marks | null {
  const path = join(dataDir, HIGHWATER_FILE);
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as Marks;
  } catch {
    return null; // a torn write: we learn nothing from it, and write a fresh one at once
  }
}

/** Writes the marks beside the database (write-then-rename, so a reader never sees half a file). */
export function writeHighwater(dataDir: string, marks: Marks): void {
  const path = join(dataDir, HIGHWATER_FILE);
  writeFileSync(`${path}.tmp`, JSON.stringify(marks));
  renameSync(`${path}.tmp`, path);
}

/** Why this database looks restored, or null. Pure: the database's marks against the file's. */
export function restoreReason(db: Marks & { backupOf: { takenAt?: string } | null }, file: Marks | null): string | null {
  if (db.backupOf) return `the database is a backup${db.backupOf.takenAt ? ` taken at ${db.backupOf.takenAt}` : ""}`;
  if (!file) return null;
  if (file.installationId && db.installationId && file.installationId !== db.installationId) {
    return "the database belongs to another installation than the one that last ran in this data directory";
  }
  const behind = (["generation", "maxEventSeq", "maxDeliveryId", "maxInboxId", "maxInboxSeq"] as const).filter(
    (k) => db[k] < (file[k] ?? 0),
  );
  if (behind.length > 0)
    return `the database is older than this data directory's last known state (${behind.map((k) => `${k} ${db[k]} < ${file[k]}`).join(", ")})`;
  return null;
}

export interface StartState {
  /** Random per start: part of every idempotency key, so a key is never sent twice for other content. */
  epoch: string;
  generation: number;
  restore: RestoreInfo | null;
}

/**
 * Run once at start, while holding the instance lock: counts the start, detects a restore and applies
 * the restore rules in one transaction, and writes fresh high-water marks.
 */
export function beginRun(db: Db, dataDir: string, now = new Date()): StartState {
  const c = db.$client;
  const file = readHighwater(dataDir);
  const restore = c
    .transaction(() => {
      const marks = readMarks(c);
      const backupOf = setting(c, "backup_of");
      const parsedBackup = backupOf ? (JSON.parse(backupOf) as { takenAt?: string }) : null;
      const reason = restoreReason({ ...marks, backupOf: parsedBackup }, file);
      const generation = Math.max(marks.generation, file?.generation ?? 0) + 1;
      putSetting(c, "generation", String(generation));
      if (!reason) return null;
      const openDeliveries = c.run(OPEN_DELIVERIES_UNCERTAIN, [now.getTime()]).changes;
      const info = restoreInfo(now, reason, openDeliveries, {
        ...(parsedBackup?.takenAt ? { backupTakenAt: parsedBackup.takenAt } : {}),
        ...(file ? { lostEvents: Math.max(0, (file.maxEventSeq ?? 0) - marks.maxEventSeq) } : {}),
      });
      c.run(PUT_RESTORE_SETTING, [JSON.stringify(info)]);
      c.run(`DELETE FROM settings WHERE name = 'backup_of'`);
      return info;
    })
    .immediate();
  const generation = Number(setting(c, "generation"));
  writeHighwater(dataDir, { ...readMarks(c), generation });
  return { epoch: randomEpoch(), generation, restore };
}

function randomEpoch(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(6))).toString("base64url");
}

/** The last restore this database noticed (for the status page), or null. */
export function lastRestore(db: Db): RestoreInfo | null {
  const v = (db.$client.query(RESTORE_SETTING_SQL).get() as { value: string } | null)?.value;
  return v ? (JSON.parse(v) as RestoreInfo) : null;
}

/** The database read only, for a backup; one this user cannot read is said plainly. */
function openForBackup(dbPath: string): Database {
  try {
    return new Database(dbPath, { readonly: true });
  } catch (e) {
    throw new StorageError(
      `The database ${dbPath} cannot be read for a backup (${(e as Error).message}).`,
      "Run kontobro backup as the user that runs kontobro: the database is readable by its owner only (it holds the targets' tokens).",
    );
  }
}

/**
 * `kontobro backup FILE`: a consistent copy while the agent runs (VACUUM INTO reads one snapshot, WAL
 * included), marked as a backup so that running on it later is noticed as a restore.
 */
export function backupDatabase(dbPath: string, file: string, now = new Date()): { bytes: number } {
  if (!existsSync(dbPath))
    throw new StorageError(`There is no database at ${dbPath}.`, "Check agent.data_dir in kontobro.toml (or --config).");
  if (existsSync(file))
    throw new StorageError(
      `${file} already exists; a backup never overwrites a file.`,
      "Choose a new file name, e.g. with the date in it.",
    );
  // Opened before the copy is made: a database this user cannot read leaves no empty file behind.
  const src = openForBackup(dbPath);
  try {
    // The copy holds the targets' OAuth tokens: made empty and owner-only first (VACUUM INTO fills an empty file).
    if (process.platform !== "win32") closeSync(openSync(file, "wx", 0o600));
  } catch (e) {
    src.close(); // a file made meanwhile by someone else (wx) is theirs: left alone
    throw new StorageError(
      `The backup file ${file} cannot be created (${(e as Error).message}).`,
      "Choose a file name that does not exist yet, in a folder that exists and that the user running kontobro backup may write to.",
    );
  }
  try {
    try {
      src.exec("PRAGMA busy_timeout = 10000");
      src.run("VACUUM INTO ?1", [file]);
    } finally {
      src.close();
    }
    const copy = new Database(file);
    try {
      const installationId = setting(copy, "installation_id");
      putSetting(
        copy,
        "backup_of",
        JSON.stringify({ installationId, generation: Number(setting(copy, "generation") ?? 0), takenAt: now.toISOString() }),
      );
    } finally {
      copy.close();
    }
    // Reported done only once it lasts: a power cut right after must not leave a short or missing file (SQLite's own
    // syncs do not cover the folder's entry for it).
    syncWritten(file);
  } catch (e) {
    // Nothing half-made is left to be taken for a backup, or to block the next one. SQLite's own words ("database or disk
    // is full", "disk I/O error") read as if kontobro's database were full: the message names the backup file.
    for (const f of [file, `${file}-journal`, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
    throw new StorageError(
      `The backup could not be written to ${file} (${(e as Error).message}); nothing was kept.`,
      "Free disk space where the backup goes (a full disk is the usual cause) or choose another folder, then run kontobro backup again.",
    );
  }
  return { bytes: Bun.file(file).size };
}

/**
 * `kontobro restore FILE`: puts a backup in place of the database. The caller holds the instance lock
 * (no agent runs). The current database is kept beside it, never deleted. The next start applies the
 * restore rules (the file carries the backup marker; a plain copy gets one here).
 */
export function restoreDatabase(_dataDir: string, dbPath: string, file: string, now = new Date()): { keptAs: string | null } {
  if (!existsSync(file))
    throw new StorageError(`${file} does not exist.`, "Give the path of a file made by `kontobro backup` (or a copy of kontobro.db).");
  let candidate: Database;
  try {
    candidate = new Database(file, { readonly: true });
  } catch (e) {
    throw new StorageError(
      `${file} cannot be opened as a database: ${(e as Error).message}`,
      "Give the path of a file made by `kontobro backup`.",
    );
  }
  try {
    const check = candidate.query("PRAGMA quick_check").get() as { quick_check: string };
    if (check.quick_check !== "ok") throw new StorageError(`${file} is damaged (${check.quick_check}).`, "Use an older backup.");
    const hasSettings = candidate.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'settings'").get();
    if (!hasSettings || !setting(candidate, "installation_id"))
      throw new StorageError(`${file} is not a kontobro database.`, "Give the path of a file made by `kontobro backup`.");
    const newer = newerSchemaProblem(candidate, file);
    if (newer) throw newer;
  } catch (e) {
    candidate.close();
    throw e instanceof StorageError
      ? e
      : new StorageError(
          `${file} is not a readable database: ${(e as Error).message}`,
          "Give the path of a file made by `kontobro backup`.",
        );
  }
  candidate.close();
  let keptAs: string | null = null;
  if (existsSync(dbPath)) {
    keptAs = `${dbPath}.replaced-${now.toISOString().replace(/[:.]/g, "-")}`;
    for (const suffix of ["", "-wal", "-shm"]) if (existsSync(dbPath + suffix)) renameSync(dbPath + suffix, keptAs + suffix);
  }
  copyFileSync(file, dbPath);
  const restored = new Database(dbPath);
  try {
    if (!setting(restored, "backup_of"))
      putSetting(restored, "backup_of", JSON.stringify({ installationId: setting(restored, "installation_id"), restoredFrom: file }));
  } finally {
    restored.close();
  }
  // The copy's bytes (a backup already marked is not written to above, so SQLite syncs nothing) and the folder's renames.
  syncWritten(dbPath);
  return { keptAs };
}
