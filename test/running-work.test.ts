// Work under way seen from another process (agent/running-work.ts): files in <data dir>/progress, written at most
// once a second, read by the status page and `kontobro status`; work of a process that died shows as cut off.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase, type Db } from "../agent/db/index.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { runExport } from "../agent/exports/service.ts";
import { describeWork, listWork, progressDirOf, startWork, type WorkEntry } from "../agent/running-work.ts";
import { BASE, invoice, seed, settings } from "./exports-fixtures.ts";
import { tempDir } from "./helpers.ts";

function store(): { db: Db; dir: string } {
  const dir = tempDir("kontobro-running-work-");
  return { db: openDatabase(join(dir, "kontobro.db")), dir };
}

describe("running work", () => {
  test("written beside the database, at most once a second, and seen by another connection", () => {
    const { db, dir } = store();
    let now = 10_000;
    const heard: number[] = [];
    const work = startWork(
      db,
      { kind: "export", title: "SIE 4 export", unit: "invoices" },
      { now: () => now, listener: (e) => heard.push(e.done) },
    );
    expect(progressDirOf(db)).toBe(join(dir, "progress"));
    const other = openDatabase(join(dir, "kontobro.db"));
    const read = () => listWork(other, now).find((e) => e.id === work.entry.id)!;
    expect(read()).toMatchObject({ done: 0, total: null, title: "SIE 4 export" });

    now += 200;
    work.update(10, 1000, "mapping invoices");
    expect(read().done).toBe(0); // not a second yet
    now += 900;
    work.update(250, 1000, "writing the file");
    expect(read()).toMatchObject({ done: 250, total: 1000, stage: "writing the file" });
    now += 1000;
    work.update(500, 1000, "checking the file");
    expect(describeWork(read())).toBe("SIE 4 export: 500 of 1,000 invoices (50%), checking the file · 238/s · about 2 s left");
    expect(heard).toEqual([10, 250, 500]);

    now += 1000;
    work.update(1000, 1000, "done");
    work.finish("ok", "1 file(s)");
    expect(describeWork(read())).toBe("SIE 4 export: finished in 3 s, 1,000 invoices (1 file(s))");
    // Only the entry itself: the file beside it during a write is renamed over it.
    expect(readdirSync(join(dir, "progress"))).toEqual([`${work.entry.id}.json`]);
    // Shown ten minutes after it finished, then its file is removed.
    expect(listWork(other, now + 9 * 60_000)).toHaveLength(1);
    expect(listWork(other, now + 11 * 60_000)).toHaveLength(0);
    expect(readdirSync(join(dir, "progress"))).toEqual([]);
    db.$client.close();
    other.$client.close();
  });

  test("work of a process that is gone shows as cut off; unknown total and a failure say so", () => {
    const { db, dir } = store();
    const work = startWork(db, { kind: "pull", title: "books: expenses", unit: "items fetched" });
    work.update(120, null, "page 3");
    work.finish("failed", "The target answered 503.");
    const failed = listWork(db).find((e) => e.id === work.entry.id)!;
    expect(describeWork(failed)).toMatch(/^books: expenses: stopped after .+ at 120 items fetched: The target answered 503\.$/);

    // A child process that exits without finishing its work (as a killed `kontobro export` would).
    const dead = Bun.spawnSync([process.execPath, "-e", "console.log(process.pid)"]);
    const pid = Number(dead.stdout.toString().trim());
    const file = join(dir, "progress", "export-dead.json");
    const entry: WorkEntry = {
      id: "export-dead",
      kind: "export",
      title: "SIE 4 export",
      unit: "invoices",
      done: 40,
      total: 100,
      samples: [{ at: Date.now() - 1000, done: 40 }],
      startedAt: Date.now() - 2000,
      updatedAt: Date.now() - 1000,
      pid,
    };
    writeFileSync(file, JSON.stringify(entry));
    const cut = listWork(db).find((e) => e.id === "export-dead")!;
    expect(cut.finishedAt).toBe(entry.updatedAt);
    expect(describeWork(cut)).toContain("at 40 of 100 invoices (40%): cut off: the process stopped before it finished");
    // A half-written or foreign file is skipped, not fatal.
    writeFileSync(join(dir, "progress", "garbage.json"), "{");
    expect(listWork(db).map((e) => e.id)).toContain("export-dead");
    expect(JSON.parse(readFileSync(file, "utf8")).finishedAt).toBeUndefined();
    db.$client.close();
  });

  test("a display that fails (standard output closed) never stops the work: the export goes through", async () => {
    const { db } = store();
    await seed(sqliteRunner(db.$client), [...BASE(), invoice(501), invoice(502)]);
    let calls = 0;
    const r = await runExport(
      sqliteRunner(db.$client),
      settings(),
      { format: "sie4" },
      {
        by: "cli",
        progressIn: db,
        onProgress: () => {
          calls += 1;
          throw new Error("EPIPE: broken pipe, write");
        },
      },
    );
    expect(r.ok && r.invoices.exported).toEqual(["501", "502"]);
    expect(calls).toBeGreaterThan(2);
    expect(describeWork(listWork(db).at(-1)!)).toMatch(/^SIE 4 export: finished in .+, 2 invoices \(1 file\(s\)\)$/);
    db.$client.close();
  });

  test("an update within the second is written when the second is up: work that then waits shows what it waits for", async () => {
    const { db, dir } = store();
    const work = startWork(db, { kind: "export", title: "SIE 4 export", unit: "invoices" });
    work.update(0, null, "waiting for the database");
    const other = openDatabase(join(dir, "kontobro.db"));
    const read = () => listWork(other).find((e) => e.id === work.entry.id)!;
    expect(read().stage).toBeUndefined();
    await Bun.sleep(1_200);
    expect(read().stage).toBe("waiting for the database");
    work.finish("ok");
    db.$client.close();
    other.$client.close();
  });

  test("an in-memory database has no data directory: nothing is written, nothing fails", () => {
    const db = openDatabase(":memory:");
    const work = startWork(db, { kind: "export", title: "SIE 4 export", unit: "invoices" });
    work.update(1, 2);
    work.finish("ok");
    expect(listWork(db)).toEqual([]);
    db.$client.close();
  });
});
