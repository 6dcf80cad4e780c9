// A record stored by an older kontobro whose number today's checks refuse (a zero-width space pasted into it, refused
// at intake since) needs action at dispatch. The hint said to correct it in the PSA and send it again, but the number
// corrected is another record: this delivery stays needing action whatever the PSA sends. The hint now says so.
import { expect, test } from "bun:test";
import { databasePath } from "../agent/agent.ts";
import { openDatabase } from "../agent/db/index.ts";
import { parseEvents } from "../agent/intake.ts";
import { startStack } from "./e2e-harness.ts";
import { customerEvent, waitFor } from "./helpers.ts";

test("a stored customer number with an invisible character needs action, told that a corrected one is another record", async () => {
  const stack = await startStack();
  try {
    await stack.agent.stop();
    const parsed = parseEvents([customerEvent(1001)]);
    if (!parsed.ok) throw new Error("fixture");
    const key = "10\u200b01";
    const payload = JSON.stringify({ ...(parsed.events[0]!.data as object), number: key });
    const c = openDatabase(databasePath(stack.dataDir)).$client;
    const { seq } = c
      .query(
        "INSERT INTO events (event_id, type, entity, key, payload, received_at) VALUES ('old-zw', 'customer.upserted', 'customer', ?1, ?2, 1) RETURNING seq",
      )
      .get(key, payload) as { seq: number };
    c.run("INSERT INTO records (entity, key, payload, version, last_event_seq, updated_at) VALUES ('customer', ?1, ?2, 1, ?3, 1)", [
      key,
      payload,
      seq,
    ]);
    c.run(
      "INSERT INTO deliveries (event_seq, target, entity, key, status, next_attempt_at, created_at, updated_at) VALUES (?1, 'eco', 'customer', ?2, 'pending', 0, 1, 1)",
      [seq, key],
    );
    c.close();
    await stack.restart();
    await waitFor("needs action", async () => (await stack.deliveries("needs_action")).length === 1);
    const [d] = await stack.deliveries("needs_action");
    expect(JSON.stringify(d)).toContain("U+200B");
    expect(JSON.stringify(d)).toContain("Corrected in the PSA it is another record");
  } finally {
    await stack.stop();
  }
});
