// Many workers on one PostgreSQL (issue 17, agent/db/pg/workers.ts and dead-workers.ts), on a real server
// (test/pg-server.ts) with real worker processes (test/pg-worker-child.ts): a worker that is killed has its
// in_flight deliveries in every tenant put back to pending and uncertain by a live one; a live worker's slow push is
// never taken; workers are judged by the server's clock, not their own; a dead worker's late outcome lands nowhere.
// Leases and outcomes are written here with the statements the outbox will use on PostgreSQL (agent/db/pg/README.md).
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { leaseHeldBy } from "../agent/db/lease-owner.ts";
import { openPostgres, type PostgresStorage } from "../agent/db/pg/open.ts";
import { sqliteRunner, type SqlRunner } from "../agent/db/pg/runner.ts";
import { Worker, workerTimingProblem } from "../agent/db/pg/workers.ts";
import { tempDir, waitFor } from "./helpers.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";
import { jsonLines } from "./json-lines.ts";

const HEARTBEAT_MS = 250;
const DEAD_AFTER_MS = 3_000;
const HOUR = 3_600_000;
/** Every beat of the in-process workers that failed: none should. */
const beatErrors: unknown[] = [];
const TIMING = { heartbeatMs: HEARTBEAT_MS, deadAfterMs: DEAD_AFTER_MS, onError: (e: unknown) => beatErrors.push(e) };
const CHILD = join(import.meta.dir, "pg-worker-child.ts");

/** How a push's outcome is written: only while this worker still holds the lease (?4; NULL on SQLite). */
const DONE = `UPDATE deliveries SET status = 'done', lease_until = NULL, lease_owner = NULL, uncertain = 0, remote_id = ?2, done_at = ?3, updated_at = ?3
  WHERE id = ?1 AND status = 'in_flight' AND ${leaseHeldBy(4)}`;
/** A claim's lease, naming its worker. lease_until is long past: on PostgreSQL the heartbeat decides, not the lease's clock. */
const LEASE = `UPDATE deliveries SET status = 'in_flight', lease_until = 1, lease_owner = ?2, attempts = attempts + 1, updated_at = ?3
  WHERE id IN (SELECT CAST(value AS BIGINT) FROM json_each(?1)) AND status = 'pending'`;

test("heartbeat and dead-after settings that would declare a live worker dead are refused, saying why", () => {
  expect(workerTimingProblem(5_000, 30_000)).toBeNull();
  expect(workerTimingProblem(5_000, 10_000)).toMatch(/fewer than three heartbeats; make dead-after at least 3 × the heartbeat/);
  expect(workerTimingProblem(0, 30_000)).toMatch(/at least 10/);
});

test("SQLite: lease_owner is there and NULL, and an outcome lands as before (one process, no worker)", async () => {
  const db = openDatabase(join(tempDir(), "k.db"));
  try {
    const sqlite = sqliteRunner(db.$client);
    const [id] = await addDeliveries(sqlite, "ledger", ["c-1"]);
    await sqlite.run(LEASE, JSON.stringify([id]), null, 5);
    expect(await sqlite.get("SELECT status, lease_owner AS leaseOwner FROM deliveries WHERE id = ?1", id)).toEqual({
      status: "in_flight",
      leaseOwner: null,
    });
    expect(await sqlite.run(DONE, id, "r-1", 6, null)).toEqual({ changes: 1 });
  } finally {
    db.$client.close();
  }
});

const unavailable = pgUnavailable();
if (unavailable) console.warn(`PostgreSQL worker tests skipped: ${unavailable}`);

let server: PgServer;
let storage: PostgresStorage;
let tenants: Record<"acme" | "globex" | "initech", SqlRunner>;
const children: Subprocess[] = [];

beforeAll(async () => {
  if (unavailable) return;
  server = await startPgServer();
  storage = await openPostgres(server.url);
  const ids = (await storage.client.unsafe(
    `INSERT INTO tenants (slug, name, api_token_hash, created_at, updated_at)
     VALUES ('acme', 'Acme', 'a', 1, 1), ('globex', 'Globex', 'b', 1, 1), ('initech', 'Initech', 'c', 1, 1) RETURNING id`,
  )) as { id: number }[];
  const [acme, globex, initech] = ids.map((r) => storage.runner(r.id));
  tenants = { acme: acme!, globex: globex!, initech: initech! };
}, 120_000);
afterEach(() => {
  expect(beatErrors.map(String)).toEqual([]);
});
afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  await storage?.close();
  await server?.stop();
});

