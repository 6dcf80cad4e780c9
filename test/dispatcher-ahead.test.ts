// Leases taken ahead of the pushes (issue 16, goal 3: DispatcherOptions.ahead, as many as `concurrency` by default): a
// round leases up to concurrency + ahead, and a lease already durable starts the moment a push ends, without waiting
// for the next round's transaction and fsync. Nothing is sent under one when it should not be: a push whose answer
// may pause the target holds them back until a round has applied it, and a round whose gate is not "all" (a pause, the
// breaker's probe), a fenced worker or a stop gives them back unsent (pending, neither uncertain nor counted as an attempt, no attempt
// row). Both engines: a real SQLite file and a tenant on a real PostgreSQL server; the real outbox and dispatcher.
import { describe, expect, test } from "bun:test";
import type { Connector } from "../connectors/contract.ts";
import { TargetError } from "../connectors/http.ts";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { Outbox } from "../agent/outbox.ts";
import { TargetStateStore } from "../agent/target-state.ts";
import { enqueueCustomers as enqueue, testDispatcher } from "./dispatch-fixture.ts";
import { workerEngines } from "./engines.ts";
import { waitFor } from "./helpers.ts";

const { engines, open } = workerEngines("leases taken ahead");

/** Target "t" in memory: every push waits until the test answers it, with a result or an error. */
function heldTarget() {
  const waiting = new Map<number, { ok: () => void; fail: (e: Error) => void }>();
  const pushed: number[] = [];
  const connector = {
    name: "t",
    kind: "test",
    supports: (e: string) => e === "customer",
    check: async () => [],
    validate: () => [],
    push: (_entity: string, payload: { number: string }) => {
      const n = Number(payload.number);
      pushed.push(n);
      return new Promise((resolve, reject) => waiting.set(n, { ok: () => resolve({ remoteId: `R-${n}` }), fail: (e) => reject(e) }));
    },
    find: async () => null,
  } as unknown as Connector;
  const take = (n: number) => {
    const w = waiting.get(n);
    if (!w) throw new Error(`customer ${n} is not being pushed`);
    waiting.delete(n);
    return w;
  };
  return {
    connector,
    pushed,
    answer: (...ns: number[]) => ns.forEach((n) => take(n).ok()),
    fail: (n: number, e: Error) => take(n).fail(e),
    answerAll: () => [...waiting.keys()].forEach((n) => take(n).ok()),
  };
}

/** The storage's runner, whose rounds (transactionDurableLater) can be held before they start. */
function holdableRounds(real: SqlRunner) {
  let gate: Promise<void> | null = null;
  let open = () => {};
  let running = 0;
  const runner: SqlRunner = {
    ...real,
    transactionDurableLater: async (fn) => {
      while (gate) await gate;
      running++;
      try {
        return await real.transactionDurableLater(fn);
      } finally {
        running--;
      }
    },
  };
  return {
    runner,
    /** Rounds past the gate whose transaction has not ended. */
    running: () => running,
    hold: () => (gate = new Promise<void>((resolve) => (open = resolve))),
    release: () => {
      gate = null;
      open();
    },
  };
}

