// Issue 10 (item 1, upgrade path): a credit note stored with minus signs by an older version
// must never be pushed as a charge after the upgrade. normaliseStoredPayloads skips any payload whose
// canonical number differs from the stored key, and nothing later re-parses e-conomic payloads.
import { expect, test } from "bun:test";
import { databasePath } from "../agent/agent.ts";
import { openDatabase } from "../agent/db/index.ts";
import { startStack } from "./e2e-harness.ts";
import { CreditNote as OldCreditNote } from "./old-model-v0.ts";
import { customerEvent, invoiceEvent } from "./helpers.ts";

test("an old credit note numbered 05001 with minus signs, still pending at upgrade, is booked as a credit at e-conomic", async () => {
  const stack = await startStack();
  try {
    await stack.post([customerEvent(101), invoiceEvent(5000, 101)]);
    await stack.waitDelivered(2);
    await stack.agent.stop();

    // What the previous version stored (numbers kept as sent, signs as sent), still waiting to go out.
    // Exactly what the previous version's model (agent/model.ts at 1edb5cf) made of the PSA's event.
    const old = OldCreditNote.parse({
      number: "05001",
      psaId: "PSA-CN-5001",
      customerNumber: "101",
      date: "2026-11-20",
      dueDate: "2026-12-04",
      currency: "NOK",
      kind: "credit_note",
      creditedInvoiceNumber: "5000",
      lines: [{ text: "Consulting credited", quantity: -2, unitPrice: 145000, kind: "hours" }],
    });
    const db = openDatabase(databasePath(stack.dataDir));
    const c = db.$client;
    const { seq } = c
      .query(
        "INSERT INTO events (event_id, type, entity, key, payload, received_at) VALUES ('cn-old', 'invoice.credited', 'invoice', '05001', ?1, 0) RETURNING seq",
      )
      .get(JSON.stringify(old)) as { seq: number };
    c.run("INSERT INTO records (entity, key, payload, version, last_event_seq, updated_at) VALUES ('invoice', '05001', ?1, 1, ?2, 0)", [
      JSON.stringify(old),
      seq,
    ]);
    c.run(
      "INSERT INTO deliveries (event_seq, target, entity, key, status, next_attempt_at, created_at, updated_at, uncertain) VALUES (?1, 'eco', 'invoice', '05001', 'pending', 0, 0, 0, 0)",
      [seq],
    );
    c.run("DELETE FROM settings WHERE name = 'payloads_normalised_v1'"); // as on a database the old version wrote
    c.close();

    await stack.restart(); // the upgrade: normaliseStoredPayloads runs at open
    await stack.waitDelivered(3);
    const booked = (await stack.sandboxState()).booked.find((b: any) => b.bookedInvoiceNumber === 5001);
    expect(booked).toBeTruthy();
    // A credit note must reduce what customer 101 owes: a negative total at e-conomic.
    expect(booked.netAmount).toBeLessThan(0);
  } finally {
    await stack.stop();
  }
}, 30_000);
