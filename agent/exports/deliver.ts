// Writes stored export files to exports.output_dir, where an accounting system or a person picks them up.
// The database is the truth: a file is written only after its export has committed, and a file whose
// export committed but was not yet written (a crash in between) is written at the next start.
// Each file appears atomically (temporary name, fsync, rename), so an importer never reads half a file.
// On PostgreSQL any worker may deliver a tenant's files: the files waiting are locked (FOR UPDATE) in the transaction
// that writes them and marks them written, so two workers never write one file at once. The folder is the worker's:
// a folder every worker shares (a network mount) is needed for all files to land in one place (README, hosted mode).
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { SqlRunner } from "../db/pg/runner.ts";
import { problem, type Problem } from "../problem.ts";

function writeAtomically(path: string, bytes: Uint8Array): void {
  const temp = `${path}.part`;
  const fd = openSync(temp, "w");
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

const PENDING = `SELECT id, file_name AS fileName, bytes FROM export_files WHERE delivered_at IS NULL ORDER BY id`;
/** PostgreSQL: the files waiting, locked until the transaction ends (another worker delivering them waits, then finds none). */
const LOCK_PENDING = `SELECT id FROM export_files WHERE delivered_at IS NULL ORDER BY id FOR UPDATE`;
const MARK_DELIVERED = `UPDATE export_files SET delivered_at = ?2 WHERE id = ?1`;

/**
 * Writes every file still waiting for the output folder (delivered_at IS NULL). Files made while no folder
 * was configured are marked 0 and never written later: an importer must not see old exports again.
 * One transaction: the writes are synchronous, so on SQLite it awaits nothing but its own statements.
 */
export function deliverPending(db: SqlRunner, dir: string, now = Date.now()): Promise<{ delivered: string[]; problems: Problem[] }> {
  return db.transaction(async (tx) => {
    await tx.lockForUpdate(LOCK_PENDING);
    const pending = await tx.all<{ id: number; fileName: string; bytes: Uint8Array }>(PENDING);
    const delivered: string[] = [];
    const problems: Problem[] = [];
    if (pending.length === 0) return { delivered, problems };
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      return {
        delivered,
        problems: [
          problem(
            "exports.output_dir_unwritable",
            `The export folder ${dir} cannot be created: ${(e as Error).message}.`,
            "Fix exports.output_dir or its permissions; the files are kept in kontobro and are written there at the next export or start.",
            "exports.output_dir",
          ),
        ],
      };
    }
    for (const f of pending) {
      const path = join(dir, f.fileName);
      const bytes = new Uint8Array(f.bytes);
      try {
        if (existsSync(path)) {
          // Written before a crash, or someone else's file: never overwrite a different one.
          if (!sameBytes(new Uint8Array(readFileSync(path)), bytes)) {
            problems.push(
              problem(
                "exports.output_file_exists",
                `A different file named ${f.fileName} is already in ${dir}; export file ${f.id} was not written there.`,
                `Move the other file away; kontobro writes file ${f.id} at the next export or start. It can also be downloaded again.`,
                "exports.output_dir",
              ),
            );
            continue;
          }
        } else writeAtomically(path, bytes);
        await tx.run(MARK_DELIVERED, f.id, now);
        delivered.push(path);
      } catch (e) {
        problems.push(
          problem(
            "exports.output_dir_unwritable",
            `Export file ${f.id} (${f.fileName}) could not be written to ${dir}: ${(e as Error).message}.`,
            "Fix exports.output_dir or its permissions; the file is kept in kontobro and written there at the next export or start.",
            "exports.output_dir",
          ),
        );
      }
    }
    return { delivered, problems };
  });
}

/** At start: files whose export committed just before a crash are written now. Problems are logged, not fatal. */
export async function deliverOnStart(
  db: SqlRunner,
  settings: { outputDir?: string },
  log: { info(m: string, f?: Record<string, unknown>): void; warn(m: string, f?: Record<string, unknown>): void },
): Promise<void> {
  if (!settings.outputDir) return;
  const r = await deliverPending(db, settings.outputDir);
  if (r.delivered.length > 0) log.info("export files written to the output folder", { files: r.delivered });
  for (const p of r.problems) log.warn(p.message, { hint: p.hint });
}
