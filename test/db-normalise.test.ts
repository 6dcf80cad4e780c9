// Payloads stored before the model's sign convention are parsed again once at open: a credit note
// written with minus signs must never be pushed or exported as a charge after an upgrade.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { customerTotal } from "../agent/model.ts";
import { tempDir } from "./helpers.ts";

test("a credit note stored with minus signs by an older version is turned round once, in its event and its record", () => {
  const path = join(tempDir(), "k.db");
  const db = openDatabase(path);
  const old = {
    number: "9001",
    psaId: "CN-1",
    customerNumber: "0101",
    date: "2026-11-20",
    dueDate: "2026-12-04",
    currency: "NOK",
    kind: "credit_note",
    creditedInvoiceNumber: "1001",
    lines: [{ text: "Hours", quantity: -2, unitPrice: 100_000, kind: "hours" }],
    pdf: { filename: "cn.pdf", contentBase64: "JVBERi0xLjQ=" },
  };
  const c = db.$client;
  c.run(
    "INSERT INTO events (event_id, type, entity, key, payload, received_at) VALUES ('e1', 'invoice.credited', 'invoice', '9001', ?1, 0)",
    [JSON.stringify(old)],
  );
  c.run("INSERT INTO records (entity, key, payload, version, last_event_seq, updated_at) VALUES ('invoice', '9001', ?1, 1, 1, 0)", [
    JSON.stringify(old),
  ]);
  c.run("DELETE FROM settings WHERE name = 'payloads_normalised_v1'");
  c.close();

  const again = openDatabase(path);
  const event = JSON.parse((again.$client.query("SELECT payload FROM events WHERE event_id = 'e1'").get() as any).payload);
  const record = JSON.parse((again.$client.query("SELECT payload FROM records WHERE key = '9001'").get() as any).payload);
  for (const p of [event, record]) {
    expect(p.lines[0]).toMatchObject({ quantity: 2, unitPrice: 100_000 });
    expect(p.customerNumber).toBe("101");
    expect(customerTotal(p)).toBe(-200_000);
  }
  expect(event.pdf.contentBase64).toBe("JVBERi0xLjQ=");
  expect(record.pdf).toEqual({ filename: "cn.pdf", size: 8 });
  // Once only: a later open leaves what is there.
  again.$client.run("UPDATE events SET payload = ?1 WHERE event_id = 'e1'", [JSON.stringify(old)]);
  again.$client.close();
  const third = openDatabase(path);
  expect(JSON.parse((third.$client.query("SELECT payload FROM events WHERE event_id = 'e1'").get() as any).payload).lines[0].quantity).toBe(
    -2,
  );
  third.$client.close();
});

test("records an older version stored under 0101 move to 101, with their links, deliveries, waits and events", () => {
  const path = join(tempDir(), "k.db");
  const db = openDatabase(path);
  const c = db.$client;
  const customer = { number: "0101", name: "Old spelling AS", currency: "NOK", addresses: [], contacts: [], active: true };
  c.run(
    "INSERT INTO events (event_id, type, entity, key, payload, received_at) VALUES ('e1', 'customer.upserted', 'customer', '0101', ?1, 0)",
    [JSON.stringify(customer)],
  );
  c.run("INSERT INTO records (entity, key, payload, version, last_event_seq, updated_at) VALUES ('customer', '0101', ?1, 1, 1, 0)", [
    JSON.stringify(customer),
  ]);
  c.run("INSERT INTO links (target, entity, key, remote_id, payload_hash, updated_at) VALUES ('eco', 'customer', '0101', '101', 'h', 0)");
  c.run("INSERT INTO records (entity, key, payload, version, last_event_seq, updated_at) VALUES ('product', '0042', '{}', 1, 1, 0)");
  c.run(
    "INSERT INTO deliveries (event_seq, target, entity, key, status, next_attempt_at, created_at, updated_at, waiting_on) VALUES (1, 'eco', 'invoice', '7', 'waiting', 0, 0, 0, 'customer:0101')",
  );
  c.run("DELETE FROM settings WHERE name = 'record_keys_canonical_v1'");
  c.close();

  const again = openDatabase(path).$client;
  expect(again.query("SELECT key, json_extract(payload, '$.number') AS n FROM records WHERE entity = 'customer'").all()).toEqual([
    { key: "101", n: "101" },
  ]);
  expect(again.query("SELECT key FROM links").all()).toEqual([{ key: "101" }]);
  expect(again.query("SELECT key FROM events").all()).toEqual([{ key: "101" }]);
  expect(again.query("SELECT waiting_on AS w FROM deliveries").all()).toEqual([{ w: "customer:101" }]);
  expect(again.query("SELECT key FROM records WHERE entity = 'product'").all()).toEqual([{ key: "0042" }]); // codes keep their zeros
  again.close();
});
