// One run of a pull job at a time, across processes: the agent, `kontobro pull` and a second CLI call
// all take the same OS-level lock, which the operating system drops if the holder dies (even by SIGKILL).
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

export interface JobLock {
  release(): void;
}

export function jobLockPath(dataDir: string, target: string, stream: string): string {
  return join(dataDir, "locks", `pull-${target}-${stream}.lock`);
}

/** Takes the job's lock without waiting; null when another run (in any process) holds it. */
export function tryJobLock(dataDir: string, target: string, stream: string): JobLock | null {
  const path = jobLockPath(dataDir, target, stream);
  mkdirSync(join(dataDir, "locks"), { recursive: true });
  const lock = new Database(path, { create: true });
  try {
    lock.exec("PRAGMA busy_timeout = 0");
    lock.exec("PRAGMA locking_mode = EXCLUSIVE");
    lock.exec("BEGIN EXCLUSIVE");
  } catch {
    lock.close();
    return null;
  }
  let released = false;
  return {
    release: () => {
      if (released) return;
      released = true;
      try { lock.exec("ROLLBACK"); } catch {}
      lock.close();
    },
  };
}
