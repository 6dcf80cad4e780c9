// An intake group's reads do not grow with the tenant's stored rows (the bench's batched intake on PostgreSQL, issue
// 17 item 5): on PostgreSQL, under row-level security and on tables never analyzed (a new installation, a first
// import), no statement of a group reads more of `events` or `records` than the group's own rows. The reads were
// `key IN (SELECT value FROM json_each(?))`, which the planner, guessing a tenant's records at one row, ran with the
// records outside: every stored record compared with every key of the list (1.2 s for a batch of 1,000 against
// 10,000 records). Both engines: a real SQLite file (the decisions), and a tenant on a real PostgreSQL server beside
// another whose rows are interleaved with its own.
import { describe, expect, test } from "bun:test";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { IntakeStore, prepareEvents } from "../agent/intake-store.ts";
import { parseEvents } from "../agent/intake.ts";
import { Outbox } from "../agent/outbox.ts";
import { workerEngines } from "./engines.ts";
import { customerEvent, invoiceEvent } from "./helpers.ts";
import { recording } from "./plan-rows.ts";

const { engines, open } = workerEngines("intake's statements");

const STORED = 2_000;

const prepared = (raw: unknown[]) => {
  const parsed = parseEvents(raw);
  if (!parsed.ok) throw new Error(`fixture: ${JSON.stringify(parsed)}`);
  return prepareEvents(parsed.events);
};

/** Customers and invoices `from`…`from + n - 1` (each invoice its customer's), as one request. */
const request = (from: number, n: number, version = "") =>
  prepared(
    Array.from({ length: n }, (_, k) => [
      customerEvent(from + k, { name: `Customer ${from + k}${version}` }, `c-${from + k}${version}`),
      invoiceEvent(
        from + k,
        from + k,
        undefined,
        { lines: [{ text: `Work${version}`, quantity: 1, unitPrice: 100 }] },
        `i-${from + k}${version}`,
      ),
    ]).flat(),
  );

/** Stores `STORED` customers and invoices in groups of 500, `other`'s interleaved when given. */
async function fill(store: IntakeStore, other?: IntakeStore): Promise<void> {
  for (let from = 1; from <= STORED; from += 250) {
    await store.storeGroup([request(from, 250)]);
    await other?.storeGroup([request(from, 250)]);
  }
}

describe.each(engines)("an intake group on %s", (engine) => {
  test(`decides as before${engine === "postgres" ? ", reading no more of the tenant's events and records than its own (tables not analyzed)" : ""}`, async () => {
    const storage = await open(engine);
    const store = (runner: SqlRunner) => new IntakeStore(new Outbox(runner), () => ["t"]);
    await fill(store(storage.storage), engine === "postgres" ? store((await open(engine)).storage) : undefined);
    const { runner, statements } = recording(storage.storage, engine === "postgres");

    // 50 customers and 50 invoices stored before (new versions), as many new, a repeat, a reused id, a PSA id taken.
    const group = [...request(STORED - 49, 100, "-v2"), ...request(1, 1)];
    const [reused] = prepared([customerEvent(7, { name: "Other" }, "c-8")]);
    const [taken] = prepared([invoiceEvent(STORED + 500, 1, undefined, { psaId: "PSA-INV-3" }, "i-taken")]);
    const outcomes = await store(runner).storeGroup([group, [reused!], [taken!]]);

    expect(outcomes[0]).toEqual({
      stored: group.map((e) => ({ id: e.id, status: e.id.endsWith("-v2") ? "accepted" : "duplicate" })),
    });
    expect(outcomes[1]).toMatchObject({ conflicts: [{ id: "c-8", problems: [{ code: "event.id_reused" }] }] });
    expect(outcomes[2]).toMatchObject({ conflicts: [{ id: "i-taken", problems: [{ code: "invoice.psa_id_taken" }] }] });
    const versions = await storage.storage.all<{ key: string; version: number }>(
      `SELECT key, version FROM records WHERE entity = 'customer' AND key IN ('1950', '2000', '2001', '2050') ORDER BY key`,
    );
    expect(versions).toEqual([
      { key: "1950", version: 1 },
      { key: "2000", version: 2 },
      { key: "2001", version: 1 },
      { key: "2050", version: 1 },
    ]);
    if (engine === "postgres") {
      // The group's 202 events and their 202 records (the PSA ids and numbers its invoices name among them), never the
      // tenant's 4,000 stored ones.
      const bound = 2 * group.length;
      for (const s of statements)
        for (const table of ["events", "records"])
          expect(s.rows!.get(table) ?? 0, `${table}: ${s.text.slice(0, 90)}`).toBeLessThanOrEqual(bound);
    }
  }, 120_000);
});
