// A worker declared dead sends nothing more (issue 17, review finding 2). A worker frozen past dead_after (GC,
// SIGSTOP, a paused VM) or cut off from PostgreSQL but not from the target used to go on pushing what it held while
// the others took its leases back and created the same records. Now it fences itself (Worker.fence): no push starts
// and no request of one is sent unless its last heartbeat that reached the server was sent less than dead_after / 2
// ago, and never once it learned it was declared dead. A real PostgreSQL server (test/pg-server.ts), two workers with
// real heartbeats, each with a pool of its own, and a book of customers over real HTTP on loopback.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { NOT_SENT } from "../connectors/http.ts";
import type { Connector } from "../connectors/contract.ts";
import { openPostgres, type PostgresStorage } from "../agent/db/pg/open.ts";
import { Worker } from "../agent/db/pg/workers.ts";
import { Dispatcher } from "../agent/dispatcher.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { silentLogger } from "../agent/log.ts";
import { Metrics } from "../agent/metrics.ts";
import { Outbox } from "../agent/outbox.ts";
import { recordSource } from "../agent/record-source.ts";
import { TargetStateStore } from "../agent/target-state.ts";
import { bookConnector, startBookTarget } from "./book-target.ts";
import { customerEvent, waitFor } from "./helpers.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

const TIMING = { heartbeatMs: 100, deadAfterMs: 900 };

const unavailable = pgUnavailable();
if (unavailable) console.warn(`fenced worker tests skipped: ${unavailable}`);

let server: PgServer;
const pools: PostgresStorage[] = [];
let tenant = 0;

beforeAll(async () => {
  if (unavailable) return;
  server = await startPgServer();
  const admin = await openPostgres(server.url);
  pools.push(admin);
  const [row] = (await admin.client.unsafe(
    `INSERT INTO tenants (slug, name, api_token_hash, created_at, updated_at) VALUES ('acme', 'Acme', 'a', 1, 1) RETURNING id`,
  )) as { id: number }[];
  tenant = Number(row!.id);
}, 120_000);
afterAll(async () => {
  for (const p of pools) await p.close().catch(() => {});
  await server?.stop();
});

/** A worker of its own: a pool, a registered row with real heartbeats, and a dispatcher fenced by them. */
async function startWorker(connector: Connector) {
  const pool = await openPostgres(server.url);
  pools.push(pool);
  const worker = await Worker.register(pool.client, TIMING);
  worker.start();
  const outbox = new Outbox(pool.runner(tenant), Date.now, 900_000, { leaseOwner: worker.id });
  const dispatcher = new Dispatcher(
    "book",
    connector,
    outbox,
    {
      concurrency: 2,
      leaseMs: 60_000,
      backoff: { baseMs: 10, maxMs: 50 },
      idlePollMs: 20,
      keyPrefix: `k-${worker.id}`,
      targetState: new TargetStateStore(outbox.runner),
      soleWorker: false,
      fence: () => worker.fence(),
      lateAnswerWaitMs: 1_000,
    },
    silentLogger,
    new Metrics(),
    recordSource(outbox.runner),
  );
  return { pool, worker, outbox, dispatcher };
}

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
    const pool = await openPostgres(server.url);
    pools.push(pool);
    const worker = await Worker.register(pool.client, TIMING);
    expect(await worker.heartbeat()).toBe(true);
    expect(worker.fence()).toBeNull();
    await pool.client.unsafe("DELETE FROM workers WHERE id = $1", [worker.id]); // what the recovery of a dead worker does
    expect(await worker.heartbeat()).toBe(false);
    expect(worker.fence()).toBe(`worker ${worker.id} was declared dead by the others; its leases were taken back`);
  });
});
