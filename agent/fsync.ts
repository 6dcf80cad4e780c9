// A file kontobro reports as written must still be there, whole, after a power cut: its bytes fsynced, and the folder
// holding it too (its entry, a rename into it, a journal removed beside it), which fsync of the file does not cover.
// Used by the export output folder (agent/exports/deliver.ts), `kontobro backup` and `restore`, and the CLI's --out files.
import { closeSync, fsyncSync, openSync } from "node:fs";
import { dirname } from "node:path";

/**
 * fsync of `path` (a file, or a folder). A file system that cannot sync it (EINVAL: some network mounts, a folder on
 * some systems, /dev/null) is left as it is; any other failure throws.
 */
export function syncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } catch (e) {
    if ((e as { code?: string }).code !== "EINVAL") throw e;
  } finally {
    closeSync(fd);
  }
}

/** The file's bytes and its folder's entry for it are on the disk. */
export function syncWritten(path: string): void {
  syncPath(path);
  syncPath(dirname(path));
}
