// Writing export files to the output folder happens with no transaction open (agent/exports/deliver.ts): while a file
// write is held (a slow or hung network mount), intake still stores events on the same SQLite database; a second
// deliverer leaves the files to the one holding the claim, which writes those exported meanwhile too; and a claim whose
// lease ran out is taken over, the same file then written twice with the same bytes, harmlessly.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { deliverOnStart, deliverPending } from "../agent/exports/deliver.ts";
import { silentLogger } from "../agent/log.ts";
import { runExport } from "../agent/exports/service.ts";
import { listFiles } from "../agent/exports/store.ts";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { tempDir } from "./helpers.ts";
import { BASE, count, invoice, seed, settings, testDb } from "./exports-fixtures.ts";

/** An export committed whose file was not written yet (the process stopped between the two), as after a crash. */
async function committedNotWritten(runner: SqlRunner, n: number, out: string): Promise<void> {
  await seed(runner, [invoice(n)]);
  const crash = () => {
    throw new Error("stopped before the file was written");
  };
  await expect(
    runExport(runner, settings({ output_dir: out }), { format: "sie4" }, { by: "cli", faults: { beforeDelivery: crash } }),
  ).rejects.toThrow("stopped before the file was written");
}

/** A write held at the deliver hook until `release()`; `reached` resolves once a write is held there. */
function heldWrite() {
  let release!: () => void;
  let reachedNow!: (f: { id: number; fileName: string }) => void;
  const open = new Promise<void>((r) => (release = r));
  const reached = new Promise<{ id: number; fileName: string }>((r) => (reachedNow = r));
  const hook = async (f: { id: number; fileName: string }) => {
    reachedNow(f);
    await open;
  };
  return { hook, reached, release };
}

const undelivered = (runner: SqlRunner) => count(runner, `SELECT count(*) AS n FROM export_files WHERE delivered_at IS NULL`);
const written = (out: string) => (existsSync(out) ? readdirSync(out).sort() : []);

describe("export files are written to the output folder outside the database's write transaction", () => {
  test("while a file write is held, intake stores events; the file lands and is marked once the write goes on", async () => {
    const { runner } = testDb();
    const out = join(tempDir("kontobro-out-"), "exports");
    await seed(runner, BASE());
    await committedNotWritten(runner, 1001, out);
    const hold = heldWrite();
    const delivering = deliverPending(runner, out, { beforeWrite: hold.hook });
    const file = await hold.reached;
    // Intake's transaction on the same database commits while the write is held (before: it waited for the delivery's).
    await seed(runner, [invoice(1002)]);
    expect(await count(runner, `SELECT count(*) AS n FROM records WHERE entity = 'invoice' AND key = '1002'`)).toBe(1);
    expect(written(out)).toEqual([]);
    expect(await undelivered(runner)).toBe(1);
    hold.release();
    const r = await delivering;
    expect(r.problems).toEqual([]);
    expect(r.delivered).toEqual([join(out, file.fileName)]);
    expect(written(out)).toEqual([file.fileName]);
    expect(await undelivered(runner)).toBe(0);
  });

  test("a second deliverer leaves the files to the one holding the claim, which writes those exported meanwhile too", async () => {
    const { runner } = testDb();
    const out = join(tempDir("kontobro-out-"), "exports");
    await seed(runner, BASE());
    await committedNotWritten(runner, 1001, out);
    const hold = heldWrite();
    const first = deliverPending(runner, out, { beforeWrite: hold.hook });
    await hold.reached;
    // Another export commits while the first deliverer writes; its own delivery finds the claim held and writes nothing.
    await committedNotWritten(runner, 1002, out);
    const second = await deliverPending(runner, out, { beforeWrite: () => Promise.reject(new Error("must not write")) });
    expect(second).toEqual({ delivered: [], problems: [] });
    expect(await undelivered(runner)).toBe(2);
    hold.release();
    const r = await first;
    const names = (await listFiles(runner)).map((f) => f.fileName).sort();
    expect(r.delivered.map((p) => p.slice(out.length + 1)).sort()).toEqual(names);
    expect(written(out)).toEqual(names);
    expect(await undelivered(runner)).toBe(0);
  });

  test("a claim whose lease ran out (its deliverer hung or died) is taken over; the hung one going on finds the same bytes there and counts its file written", async () => {
    const { runner } = testDb();
    const out = join(tempDir("kontobro-out-"), "exports");
    await seed(runner, BASE());
    await committedNotWritten(runner, 1001, out);
    let clock = 1_000_000;
    const hung = heldWrite();
    const stale = deliverPending(runner, out, { now: () => clock, leaseMs: 60_000, beforeWrite: hung.hook });
    const file = await hung.reached;
    // Within the lease nobody else writes; past it, the next deliverer does.
    expect((await deliverPending(runner, out, { now: () => clock + 59_000 })).delivered).toEqual([]);
    expect(written(out)).toEqual([]);
    clock += 61_000;
    const taken = await deliverPending(runner, out, { now: () => clock });
    expect(taken.delivered).toEqual([join(out, file.fileName)]);
    const bytes = readFileSync(join(out, file.fileName));
    expect(await undelivered(runner)).toBe(0);
    // The hung deliverer goes on: the file is there with its bytes, so it counts as written; no temporary file is left.
    hung.release();
    expect(await stale).toEqual({ delivered: [join(out, file.fileName)], problems: [] });
    expect(readFileSync(join(out, file.fileName))).toEqual(bytes);
    expect(written(out)).toEqual([file.fileName]);
  });

  test("a write cut short (a file size limit or a full disk takes only part of it) leaves no file in the folder", () => {
    const out = tempDir("kontobro-out-");
    const path = join(out, "SIE4I_1.SI");
    // The shell ignores SIGXFSZ, so a write past the limit fails with EFBIG; the limit is 2 blocks of 512 bytes.
    const child = Bun.spawnSync([
      "sh",
      "-c",
      `trap '' XFSZ; ulimit -f 2; exec "$0" "$@"`,
      process.execPath,
      join(import.meta.dir, "export-write-child.ts"),
      path,
      "8000",
    ]);
    const outcome = JSON.parse(child.stdout.toString());
    // Before: write() took 1024 of the 8000 bytes, the short count was not looked at, and the cut file was renamed into place.
    expect(outcome.ok).toBe(false);
    expect(existsSync(path) ? statSync(path).size : "no file").toBe("no file");
    expect(written(out)).toEqual([]);
  });

  test("at start, temporary files a writer killed mid-write left are removed; a fresh one (a live writer's) and others' files are not", async () => {
    const { runner } = testDb();
    const out = tempDir("kontobro-out-");
    const old = "SIE4I_5566778899_20260320100000_1.SI.0a1b2c3d.part";
    for (const name of [old, "SIE4I_5566778899_20260320100000_2.SI.0a1b2c3e.part", "notes.part"])
      writeFileSync(join(out, name), "#FLAGGA 0");
    const hourAgo = new Date(Date.now() - 60 * 60_000);
    utimesSync(join(out, old), hourAgo, hourAgo);
    utimesSync(join(out, "notes.part"), hourAgo, hourAgo);
    await deliverOnStart(runner, { outputDir: out }, silentLogger);
    // Before: the half-written file stayed in the folder for good, where an importer taking every file reads it.
    expect(written(out)).toEqual(["SIE4I_5566778899_20260320100000_2.SI.0a1b2c3e.part", "notes.part"]);
  });
});
