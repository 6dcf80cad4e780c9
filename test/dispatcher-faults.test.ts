// A dispatcher round's faults (review of the async outbox): every lease a dispatcher holds ends written or
// released, and a committed round's outcomes are written once. A real SQLite file, the real runner, outbox and
// dispatcher; the faults are injected where they happen: an answer arriving while shutdown's last round waits for
// its turn, a WAL file that cannot be opened for the round's fsync, a failed fsync after COMMIT, another module's
// transaction that wrongly awaits a timer.
import { describe, expect, test } from "bun:test";
import { renameSync } from "node:fs";
import { join } from "node:path";
import type { Connector } from "../connectors/contract.ts";
import { openDatabase, type Db } from "../agent/db/index.ts";
import { sqliteRunner, type SqlRunner } from "../agent/db/pg/runner.ts";
import { Outbox } from "../agent/outbox.ts";
import { TargetStateStore } from "../agent/target-state.ts";
import { enqueueCustomers, memoryTarget, testDispatcher } from "./dispatch-fixture.ts";
import { tempDir, waitFor } from "./helpers.ts";

const heldTarget = (answerAtOnce = false) => memoryTarget(!answerAtOnce);
const dispatcher = (outbox: Outbox, connector: Connector, concurrency: number, targetState?: TargetStateStore) =>
  testDispatcher(outbox, connector, { concurrency, targetState });

const rows = (db: Db) =>
  db.$client.query("SELECT id, status, remote_id AS remoteId FROM deliveries ORDER BY id").all() as {
    id: number;
    status: string;
    remoteId: string | null;
  }[];
const attempts = (db: Db) => db.$client.query("SELECT delivery_id AS id, outcome FROM delivery_attempts ORDER BY id, at").all();
const delivered = (db: Db) => (db.$client.query("SELECT coalesce(sum(delivered), 0) AS n FROM delivery_stats").get() as { n: number }).n;

describe("a dispatcher's leases end written or released", () => {
  test("a push answering while shutdown's last round waits for its turn is written", async () => {
    const db = openDatabase(join(tempDir(), "k.db"));
    const real = sqliteRunner(db.$client);
    const { connector, pushed, answerAll } = heldTarget();
    let stopping = false;
    // The real runner; the push's answer arrives just as shutdown's round asks for the connection (in real life:
    // any time while that round waits for its turn, the runner's lock or its fsync).
    const runner: SqlRunner = {
      ...real,
      transactionDurableLater: (fn) => {
        if (stopping) answerAll();
        return real.transactionDurableLater(fn);
      },
    };
    const outbox = new Outbox(runner);
    await enqueueCustomers(outbox, [1]);
    const d = dispatcher(outbox, connector, 2, new TargetStateStore(real));
    d.start();
    await waitFor("the push under way", () => pushed.length === 1);
    stopping = true;
    await d.stop(0); // the grace ran out with the push still under way
    expect(rows(db)).toEqual([{ id: 1, status: "done", remoteId: "R-1" }]);
    expect(attempts(db)).toEqual([{ id: 1, outcome: "delivered" }]);
    real.close();
  });

  test("a WAL that cannot be opened for the round's fsync: the leases are released unsent, and sent once it can", async () => {
    const dir = tempDir();
    const db = openDatabase(join(dir, "k.db"));
    const outbox = new Outbox(sqliteRunner(db.$client));
    await enqueueCustomers(outbox, [1, 2, 3]);
    // SQLite keeps its own descriptor of the WAL; opening it by name for the round's fsync fails (as with EMFILE).
    renameSync(join(dir, "k.db-wal"), join(dir, "moved-wal"));
    const { connector, pushed } = heldTarget(true);
    const d = dispatcher(outbox, connector, 10);
    d.start();
    // The rounds commit their claims, cannot make them durable and release them: nothing sent, nothing stuck.
    await waitFor("the claims released", () => attempts(db).filter((a: any) => a.outcome === "interrupted").length >= 3);
    expect(pushed).toEqual([]);
    renameSync(join(dir, "moved-wal"), join(dir, "k.db-wal"));
    await waitFor("all delivered", () => rows(db).every((r) => r.status === "done"));
    await d.stop(1_000);
    expect(pushed.sort((a, b) => a - b)).toEqual([1, 2, 3]);
    expect(rows(db).map((r) => r.remoteId)).toEqual(["R-1", "R-2", "R-3"]);
    expect(delivered(db)).toBe(3);
  });

  test("a failed fsync after a round committed: its outcomes are written once, its new leases released and sent later", async () => {
    const db = openDatabase(join(tempDir(), "k.db"));
    const real = sqliteRunner(db.$client);
    let failNextFsync = false;
    // The real runner commits; its fsync fails (as EIO would): `durable` rejects, the commit stands.
    const runner: SqlRunner = {
      ...real,
      transactionDurableLater: async (fn) => {
        const committed = await real.transactionDurableLater(fn);
        // The round that writes the answers and claims the next three.
        if (!failNextFsync || !(committed.result as { batch?: unknown[] }).batch?.length) return committed;
        failNextFsync = false;
        return { result: committed.result, durable: committed.durable.then(() => Promise.reject(new Error("EIO: fsync failed"))) };
      },
    };
    const outbox = new Outbox(runner);
    await enqueueCustomers(outbox, [1, 2, 3]);
    const { connector, pushed, answerAll } = heldTarget();
    const d = dispatcher(outbox, connector, 3, new TargetStateStore(real));
    d.start();
    await waitFor("three pushes under way", () => pushed.length === 3);
    // Three more wait for a free slot: the round that writes the three answers claims them.
    await enqueueCustomers(outbox, [4, 5, 6]);
    failNextFsync = true;
    answerAll();
    await waitFor("the second three pushed", async () => {
      answerAll();
      return pushed.length === 6;
    });
    answerAll();
    await waitFor("all delivered", () => rows(db).every((r) => r.status === "done"));
    await d.stop(1_000);
    expect(pushed.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
    // The round whose fsync failed is not written again: one delivered attempt and one count per push.
    expect(attempts(db).filter((a: any) => a.outcome === "delivered")).toHaveLength(6);
    expect(delivered(db)).toBe(6);
    // Its claims were released unsent: an interrupted attempt each, then delivered.
    expect(
      attempts(db)
        .filter((a: any) => a.outcome === "interrupted")
        .map((a: any) => a.id),
    ).toEqual([4, 5, 6]);
    real.close();
  });

  test("a push answering while another module's transaction wrongly awaits a timer is written", async () => {
    const db = openDatabase(join(tempDir(), "k.db"));
    const runner = sqliteRunner(db.$client);
    const outbox = new Outbox(runner);
    await enqueueCustomers(outbox, [1]);
    const { connector, pushed, answerAll } = heldTarget();
    const d = dispatcher(outbox, connector, 2);
    d.start();
    await waitFor("the push under way", () => pushed.length === 1);
    // The answer arrives inside that transaction; the round it wakes must not be dropped by the runner's guard.
    const wrong = runner.transaction(async (tx) => {
      await tx.get("SELECT 1");
      answerAll();
      await Bun.sleep(30);
    });
    await expect(wrong).rejects.toThrow("awaited something other than its own statements");
    await waitFor("the outcome written", () => rows(db)[0]!.status === "done");
    await d.stop(0);
    expect(rows(db)).toEqual([{ id: 1, status: "done", remoteId: "R-1" }]);
    expect(attempts(db)).toEqual([{ id: 1, outcome: "delivered" }]);
    runner.close();
  });
});
