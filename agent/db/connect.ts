// A connection to the agent's SQLite file with its settings (durability, cache), without drizzle or the migrations:
// the intake writer's thread (agent/intake-worker.ts) imports this alone, so its heap holds less that every full
// collection there marks again (issue 16).
import { Database } from "bun:sqlite";

export interface OpenOptions {
  /** Milliseconds a write waits for a lock before SQLITE_BUSY. */
  busyTimeoutMs?: number;
  /** Page cache in KB (default 8 MB). */
  cacheKb?: number;
}

/**
 * A connection with the agent's settings, to a database openDatabase has created and migrated (also the
 * intake worker's own connection, agent/intake-worker.ts). The settings are per connection.
 */
export function connect(path: string, options: OpenOptions = {}): Database {
  const sqlite = new Database(path, { create: true, strict: true });
  // Before anything reads the file: switching to WAL reads it, and a connection closing elsewhere holds it exclusively
  // for its last checkpoint (the agent's own during a restart, `kontobro status` beside a stopping agent). Without
  // the timeout set, that read failed at once with "database is locked" (an agent restarted in a test, on CI).
  sqlite.exec(`PRAGMA busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
  // Durability first: an acknowledged event must survive a power cut (synchronous=FULL in WAL mode).
  sqlite.exec("PRAGMA journal_mode = WAL");
  sqlite.exec("PRAGMA synchronous = FULL");
  sqlite.exec("PRAGMA foreign_keys = ON");
  // 8 MB of page cache (SQLite's default is 2 MB) holds the pages a claim and a round touch, even with a backlog
  // of a million (issue 16: a lease no longer rewrites an index page per delivery); the rest come from the OS's
  // file cache. 32 MB, as before, made the agent 25 MB larger after a large backlog and claimed no faster.
  sqlite.exec(`PRAGMA cache_size = ${options.cacheKb === undefined ? -8192 : -options.cacheKb}`);
  return sqlite;
}
