// Long work reported to the database (agent/running-work-sql.ts, table running_work), on both engines: a tracker on one
// worker's runner is seen by another's with its progress, written at most once a second, then how it ended; finished
// work goes from the listing after SHOW_FINISHED_MS and from the table at the next work's start; work whose worker is
// gone shows as cut off. On PostgreSQL the reports land while a transaction of the same runner stays open (an
// export's), each in a statement of its own, and another tenant lists none of them.
import { describe, expect, test } from "bun:test";
import { SHOW_FINISHED_MS } from "../agent/progress.ts";
import { liveWorkerIds, shownEntry, sqlWorkBoard } from "../agent/running-work-sql.ts";
import { describeWork, startWork, type WorkEntry } from "../agent/running-work.ts";
import { workerEngines } from "./engines.ts";
import { waitFor } from "./helpers.ts";

const { engines, open } = workerEngines("running work in the database");

const rows = async (runner: Parameters<typeof sqlWorkBoard>[0]) =>
  Number((await runner.get<{ n: number }>(`SELECT count(*) AS n FROM running_work`))!.n);

describe.each(engines)("on %s", (engine) => {
  test("a pull on one worker is seen by another, its reports at most once a second, then how it ended; then it goes", async () => {
    const storage = await open(engine);
    const other = await storage.worker();
    const live = engine === "postgres" ? liveWorkerIds : undefined;
    let now = 1_000_000;
    const board = sqlWorkBoard(storage.storage, { worker: storage.workerOf(storage.storage), ...(live ? { liveWorkers: live } : {}) });
    const reader = sqlWorkBoard(other, { worker: null, ...(live ? { liveWorkers: live } : {}) });
    const heard: number[] = [];
    const work = startWork(
      board,
      { kind: "pull", title: "books: expenses", unit: "items fetched" },
      { now: () => now, listener: (e) => heard.push(e.done) },
    );
    const seen = async () =>
      (await waitFor("the report", async () => (await reader.list(now)).find((e) => e.id === work.entry.id) ?? null))!;
    expect(await seen()).toMatchObject({ kind: "pull", title: "books: expenses", done: 0 });
    now += 400;
    work.update(20, null, "page 1");
    // Within the second: the listener hears it, the database is not written.
    expect(heard.at(-1)).toBe(20);
    await Bun.sleep(50);
    expect((await seen()).done).toBe(0);
    now += 700;
    work.update(50, null, "page 2");
    await waitFor("page 2 stored", async () => (await seen()).done === 50);
    expect(describeWork(await seen())).toMatch(/^books: expenses: 50 items fetched, page 2/);
    now += 500;
    work.finish("ok", "50 new");
    await waitFor("finished", async () => (await seen()).outcome === "ok");
    expect(describeWork(await seen())).toBe("books: expenses: finished in 2 s, 50 items fetched (50 new)");
    // Shown for SHOW_FINISHED_MS, then not; the row goes when the next work starts.
    expect(await reader.list(now + SHOW_FINISHED_MS - 1)).toHaveLength(1);
    expect(await reader.list(now + SHOW_FINISHED_MS + 1)).toEqual([]);
    expect(await rows(other)).toBe(1);
    now += SHOW_FINISHED_MS + 1;
    const next = startWork(board, { kind: "export", title: "SIE 4 export", unit: "invoices" }, { now: () => now });
    await waitFor(
      "the next work stored, the old one pruned",
      async () => (await reader.list(now)).map((e) => e.id).join() === next.entry.id,
    );
    expect(await rows(other)).toBe(1);
  });

  test("work whose worker is gone shows as cut off; silent for an hour, too", () => {
    const e: WorkEntry = {
      id: "w",
      kind: "export",
      title: "SIE 4 export",
      unit: "invoices",
      done: 3,
      total: 10,
      samples: [],
      startedAt: 0,
      updatedAt: 1000,
      pid: 1,
    };
    expect(shownEntry(e, true, 2000)).toBe(e);
    expect(shownEntry(e, false, 2000)).toMatchObject({ finishedAt: 1000, outcome: "failed", message: expect.stringMatching(/^cut off/) });
    expect(shownEntry(e, true, 1000 + 60 * 60_000 + 1)).toBeNull();
    expect(shownEntry(e, false, 1000 + SHOW_FINISHED_MS + 1)).toBeNull();
  });

  test.if(engine === "postgres")(
    "reports land while the runner's own transaction is open (an export's), another tenant sees none, a dead worker's work shows cut off",
    async () => {
      const storage = await open(engine);
      const other = await storage.worker();
      const board = sqlWorkBoard(storage.storage, { worker: storage.workerOf(storage.storage), liveWorkers: liveWorkerIds });
      const reader = sqlWorkBoard(other, { worker: null, liveWorkers: liveWorkerIds });
      let now = Date.now();
      await storage.storage.transaction(async (tx) => {
        await tx.run(`INSERT INTO settings (name, value) VALUES ('held', 'by the export')`);
        const work = startWork(board, { kind: "export", title: "SIE 4 export", unit: "invoices" }, { now: () => now });
        now += 1000;
        work.update(7, 10, "checking the file");
        const seen = await waitFor("the report seen while the transaction is open", async () =>
          (await reader.list(now)).find((e) => e.id === work.entry.id && e.done === 7),
        );
        expect(seen).toMatchObject({ total: 10, stage: "checking the file" });
        // The export's own write is not seen yet: the report was not written in its transaction.
        expect(await other.get(`SELECT value FROM settings WHERE name = 'held'`)).toBeNull();
      });
      // Another tenant of the same database lists none of it (row-level security on running_work).
      const elsewhere = await open(engine);
      expect(await sqlWorkBoard(elsewhere.storage, { worker: null, liveWorkers: liveWorkerIds }).list(now)).toEqual([]);
      expect(await rows(elsewhere.storage)).toBe(0);
      expect(await rows(other)).toBe(1);
      await storage.declareDead(storage.storage);
      const cut = (await reader.list(now)).at(-1)!;
      expect(cut).toMatchObject({ outcome: "failed", message: "cut off: the worker running it stopped before it finished" });
    },
  );
});
