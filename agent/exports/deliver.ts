// Writes stored export files to exports.output_dir, where an accounting system or a person picks them up.
// The database is the truth: a file is written only after its export has committed, and a file whose
// export committed but was not yet written (a crash in between) is written at the next start.
// Each file appears atomically (a temporary name of its own, fsync, rename, fsync of the folder), so an importer never
// reads half a file and a file marked delivered survives a power cut.
// No transaction is open while files are written: a slow or hung folder (a network mount) must not hold the database
// (on SQLite the write lock, which intake needs; on PostgreSQL idle_in_transaction_session_timeout). One deliverer of a
// tenant at a time (store.claimPendingFiles): a short transaction claims the delivery for a lease and reads the files
// waiting, they are written, and a second short transaction marks them written and gives the claim back. A deliverer that
// finds the claim held leaves its files to the holder, which claims again after each round until none wait. One that
// dies mid-write leaves its claim to run out; the next one writes the same files again: same path, same bytes, each
// writer through its own temporary name, so writing one twice is harmless. On PostgreSQL any worker may deliver a
// tenant's files; the folder is the worker's: a folder every worker shares (a network mount) is needed for all files
// to land in one place (README, hosted mode).
import { randomUUID } from "node:crypto";
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import type { SqlRunner } from "../db/pg/runner.ts";
import { syncPath } from "../fsync.ts";
import { problem, type Problem } from "../problem.ts";
import { claimPendingFiles, markFilesDelivered, type PendingFile } from "./store.ts";

/** How long a claim to write a tenant's files holds before another deliverer may take it over. */
export const DELIVERY_LEASE_MS = 5 * 60_000;

/** write() may take only part of the bytes (a full disk, a file size limit): write the rest until all are in, or fail. */
function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; ) {
    const n = writeSync(fd, bytes, done, bytes.length - done);
    if (n <= 0) throw new Error(`only ${done} of ${bytes.length} bytes could be written`);
    done += n;
  }
}

