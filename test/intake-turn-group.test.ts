// A tenant's intake on PostgreSQL takes turns across workers (the tenant's intake turn, agent/intake-store.ts): a
// worker's group waits while another worker's group holds the turn. What arrives at the waiting worker meanwhile
// joins its group once it has the turn, instead of waiting for a turn of its own after it: with single events
// spread over 4 workers, a tenant's groups were a quarter of the size, and its intake a quarter of the rate (the
// bench's single-event intake, issue 17 item 5). Real parts: a tenant on a real PostgreSQL server, two workers'
// runners (own connection pools), the intake writer as a hosted tenant runtime runs it.
import { describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { takeIntakeTurn } from "../agent/intake-store.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { Outbox } from "../agent/outbox.ts";
import { workerEngines } from "./engines.ts";
import { customerEvent } from "./helpers.ts";

const { engines, open } = workerEngines("intake groups across workers");

const events = (n: number) => {
  const parsed = parseEvents([customerEvent(n)]);
  if (!parsed.ok) throw new Error("fixture");
  return parsed.events;
};

describe.skipIf(!engines.includes("postgres"))("a worker's intake waiting for the tenant's turn (PostgreSQL)", () => {
  test("what arrives while another worker holds the turn is stored in the same group, once the turn is free", async () => {
    const storage = await open("postgres");
    const admin = new SQL(storage.server!.adminUrl);
    try {
      let groups = 0;
      const writer = new IntakeWriter(
        new Outbox(storage.storage),
        () => ["t"],
        () => groups++,
      );
      // The turn's row, as the tenant's first group leaves it.
      await storage.storage.transaction(takeIntakeTurn);
      // Another worker's group holds the tenant's turn until `release`.
      let release = () => {};
      let held = () => {};
      const holding = new Promise<void>((r) => (held = r));
      const other = (await storage.worker()).transaction(async (tx) => {
        await takeIntakeTurn(tx);
        held();
        await new Promise<void>((r) => (release = r));
      });
      await holding;
      try {
        const first = writer.submit(events(1));
        // The first request's group waits for the turn...
        for (let i = 0; ; i++) {
          const [{ n }] = await admin`SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE wait_event_type = 'Lock' AND query LIKE '%intake_writer%FOR UPDATE%'`;
          if (n === 1) break;
          if (i > 500) throw new Error("the intake group never waited for the turn");
          await Bun.sleep(10);
        }
        // ...while three more arrive at the same worker.
        const later = [2, 3, 4].map((n) => writer.submit(events(n)));
        release();
        await other;
        const stored = await Promise.all([first, ...later]);
        expect(stored.map((r) => r.map((e) => e.status))).toEqual([["accepted"], ["accepted"], ["accepted"], ["accepted"]]);
        // One group (one transaction, one commit) for the four, not one for the first and another for the rest.
        expect(groups).toBe(1);
        expect(await storage.storage.get<{ n: number }>("SELECT count(*) AS n FROM deliveries")).toEqual({ n: 4 });
        await writer.close();
      } finally {
        release();
        await other;
      }
    } finally {
      await admin.close();
    }
  }, 60_000);
});
