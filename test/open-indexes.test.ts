// Done deliveries are in none of the outbox's indexes of open work (issue 16): deliveries_ready and deliveries_status_id
// hold the rows not done, deliveries_record those neither done nor superseded (agent/db/open-deliveries.ts), so a
// delivery that is done leaves each with one delete. SQLite uses such a partial index only for a query whose WHERE has
// the index's condition as written: every statement of the agent that reads deliveries keeps an index plan (a
// statement that lost its condition scans the table, and fails here). On PostgreSQL, under row-level security, the
// hot statements read the open rows and the record's own, never the tenant's done ones. Real SQLite file, real server.
import { describe, expect, test } from "bun:test";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { listDeliveries } from "../agent/queries.ts";
import { recordDeliveries } from "../agent/record-queries.ts";
import { workerEngines } from "./engines.ts";
import { planRows } from "./plan-rows.ts";
import { agentStatements } from "./sql-statements.ts";

const { engines, open } = workerEngines("the open-work indexes");

const CUSTOMERS = 2_000;
/** Customers 1..DONE are delivered, the rest pending; customer 1 has VERSIONS delivered versions more. */
const DONE = 1_950;
const VERSIONS = 5;

/** Events and deliveries to target t (and u for odd customers) of a long-running database: mostly done. */
async function fill(runner: SqlRunner): Promise<void> {
  const numbers = `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ${CUSTOMERS + VERSIONS})`;
  await runner.transaction(async (tx) => {
    await tx.run(
      `${numbers} INSERT INTO events (event_id, type, entity, key, payload, received_at)
       SELECT 'e-' || CAST(n AS TEXT), 'customer.upserted', 'customer', CAST(CASE WHEN n > ${CUSTOMERS} THEN 1 ELSE n END AS TEXT), '{}', n FROM g`,
    );
    await tx.run(
      `INSERT INTO deliveries (event_seq, target, entity, key, status, next_attempt_at, created_at, updated_at, done_at)
       SELECT seq, t.name, entity, key, CASE WHEN CAST(key AS INTEGER) <= ${DONE} THEN 'done' ELSE 'pending' END, 0, 0, 0,
              CASE WHEN CAST(key AS INTEGER) <= ${DONE} THEN 1 END
         FROM events JOIN (SELECT 't' AS name UNION ALL SELECT 'u') t ON t.name = 't' OR CAST(key AS INTEGER) % 2 = 1`,
    );
  });
  await runner.run("ANALYZE");
}

/** The statement of `file` that contains `part` (one only). */
function statement(file: string, part: string): string {
  const found = agentStatements().filter((s) => s.file === file && s.text.includes(part));
  if (found.length !== 1) throw new Error(`${found.length} statements of ${file} contain "${part}"`);
  return found[0]!.text;
}

describe("on SQLite", () => {
  test("every statement of the agent that reads deliveries keeps an index plan with done rows out of the open-work indexes", async () => {
    const storage = await open("sqlite");
    await fill(storage.storage);
    const c = storage.db.$client;
    const plan = (text: string, params: unknown[] = []) =>
      (c.query(`EXPLAIN QUERY PLAN ${text}`).all(...(params as never[])) as { detail: string }[]).map((r) => r.detail).join("\n");
    const scans: string[] = [];
    const check = (text: string, params: unknown[] = []) => {
      const p = plan(text, params);
      // A covering index scanned whole is a count over every row (deliveryCounts): still an index, never the table. (The
      // claim's `d` is its subquery's rows, read by an index.) A bare SEARCH is min() or max() walking the table in its
      // order: one probe for max(id), a scan for any other column.
      const bare = /^SEARCH deliveries$/m.test(p) && !/max\(id\)/.test(text);
      if (bare || /^SCAN deliveries$/m.test(p) || (/^SCAN d$/m.test(p) && !/^CO-ROUTINE d$/m.test(p)))
        scans.push(`${text.replace(/\s+/g, " ").slice(0, 120)}\n    ${p.replace(/\n/g, " | ")}`);
    };
    let checked = 0;
    for (const s of agentStatements()) {
      // The one-off upgrade of record keys (agent/db/rekey.ts) runs once, before there is a backlog.
      if (s.builtFrom.length > 0 || !/\bdeliveries\b/.test(s.text) || s.file === "agent/db/rekey.ts") continue;
      check(s.text);
      checked++;
    }
    // listDeliveries builds its statement at run time: each filter it takes.
    const built: { text: string; params: unknown[] }[] = [];
    const capture: SqlRunner = {
      ...sqliteRunner(c),
      all: async (text: string, ...params: unknown[]) => {
        built.push({ text, params });
        return [];
      },
    } as SqlRunner;
    for (const status of [undefined, "pending", "in_flight", "needs_action", "superseded", "done"] as const)
      for (const target of [undefined, "t"]) await listDeliveries(capture, { status, target, beforeId: 10_000 });
    for (const b of built) check(b.text, b.params);
    expect(checked).toBeGreaterThan(40);
    expect(scans).toEqual([]);
    // The indexes hold what their conditions say: a delivery done is in none of the three.
    const indexes = c.query(`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries'`).all() as {
      name: string;
      sql: string;
    }[];
    const where = Object.fromEntries(indexes.map((i) => [i.name, i.sql.replace(/^.* WHERE /s, "")]));
    expect(where.deliveries_ready).toBe("status <> 'done'");
    expect(where.deliveries_status_id).toBe("status <> 'done'");
    expect(indexes.find((i) => i.name === "deliveries_record")!.sql).toContain("(status = 'done' OR status = 'superseded')");
    // What the record page reads of customer 1: all its deliveries, done ones too, found by its events.
    expect((await recordDeliveries(storage.storage, "t", "customer", "1")).map((d) => d.status)).toEqual(Array(VERSIONS + 1).fill("done"));
  }, 60_000);
});

