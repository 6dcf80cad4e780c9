// A worker declared dead sends nothing more (issue 17, review finding 2). A worker frozen past dead_after (GC,
// SIGSTOP, a paused VM) or cut off from PostgreSQL but not from the target used to go on pushing what it held while
// the others took its leases back and created the same records. Now it fences itself (Worker.fence): no push starts
// and no request of one is sent unless its last heartbeat that reached the server was sent less than dead_after / 2
// ago, and never once it learned it was declared dead. A real PostgreSQL server (test/pg-server.ts), two workers with
// real heartbeats, each with a pool of its own, and a book of customers over real HTTP on loopback.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { NOT_SENT } from "../connectors/http.ts";
import type { Connector } from "../connectors/contract.ts";
import { Worker } from "../agent/db/pg/workers.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { bookConnector, startBookTarget } from "./book-target.ts";
import { customerEvent, waitFor } from "./helpers.ts";
import { type HostedCluster, startHostedCluster, startHostedWorker } from "./hosted-cluster.ts";
import { pgUnavailable } from "./pg-server.ts";

const TIMING = { heartbeatMs: 100, deadAfterMs: 900 };

const unavailable = pgUnavailable();
if (unavailable) console.warn(`fenced worker tests skipped: ${unavailable}`);

let cluster: HostedCluster;

beforeAll(async () => {
  if (!unavailable) cluster = await startHostedCluster();
}, 120_000);
afterAll(() => cluster?.stop());

/** A worker of its own (test/hosted-cluster.ts), started by the test. */
const startWorker = (connector: Connector) => startHostedWorker(cluster, { target: "book", connector, timing: TIMING, start: false });

/** A push that waits at `beforeCreate` until let go (a frozen process, or one waiting for the rate limiter), and its error. */
function heldConnector(url: string) {
  let letGo = () => {};
  const gate = new Promise<void>((resolve) => (letGo = resolve));
  const state: { waiting: boolean; error: unknown } = { waiting: false, error: null };
  const inner = bookConnector(url, async () => {
    state.waiting = true;
    await gate;
  });
  const connector: Connector = {
    ...inner,
    push: (e, p, ctx) =>
      inner.push(e, p, ctx).catch((err) => {
        state.error = err;
        throw err;
      }),
  };
  return { connector, state, letGo };
}

describe.skipIf(!!unavailable)("a worker the others declared dead sends nothing more", () => {
  test("cut off from PostgreSQL, not from the target: its push under way is refused; the other worker books the record once", async () => {
    const book = startBookTarget();
    const held = heldConnector(book.url);
    const a = await startWorker(held.connector);
    expect(a.worker.fence()).toBeNull();
    const parsed = parseEvents([customerEvent(1)]);
    if (!parsed.ok) throw new Error("the test's event does not parse");
    await new IntakeWriter(a.outbox, () => ["book"]).submit(parsed.events);
    a.dispatcher.start();
    await waitFor("worker A's push waiting to create", () => held.state.waiting);
    await a.pool.close(); // A is cut off from the database: its heartbeats fail from now on
    const b = await startWorker(bookConnector(book.url));
    b.dispatcher.start();
    const status = () =>
      b.outbox.runner.get<{ status: string; remoteId: string | null }>("SELECT status, remote_id AS remoteId FROM deliveries");
    // B declares A dead once the server has not heard from it for dead_after, takes its lease back and books the record.
    await waitFor("worker B's push done", async () => (await status())?.status === "done");
    expect(a.worker.fence()).toMatch(/no heartbeat of worker \d+ has reached the database/);
    held.letGo(); // A's push goes on: its create is not sent
    await waitFor("worker A's push refused", () => held.state.error);
    expect((held.state.error as { code?: string }).code).toBe(NOT_SENT);
    await b.dispatcher.stop(1_000);
    await b.worker.stop();
    await a.dispatcher.stop(0).catch(() => {}); // its database is gone: nothing to write or release
    await a.worker.stop().catch(() => {});
    expect(book.posts()).toBe(1);
    expect(book.creates.get("1")).toBe(1);
    expect(await status()).toEqual({ status: "done", remoteId: "1" });
    book.stop();
  }, 60_000);

  test("a worker whose heartbeat finds its row gone (declared dead) is fenced for good", async () => {
    const pool = await cluster.pool();
    const worker = await Worker.register(pool.client, TIMING);
    expect(await worker.heartbeat()).toBe(true);
    expect(worker.fence()).toBeNull();
    await pool.client.unsafe("DELETE FROM workers WHERE id = $1", [worker.id]); // what the recovery of a dead worker does
    expect(await worker.heartbeat()).toBe(false);
    expect(worker.fence()).toBe(`worker ${worker.id} was declared dead by the others; its leases were taken back`);
  });
});
