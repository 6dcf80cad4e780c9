// Issue 10 (item 10): a repeated event id with *the same* content must stay a duplicate. Events
// stored by the previous version keep its spelling ("0101"); the new model parses the same event to "101",
// so the PSA's at-least-once resend of an unchanged old event is refused with 409, and with it its whole batch.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { EventConflict, IntakeWriter, parseEvents } from "../agent/intake.ts";
import { Outbox } from "../agent/outbox.ts";
import { Customer as OldCustomer } from "./old-model-v0.ts";
import { customerEvent, tempDir } from "./helpers.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";

test("the PSA resends an unchanged event stored before the upgrade: duplicate, the batch is stored", async () => {
  const path = join(tempDir(), "k.db");
  const sent = customerEvent(0, { number: "0101", name: "Fjordtech AS" }, "evt-0101");
  const db = openDatabase(path);
  // As the previous version stored it: numbers kept as sent (String(v).trim()).
  db.$client.run(
    "INSERT INTO events (event_id, type, entity, key, payload, received_at) VALUES ('evt-0101', 'customer.upserted', 'customer', '0101', ?1, 0)",
    // Exactly what the previous version's model (agent/model.ts at 1edb5cf) made of this event.
    [JSON.stringify(OldCustomer.parse(sent.data))],
  );
  db.$client.close();

  const again = openDatabase(path); // the upgraded agent
  const intake = new IntakeWriter(new Outbox(sqliteRunner(again.$client)), () => ["eco"]);
  const batch = parseEvents([sent, customerEvent(202, {}, "evt-new")]);
  if (!batch.ok) throw new Error("fixture");
  const result = await intake.submit(batch.events).then(
    (r) => r.map((x) => x.status),
    (e) => (e instanceof EventConflict ? `409: ${e.events[0]!.problems[0]!.message}` : String(e)),
  );
  expect(result).toEqual(["duplicate", "accepted"]);
});
