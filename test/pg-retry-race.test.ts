// A person's retry (status page, API, hosted or not) on PostgreSQL, where another worker may change the delivery
// between the retry's read of its status and its write: the retry reopens only a delivery still retryable when it is
// written. Before, the write (UPDATE … WHERE id) set whatever the row had become to pending: a needs_action delivery
// superseded meanwhile by the record's newer version came back (the old version pushed after the new one, and a finished
// delivery reopened, which retention's rules rely on never happening), and a pending one leased meanwhile by a dispatcher
// became pending while its push was under way (claimed and pushed twice). SQLite's write transaction holds the database,
// so there it cannot happen. Real parts: a real PostgreSQL server, intake and the outbox on a tenant's runner.
import { describe, expect, test } from "bun:test";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { IntakeStore, prepareEvents } from "../agent/intake-store.ts";
import { parseEvents } from "../agent/intake.ts";
import { Outbox } from "../agent/outbox.ts";
import { TenantStore } from "../agent/tenants/store.ts";
import { customerEvent, waitFor } from "./helpers.ts";
import { hostedInProcess } from "./hosted-in-process.ts";

const hosted = hostedInProcess("a retry racing another worker");

async function tenant(slug: string): Promise<SqlRunner> {
  const { tenant } = await new TenantStore(hosted.storage.client).add({ slug, config: {} }, {});
  return hosted.storage.runner(tenant.id);
}

const intake = (runner: SqlRunner, ...events: unknown[]) => {
  const parsed = parseEvents(events);
  if (!parsed.ok) throw new Error(`fixture: ${JSON.stringify(parsed)}`);
  return new IntakeStore(new Outbox(runner), () => ["books"]).storeGroup([prepareEvents(parsed.events)]);
};

const deliveryOf = (runner: SqlRunner, eventId: string) =>
  runner.get<{ id: number; status: string }>(
    `SELECT d.id, d.status FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE e.event_id = ?1`,
    eventId,
  );

/** Sessions of this file's server waiting for a row lock. */
async function waitingOnLocks(): Promise<number> {
  const [row] = await hosted.storage
    .client`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`;
  return row.n;
}

/**
 * Retries delivery `id` while another worker's transaction (`change`) has changed it and not yet committed: the retry
 * reads the status committed before, and its write waits for that transaction, which commits once the write waits.
 */
async function retryRacing(runner: SqlRunner, id: number, change: (tx: SqlRunner) => Promise<unknown>) {
  let retry!: Promise<{ ok: boolean; status?: string }>;
  await runner.transaction(async (tx) => {
    await change(tx);
    retry = new Outbox(runner).retry(id);
    await waitFor("the retry's write to wait for the other transaction", async () => (await waitingOnLocks()) === 1);
  });
  return retry;
}

describe.skipIf(!!hosted.unavailable)("a retry while another worker changes the delivery", () => {
  test("a delivery that needs action, superseded meanwhile by the record's newer version, stays superseded", async () => {
    const runner = await tenant("superseded");
    await intake(runner, customerEvent(1, { name: "One" }, "c1-v1"));
    const v1 = (await deliveryOf(runner, "c1-v1"))!;
    await runner.run(`UPDATE deliveries SET status = 'needs_action', error_code = 'x' WHERE id = ?1`, v1.id);

    const r = await retryRacing(runner, v1.id, (tx) => intake(tx, customerEvent(1, { name: "One B" }, "c1-v2")));
    expect(r).toEqual({ ok: false, status: "superseded" });
    expect((await deliveryOf(runner, "c1-v1"))!.status).toBe("superseded");
    expect((await deliveryOf(runner, "c1-v2"))!.status).toBe("pending");
  });

  test("a pending delivery leased meanwhile by a dispatcher stays in flight under its lease", async () => {
    const runner = await tenant("leased");
    await intake(runner, customerEvent(2, {}, "c2-v1"));
    const d = (await deliveryOf(runner, "c2-v1"))!;
    const r = await retryRacing(runner, d.id, (tx) =>
      tx.run(
        `UPDATE deliveries SET status = 'in_flight', lease_until = ?2, attempts = attempts + 1 WHERE id = ?1`,
        d.id,
        Date.now() + 60_000,
      ),
    );
    expect(r).toEqual({ ok: false, status: "in_flight" });
    expect(await runner.get(`SELECT status, lease_until IS NOT NULL AS leased FROM deliveries WHERE id = ?1`, d.id)).toEqual({
      status: "in_flight",
      leased: true,
    });
  });
});
