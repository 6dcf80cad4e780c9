// A round's delivered pushes are written in one UPDATE, not one per delivery (issue 16, goal 3: the done statement
// per delivery was the largest part of a dispatcher round's SQL), and each still lands only while its lease is held:
// one whose lease was given up and taken again writes nothing, and gets no attempt row, link or count. Both engines:
// a real SQLite file, and a tenant on a real PostgreSQL server.
import { describe, expect, test } from "bun:test";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { Outbox } from "../agent/outbox.ts";
import { enqueueCustomers } from "./dispatch-fixture.ts";
import { workerEngines } from "./engines.ts";

const { engines, open } = workerEngines("a round's delivered outcomes");

/** The runner, counting the statements run through it and its transactions. */
function counting(real: SqlRunner) {
  let statements = 0;
  const wrap = (r: SqlRunner): SqlRunner => ({
    ...r,
    all: (text, ...p) => {
      statements++;
      return r.all(text, ...p);
    },
    get: (text, ...p) => {
      statements++;
      return r.get(text, ...p);
    },
    run: (text, ...p) => {
      statements++;
      return r.run(text, ...p);
    },
    transaction: (fn) => r.transaction((tx) => fn(wrap(tx))),
    transactionDurableLater: (fn) => r.transactionDurableLater((tx) => fn(wrap(tx))),
  });
  return { runner: wrap(real), count: () => statements, reset: () => (statements = 0) };
}

describe.each(engines)("a round's delivered outcomes, on %s", (engine) => {
  test("fifty delivered pushes are a handful of statements; one whose lease was taken again writes nothing", async () => {
    const storage = await open(engine);
    const counted = counting(storage.storage);
    const outbox = new Outbox(counted.runner, Date.now, 15 * 60_000, { leaseOwner: storage.workerOf(storage.storage) });
    await enqueueCustomers(
      outbox,
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    const claimed = await outbox.claim("t", 50, 60_000, () => true);
    expect(claimed).toHaveLength(50);
    // Customer 7's lease was given back and taken again (another attempt): its answer here is a late one.
    await storage.storage.run("UPDATE deliveries SET attempts = attempts + 1 WHERE key = '7'");

    counted.reset();
    await outbox.complete(claimed.map((d) => ({ delivery: d, outcome: { kind: "done", remoteId: `R-${d.key}`, payloadHash: "h" } })));
    // Before: 50 UPDATEs, one per delivery, and the rest; then 10, with one statement each for whether the target has
    // deliveries needing action and whether it has any waiting, now one for both.
    expect(counted.count()).toBeLessThanOrEqual(9);

    const rows = await storage.storage.all<{ key: string; status: string; remoteId: string | null }>(
      "SELECT key, status, remote_id AS remoteId FROM deliveries ORDER BY id",
    );
    expect(rows.filter((r) => r.status === "done")).toHaveLength(49);
    expect(rows.find((r) => r.key === "7")).toEqual({ key: "7", status: "in_flight", remoteId: null });
    expect(rows.find((r) => r.key === "8")).toEqual({ key: "8", status: "done", remoteId: "R-8" });
    const attempts = await storage.storage.all<{ key: string }>(
      "SELECT d.key FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE a.outcome = 'delivered'",
    );
    expect(attempts).toHaveLength(49);
    expect(attempts.some((a) => a.key === "7")).toBe(false);
    const links = await storage.storage.all<{ key: string }>("SELECT key FROM links WHERE target = 't'");
    expect(links.map((l) => l.key).sort()).toEqual(
      rows
        .filter((r) => r.key !== "7")
        .map((r) => r.key)
        .sort(),
    );
    const stats = await storage.storage.get<{ n: number }>("SELECT sum(delivered) AS n FROM delivery_stats WHERE target = 't'");
    expect(Number(stats!.n)).toBe(49);
  });
});
