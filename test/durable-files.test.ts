// A file kontobro reports as written (a backup, a restored database) lasts through a power cut: its bytes and its folder's
// entry are fsynced before the command says done. No power cut in a test: strace shows the syscalls the real command
// makes, and each write into the folder must be followed by an fsync of the file and one of the folder.
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { tempDir } from "./helpers.ts";

const MAIN = join(import.meta.dir, "../agent/main.ts");
const hasStrace = Bun.spawnSync(["sh", "-c", "command -v strace && strace -qq -o /dev/null true"]).exitCode === 0;
const TRACED = "write,pwrite64,pwritev,writev,copy_file_range,sendfile,ftruncate,rename,renameat,renameat2,unlink,unlinkat,fsync,fdatasync";

/** Runs the CLI under strace; the syscalls that change files or sync them, one a line (-y: each fd with its path). */
async function traced(args: string[], cwd: string): Promise<{ code: number; out: string; calls: string[] }> {
  const log = join(cwd, "strace.log");
  const proc = Bun.spawn(["strace", "-f", "-y", "-qq", "-e", `trace=${TRACED}`, "-o", log, process.execPath, MAIN, ...args], {
    cwd,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, KONTOBRO_CONFIG: "" },
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`kontobro ${args[0]} failed: ${err}`);
  return { code, out, calls: readFileSync(log, "utf8").split("\n") };
}

const isSync = (line: string) => /\b(fsync|fdatasync)\(/.test(line);
/**
 * The last change of `file`'s bytes is followed by an fsync of it, and the last change naming it (its creation, a rename,
 * its -journal's removal) by an fsync of its folder `dir`.
 */
function syncedAfterLastChange(calls: string[], file: string, dir: string) {
  const last = (pred: (l: string) => boolean) => calls.findLastIndex(pred);
  const lastFileChange = last((l) => !isSync(l) && l.includes(`<${file}>`));
  const lastDirChange = last((l) => !isSync(l) && l.includes(file));
  return {
    fileChanged: lastFileChange >= 0,
    fileSynced: last((l) => isSync(l) && l.includes(`<${file}>`)) > lastFileChange,
    dirSynced: last((l) => isSync(l) && l.includes(`<${dir}>`)) > lastDirChange,
  };
}

function dataDirWithRows(dir: string): { data: string; config: string } {
  const data = join(dir, "data");
  const db = openDatabase(join(data, "kontobro.db"));
  db.$client.run(`INSERT INTO settings (name, value) VALUES ('installation_id', 'durable-files-test')`);
  db.$client.run("CREATE TABLE filler (n INTEGER, x TEXT)");
  for (let i = 0; i < 300; i++) db.$client.run("INSERT INTO filler VALUES (?1, ?2)", [i, "x".repeat(1000)]);
  db.$client.close();
  const config = join(dir, "kontobro.toml");
  writeFileSync(config, `[agent]\ndata_dir = "${data}"\n[http]\nport = 0\n`, { mode: 0o644 });
  return { data, config };
}

describe.skipIf(!hasStrace)("files reported written are fsynced, with their folder", () => {
  test("kontobro backup: the file and its folder are fsynced before 'backup written', and the file is complete", async () => {
    const dir = tempDir();
    const { config } = dataDirWithRows(dir);
    const backups = join(dir, "backups");
    mkdirSync(backups);
    const file = join(backups, "nightly.db");
    const r = await traced(["backup", file, "--config", config], dir);
    expect(r.out).toContain(`backup written to ${file}`);
    // Before: the marking's commit fsynced the file, but nothing synced the folder: the file's entry (and the removal of
    // its -journal) could be lost to a power cut after "backup written".
    expect(syncedAfterLastChange(r.calls, file, backups)).toEqual({ fileChanged: true, fileSynced: true, dirSynced: true });

    const copy = new Database(file, { readonly: true });
    try {
      expect((copy.query("PRAGMA integrity_check").get() as any).integrity_check).toBe("ok");
      expect((copy.query("SELECT count(*) AS n, sum(n) AS s FROM filler").get() as any) ?? null).toEqual({ n: 300, s: (299 * 300) / 2 });
      expect(copy.query("SELECT value FROM settings WHERE name = 'backup_of'").get()).toBeTruthy();
    } finally {
      copy.close();
    }
  });

  test("kontobro restore: the database put in place and the data directory are fsynced before it reports the restore", async () => {
    const dir = tempDir();
    const { data, config } = dataDirWithRows(dir);
    const file = join(dir, "nightly.db");
    await traced(["backup", file, "--config", config], dir);
    const r = await traced(["restore", file, "--config", config], dir);
    // Before: the copy of a backup (already marked, so SQLite writes nothing to it) was never fsynced, nor the folder
    // holding it and the renamed database: a power cut could leave a short kontobro.db, or the old one back.
    expect(syncedAfterLastChange(r.calls, join(data, "kontobro.db"), data)).toEqual({
      fileChanged: true,
      fileSynced: true,
      dirSynced: true,
    });
  });

  test("kontobro export template show --out: the file and its folder are fsynced before 'wrote'", async () => {
    const dir = tempDir();
    const { config } = dataDirWithRows(dir);
    const file = join(dir, "hours.json");
    const r = await traced(["export", "template", "show", "hours-per-employee", "--out", file, "--config", config], dir);
    expect(r.out).toContain(`wrote ${file}`);
    expect(syncedAfterLastChange(r.calls, file, dir)).toEqual({ fileChanged: true, fileSynced: true, dirSynced: true });
  });
});
