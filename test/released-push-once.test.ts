// A lease is never given back while its push can still send (issue 17, review finding 1). A hosted worker stops a
// tenant's dispatchers when the tenant is restarted or disabled and lives on: a push still under way when the grace
// runs out used to go on and create the record after another dispatcher had claimed the released delivery, looked it
// up (nothing yet) and created it too. Now such a push sends nothing more, and its lease is released held for the
// longest a request already on the wire may take. A real SQLite file, two dispatchers on it (the tenant's old and new
// runtime), and a book of customers over real HTTP on loopback (test/book-target.ts).
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Connector } from "../connectors/contract.ts";
import { NOT_SENT } from "../connectors/http.ts";
import { openDatabase, type Db } from "../agent/db/index.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { Dispatcher } from "../agent/dispatcher.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { silentLogger } from "../agent/log.ts";
import { Metrics } from "../agent/metrics.ts";
import { Outbox } from "../agent/outbox.ts";
import { recordSource } from "../agent/record-source.ts";
import { TargetStateStore } from "../agent/target-state.ts";
import { bookConnector, startBookTarget, type BookTarget } from "./book-target.ts";
import { customerEvent, tempDir, waitFor } from "./helpers.ts";

const opened: { db: Db; book: BookTarget }[] = [];
afterEach(() => {
  for (const { db, book } of opened.splice(0)) {
    book.stop();
    db.$client.close();
  }
});

async function setUp() {
  const db = openDatabase(join(tempDir(), "k.db"));
  const book = startBookTarget();
  opened.push({ db, book });
  const outbox = new Outbox(sqliteRunner(db.$client));
  const targetState = new TargetStateStore(outbox.runner);
  const dispatcher = (connector: Connector, lateAnswerWaitMs: number, its: Outbox = outbox) =>
    new Dispatcher(
      "book",
      connector,
      its,
      {
        concurrency: 2,
        leaseMs: 60_000,
        backoff: { baseMs: 10, maxMs: 50 },
        idlePollMs: 20,
        keyPrefix: "k",
        targetState,
        soleWorker: false,
        lateAnswerWaitMs,
      },
      silentLogger,
      new Metrics(),
      recordSource(outbox.runner),
    );
  const parsed = parseEvents([customerEvent(1)]);
  if (!parsed.ok) throw new Error("the test's event does not parse");
  await new IntakeWriter(outbox, () => ["book"]).submit(parsed.events);
  const delivery = () =>
    db.$client.query("SELECT status, uncertain, remote_id AS remoteId, next_attempt_at - updated_at AS heldMs FROM deliveries").get() as {
      status: string;
      uncertain: number;
      remoteId: string | null;
      heldMs: number;
    };
  return { db, book, outbox, dispatcher, delivery };
}

/** A push that waits at `beforeCreate` until let go, and what became of it. */
function heldPush() {
  let letGo = () => {};
  const gate = new Promise<void>((resolve) => (letGo = resolve));
  const state = { waiting: false };
  const beforeCreate = async () => {
    state.waiting = true;
    await gate;
  };
  return { state, letGo, beforeCreate };
}

describe("a push still under way when its tenant's dispatcher stops is booked once", () => {
  test("a push waiting to send when the grace runs out sends nothing; the tenant's new runtime books the record once", async () => {
    const { book, dispatcher, delivery } = await setUp();
    const held = heldPush();
    const connector = bookConnector(book.url, held.beforeCreate);
    let oldError: unknown = null;
    const watched: Connector = {
      ...connector,
      push: (e, p, ctx) =>
        connector.push(e, p, ctx).catch((err) => {
          oldError = err;
          throw err;
        }),
    };
    const old = dispatcher(watched, 0);
    old.start();
    await waitFor("the old runtime's push waiting to create", () => held.state.waiting);
    await old.stop(50); // the tenant restarts: the grace runs out with the push under way
    const fresh = dispatcher(bookConnector(book.url), 0);
    fresh.start();
    await waitFor("the new runtime's push done", () => delivery().status === "done");
    held.letGo(); // the old push was never cancelled: it goes on, and is refused at its create
    await waitFor("the old push refused", () => oldError);
    await fresh.stop(1_000);
    expect((oldError as { code?: string }).code).toBe(NOT_SENT);
    expect(book.posts()).toBe(1);
    expect(book.creates.get("1")).toBe(1);
    expect(delivery()).toMatchObject({ status: "done", remoteId: "1" });
  }, 20_000);

  test("a push whose create is on the wire: its lease is released held for the request timeout, then looked up, not created again", async () => {
    const { db, book, dispatcher, delivery } = await setUp();
    const answer = book.holdAnswers();
    const old = dispatcher(bookConnector(book.url), 45_000);
    old.start();
    await waitFor("the create on the wire", () => book.posts() === 1);
    await old.stop(50);
    // Nobody may claim it before the create can have landed: pending, uncertain, claimable 45 s (the hold) from now.
    expect(delivery()).toMatchObject({ status: "pending", uncertain: 1, heldMs: 45_000 });
    answer();
    // The hold has passed: the next runtime looks the record up and finds the old push's create.
    db.$client.run("UPDATE deliveries SET next_attempt_at = updated_at");
    const fresh = dispatcher(bookConnector(book.url), 45_000);
    fresh.start();
    await waitFor("the delivery done", () => delivery().status === "done");
    await fresh.stop(1_000);
    expect(book.posts()).toBe(1);
    expect(book.creates.get("1")).toBe(1);
    expect(db.$client.query("SELECT outcome, message FROM delivery_attempts ORDER BY attempt").all()).toEqual([
      expect.objectContaining({ outcome: "interrupted" }),
      expect.objectContaining({ outcome: "delivered" }),
    ]);
  }, 20_000);

  test("a stop that could not release its leases (the database gone a moment): the new runtime gives them back held too", async () => {
    const { book, outbox, dispatcher, delivery } = await setUp();
    const answer = book.holdAnswers();
    // The old runtime's outbox: its release at stop fails, as with a database that is briefly unreachable.
    const failing: Outbox = Object.create(outbox);
    failing.release = () => Promise.reject(new Error("connection refused"));
    const old = dispatcher(bookConnector(book.url), 45_000, failing);
    old.start();
    await waitFor("the create on the wire", () => book.posts() === 1);
    await old.stop(50).catch(() => {});
    expect(delivery()).toMatchObject({ status: "in_flight" });
    // The tenant's new runtime (same worker) finds a lease none of its pushes holds: given back, held as a stop would.
    const fresh = dispatcher(bookConnector(book.url), 45_000);
    fresh.start();
    await waitFor("the orphaned lease given back", () => delivery().status === "pending");
    expect(delivery()).toMatchObject({ status: "pending", uncertain: 1, heldMs: 45_000 });
    answer();
    await fresh.stop(1_000);
    expect(book.posts()).toBe(1);
  }, 20_000);
});
