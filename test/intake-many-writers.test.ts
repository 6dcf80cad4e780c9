// Intake on two workers of one tenant at once (issue 17): intake decides a group from what it reads and then writes,
// so two writers must take turns (agent/intake-store.ts, the tenant's intake_writer row on PostgreSQL; SQLite has
// one writer). Sent concurrently through two writers on their own connection pools: an older and a newer version
// of each record, and the same event resent through both. Whatever the interleaving, each record ends with its newer
// version, each event is stored once, and no request fails. On PostgreSQL without the turn it fails.
import { describe, expect, test } from "bun:test";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { Outbox } from "../agent/outbox.ts";
import { customerEvent } from "./helpers.ts";
import { workerEngines } from "./engines.ts";

const { engines, open } = workerEngines("intake with two writers");
const RECORDS = 40;

const writerOn = (runner: SqlRunner) => new IntakeWriter(new Outbox(runner), () => ["t1"]);

function send(writer: IntakeWriter, events: unknown[]) {
  const parsed = parseEvents(events);
  if (!parsed.ok) throw new Error("fixture events do not validate");
  return writer.submit(parsed.events);
}

describe.each(engines)("intake with two writers of one tenant (%s)", (engine) => {
  test("older and newer versions and resends through both at once: newest kept, each event once, none refused", async () => {
    const s = await open(engine);
    const [a, b] = [writerOn(s.storage), writerOn(await s.worker())];
    const older = (n: number) => ({ ...customerEvent(n, { name: `old ${n}` }, `old-${n}`), occurredAt: "2026-03-01T10:00:00Z" });
    const newer = (n: number) => ({ ...customerEvent(n, { name: `new ${n}` }, `new-${n}`), occurredAt: "2026-03-02T10:00:00Z" });
    const answers: Promise<unknown>[] = [];
    for (let n = 1; n <= RECORDS; n++) {
      // Which writer gets the older version alternates; the newer event is also resent through the other writer.
      const [first, second] = n % 2 ? [a, b] : [b, a];
      answers.push(send(first, [older(n)]), send(second, [newer(n)]), send(first, [newer(n)]));
    }
    const results = (await Promise.all(answers)) as { status: string }[][];
    const statuses = results.flat().map((r) => r.status);
    expect(statuses.filter((x) => !["accepted", "duplicate", "stale"].includes(x))).toEqual([]);
    expect(statuses.filter((x) => x === "duplicate")).toHaveLength(RECORDS);

    const events = await s.storage.all<{ event_id: string }>("SELECT event_id FROM events ORDER BY event_id");
    expect(events).toHaveLength(2 * RECORDS);
    const records = await s.storage.all<{ key: string; payload: string; version: number }>(
      "SELECT key, payload, version FROM records WHERE entity = 'customer' ORDER BY key",
    );
    expect(records).toHaveLength(RECORDS);
    for (const r of records) expect(JSON.parse(r.payload).name).toBe(`new ${r.key}`);
    // One delivery per stored event that is not stale (the older one arriving last is stored as stale).
    const open_ = await s.storage.get<{ n: number }>("SELECT count(*) AS n FROM deliveries WHERE target = 't1'");
    expect(Number(open_!.n)).toBeGreaterThanOrEqual(RECORDS);
    expect(Number(open_!.n)).toBeLessThanOrEqual(2 * RECORDS);
  }, 60_000);
});
