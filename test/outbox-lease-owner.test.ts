// A worker declared dead answers late (issue 17; agent/db/pg/README.md §6, "How the outbox wires them in"). On
// PostgreSQL a worker silent for too long is declared dead by a live worker's beat (recoverDeadWorkers), and its
// leases go back to pending, uncertain; on SQLite a lease that ran out is taken back (recoverExpiredLeases). Another
// worker then leases the delivery again. The first worker's outcome (or its shutdown's release), arriving after
// that, must change nothing: no link, no attempt row, no count, the new lease intact. The new holder's outcome
// lands. Both engines: a real SQLite file, and a tenant on a real PostgreSQL server with two workers (own clients).
import { beforeEach, describe, expect, test } from "bun:test";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { Outbox, type Outcome } from "../agent/outbox.ts";
import { type EngineStorage, workerEngines } from "./engines.ts";
import { customerEvent, invoiceEvent } from "./helpers.ts";

const ALL = () => true;
const LEASE_MS = 60_000;
const GRACE_MS = 15 * 60_000;
const { engines, open } = workerEngines("the lease owner tests");

const retry: Outcome = { kind: "retry", problem: { code: "http_503", message: "unavailable" }, delayMs: 0, uncertain: true };

/** What the dead worker sends late: an outcome of its push, or (release) giving its lease up at shutdown. */
const LATE: { name: string; outcome?: Outcome; newerVersion?: boolean; postgresOnly?: boolean }[] = [
  { name: "done", outcome: { kind: "done", remoteId: "late", payloadHash: "h" } },
  { name: "retry", outcome: retry },
  { name: "needs_action", outcome: { kind: "needs_action", problem: { code: "refused", message: "refused" }, uncertain: false } },
  { name: "wait", outcome: { kind: "wait", on: "customer:2", reason: "waiting for customer 2 to reach the target first" } },
  // A newer version is queued: a live outcome would supersede the delivery and mark the newer one uncertain.
  { name: "retry with a newer version queued", outcome: retry, newerVersion: true },
  // Shutdown releases leases by id: what tells them apart is their owner, so PostgreSQL only (SQLite's one process
  // releases at its shutdown only leases it holds).
  { name: "release at shutdown", postgresOnly: true },
];

