// The agent's own connection (the dispatcher's rounds, the API's reads): durable (WAL, synchronous FULL), and its
// statement journals kept in memory, not spilled to a temporary file about every other round (issue 16). A real agent
// on a real SQLite file, against the e-conomic sandbox.
import { afterAll, expect, test } from "bun:test";
import { startStack, type Stack } from "./e2e-harness.ts";

let stack: Stack | undefined;
afterAll(async () => {
  await stack?.stop();
});

test("the agent's connection: WAL, synchronous FULL, foreign keys, temporary storage in memory", async () => {
  stack = await startStack();
  const pragma = (name: string) => Object.values(stack!.agent.db.$client.query(`PRAGMA ${name}`).get() as object)[0];
  expect(pragma("journal_mode")).toBe("wal");
  // 2 = FULL between rounds (a round commits with NORMAL and syncs its WAL itself: agent/db/wal-sync.ts).
  expect(pragma("synchronous")).toBe(2);
  expect(pragma("foreign_keys")).toBe(1);
  // 2 = MEMORY.
  expect(pragma("temp_store")).toBe(2);
  // A delivery still goes through on it.
  expect((await stack.post({ id: "c-1", type: "customer.upserted", data: { number: "1", name: "One", currency: "NOK" } })).status).toBe(
    202,
  );
  await stack.waitDelivered(1);
});