describe.skipIf(!!unavailable)("workers on PostgreSQL", () => {
  test("a worker registers on the server's clock, heartbeats, and leaves cleanly: its row goes", async () => {
    const before = await serverMs();
    const worker = await Worker.register(storage.client, TIMING);
    const row = async () =>
      (
        (await storage.client.unsafe(
          `SELECT host, pid, CAST(extract(epoch FROM started_at) * 1000 AS float8) AS started,
                  CAST(extract(epoch FROM heartbeat_at) * 1000 AS float8) AS heard FROM workers WHERE id = $1`,
          [worker.id],
        )) as { host: string; pid: number; started: number; heard: number }[]
      )[0];
    const first = (await row())!;
    expect(first).toMatchObject({ host: expect.any(String), pid: process.pid });
    expect(first.started).toBeGreaterThanOrEqual(before);
    expect(await worker.heartbeat()).toBe(true);
    expect((await row())!.heard).toBeGreaterThan(first.heard);
    expect(await worker.stop()).toEqual({
      workers: [{ id: worker.id, host: first.host, pid: process.pid }],
      deliveries: 0,
      runs: 0,
      probes: 0,
    });
    expect(await row()).toBeUndefined();
    expect(await worker.heartbeat()).toBe(false);
  });

  test("a killed worker's leases in every tenant go back to pending and uncertain; the live worker's slow push stays its own", async () => {
    // Two live workers beating (both recover: the dead one's leases are taken back once), one in a process of its own.
    const live = await Worker.register(storage.client, TIMING);
    const other = await Worker.register(storage.client, TIMING);
    const doomed = await spawnWorker();
    const acme = await addDeliveries(tenants.acme, "ledger", ["k-1", "k-2", "slow"]);
    const globex = await addDeliveries(tenants.globex, "books", ["k-3"]);
    await lease(tenants.acme, acme.slice(0, 2), doomed.id);
    await lease(tenants.globex, globex, doomed.id);
    await lease(tenants.acme, [acme[2]!], live.id);
    const leasedAt = await serverMs();

    // While it beats, nobody takes its leases.
    expect(await live.recoverDead()).toEqual({ workers: [], deliveries: 0, runs: 0, probes: 0 });
    expect(await states(tenants.acme)).toEqual([
      { id: acme[0], status: "in_flight", uncertain: 0, leaseOwner: doomed.id },
      { id: acme[1], status: "in_flight", uncertain: 0, leaseOwner: doomed.id },
      { id: acme[2], status: "in_flight", uncertain: 0, leaseOwner: live.id },
    ]);

    live.start();
    other.start();
    doomed.proc.kill("SIGKILL");
    await doomed.proc.exited;
    await waitFor("the killed worker's row to be gone", async () => !(await workerRow(doomed.id)), 30_000);

    expect(await states(tenants.acme)).toEqual([
      { id: acme[0], status: "pending", uncertain: 1, leaseOwner: null },
      { id: acme[1], status: "pending", uncertain: 1, leaseOwner: null },
      { id: acme[2], status: "in_flight", uncertain: 0, leaseOwner: live.id },
    ]);
    expect(await states(tenants.globex)).toEqual([{ id: globex[0], status: "pending", uncertain: 1, leaseOwner: null }]);
    // One "interrupted" attempt each, however many workers were recovering, naming the worker that stopped.
    for (const [runner, ids] of [
      [tenants.acme, acme.slice(0, 2)],
      [tenants.globex, globex],
    ] as const) {
      for (const id of ids) {
        const attempts = await runner.all<{ outcome: string; message: string }>(
          "SELECT outcome, message FROM delivery_attempts WHERE delivery_id = ?1",
          id,
        );
        expect(attempts).toEqual([{ outcome: "interrupted", message: expect.stringContaining(`worker ${doomed.id} (`) }]);
      }
    }

    // The slow push is older than dead-after by now, and its worker still beats: it keeps it.
    await waitFor("the slow lease to be older than dead-after", async () => (await serverMs()) > leasedAt + DEAD_AFTER_MS);
    await live.recoverDead();
    await other.recoverDead();
    expect((await states(tenants.acme))[2]).toEqual({ id: acme[2], status: "in_flight", uncertain: 0, leaseOwner: live.id });

    // The dead worker's late outcome lands nowhere, before and after another worker claims the delivery again.
    expect(await tenants.acme.run(DONE, acme[0], "late", 7, doomed.id)).toEqual({ changes: 0 });
    await lease(tenants.acme, [acme[0]!], other.id);
    expect(await tenants.acme.run(DONE, acme[0], "late", 7, doomed.id)).toEqual({ changes: 0 });
    expect(await tenants.acme.run(DONE, acme[0], "r-1", 8, other.id)).toEqual({ changes: 1 });
    expect(await tenants.acme.run(DONE, acme[2], "r-2", 9, live.id)).toEqual({ changes: 1 });

    await live.stop();
    await other.stop();
  }, 60_000);

  test("workers are judged by the server's clock: one an hour behind is alive, one an hour ahead declares nobody dead; both tell the server's time", async () => {
    const behind = await spawnWorker(-HOUR);
    const ahead = await spawnWorker(HOUR);
    const live = await Worker.register(storage.client, TIMING);
    live.start();
    const [mine, theirs] = await addDeliveries(tenants.initech, "ledger", ["mine", "theirs"]);
    await lease(tenants.initech, [mine!], live.id);
    await lease(tenants.initech, [theirs!], behind.id);
    const since = await serverMs();

    // Beyond dead-after on the server's clock, then beats of the worker an hour ahead and of the in-process one.
    await waitFor("dead-after to pass on the server's clock", async () => (await serverMs()) > since + 2 * DEAD_AFTER_MS, 30_000);
    const beats = ahead.beats();
    await waitFor("two more beats of the worker an hour ahead", () => ahead.beats() >= beats + 2 || ahead.lost(), 30_000);
    expect(ahead.lost()).toBe(false);
    await live.recoverDead();

    for (const w of [behind, ahead]) {
      const row = await workerRow(w.id);
      // Its clock is an hour off; what the server holds for it is the server's own time.
      expect(Math.abs(row!.startedMs - w.clock)).toBeGreaterThan(HOUR / 2);
      // Its now() is the server's time all the same (the shared pauses and due times are judged by it).
      expect(Math.abs(row!.startedMs - w.now)).toBeLessThan(10_000);
      expect(row!.silentMs).toBeLessThan(DEAD_AFTER_MS);
    }
    expect(await workerRow(live.id)).toBeTruthy();
    expect(ahead.recovered()).toBe(0);
    expect(await states(tenants.initech)).toEqual([
      { id: mine, status: "in_flight", uncertain: 0, leaseOwner: live.id },
      { id: theirs, status: "in_flight", uncertain: 0, leaseOwner: behind.id },
    ]);

    // Stopped cleanly (SIGTERM), a worker leaves: its row goes, and the lease it still held is pending and uncertain.
    behind.proc.kill("SIGTERM");
    expect(await behind.stopped()).toEqual({
      workers: [{ id: behind.id, host: expect.any(String), pid: behind.proc.pid }],
      deliveries: 1,
      runs: 0,
      probes: 0,
    });
    expect(await workerRow(behind.id)).toBeNull();
    expect((await states(tenants.initech))[1]).toEqual({ id: theirs, status: "pending", uncertain: 1, leaseOwner: null });
    ahead.proc.kill("SIGTERM");
    await ahead.stopped();
    await live.stop();
  }, 60_000);

  test("a worker declared dead while it still runs (a partition) learns it at its next heartbeat, and its outcomes land nowhere", async () => {
    let lost = 0;
    const cut = await Worker.register(storage.client, { ...TIMING, onLost: () => lost++ });
    const live = await Worker.register(storage.client, TIMING);
    live.start();
    const [id] = await addDeliveries(tenants.globex, "books", ["cut-off"]);
    await lease(tenants.globex, [id!], cut.id);
    // `cut` does not beat (as if its heartbeats did not reach the server) while `live` beats and recovers.
    await waitFor("the silent worker to be declared dead", async () => !(await workerRow(cut.id)), 30_000);
    expect(await tenants.globex.run(DONE, id, "late", 7, cut.id)).toEqual({ changes: 0 });
    expect(await states(tenants.globex, id)).toEqual([{ id, status: "pending", uncertain: 1, leaseOwner: null }]);
    // Back in touch, its beat finds its row gone: it says so once and stops beating.
    cut.start();
    await waitFor("the worker declared dead to notice", () => lost === 1);
    expect(await cut.heartbeat()).toBe(false);
    expect(await workerRow(cut.id)).toBeNull();
    await live.stop();
  }, 60_000);
});

