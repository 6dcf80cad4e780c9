// The stuck-queue check's statements on both engines (SQLite and a PostgreSQL tenant): the oldest open delivery that
// does not need action, a wait behind a record that needs action left out, a wait nothing ends any more counted.
import { describe, expect, test } from "bun:test";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { stalledQueues } from "../agent/notify/stalled.ts";
import { Outbox } from "../agent/outbox.ts";
import { workerEngines } from "./engines.ts";
import { customerEvent, invoiceEvent, projectEvent } from "./helpers.ts";

const { engines, open } = workerEngines("the stuck-queue check");
const HOUR = 3_600_000;

describe.each(engines)("stalled queues on %s", (engine) => {
  test("a wait behind a record that needs action is left out; a wait nothing ends is told; a pending one is told", async () => {
    const { storage } = await open(engine);
    const intake = new IntakeWriter(new Outbox(storage), () => ["eco"]);
    const parsed = parseEvents([customerEvent(1), projectEvent(10, 1), invoiceEvent(100, 1, 10)]);
    if (!parsed.ok) throw new Error("fixture");
    await intake.submit(parsed.events);
    await intake.close();
    const check = { targets: [{ name: "eco" }], stalledAfterMs: HOUR, now: Date.now() + 2 * HOUR };
    const stalled = async () => (await stalledQueues(storage, check)).map((p) => [p.code, p.detail.entity, p.detail.status]);

    await storage.run(`UPDATE deliveries SET status = 'done', done_at = 1 WHERE entity = 'customer'`);
    await storage.run(`UPDATE deliveries SET status = 'needs_action' WHERE entity = 'project'`);
    await storage.run(`UPDATE deliveries SET status = 'waiting', waiting_on = 'project:10' WHERE entity = 'invoice'`);
    expect(await stalled()).toEqual([]);

    await storage.run(`UPDATE deliveries SET status = 'done', done_at = 1 WHERE entity = 'project'`);
    expect(await stalled()).toEqual([["queue_stalled", "invoice", "waiting"]]);

    await storage.run(`UPDATE deliveries SET status = 'pending', waiting_on = NULL WHERE entity = 'invoice'`);
    expect(await stalled()).toEqual([["queue_stalled", "invoice", "pending"]]);
    expect(await stalledQueues(storage, { ...check, now: Date.now() - 2 * HOUR })).toMatchObject([{ code: "clock_went_back" }]);
  });
});
