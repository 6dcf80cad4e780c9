// How the intake writer's groups form (agent/intake-thread.ts, handOverWhen and Writer.gather; issue 16). Callers
// answered together send their next requests at slightly different times: before Writer.gather, the first few went
// over alone and paid a whole commit. A wave of callers goes over in two halves, the second while the writer commits
// the first, so that the main thread reads requests while the writer commits. A real SQLite file and the real worker
// thread.
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { parseEvents, type ValidEvent } from "../agent/intake.ts";
import { handOverWhen, IntakeThread, MIN_HALF } from "../agent/intake-thread.ts";
import { customerEvent, tempDir } from "./helpers.ts";

const event = (n: number): ValidEvent[] => {
  const parsed = parseEvents(customerEvent(n, {}, `g-${n}`));
  if (!parsed.ok) throw new Error("fixture event does not validate");
  return parsed.events;
};

async function setUp(busyTimeoutMs = 5000) {
  const path = join(tempDir("kontobro-intake-gather-"), "k.db");
  const db = openDatabase(path);
  const commits = { count: 0 };
  /** How many requests each commit answered (the observer sees each request's results before onStored). */
  const groups: number[] = [];
  let answered = 0;
  const intake = await IntakeThread.start({
    path,
    busyTimeoutMs,
    targets: { customer: ["t1"] },
    onStored: () => {
      commits.count += 1;
      groups.push(answered);
      answered = 0;
    },
  });
  intake.observer = () => {
    answered += 1;
  };
  return { path, db, intake, commits, groups };
}

const storedEvents = (db: ReturnType<typeof openDatabase>) =>
  (db.$client.query("SELECT count(*) AS n FROM events").get() as { n: number }).n;

describe("the intake writer's groups", () => {
  test("callers answered together, back at slightly different times, go over in halves, not in stragglers", async () => {
    const { db, intake, groups } = await setUp();
    const CALLERS = 32;
    const ROUNDS = 10;
    const statuses: string[] = [];
    await Promise.all(
      Array.from({ length: CALLERS }, async (_, caller) => {
        for (let round = 0; round < ROUNDS; round++) {
          const [result] = await intake.submit(event(round * CALLERS + caller + 1));
          statuses.push(result!.status);
          // Half of the callers send their next request at once, the other half a millisecond later.
          await Bun.sleep(caller % 2);
        }
      }),
    );
    await intake.close();
    expect(statuses).toHaveLength(CALLERS * ROUNDS);
    expect(new Set(statuses)).toEqual(new Set(["accepted"]));
    const stored = db.$client.query("SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM events").get() as {
      n: number;
      ids: number;
    };
    expect(stored).toEqual({ n: CALLERS * ROUNDS, ids: CALLERS * ROUNDS });
    // Each round in about two commits of half the callers each (a straggler or two may miss them under load); before
    // Writer.gather the callers sent at once went over alone and the others after them: a third of the groups held
    // a few requests. With the whole wave in one group (before the halves), every commit held all 32.
    const stragglers = groups.filter((n) => n < CALLERS / 4).length;
    expect(stragglers).toBeLessThanOrEqual(ROUNDS * 0.2);
    const halves = groups.filter((n) => n <= (CALLERS * 3) / 4).length;
    expect(halves).toBeGreaterThanOrEqual(groups.length * 0.6);
  });

  test("while the writer commits half a wave, the other half is already with it", async () => {
    const { path, db, intake } = await setUp(60_000);
    const WAVE = 2 * MIN_HALF;
    // Two waves of callers at once: the writer's groups become halves (the writer may commit two halves that reach it
    // together as one).
    for (let w = 0; w < 2; w++) await Promise.all(Array.from({ length: WAVE }, (_, i) => intake.submit(event(w * WAVE + i + 1))));
    // Another connection holds the write lock: the writer's next commit waits for it.
    const other = new Database(path);
    other.exec("BEGIN IMMEDIATE");
    const first = Array.from({ length: WAVE / 2 }, (_, i) => intake.submit(event(1_000 + i)));
    await Bun.sleep(20);
    const second = Array.from({ length: WAVE / 2 }, (_, i) => intake.submit(event(2_000 + i)));
    await Bun.sleep(20);
    other.exec("COMMIT");
    // The main thread now takes no answer from the writer (it does not return to its event loop), so whatever the
    // writer commits meanwhile it had been given before: both halves. Before, the second half waited on the main
    // thread for the first's answer, and this loop saw only the first half committed until it gave up.
    const before = 2 * WAVE;
    const giveUp = Date.now() + 20_000;
    while (storedEvents(db) < before + WAVE && Date.now() < giveUp) Bun.sleepSync(5);
    expect(storedEvents(db)).toBe(before + WAVE);
    const results = await Promise.all([...first, ...second]);
    expect(results.map(([r]) => r!.status)).toEqual(Array(WAVE).fill("accepted"));
    other.close();
    await intake.close();
  });

  test("lone requests after a burst: the first waits for the burst's others briefly, the next ones go over alone", async () => {
    const { db, intake, commits } = await setUp();
    await Promise.all(Array.from({ length: 20 }, (_, i) => intake.submit(event(1_000 + i))));
    const afterBurst = commits.count;
    for (let i = 0; i < 5; i++) {
      const [result] = await intake.submit(event(2_000 + i));
      expect(result!.status).toBe("accepted");
    }
    expect(commits.count - afterBurst).toBe(5);
    await intake.close();
    expect(storedEvents(db)).toBe(25);
  });
});

describe("handOverWhen", () => {
  const half = (size: number) => ({ size, half: true });
  test("an idle writer takes half the wave at once, fewer after GATHER_MS; a lone request after lone ones at once", () => {
    expect(handOverWhen(0, [], 64)).toBe("wait");
    expect(handOverWhen(31, [], 64)).toBe("later");
    expect(handOverWhen(32, [], 64)).toBe("now");
    expect(handOverWhen(1, [], 1)).toBe("now");
    expect(handOverWhen(1, [], 0)).toBe("now");
  });

  test("with half a wave in flight, the next goes when it is as large; never a third in flight", () => {
    expect(handOverWhen(31, [half(32)], 64)).toBe("wait");
    expect(handOverWhen(32, [half(32)], 32)).toBe("now");
    expect(handOverWhen(64, [half(32), half(32)], 64)).toBe("wait");
  });

  test("a wave under two of MIN_HALF goes over whole, as before the halves", () => {
    const small = 2 * MIN_HALF - 1;
    expect(handOverWhen(small - 1, [], small)).toBe("later");
    expect(handOverWhen(small, [], small)).toBe("now");
    expect(handOverWhen(small, [{ size: small, half: false }], small)).toBe("wait");
  });
});