describe.each(engines)("leases taken ahead of the pushes, on %s", (engine) => {
  const rows = (runner: SqlRunner) =>
    runner.all<{ key: string; status: string; attempts: number; uncertain: number }>(
      "SELECT key, status, attempts, uncertain FROM deliveries ORDER BY id",
    );
  const attemptRows = async (runner: SqlRunner) =>
    (
      await runner.all<{ key: string; outcome: string }>(
        "SELECT d.key, a.outcome FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id ORDER BY a.id",
      )
    ).map((r) => `${r.key} ${r.outcome}`);

  test("a push's end starts a lease taken ahead with no round in between; at stop those not started go back unsent", async () => {
    const storage = await open(engine);
    const rounds = holdableRounds(storage.storage);
    const outbox = new Outbox(rounds.runner, Date.now, 15 * 60_000, { leaseOwner: storage.workerOf(storage.storage) });
    await enqueue(outbox, [1, 2, 3, 4, 5, 6]);
    const t = heldTarget();
    const d = testDispatcher(outbox, t.connector, { soleWorker: engine === "sqlite" });
    d.start();
    let stopped = false;
    try {
      await waitFor("two pushes under way", () => t.pushed.length === 2);
      // Concurrency 2 and two ahead: four leased in the first round.
      await waitFor("four leased", async () => (await rows(storage.storage)).filter((r) => r.status === "in_flight").length === 4);
      expect(t.pushed).toEqual([1, 2]);

      // No round can start now; the two pushes end, and the two leases taken ahead start all the same.
      rounds.hold();
      await waitFor("no round under way", () => rounds.running() === 0);
      t.answer(1, 2);
      await waitFor("the leases taken ahead started", () => t.pushed.length === 4);
      expect(t.pushed).toEqual([1, 2, 3, 4]);
      expect((await rows(storage.storage)).map((r) => r.status)).toEqual([
        "in_flight",
        "in_flight",
        "in_flight",
        "in_flight",
        "pending",
        "pending",
      ]);

      // The round goes on: 1 and 2 done, 5 and 6 leased ahead while 3 and 4 are under way.
      rounds.release();
      await waitFor(
        "1 and 2 written, 5 and 6 leased ahead",
        async () => (await rows(storage.storage)).map((r) => r.status).join() === "done,done,in_flight,in_flight,in_flight,in_flight",
      );
      expect(t.pushed).toEqual([1, 2, 3, 4]);

      // Stop while 3 and 4 are under way: 5 and 6 go back at once, as they were; 3 and 4 end and are written.
      const stopping = d.stop(10_000);
      stopped = true;
      await waitFor("5 and 6 given back", async () => (await rows(storage.storage)).slice(4).every((r) => r.status === "pending"));
      t.answer(3, 4);
      await stopping;
    } finally {
      t.answerAll();
      rounds.release();
      if (!stopped) await d.stop(1_000);
    }
    expect(t.pushed).toEqual([1, 2, 3, 4]);
    expect(await rows(storage.storage)).toEqual([
      { key: "1", status: "done", attempts: 1, uncertain: 0 },
      { key: "2", status: "done", attempts: 1, uncertain: 0 },
      { key: "3", status: "done", attempts: 1, uncertain: 0 },
      { key: "4", status: "done", attempts: 1, uncertain: 0 },
      // Nothing was sent under their leases: not uncertain (no look-up first), no attempt counted, no attempt row.
      { key: "5", status: "pending", attempts: 0, uncertain: 0 },
      { key: "6", status: "pending", attempts: 0, uncertain: 0 },
    ]);
    expect(await attemptRows(storage.storage)).toEqual(["1 delivered", "2 delivered", "3 delivered", "4 delivered"]);
  });

  test("a worker fenced while leases wait ahead starts none of them; its next round gives them back unsent", async () => {
    const storage = await open(engine);
    const outbox = new Outbox(storage.storage, Date.now, 15 * 60_000, { leaseOwner: storage.workerOf(storage.storage) });
    await enqueue(outbox, [1, 2, 3, 4, 5, 6]);
    const t = heldTarget();
    let fenced: string | null = null;
    const d = testDispatcher(outbox, t.connector, { soleWorker: engine === "sqlite", fence: () => fenced });
    d.start();
    try {
      await waitFor(
        "four leased, two pushes under way",
        async () => t.pushed.length === 2 && (await rows(storage.storage)).filter((r) => r.status === "in_flight").length === 4,
      );
      // Cut off (its heartbeat too old, say): the two pushes under way end; the leases ahead neither start nor fail.
      fenced = "this worker's heartbeat is too old";
      t.answer(1, 2);
      await waitFor("3 and 4 given back", async () => (await rows(storage.storage)).slice(2, 4).every((r) => r.status === "pending"));
    } finally {
      t.answerAll();
      await d.stop(1_000);
    }
    expect(t.pushed).toEqual([1, 2]);
    expect((await rows(storage.storage)).slice(0, 4)).toEqual([
      { key: "1", status: "done", attempts: 1, uncertain: 0 },
      { key: "2", status: "done", attempts: 1, uncertain: 0 },
      { key: "3", status: "pending", attempts: 0, uncertain: 0 },
      { key: "4", status: "pending", attempts: 0, uncertain: 0 },
    ]);
    expect(await attemptRows(storage.storage)).toEqual(["1 delivered", "2 delivered"]);
  });

  test("a 429: no lease taken ahead is sent; the round that stores the pause gives them back unsent", async () => {
    const storage = await open(engine);
    const outbox = new Outbox(storage.storage, Date.now, 15 * 60_000, { leaseOwner: storage.workerOf(storage.storage) });
    await enqueue(outbox, [1, 2, 3, 4, 5, 6]);
    const t = heldTarget();
    const store = new TargetStateStore(storage.storage);
    const d = testDispatcher(outbox, t.connector, { soleWorker: engine === "sqlite", targetState: store });
    d.start();
    try {
      await waitFor(
        "four leased, two pushes under way",
        async () => t.pushed.length === 2 && (await rows(storage.storage)).filter((r) => r.status === "in_flight").length === 4,
      );
      // The target answers the first push with 429 and Retry-After: 60. A slot is free and two leases wait, but none
      // starts: the pause is stored by the next round, which gives them back.
      t.fail(1, new TargetError("retryable", { code: "rate_limited", message: "HTTP 429", status: 429, retryAfterMs: 60_000 }));
      await waitFor("the pause stored", async () => ((await store.get("t")).pausedUntil ?? 0) > Date.now() + 50_000);
      await waitFor("3 and 4 given back", async () => (await rows(storage.storage)).slice(2, 4).every((r) => r.status === "pending"));
      await Bun.sleep(100);
      expect(t.pushed).toEqual([1, 2]);
      t.answer(2);
      await waitFor("2 written", async () => (await rows(storage.storage))[1]!.status === "done");
      await Bun.sleep(100);
      expect(t.pushed).toEqual([1, 2]);
    } finally {
      t.answerAll();
      await d.stop(1_000);
    }
    const after = await rows(storage.storage);
    expect(after.map((r) => r.status)).toEqual(["pending", "done", "pending", "pending", "pending", "pending"]);
    // 3 and 4 were leased and given back: as if never claimed.
    expect(after.slice(2, 4)).toEqual([
      { key: "3", status: "pending", attempts: 0, uncertain: 0 },
      { key: "4", status: "pending", attempts: 0, uncertain: 0 },
    ]);
    expect(await attemptRows(storage.storage)).toEqual(["1 retry", "2 delivered"]);
  });
});
