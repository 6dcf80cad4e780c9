// GET /api/v1/deliveries?status=done (listDeliveries): the newest done deliveries, read by an index of done ones, not
// by walking everything newer than them. Done rows left deliveries_status_id (45e0cbc); with a backlog above them (an
// initial sync queued after months of work) the listing walked the whole backlog on the primary key, or, with
// statistics, read and sorted every done row: 100-760 ms on the agent's main thread for a page of 100. Real SQLite
// file, real PostgreSQL server.
import { describe, expect, test } from "bun:test";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { listDeliveries } from "../agent/queries.ts";
import { workerEngines } from "./engines.ts";
import { planRows } from "./plan-rows.ts";

const { engines, open } = workerEngines("listing done deliveries");

const DONE = 2_000;
const BACKLOG = 20_000;

/** DONE delivered customers, then a backlog of BACKLOG pending ones (newer ids), to targets t and u. */
async function fill(runner: SqlRunner): Promise<void> {
  const numbers = `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ${DONE + BACKLOG})`;
  await runner.transaction(async (tx) => {
    await tx.run(`${numbers} INSERT INTO events (event_id, type, entity, key, payload, received_at)
       SELECT 'e-' || CAST(n AS TEXT), 'customer.upserted', 'customer', CAST(n AS TEXT), '{}', n FROM g`);
    await tx.run(`INSERT INTO deliveries (event_seq, target, entity, key, status, next_attempt_at, created_at, updated_at, done_at)
       SELECT seq, t.name, entity, key, CASE WHEN seq <= ${DONE} THEN 'done' ELSE 'pending' END, 0, 0, 0, CASE WHEN seq <= ${DONE} THEN 1 END
         FROM events JOIN (SELECT 't' AS name UNION ALL SELECT 'u') t ON 1 = 1 ORDER BY seq, t.name`);
  });
}

/** The statements listDeliveries runs for done ones (all targets, one target, the next page). */
async function doneListings(runner: SqlRunner): Promise<{ text: string; params: unknown[]; rows: number }[]> {
  const out: { text: string; params: unknown[]; rows: number }[] = [];
  const capture = {
    ...runner,
    all: async (text: string, ...params: unknown[]) => {
      const rows = await runner.all(text, ...params);
      out.push({ text, params, rows: rows.length });
      return rows;
    },
  } as SqlRunner;
  for (const filter of [{}, { target: "t" }, { beforeId: DONE }]) await listDeliveries(capture, { status: "done", limit: 50, ...filter });
  return out;
}

describe("on SQLite, done deliveries below a backlog", () => {
  for (const stats of [false, true])
    test(`a page of done ones is an index range${stats ? " (with ANALYZE's statistics)" : ""}`, async () => {
      const { db } = await open("sqlite");
      await fill(sqliteRunner(db.$client));
      if (stats) db.$client.exec("ANALYZE");
      for (const s of await doneListings(sqliteRunner(db.$client))) {
        expect(s.rows).toBe(50);
        const plan = (db.$client.query(`EXPLAIN QUERY PLAN ${s.text}`).all(...(s.params as never[])) as { detail: string }[])
          .map((r) => r.detail)
          .join(" | ");
        // Not the table walked back through the backlog, nor every done row read and sorted: an index of done ones.
        expect(plan).not.toMatch(/SCAN d( \||$)|TEMP B-TREE/);
        expect(plan).toMatch(/^(SCAN|SEARCH) d USING INDEX deliveries_done_id\b/);
      }
    });
});

describe.each(engines.filter((e) => e === "postgres"))("on %s, done deliveries below a backlog", (engine) => {
  test("a page of done ones reads about the page", async () => {
    const { storage } = await open(engine);
    await fill(storage);
    await storage.run("ANALYZE");
    for (const s of await doneListings(storage)) {
      expect(s.rows).toBe(50);
      const read = await storage.transaction((tx) => planRows(tx, s.text, s.params));
      expect(read.get("deliveries") ?? 0, s.text).toBeLessThanOrEqual(2 * 50 + 2);
    }
  }, 120_000);
});
