// Delivery statistics per target and hour on a real SQLite file: the outcomes of a round are counted in
// the transaction that writes them (delivered, retried, needs action, the time to deliver), a push the
// target held back is no failure, and hours older than 31 days are pruned.
import { beforeEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { TARGET_PAUSED } from "../connectors/http.ts";
import { openDatabase, type Db } from "../agent/db/index.ts";
import {
  DAY_MS,
  HOUR_MS,
  LATENCY_BUCKETS,
  latencyBucket,
  pruneDeliveryStats,
  readDeliveryStats,
  tallyOutcomes,
} from "../agent/delivery-stats.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { Outbox, type ClaimedDelivery, type Completed } from "../agent/outbox.ts";
import { pruneOnce } from "../agent/retention.ts";
import { customerEvent, tempDir } from "./helpers.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";

const ALL = () => true;
const HOUR = Date.UTC(2026, 5, 1, 14);
let db: Db;
let clock: number;
let outbox: Outbox;
let intake: IntakeWriter;

beforeEach(() => {
  db = openDatabase(join(tempDir("kontobro-stats-"), "k.db"));
  clock = HOUR + 10 * 60_000;
  outbox = new Outbox(sqliteRunner(db.$client), () => clock);
  intake = new IntakeWriter(
    outbox,
    () => ["eco"],
    () => {},
    () => clock,
  );
});

async function queue(n: number) {
  const parsed = parseEvents(Array.from({ length: n }, (_, i) => customerEvent(i + 1)));
  if (!parsed.ok) throw new Error(JSON.stringify(parsed));
  await intake.submit(parsed.events);
  return await outbox.claim("eco", 100, 60_000, ALL);
}
const problem = (code = "economic.validation") => ({ code, message: "refused" });
const delivered = (d: ClaimedDelivery, latencyMs: number): Completed => ({
  delivery: d,
  outcome: { kind: "done", remoteId: `r${d.id}`, payloadHash: "h" },
  latencyMs,
});

describe("delivery statistics", () => {
  test("latency buckets: a time exactly on a bound counts in that bucket, anything beyond the last bound in the overflow", () => {
    expect(latencyBucket(0)).toBe(0);
    expect(latencyBucket(50)).toBe(0);
    expect(latencyBucket(51)).toBe(1);
    expect(latencyBucket(1_000)).toBe(LATENCY_BUCKETS.findIndex((b) => b.upToMs === 1_000));
    expect(latencyBucket(10 * 3_600_000)).toBe(LATENCY_BUCKETS.length - 1);
  });

  test("the table's latency columns are the buckets, in order", () => {
    const columns = (db.$client.query("PRAGMA table_info(delivery_stats)").all() as { name: string }[]).map((c) => c.name);
    expect(columns.filter((c) => c.startsWith("latency_"))).toEqual(LATENCY_BUCKETS.map((b) => b.column));
  });

  test("a round's outcomes are counted once, in the hour they were written, with the time to deliver", async () => {
    const [a, b, c, d, e] = await queue(5);
    await outbox.complete([
      delivered(a!, 30),
      delivered(b!, 700),
      { delivery: c!, outcome: { kind: "retry", problem: problem("http_503"), delayMs: 10, uncertain: false } },
      { delivery: d!, outcome: { kind: "needs_action", problem: problem(), uncertain: false } },
      // The target asked us to wait: nothing was sent, so nothing failed.
      { delivery: e!, outcome: { kind: "retry", problem: problem(TARGET_PAUSED), delayMs: 10, uncertain: false } },
    ]);
    const [row, ...more] = await readDeliveryStats(sqliteRunner(db.$client), "eco", 0);
    expect(more).toEqual([]);
    expect(row).toMatchObject({ target: "eco", hour: HOUR, delivered: 2, retried: 1, needsAction: 1, latencySumMs: 730 });
    expect(row!.latency[latencyBucket(30)]).toBe(1);
    expect(row!.latency[latencyBucket(700)]).toBe(1);
    expect(row!.latency.reduce((s, n) => s + n, 0)).toBe(2);

    // The next round adds to the same hour; one in the next hour starts a new row.
    clock += 60_000;
    const ready = await outbox.claim("eco", 100, 60_000, ALL);
    expect(ready.map((x) => x.id).sort()).toEqual([c!.id, e!.id].sort());
    await outbox.complete([delivered(ready.find((x) => x.id === c!.id)!, 60_000)]);
    clock = HOUR + HOUR_MS;
    await outbox.complete([delivered(ready.find((x) => x.id === e!.id)!, 61_000)]);
    const rows = await readDeliveryStats(sqliteRunner(db.$client), "eco", 0);
    expect(rows.map((r) => [r.hour, r.delivered, r.retried])).toEqual([
      [HOUR, 3, 1],
      [HOUR + HOUR_MS, 1, 0],
    ]);
  });

  test("a tally groups by target; a round of waits counts nothing", () => {
    const d = (id: number, target: string) => ({ id, target }) as ClaimedDelivery;
    const tallies = tallyOutcomes(
      [
        delivered(d(1, "eco"), 10),
        delivered(d(2, "uni"), 10),
        { delivery: d(3, "uni"), outcome: { kind: "needs_action", problem: problem(), uncertain: false } },
      ],
      HOUR + 1,
    );
    expect(tallies.map((t) => [t.target, t.hour, t.delivered, t.needsAction])).toEqual([
      ["eco", HOUR, 1, 0],
      ["uni", HOUR, 1, 1],
    ]);
    expect(tallyOutcomes([{ delivery: d(4, "eco"), outcome: { kind: "wait", on: "customer:1", reason: "first" } }], HOUR)).toEqual([]);
  });

  test("hours older than 31 days are pruned, by itself and with the rest of the finished work", async () => {
    const [a, b] = await queue(2);
    await outbox.complete([delivered(a!, 5)]);
    clock = HOUR + 20 * DAY_MS;
    await outbox.complete([delivered(b!, 5)]);
    expect(pruneDeliveryStats(db.$client, HOUR + 31 * DAY_MS)).toBe(0);
    expect(pruneDeliveryStats(db.$client, HOUR + 31 * DAY_MS + HOUR_MS)).toBe(1);
    expect((await readDeliveryStats(sqliteRunner(db.$client), "eco", 0)).map((r) => r.hour)).toEqual([HOUR + 20 * DAY_MS]);
    const result = await pruneOnce(db, { retentionDays: 90, now: () => HOUR + 60 * DAY_MS });
    expect(result.statsHours).toBe(1);
    expect(await readDeliveryStats(sqliteRunner(db.$client), "eco", 0)).toEqual([]);
  });
});
