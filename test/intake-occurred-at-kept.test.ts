// A version without occurredAt must not make the record forget the time of the newer version it replaces: event A at
// 10:00, then B with no time, then a late resend C of an older version at 09:30. records.occurred_at was B's (null),
// so C was not stale: accepted, pushed, and the target got the older version over the newer one.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, waitFor } from "./helpers.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack.stop();
});

const nameAtTarget = async () => (await stack.sandboxState()).customers.find((c: any) => c.customerNumber === 4101)?.name;

test("a late older version after one without occurredAt is stale, and the target keeps the newer", async () => {
  const a = { ...customerEvent(4101, { name: "A at 10:00" }, "ot-a"), occurredAt: "2026-11-20T10:00:00Z" };
  const b = customerEvent(4101, { name: "B, no time" }, "ot-b");
  const c = { ...customerEvent(4101, { name: "C of 09:30" }, "ot-c"), occurredAt: "2026-11-20T09:30:00Z" };
  expect((await stack.post(a)).body.accepted).toBe(1);
  await stack.waitDelivered(1);
  expect((await stack.post(b)).body.accepted).toBe(1);
  await stack.waitDelivered(2);
  expect(await nameAtTarget()).toBe("B, no time");

  const late = await stack.post(c);
  expect(late.status).toBe(202);
  expect(late.body.events).toEqual([expect.objectContaining({ id: "ot-c", status: "stale" })]);
  const row = stack.agent.db.$client
    .query("SELECT occurred_at AS at, json_extract(payload, '$.name') AS name FROM records WHERE entity = 'customer' AND key = '4101'")
    .get();
  expect(row).toEqual({ at: Date.parse("2026-11-20T10:00:00Z"), name: "B, no time" });
  // Nothing of C is open or pushed.
  await waitFor("no open deliveries", async () => (await stack.deliveries("pending")).length === 0);
  expect((await stack.deliveries()).filter((d: any) => d.status !== "done")).toEqual([]);
  expect(await nameAtTarget()).toBe("B, no time");
});