/** Stored events and their pending deliveries to `target` in the runner's tenant; their ids. */
async function addDeliveries(db: SqlRunner, target: string, keys: string[]): Promise<number[]> {
  const ids: number[] = [];
  for (const key of keys) {
    await db.transaction(async (tx) => {
      const { seq } = (await tx.get<{ seq: number }>(
        `INSERT INTO events (event_id, type, entity, key, payload, received_at) VALUES (?1, 'customer.upserted', 'customer', ?2, '{}', 1) RETURNING seq`,
        `${target}-${key}-${Math.random()}`,
        key,
      ))!;
      const row = await tx.get<{ id: number }>(
        `INSERT INTO deliveries (event_seq, target, entity, key, status, next_attempt_at, created_at, updated_at)
         VALUES (?1, ?2, 'customer', ?3, 'pending', 1, 1, 1) RETURNING id`,
        seq,
        target,
        key,
      );
      ids.push(row!.id);
    });
  }
  return ids;
}

async function lease(db: SqlRunner, ids: number[], worker: number): Promise<void> {
  expect(await db.run(LEASE, JSON.stringify(ids), worker, 2)).toEqual({ changes: ids.length });
}

function states(db: SqlRunner, only?: number) {
  return db.all(
    `SELECT id, status, uncertain, lease_owner AS leaseOwner FROM deliveries WHERE CAST(?1 AS BIGINT) IS NULL OR id = ?1 ORDER BY id`,
    only ?? null,
  );
}

