// `kontobro backup FILE` and `kontobro restore FILE` (see agent/restore.ts for the rules).
import { StorageError } from "../db/index.ts";
import { acquireInstanceLock } from "../lock.ts";
import { backupDatabase, restoreDatabase } from "../restore.ts";

export const BACKUP_USAGE = `usage: kontobro backup FILE    a consistent copy of the database, safe while the agent runs
       kontobro restore FILE   put a backup in place (the agent must be stopped; the current database is kept)`;

export function backupCommand(dataDir: string, dbPath: string, positional: string[]): number {
  const file = positional[0];
  if (!file || positional.length > 1) { console.error(BACKUP_USAGE); return 2; }
  const { bytes } = backupDatabase(dbPath, file);
  console.log(`backup written to ${file} (${bytes} bytes) from ${dbPath}`);
  console.log(`restore it with: kontobro restore ${file} (with the agent stopped)`);
  return 0;
}

export function restoreCommand(dataDir: string, dbPath: string, positional: string[]): number {
  const file = positional[0];
  if (!file || positional.length > 1) { console.error(BACKUP_USAGE); return 2; }
  let lock: { release(): void };
  try {
    lock = acquireInstanceLock(dataDir);
  } catch (e) {
    if (e instanceof StorageError && /already running/.test(e.message)) {
      throw new StorageError(`An agent is running with the data directory ${dataDir}; nothing was restored.`, "Stop it first (e.g. `systemctl stop kontobro`), then run `kontobro restore` again, then start it.");
    }
    throw e;
  }
  try {
    const { keptAs } = restoreDatabase(dataDir, dbPath, file);
    console.log(`restored ${file} to ${dbPath}${keptAs ? `; the database it replaced is kept as ${keptAs}` : ""}`);
    console.log("At the next start kontobro treats every open delivery as uncertain (it looks each one up at the target before creating anything),");
    console.log("and the PSA feed continues with new ids. Events the PSA sent after the backup was taken are not in it: have the PSA send again what changed since then.");
    return 0;
  } finally {
    lock.release();
  }
}
