// Statements given a JSON list of ids read those rows only, not all of the tenant's (issue 17's leftovers): on
// PostgreSQL, under row-level security, a join on CAST(value AS BIGINT) (not leakproof) is kept above the policy's
// filter and cannot probe a key with it, so `id IN (SELECT CAST(value AS BIGINT) FROM json_each(?))` walked every
// row the tenant has. A record page's delivery attempts, the PSA webhook's inbox leases (lease, release, delivered,
// failed) and the outbox's leases given up at shutdown (Outbox.release) now join a MATERIALIZED list, as the claim's
// lease does (test/claim-statements). Real PostgreSQL: a tenant
// with many rows beside another whose rows are interleaved with its own; and the same statements on a SQLite file.
import { describe, expect, test } from "bun:test";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { Inbox } from "../agent/pulls/inbox.ts";
import { Outbox } from "../agent/outbox.ts";
import { deliveryAttempts } from "../agent/record-queries.ts";
import { workerEngines } from "./engines.ts";
import { recording } from "./plan-rows.ts";

const { engines, open } = workerEngines("statements on a list of ids");

const ROWS = 1_000;

/** `n` deliveries (keys from `from`), each with two attempts, and `n` inbox items, new and due. */
async function fill(runner: SqlRunner, from: number, n: number): Promise<void> {
  const numbers = `WITH RECURSIVE g(n) AS (SELECT CAST(?1 AS INTEGER) UNION ALL SELECT n + 1 FROM g WHERE n < ?2)`;
  await runner.transaction(async (tx) => {
    await tx.run(
      `${numbers} INSERT INTO events (event_id, type, entity, key, payload, received_at)
       SELECT 'e-' || CAST(n AS TEXT), 'customer.upserted', 'customer', CAST(n AS TEXT), '{}', 0 FROM g`,
      from,
      from + n - 1,
    );
    await tx.run(
      `INSERT INTO deliveries (event_seq, target, entity, key, status, next_attempt_at, created_at, updated_at)
       SELECT seq, 't', entity, key, 'done', 0, 0, 0 FROM events WHERE seq NOT IN (SELECT event_seq FROM deliveries)`,
    );
    for (const attempt of [1, 2]) {
      await tx.run(
        `INSERT INTO delivery_attempts (delivery_id, attempt, at, outcome)
         SELECT id, ?1, 0, 'done' FROM deliveries WHERE id NOT IN (SELECT delivery_id FROM delivery_attempts WHERE attempt = ?1)`,
        attempt,
      );
    }
    await tx.run(
      `${numbers} INSERT INTO inbox (seq, target, stream, remote_id, type, state, payload, next_attempt_at, created_at, updated_at)
       SELECT n, 't', 's', 'r' || CAST(n AS TEXT), 'expense', 'new', '{}', 0, 0, 0 FROM g`,
      from,
      from + n - 1,
    );
  });
}

/** ROWS rows of each kind; on PostgreSQL another tenant's rows between this one's, as a day's intake of both leaves them. */
async function fillBeside(engine: (typeof engines)[number], storage: SqlRunner): Promise<void> {
  if (engine !== "postgres") return fill(storage, 1, ROWS);
  const other = (await open(engine)).storage;
  for (let from = 1; from <= ROWS; from += 100) {
    await fill(storage, from, 100);
    await fill(other, from, 100);
  }
}