/** Writes `path` whole or not at all; a failed write leaves neither the file nor its temporary file. */
export function writeAtomically(path: string, bytes: Uint8Array): void {
  // A temporary name per writer: a second writer of the same file (a lease run out) never truncates the first's.
  const temp = `${path}.${randomUUID().slice(0, 8)}.part`;
  const fd = openSync(temp, "w");
  try {
    try {
      writeAll(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (e) {
    rmSync(temp, { force: true });
    throw e;
  }
  // The rename lasts through a power cut only once the folder's entry is on disk: without this a file marked delivered
  // could be gone after one. Failing, the write fails, and the file, still waiting, is written again (same path, same bytes).
  syncPath(dirname(path));
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

export interface DeliverOptions {
  /** The clock of the claim's lease and of delivered_at (the database's on a hosted worker, when given). */
  now?: () => number;
  leaseMs?: number;
  /** Called before each file is written, with no transaction open (tests hold a write here). */
  beforeWrite?: (file: { id: number; fileName: string }) => Promise<void>;
}

/**
 * Writes every file still waiting for the output folder (delivered_at IS NULL). Files made while no folder
 * was configured are marked 0 and never written later: an importer must not see old exports again.
 */
export async function deliverPending(
  db: SqlRunner,
  dir: string,
  options: DeliverOptions = {},
): Promise<{ delivered: string[]; problems: Problem[] }> {
  const now = options.now ?? Date.now;
  const claimant = randomUUID();
  const delivered: string[] = [];
  const problems: Problem[] = [];
  const tried = new Set<number>();
  for (;;) {
    const until = now() + (options.leaseMs ?? DELIVERY_LEASE_MS);
    const claimed = await claimPendingFiles(db, claimant, now(), until);
    // Another deliverer holds the claim: it claims again after its round and then finds these files too.
    if (!("files" in claimed)) return { delivered, problems };
    const files = claimed.files.filter((f) => !tried.has(f.id));
    const written: number[] = [];
    try {
      for (const f of files) {
        tried.add(f.id);
        await options.beforeWrite?.(f);
        const outcome = writeFile(dir, f);
        if (outcome.ok) {
          written.push(f.id);
          delivered.push(outcome.path);
        } else problems.push(outcome.problem);
        if (!outcome.ok && outcome.problem.code === "exports.output_dir_unwritable" && outcome.folder) break;
      }
    } finally {
      await markFilesDelivered(db, claimant, until, written, now());
    }
    if (files.length === 0 || problems.some((p) => p.code === "exports.output_dir_unwritable")) return { delivered, problems };
  }
}

type WriteOutcome = { ok: true; path: string } | { ok: false; problem: Problem; folder?: boolean };

/** Writes one file unless a file of that name is there already: the same bytes count as written, different ones are kept. */
function writeFile(dir: string, f: PendingFile): WriteOutcome {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    return {
      ok: false,
      folder: true,
      problem: problem(
        "exports.output_dir_unwritable",
        `The export folder ${dir} cannot be created: ${(e as Error).message}.`,
        "Fix exports.output_dir or its permissions; the files are kept in kontobro and are written there at the next export or start.",
        "exports.output_dir",
      ),
    };
  }
  const path = join(dir, f.fileName);
  try {
    if (existsSync(path)) {
      // Written before a crash, by a deliverer whose lease ran out, or someone else's file: never overwrite a different one.
      if (!sameBytes(new Uint8Array(readFileSync(path)), f.bytes))
        return {
          ok: false,
          problem: problem(
            "exports.output_file_exists",
            `A different file named ${f.fileName} is already in ${dir}; export file ${f.id} was not written there.`,
            `Move the other file away; kontobro writes file ${f.id} at the next export or start. It can also be downloaded again.`,
            "exports.output_dir",
          ),
        };
    } else writeAtomically(path, f.bytes);
    return { ok: true, path };
  } catch (e) {
    return {
      ok: false,
      problem: problem(
        "exports.output_dir_unwritable",
        `Export file ${f.id} (${f.fileName}) could not be written to ${dir}: ${(e as Error).message}.`,
        "Fix exports.output_dir or its permissions, or free space on its disk; the file is kept in kontobro and written there at the next export or start.",
        "exports.output_dir",
      ),
    };
  }
}

/** Our temporary files (writeAtomically) the lease is long over for: left by a writer killed mid-write. */
const TEMPORARY_FILE = /\.[0-9a-f]{8}\.part$/;

/**
 * Removes the temporary files a writer killed mid-write left in `dir` (an importer that takes every file would read
 * them: half a file). Only those older than a delivery lease: a live writer (another worker on a shared folder) may
 * be writing a newer one. Returns their names; a folder or file that cannot be read or removed is left alone.
 */
export function removeLeftTemporaryFiles(dir: string, now: number): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((name) => {
    if (!TEMPORARY_FILE.test(name)) return false;
    try {
      const path = join(dir, name);
      if (now - statSync(path).mtimeMs < DELIVERY_LEASE_MS) return false;
      rmSync(path);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * At start: files whose export committed just before a crash are written now. Problems are logged, not fatal. `now`:
 * the clock of the claim's lease (a hosted worker's Worker.now, the database's clock; Date.now when absent).
 */
export async function deliverOnStart(
  db: SqlRunner,
  settings: { outputDir?: string },
  log: { info(m: string, f?: Record<string, unknown>): void; warn(m: string, f?: Record<string, unknown>): void },
  now?: () => number,
): Promise<void> {
  if (!settings.outputDir) return;
  const removed = removeLeftTemporaryFiles(settings.outputDir, (now ?? Date.now)());
  if (removed.length > 0) log.info("half-written export files removed from the output folder", { files: removed });
  const r = await deliverPending(db, settings.outputDir, now ? { now } : {});
  if (r.delivered.length > 0) log.info("export files written to the output folder", { files: r.delivered });
  for (const p of r.problems) log.warn(p.message, { hint: p.hint });
}
