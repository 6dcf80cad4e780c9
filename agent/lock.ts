// The agent's locks, both of the same kind: an OS-level exclusive lock on a small file in the data
// directory (SQLite's own exclusive lock), which the operating system drops if the holder dies, even by
// SIGKILL. Two uses:
//   - the instance lock, `<data dir>/kontobro.lock`: one agent per data directory (two agents never share
//     one outbox); held for the life of the process.
//   - job locks, `<data dir>/locks/pull-<target>-<stream>.lock`: one run of a pull job at a time across
//     processes (the agent, `kontobro pull`, a second CLI call).
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { describeOpenError, StorageError } from "./db/index.ts";

export interface Lock {
  release(): void;
}

type Taken = { ok: true; lock: Lock } | { ok: false; busy: boolean; error: unknown };

/**
 * Takes the exclusive lock on `path` without waiting (the file is created if needed; opening it throws).
 * When it cannot be taken, says whether another holder has it (busy) or something else went wrong.
 */
function takeLock(path: string): Taken {
  const db = new Database(path, { create: true });
  try {
    db.exec("PRAGMA busy_timeout = 0");
    db.exec("PRAGMA locking_mode = EXCLUSIVE");
    db.exec("BEGIN EXCLUSIVE");
  } catch (error) {
    db.close();
    return { ok: false, busy: /busy|locked/i.test(error instanceof Error ? error.message : String(error)), error };
  }
  let released = false;
  return {
    ok: true,
    lock: {
      release: () => {
        if (released) return;
        released = true;
        try {
          db.exec("ROLLBACK");
        } catch {}
        db.close();
      },
    },
  };
}

/** Holds `<data dir>/kontobro.lock` for the life of the process; throws StorageError when another agent has it. */
export function acquireInstanceLock(dataDir: string): Lock {
  const path = `${dataDir}/kontobro.lock`;
  let taken: Taken;
  try {
    mkdirSync(dataDir, { recursive: true });
    taken = takeLock(path);
  } catch (e) {
    throw describeOpenError(path, e);
  }
  if (taken.ok) return taken.lock;
  if (!taken.busy) throw describeOpenError(path, taken.error);
  throw new StorageError(
    `Another kontobro is already running with the data directory ${dataDir}.`,
    "Stop the other agent first, or give this one its own agent.data_dir.",
  );
}

export function jobLockPath(dataDir: string, target: string, stream: string): string {
  return join(dataDir, "locks", `pull-${target}-${stream}.lock`);
}

/** Takes a pull job's lock without waiting; null when another run (in any process) holds it. */
export function tryJobLock(dataDir: string, target: string, stream: string): Lock | null {
  mkdirSync(join(dataDir, "locks"), { recursive: true });
  const taken = takeLock(jobLockPath(dataDir, target, stream));
  return taken.ok ? taken.lock : null;
}