describe.each(engines)("a worker declared dead on %s", (engine) => {
  let clock: number;
  let storage: EngineStorage;
  let runner: SqlRunner;
  /** The worker that falls silent, and the one that takes its delivery over. */
  let dead: Outbox;
  let live: Outbox;
  let liveOwner: number | null;

  async function send(...events: unknown[]) {
    const parsed = parseEvents(events);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed));
    await new IntakeWriter(
      live,
      () => ["t"],
      () => {},
      () => clock,
    ).submit(parsed.events);
  }

  /** The dead worker's lease taken back: by a live worker's beat on PostgreSQL, as a lease that ran out on SQLite. */
  async function takeBack(): Promise<void> {
    if (engine === "sqlite") {
      clock += LEASE_MS + 1;
      expect(await live.recoverExpiredLeases()).toBe(1);
    } else {
      expect((await storage.declareDead(storage.storage)).deliveries).toBe(1);
    }
  }

  /** Everything an outcome may write: deliveries, links, attempt rows, counts. */
  const snapshot = async () => ({
    deliveries: await runner.all(
      `SELECT id, entity, key, status, uncertain, attempts, lease_owner AS leaseOwner, lease_until AS leaseUntil, waiting_on AS waitingOn,
              remote_id AS remoteId, error_code AS errorCode FROM deliveries ORDER BY id`,
    ),
    links: await runner.all("SELECT entity, key, remote_id AS remoteId FROM links ORDER BY entity, key"),
    attempts: await runner.all("SELECT delivery_id AS id, attempt, outcome FROM delivery_attempts ORDER BY id, attempt, outcome"),
    counted: (await runner.get<{ n: number }>("SELECT coalesce(sum(delivered + retried + needs_action), 0) AS n FROM delivery_stats"))!.n,
  });
  const delivery = async (id: number) => (await snapshot()).deliveries.find((d: any) => d.id === id) as any;

  beforeEach(async () => {
    clock = 1_000_000;
    storage = await open(engine);
    runner = storage.storage;
    const other = await storage.worker();
    dead = new Outbox(runner, () => clock, GRACE_MS, { leaseOwner: storage.workerOf(runner) });
    live = new Outbox(other, () => clock, GRACE_MS, { leaseOwner: storage.workerOf(other) });
    liveOwner = storage.workerOf(other);
  });

  test.each(LATE.filter((late) => engine === "postgres" || !late.postgresOnly))(
    "its late $name changes nothing once another worker holds the lease; the new holder's outcome lands",
    async (late) => {
      await send(customerEvent(1), invoiceEvent(100, 1));
      // The invoice waits for its customer; the customer goes to the worker that will fall silent.
      const [mine] = await dead.claim("t", 10, LEASE_MS, ALL);
      expect(mine).toMatchObject({ entity: "customer", key: "1", attempts: 1 });
      if (engine === "postgres") expect((await delivery(mine!.id)).leaseOwner).toBe(storage.workerOf(runner));
      await takeBack();
      const [theirs] = await live.claim("t", 10, LEASE_MS, ALL);
      expect(theirs).toMatchObject({ id: mine!.id, attempts: 2, uncertain: true });
      if (late.newerVersion) await send(customerEvent(1, { name: "Customer 1, renamed" }));

      const before = await snapshot();
      expect(before.deliveries.find((d: any) => d.id === mine!.id)).toMatchObject({
        status: "in_flight",
        leaseOwner: liveOwner,
        attempts: 2,
      });
      if (late.outcome) await dead.complete([{ delivery: mine!, outcome: late.outcome }]);
      else await dead.release([mine!.id]);
      // On PostgreSQL the owner alone tells the leases apart, even for an outcome naming the attempt now under way.
      if (late.outcome && engine === "postgres") await dead.complete([{ delivery: { ...mine!, attempts: 2 }, outcome: late.outcome }]);
      const after = await snapshot();
      expect(after).toEqual(before);
      expect(after.links).toEqual([]);
      expect(after.attempts).toEqual([{ id: mine!.id, attempt: 1, outcome: "interrupted" }]);
      expect(after.counted).toBe(0);

      await live.complete([{ delivery: theirs!, outcome: { kind: "done", remoteId: "R-1", payloadHash: "h" } }]);
      const landed = await snapshot();
      expect(await delivery(mine!.id)).toMatchObject({ status: "done", remoteId: "R-1", leaseOwner: null, uncertain: 0 });
      expect(landed.links).toEqual([{ entity: "customer", key: "1", remoteId: "R-1" }]);
      expect(landed.attempts).toEqual([
        { id: mine!.id, attempt: 1, outcome: "interrupted" },
        { id: mine!.id, attempt: 2, outcome: "delivered" },
      ]);
      expect(landed.counted).toBe(1);
      // The invoice waiting for the customer is woken by the outcome that landed.
      expect(landed.deliveries.find((d: any) => d.entity === "invoice")).toMatchObject({ status: "pending", waitingOn: null });
    },
  );

  test.if(engine === "postgres")("a worker declared dead leases nothing more (no one would take those leases back)", async () => {
    await send(customerEvent(1), customerEvent(2));
    const [mine] = await dead.claim("t", 1, LEASE_MS, ALL);
    await takeBack();
    expect(await dead.claim("t", 10, LEASE_MS, ALL)).toEqual([]);
    expect((await live.claim("t", 10, LEASE_MS, ALL)).map((d) => d.id).sort()).toEqual([mine!.id, mine!.id + 1]);
  });

  test("a newer version sent while the taken-back delivery is held waits for that hold, saying why", async () => {
    await send(customerEvent(1));
    const [mine] = await dead.claim("t", 10, LEASE_MS, ALL, 60_000);
    await takeBack();
    const held = `SELECT status, next_attempt_at AS nextAttemptAt, error_code AS errorCode, error_message AS errorMessage FROM deliveries WHERE id = ?1`;
    const hold = await runner.get<any>(held, mine!.id);
    expect(hold).toMatchObject({ status: "pending", errorCode: "interrupted" });
    expect(hold.nextAttemptAt).toBeGreaterThan(clock); // PostgreSQL: the server's clock, ahead of the test's
    await send(customerEvent(1, { name: "Customer 1, renamed" }));
    const newer = (await runner.get<{ id: number }>("SELECT max(id) AS id FROM deliveries"))!.id;
    expect(newer).not.toBe(mine!.id);
    expect(await runner.get(held, newer)).toEqual(hold);
    expect(await live.claim("t", 10, LEASE_MS, ALL)).toEqual([]);
  });

  test("each outcome of the live worker clears its lease owner", async () => {
    await send(customerEvent(1), customerEvent(2), customerEvent(3), customerEvent(4));
    const [a, b, c, d] = await live.claim("t", 10, LEASE_MS, ALL);
    const owners = async () => (await snapshot()).deliveries.map((r: any) => [r.status, r.leaseOwner]);
    expect(await owners()).toEqual(Array.from({ length: 4 }, () => ["in_flight", liveOwner]));
    await live.complete([
      { delivery: a!, outcome: { kind: "done", remoteId: "R-1", payloadHash: "h" } },
      { delivery: b!, outcome: retry },
      { delivery: c!, outcome: { kind: "wait", on: "customer:9", reason: "waiting for customer 9 to reach the target first" } },
    ]);
    await live.release([d!.id]);
    expect(await owners()).toEqual([
      ["done", null],
      ["pending", null],
      ["waiting", null],
      ["pending", null],
    ]);
  });
});
