// A claim's cost does not grow with what it claims, nor with the tenant's other rows (issue 17, the bench's claim
// figure): one statement checks all of the claimed deliveries' records (an older open delivery of the same record,
// a dependency open or linked), not one or two per delivery; and on PostgreSQL, under row-level security, no
// statement of the claim reads more rows than the claim's own (the lease once hash-joined all of the tenant's
// deliveries: its join was on CAST(value AS BIGINT), which is not leakproof). Both engines: a real SQLite file, and
// a tenant on a real PostgreSQL server beside another whose rows are interleaved with its own.
import { describe, expect, test } from "bun:test";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { Outbox } from "../agent/outbox.ts";
import { workerEngines } from "./engines.ts";
import { recording } from "./plan-rows.ts";

const { engines, open } = workerEngines("the claim's statements");

const PENDING = 1_000;
const CLAIM = 50;

/**
 * `n` invoices (keys from `from`) stored as events, each with a pending delivery to target t, and their customers
 * linked at t: what a claim of invoices checks is all there, nothing blocks them.
 */
async function fill(runner: SqlRunner, from: number, n: number): Promise<void> {
  const numbers = `WITH RECURSIVE g(n) AS (SELECT CAST(?1 AS INTEGER) UNION ALL SELECT n + 1 FROM g WHERE n < ?2)`;
  await runner.transaction(async (tx) => {
    await tx.run(
      `${numbers} INSERT INTO events (event_id, type, entity, key, payload, received_at)
       SELECT 'e-' || CAST(n AS TEXT), 'invoice.upserted', 'invoice', CAST(n AS TEXT),
              '{"number":"' || CAST(n AS TEXT) || '","customerNumber":"c' || CAST(n AS TEXT) || '","lines":[]}', 0 FROM g`,
      from,
      from + n - 1,
    );
    await tx.run(
      `${numbers} INSERT INTO links (target, entity, key, remote_id, payload_hash, updated_at)
       SELECT 't', 'customer', 'c' || CAST(n AS TEXT), 'r' || CAST(n AS TEXT), 'h', 0 FROM g`,
      from,
      from + n - 1,
    );
    await tx.run(
      `INSERT INTO deliveries (event_seq, target, entity, key, status, next_attempt_at, created_at, updated_at)
       SELECT seq, 't', entity, key, 'pending', seq, 0, 0 FROM events WHERE seq NOT IN (SELECT event_seq FROM deliveries)`,
    );
  });
}

describe.each(engines)(`a claim of ${CLAIM} deliveries on %s`, (engine) => {
  test(`runs a handful of statements, not one or more per delivery${engine === "postgres" ? ", none reading the tenant's other rows" : ""}`, async () => {
    const storage = await open(engine);
    if (engine === "postgres") {
      // Another tenant's rows between this one's, as a day's intake of both leaves them.
      const other = (await open(engine)).storage;
      for (let from = 1; from <= PENDING; from += 100) {
        await fill(storage.storage, from, 100);
        await fill(other, from, 100);
      }
    } else await fill(storage.storage, 1, PENDING);
    await storage.storage.run("ANALYZE");
    const { runner, statements } = recording(storage.storage, engine === "postgres");
    const outbox = new Outbox(runner, () => Date.now(), undefined, { leaseOwner: storage.workerOf(storage.storage) });

    // Warm: PostgreSQL plans a prepared statement generically from its sixth run on.
    for (let round = 0; round < 6; round++) expect(await outbox.claim("t", CLAIM, 60_000, () => true)).toHaveLength(CLAIM);
    statements.length = 0;
    const claimed = await outbox.claim("t", CLAIM, 60_000, () => true);

    expect(claimed).toHaveLength(CLAIM);
    expect(claimed.every((d) => d.entity === "invoice" && d.claimSeq! > 0)).toBe(true);
    const texts = statements.map((s) => s.text.slice(0, 70));
    expect(texts.length, texts.join("\n")).toBeLessThanOrEqual(8);
    if (engine === "postgres") {
      // The claim's own deliveries (and the one after them that ends the ready scan; its records' deliveries), never
      // the tenant's 1,000 pending, nor the other tenant's.
      for (const s of statements) expect(s.rows!.get("deliveries") ?? 0, s.text.slice(0, 90)).toBeLessThanOrEqual(2 * CLAIM + 1);
    }
  }, 120_000);
});