describe.each(engines)("on %s", (engine) => {
  test("a record's attempts and the inbox's leases read the listed rows only", async () => {
    const { storage } = await open(engine);
    await fillBeside(engine, storage);
    await storage.run("ANALYZE");
    const { runner, statements } = recording(storage, engine === "postgres");

    // The tenant's last rows: a plan walking its rows in order reads them all before it finds these.
    const last = async (table: string) =>
      (await storage.all<{ id: number }>(`SELECT id FROM ${table} ORDER BY id DESC LIMIT 3`)).map((r) => r.id).reverse();
    const deliveries = await last("deliveries");
    const items = await last("inbox");
    const inbox = new Inbox(runner, () => 10);

    // Warm: PostgreSQL plans a prepared statement generically from its sixth run on.
    for (let round = 0; round < 6; round++) {
      expect(await deliveryAttempts(runner, deliveries)).toHaveLength(6);
      expect(await inbox.lease(items, 10, 1_000)).toEqual(items);
      await inbox.releaseLeases(items);
    }
    statements.length = 0;
    const attempts = await deliveryAttempts(runner, deliveries);
    // In the order they were made: each delivery's first attempt, then each one's second (fill).
    expect(attempts.map((a) => [a.deliveryId, a.attempt])).toEqual([1, 2].flatMap((n) => deliveries.map((id) => [id, n])));
    expect(await inbox.lease(items, 10, 1_000)).toEqual(items);
    await inbox.releaseLeases(items.slice(2));
    await inbox.markDelivered(items.slice(0, 1));
    await inbox.markFailed(items.slice(1, 2), { code: "x", message: "failed" }, 500);
    const states = await storage.all<{ id: number; state: string; leaseUntil: number | null; attempts: number }>(
      `SELECT id, state, lease_until AS leaseUntil, attempts FROM inbox WHERE id IN (?1, ?2, ?3) ORDER BY id`,
      ...items,
    );
    expect(states).toEqual([
      { id: items[0]!, state: "delivered", leaseUntil: null, attempts: 0 },
      { id: items[1]!, state: "new", leaseUntil: null, attempts: 1 },
      { id: items[2]!, state: "new", leaseUntil: null, attempts: 0 },
    ]);
    expect(statements).toHaveLength(5);
    if (engine === "postgres") {
      // The listed rows (and, for the attempts, the listed deliveries' own), never the tenant's 1,000 or 2,000.
      const read = (s: (typeof statements)[number]) => Math.max(s.rows!.get("delivery_attempts") ?? 0, s.rows!.get("inbox") ?? 0);
      expect(statements.filter((s) => read(s) > 6).map((s) => `${read(s)} rows: ${s.text.slice(0, 100)}`)).toEqual([]);
    }
  }, 120_000);
});

describe.each(engines)("on %s", (engine) => {
  test("leases given up at shutdown read the listed deliveries only", async () => {
    const opened = await open(engine);
    const { storage } = opened;
    await fillBeside(engine, storage);
    const owner = opened.workerOf(storage);
    // The tenant's last three deliveries are in flight under this worker's lease (the filled rows are done).
    const held = (await storage.all<{ id: number }>(`SELECT id FROM deliveries ORDER BY id DESC LIMIT 3`)).map((r) => r.id).reverse();
    const lease = () =>
      storage.run(
        `UPDATE deliveries SET status = 'in_flight', lease_until = 1, lease_owner = ?2, late_answer_wait_ms = 1000 WHERE id IN (SELECT CAST(value AS BIGINT) FROM json_each(?1))`,
        JSON.stringify(held),
        owner,
      );
    await storage.run("ANALYZE");
    const { runner, statements } = recording(storage, engine === "postgres");
    const outbox = new Outbox(runner, () => 10, undefined, { leaseOwner: owner });
    // Warm: PostgreSQL plans a prepared statement generically from its sixth run on.
    for (let round = 0; round < 6; round++) {
      await lease();
      await outbox.release(held, true);
    }
    await lease();
    statements.length = 0;
    // A duplicate id and one not in flight: each held lease is released once, the other row left alone.
    await outbox.release([...held, held[0]!, held[0]! - 1], true);
    const rows = await storage.all<{ status: string; uncertain: number | boolean; nextAttemptAt: number }>(
      `SELECT status, uncertain, next_attempt_at AS "nextAttemptAt" FROM deliveries WHERE id >= ?1 ORDER BY id`,
      held[0]! - 1,
    );
    expect(rows.map((r) => [r.status, Boolean(r.uncertain), Number(r.nextAttemptAt)])).toEqual([
      ["done", false, 0],
      ["pending", true, 1_010],
      ["pending", true, 1_010],
      ["pending", true, 1_010],
    ]);
    const interrupted = await storage.all<{ n: number }>(
      `SELECT count(*) AS n FROM delivery_attempts WHERE outcome = 'interrupted' AND delivery_id >= ?1`,
      held[0]!,
    );
    expect(Number(interrupted[0]!.n)).toBe(3 * 7);
    expect(statements).toHaveLength(2);
    if (engine === "postgres") {
      const read = (s: (typeof statements)[number]) => s.rows!.get("deliveries") ?? 0;
      expect(statements.filter((s) => read(s) > 6).map((s) => `${read(s)} rows: ${s.text.slice(0, 100)}`)).toEqual([]);
    }
  }, 120_000);
});
