// An idle intake writer's next group waits for as many requests as its last group had (agent/intake-thread.ts,
// Writer.gather; issue 16): callers answered together send their next requests at slightly different times, and
// before, the first few went over alone and paid a whole commit. A real SQLite file and the real worker thread.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { parseEvents, type ValidEvent } from "../agent/intake.ts";
import { IntakeThread } from "../agent/intake-thread.ts";
import { customerEvent, tempDir } from "./helpers.ts";

const event = (n: number): ValidEvent[] => {
  const parsed = parseEvents(customerEvent(n, {}, `g-${n}`));
  if (!parsed.ok) throw new Error("fixture event does not validate");
  return parsed.events;
};

async function setUp() {
  const path = join(tempDir("kontobro-intake-gather-"), "k.db");
  const db = openDatabase(path);
  const commits = { count: 0 };
  const intake = await IntakeThread.start({
    path,
    busyTimeoutMs: 5000,
    targets: { customer: ["t1"] },
    onStored: () => {
      commits.count += 1;
    },
  });
  return { db, intake, commits };
}

describe("the intake writer's groups", () => {
  test("callers answered together, back at slightly different times, are committed together again", async () => {
    const { db, intake, commits } = await setUp();
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
    // Each round in one commit (a straggler or two may miss it under load); before, the callers sent at once went
    // over alone: about two commits a round.
    expect(commits.count).toBeLessThanOrEqual(ROUNDS * 1.4);
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
    expect((db.$client.query("SELECT count(*) AS n FROM events").get() as { n: number }).n).toBe(25);
  });
});
