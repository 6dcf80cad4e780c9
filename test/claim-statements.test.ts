// A claim's cost does not grow with what it claims, nor with the tenant's other rows (issue 17, the bench's claim
// figure): one statement checks all of the claimed deliveries' records (an older open delivery of the same record,
// a dependency open or linked), not one or two per delivery; and on PostgreSQL, under row-level security, no
// statement of the claim reads more rows than the claim's own (the lease once hash-joined all of the tenant's
// deliveries: its join was on CAST(value AS BIGINT), which is not leakproof). Both engines: a real SQLite file, and
// a tenant on a real PostgreSQL server beside another whose rows are interleaved with its own.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { Outbox } from "../agent/outbox.ts";
import { workerEngines } from "./engines.ts";
import { tempDir } from "./helpers.ts";
import { agentStatements } from "./sql-statements.ts";
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

// A claim with a credit note among its ready deliveries reads the credit notes of the invoices they credit
// (creditsUnderWay, creditPicture): by index probes per invoice, never every credit note or invoice the file holds.
// SQLite plans without statistics (kontobro runs no ANALYZE), so the plan of an empty file is the plan it runs with.
test("the claim's credit statements probe records and deliveries per invoice on SQLite, walking none", () => {
  const db = openDatabase(join(tempDir(), "kontobro.db"));
  const OPEN_PARAMS: Record<string, unknown[]> = { creditsUnderWay: ["t", '["100"]', 0], creditPicture: ["t", '["100"]'] };
  const outbox = agentStatements().filter((s) => s.file === "agent/outbox.ts" && s.builtFrom.length === 0);
  for (const [name, params] of Object.entries(OPEN_PARAMS)) {
    const statement = outbox.find((s) => s.text.includes(name === "creditPicture" ? "'doubt'" : "ORDER BY rank DESC"));
    expect(statement, name).toBeDefined();
    const plan = (db.$client.query(`EXPLAIN QUERY PLAN ${statement!.text}`).all(...(params as never[])) as { detail: string }[]).map(
      (r) => r.detail,
    );
    const walks = plan.filter(
      (d) => /^SCAN (r|d|deliveries|records|links)\b/.test(d) || /\((entity|target)=\?\)$/.test(d) || /\(target=\? AND status=\?\)/.test(d),
    );
    expect(walks, `${name}:\n${plan.join("\n")}`).toEqual([]);
  }
  db.$client.close();
});
