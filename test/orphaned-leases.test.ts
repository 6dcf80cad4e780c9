// A live worker's leases that none of its pushes holds (issue 17, review finding 3). On PostgreSQL a connection lost
// during a round's COMMIT (a database restart, a failover, a network blip) may have committed the round's new leases
// under this worker's id while the worker takes the round for failed and sends nothing under them; nothing else takes
// a live worker's lease back, so without the fix the deliveries stay in flight for ever. The dispatcher gives them
// back (Outbox.releaseOrphans) after a failed round and every lease period: pending, uncertain, an 'interrupted'
// attempt, then delivered. A push still under way is never given back. Both engines: a real SQLite file, and a tenant
// on a real PostgreSQL server; the real runner, outbox and dispatcher; the lost answer is the real COMMIT followed by
// the error a cut connection gives.
import { describe, expect, test } from "bun:test";
import type { Connector } from "../connectors/contract.ts";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { Outbox } from "../agent/outbox.ts";
import { enqueueCustomers as enqueue, memoryTarget as target, testDispatcher } from "./dispatch-fixture.ts";
import { workerEngines } from "./engines.ts";
import { waitFor } from "./helpers.ts";

const { engines, open } = workerEngines("orphaned leases");

/**
 * The storage's real runner, whose next round (a transactionDurableLater that leases something) commits and then
 * answers as a connection cut during COMMIT does; `failNextRound()` makes the next round fail before it starts.
 */
function cutAtCommit(real: SqlRunner) {
  let loseNextAnswer = false;
  let failNext = false;
  const runner: SqlRunner = {
    ...real,
    transactionDurableLater: async (fn) => {
      if (failNext) {
        failNext = false;
        throw new Error("Connection closed");
      }
      const committed = await real.transactionDurableLater(fn);
      if (loseNextAnswer && (committed.result as { batch?: unknown[] }).batch?.length) {
        loseNextAnswer = false;
        throw new Error("Connection closed");
      }
      return committed;
    },
  };
  return { runner, loseNextAnswer: () => (loseNextAnswer = true), failNextRound: () => (failNext = true) };
}

/** A lease period far longer than the test: only a failed round makes the dispatcher look for orphans. */
const dispatcher = (outbox: Outbox, connector: Connector, ahead?: number) =>
  testDispatcher(outbox, connector, { leaseMs: 600_000, soleWorker: false, ahead });

describe.each(engines)("leases of a live worker that no push holds, on %s", (engine) => {
  const rows = (runner: SqlRunner) =>
    runner.all<{ id: number; key: string; status: string; uncertain: number; leaseOwner: number | null }>(
      "SELECT id, key, status, uncertain, lease_owner AS leaseOwner FROM deliveries ORDER BY id",
    );
  const interrupted = async (runner: SqlRunner) =>
    (await runner.all<{ id: number }>("SELECT delivery_id AS id FROM delivery_attempts WHERE outcome = 'interrupted' ORDER BY id")).map(
      (r) => r.id,
    );

  test("a round whose COMMIT went through but whose answer was lost: its leases are given back, then delivered once", async () => {
    const storage = await open(engine);
    const cut = cutAtCommit(storage.storage);
    const outbox = new Outbox(cut.runner, Date.now, 15 * 60_000, { leaseOwner: storage.workerOf(storage.storage) });
    await enqueue(outbox, [1, 2, 3, 4, 5]);
    const { connector, pushed } = target(false);
    cut.loseNextAnswer();
    const d = dispatcher(outbox, connector);
    d.start();
    try {
      await waitFor("every customer delivered", async () => (await rows(storage.storage)).every((r) => r.status === "done"), 20_000);
    } finally {
      await d.stop(1_000);
    }
    // The first round leased four (concurrency 2, and as many ahead) and its answer was lost: nothing was sent under
    // those leases; they were given back with an interrupted attempt, looked up (uncertain) and delivered, each
    // customer pushed once.
    expect(pushed.sort()).toEqual([1, 2, 3, 4, 5]);
    const all = await rows(storage.storage);
    expect(await interrupted(storage.storage)).toEqual(all.slice(0, 4).map((r) => r.id));
    expect(all.map((r) => r.leaseOwner)).toEqual([null, null, null, null, null]);
  });

  test("a push still under way is never given back; a lease no push holds is, beside it", async () => {
    const storage = await open(engine);
    const cut = cutAtCommit(storage.storage);
    const owner = storage.workerOf(storage.storage);
    const outbox = new Outbox(cut.runner, Date.now, 15 * 60_000, { leaseOwner: owner });
    await enqueue(outbox, [1, 2]);
    const { connector, pushed, answerAll } = target(true);
    // No leases taken ahead: the dispatcher would lease the third delivery itself before the test does.
    const d = dispatcher(outbox, connector, 0);
    d.start();
    try {
      await waitFor("both pushes under way", () => pushed.length === 2);
      // A third delivery leased under this worker's id that its dispatcher knows nothing of (as a lost COMMIT answer
      // leaves it), then a round that fails: the dispatcher looks for orphans before its next round.
      await enqueue(outbox, [3]);
      const [orphan] = await outbox.claim("t", 1, 600_000, () => true);
      expect(orphan!.key).toBe("3");
      cut.failNextRound();
      d.notify();
      await waitFor("the orphan given back", async () => (await interrupted(storage.storage)).includes(orphan!.id));
      const during = await rows(storage.storage);
      expect(during.slice(0, 2)).toEqual([
        { id: during[0]!.id, key: "1", status: "in_flight", uncertain: 0, leaseOwner: owner },
        { id: during[1]!.id, key: "2", status: "in_flight", uncertain: 0, leaseOwner: owner },
      ]);
      // It waits behind the two pushes under way (concurrency 2); answered, all three are delivered.
      answerAll();
      await waitFor("customer 3 pushed", () => pushed.length === 3);
      answerAll();
      await waitFor("every customer delivered", async () => (await rows(storage.storage)).every((r) => r.status === "done"), 20_000);
    } finally {
      answerAll();
      await d.stop(1_000);
    }
    expect(pushed).toEqual([1, 2, 3]);
    expect(await interrupted(storage.storage)).toEqual([(await rows(storage.storage))[2]!.id]);
  });
});
