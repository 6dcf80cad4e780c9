// The intake writer thread (agent/intake-thread.ts) runs only while there is intake: it starts with the first
// request and ends after a while without any (issue 16, idle memory). Requests that arrive while it ends are
// stored by the next one, in order, none lost. A real SQLite file and the real worker thread throughout.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { parseEvents, type ValidEvent } from "../agent/intake.ts";
import { IntakeThread } from "../agent/intake-thread.ts";
import { customerEvent, tempDir } from "./helpers.ts";

const IDLE_MS = 40;

function setUp() {
  const path = join(tempDir("kontobro-intake-idle-"), "k.db");
  const db = openDatabase(path);
  const idleEnds: number[] = [];
  return {
    db,
    idleEnds,
    start: (idleMs = IDLE_MS) =>
      IntakeThread.start({ path, busyTimeoutMs: 5000, targets: { customer: ["t1"] }, idleMs, onIdleEnd: () => idleEnds.push(Date.now()) }),
  };
}

const events = (...numbers: number[]): ValidEvent[] => {
  const parsed = parseEvents(numbers.map((n) => customerEvent(n, {}, `e-${n}`)));
  if (!parsed.ok) throw new Error("fixture events do not validate");
  return parsed.events;
};

/** Threads of this process named like Bun's worker threads. */
const workerThreads = () =>
  readdirSync("/proc/self/task").filter((t) => {
    try {
      return readFileSync(`/proc/self/task/${t}/comm`, "utf8").trim() === "Worker";
    } catch {
      return false;
    }
  }).length;

async function until(what: string, ok: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

describe("the intake writer thread runs only while there is intake", () => {
  test("no thread before the first request; it stores, ends when idle, and the next request starts another", async () => {
    const { db, start, idleEnds } = setUp();
    const threadsBefore = workerThreads();
    const intake = await start();
    expect(intake.running).toBe(false);
    expect(workerThreads()).toBe(threadsBefore);

    const [first] = await intake.submit(events(1));
    expect(first!.status).toBe("accepted");
    expect(intake.running).toBe(true);
    await until("the idle writer to end", () => !intake.running);
    await until("its thread to be gone", () => workerThreads() === threadsBefore);
    await until("the agent to hear the burst is over", () => idleEnds.length === 1);

    const [second] = await intake.submit(events(2));
    expect(second!.status).toBe("accepted");
    expect(db.$client.query("SELECT key FROM events ORDER BY seq").all()).toEqual([{ key: "1" }, { key: "2" }]);
    expect(db.$client.query("SELECT count(*) AS n FROM deliveries WHERE target = 't1'").get()).toEqual({ n: 2 });
    await intake.close();
    await expect(intake.submit(events(3))).rejects.toThrow(/closed/);
    // Closing is not an idle end.
    expect(idleEnds).toHaveLength(1);
  });

  test("requests sent while the writer ends are all accepted and stored, in the order they were sent", async () => {
    const { db, start } = setUp();
    const intake = await start(5);
    const sent: number[] = [];
    const answers: Promise<unknown>[] = [];
    // Bursts, and after every other one a pause until the idle writer is told to end: the next burst comes
    // while it is still closing, so requests keep arriving as writers end and start.
    for (let round = 0; round < 16; round++) {
      for (let k = 0; k < 3; k++) {
        const n = round * 10 + k;
        sent.push(n);
        answers.push(intake.submit(events(n)));
      }
      if (round % 2 === 1) {
        await Promise.all(answers);
        await until("the idle writer to end", () => !intake.running);
      }
    }
    const results = (await Promise.all(answers)) as { status: string }[][];
    expect(results.every(([r]) => r!.status === "accepted")).toBe(true);
    const stored = (db.$client.query("SELECT key FROM events ORDER BY seq").all() as { key: string }[]).map((r) => Number(r.key));
    expect(stored).toEqual(sent);
    expect(intake.started).toBe(8);
    await intake.close();
  });

  test("close while the writer is ending waits for it; a PRAGMA keeps the writer (and its setting) for good", async () => {
    const { start } = setUp();
    const intake = await start();
    await intake.submit(events(1));
    await until("the idle writer to end", () => !intake.running);
    await intake.close();
    expect(intake.running).toBe(false);

    const pinned = await start();
    expect(await pinned.pragma("cache_size = -1024")).toEqual([]);
    await pinned.submit(events(2));
    await Bun.sleep(IDLE_MS * 5);
    expect(pinned.running).toBe(true);
    expect(await pinned.pragma("cache_size")).toEqual([{ cache_size: -1024 }]);
    await pinned.close();
  });
});