describe.each(engines.filter((e) => e === "postgres"))("on %s, a tenant whose deliveries are mostly done", (engine) => {
  test("the hot statements read its open deliveries and the record's own, never its done ones", async () => {
    const { storage } = await open(engine);
    await fill(storage);
    const pending = CUSTOMERS - DONE;
    const cases: [string, string, unknown[], number][] = [
      // The claim's ready read (and the row that ends it), its record check, when the next is due, whether any needs action
      // or waits.
      ["agent/outbox.ts", "ORDER BY next_attempt_at, id LIMIT ?3) d", ["t", Date.now(), 50], 51],
      ["agent/outbox.ts", "WITH asked AS MATERIALIZED", ["t", JSON.stringify([{ e: "customer", k: String(CUSTOMERS), b: 1e15 }])], 1],
      ["agent/outbox.ts", "min(next_attempt_at)", ["t"], pending],
      // The credit notes under way of an invoice (a claim with a credit note among its ready ones): that invoice's own.
      ["agent/outbox.ts", "WITH invoices AS MATERIALIZED", ["t", JSON.stringify(["1"]), Date.now()], 0],
      ["agent/outbox.ts", "AS needsAction", ["t"], 0],
      // Any delivery of a record, done ones too: the record's own (its events' deliveries to both targets).
      ["agent/outbox.ts", "SELECT 1 AS found FROM events e JOIN deliveries d", ["t", "customer", "1"], 2 * (VERSIONS + 1)],
      // The queue's counts of open work.
      ["agent/queue-progress.ts", "status IN ('pending', 'in_flight', 'waiting')", ["t"], pending],
      ["agent/queue-progress.ts", "status = 'needs_action'", ["t", 0], 0],
      // An alert's resolution: the record's newest delivery, done ones too.
      ["agent/notify/alerts.ts", "ORDER BY d.id DESC LIMIT 1", ["t", "customer", "1"], 2 * (VERSIONS + 1)],
    ];
    for (const [file, part, params, most] of cases) {
      const read = (await planRows(storage, statement(file, part), params)).get("deliveries") ?? 0;
      expect(read, `${file}: ${part}`).toBeGreaterThanOrEqual(0);
      expect(read, `${file}: ${part}`).toBeLessThanOrEqual(most);
    }
    // The record page: customer 1's deliveries to t, done ones too, by its events.
    expect((await recordDeliveries(storage, "t", "customer", "1")).map((d) => d.status)).toEqual(Array(VERSIONS + 1).fill("done"));

    // Retention (agent/hosted/finished-work-prune.ts): a chunk of 50 old events, found by events_unpruned, and their
    // deliveries (to t, and u for odd customers), never the tenant's other events or deliveries.
    const chunk = 50;
    const file = "agent/hosted/finished-work-prune.ts";
    const seqs = JSON.stringify(
      (await storage.all<{ seq: number }>(`SELECT seq FROM events ORDER BY seq LIMIT ${chunk}`)).map((r) => r.seq),
    );
    const retention: [string, unknown[], string, number][] = [
      // (and the row after them: the sort by seq among events of the same time reads one more)
      ["ORDER BY received_at, seq LIMIT ?4", [1e15, 0, 0, chunk], "events", chunk + 1],
      // (an UPDATE's own plan node counts the rows it changes once more)
      ["UPDATE events SET payload = ''", [seqs, 1e15], "events", 2 * chunk],
      ["UPDATE events SET payload = ''", [seqs, 1e15], "deliveries", 2 * chunk],
      ["DELETE FROM deliveries WHERE event_seq IN", [seqs, 1e15], "deliveries", 2 * chunk],
    ];
    for (const [part, params, table, most] of retention) {
      const read = (await planRows(storage, statement(file, part), params)).get(table) ?? 0;
      expect(read, `${file}: ${part} (${table})`).toBeLessThanOrEqual(most);
    }
  }, 120_000);
});