/** The server's clock, epoch ms. */
async function serverMs(): Promise<number> {
  const [row] = (await storage.client.unsafe("SELECT CAST(extract(epoch FROM clock_timestamp()) * 1000 AS float8) AS ms")) as {
    ms: number;
  }[];
  return row!.ms;
}

/** A worker's row as the server holds it: when it started, and how long the server has not heard from it. */
async function workerRow(id: number): Promise<{ startedMs: number; silentMs: number } | null> {
  const [row] = (await storage.client.unsafe(
    `SELECT CAST(extract(epoch FROM started_at) * 1000 AS float8) AS "startedMs",
            CAST(extract(epoch FROM clock_timestamp() - heartbeat_at) * 1000 AS float8) AS "silentMs"
       FROM workers WHERE id = $1`,
    [id],
  )) as { startedMs: number; silentMs: number }[];
  return row ?? null;
}

/** A worker process (test/pg-worker-child.ts) with its clock `offsetMs` off, registered and beating. */
async function spawnWorker(offsetMs = 0) {
  const proc = Bun.spawn([process.execPath, CHILD, server.url, String(HEARTBEAT_MS), String(DEAD_AFTER_MS)], {
    env: { ...process.env, CLOCK_OFFSET_MS: String(offsetMs) },
    stdout: "pipe",
    stderr: "inherit",
  });
  children.push(proc);
  const lines = jsonLines(proc.stdout, (line) => {
    if ("error" in line) beatErrors.push(`worker process: ${line.error}`);
  });
  const hello = (await waitFor(`worker process (clock ${offsetMs} ms off) to register`, () => lines.find((l) => "id" in l), 30_000))!;
  return {
    proc,
    id: hello.id as number,
    /** What the process's own clock said when it registered. */
    clock: hello.clock as number,
    /** What its Worker.now() said then: the database's clock. */
    now: hello.now as number,
    beats: () => lines.filter((l) => "beat" in l).length,
    lost: () => lines.some((l) => "lost" in l),
    recovered: () => lines.reduce((n, l) => n + (l.recovered?.deliveries ?? 0), 0),
    stopped: () => waitFor("the worker process to stop", () => lines.find((l) => "stopped" in l)?.stopped),
  };
}
