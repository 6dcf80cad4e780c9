// Retention on a real SQLite file: old finished work goes, the latest version of every record and every
// open delivery stay, a pruned event id is still a duplicate, and intake keeps working during a long prune.
import { beforeEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { openDatabase, type Db } from "../agent/db/index.ts";
import { Inbox } from "../agent/pulls/inbox.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { Outbox, type ClaimedDelivery } from "../agent/outbox.ts";
import { lastPrune, lastSeqBefore, pruneOnce } from "../agent/retention.ts";
import { customerEvent, tempDir } from "./helpers.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 5, 1);
const ALL = () => true;

let db: Db;
let clock: number;
let outbox: Outbox;
let intake: IntakeWriter;

beforeEach(() => {
  db = openDatabase(join(tempDir("kontobro-retention-"), "kontobro.db"));
  clock = NOW - 200 * DAY;
  outbox = new Outbox(sqliteRunner(db.$client), () => clock);
  intake = new IntakeWriter(
    outbox,
    (e) => (e === "customer" ? ["eco"] : []),
    () => {},
    () => clock,
  );
});

async function send(...events: object[]) {
  const parsed = parseEvents(events);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.events));
  return intake.submit(parsed.events);
}
const claim = () => outbox.claim("eco", 100, 60_000, ALL);
const finish = (ds: ClaimedDelivery[]) =>
  outbox.complete(ds.map((d) => ({ delivery: d, outcome: { kind: "done" as const, remoteId: `r-${d.key}`, payloadHash: "h" } })));
const event = (id: string) =>
  db.$client.query(`SELECT seq, payload FROM events WHERE event_id = ?1`).get(id) as { seq: number; payload: string } | null;
const deliveriesOf = (id: string) =>
  (
    db.$client
      .query(`SELECT d.status FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE e.event_id = ?1 ORDER BY d.id`)
      .all(id) as { status: string }[]
  ).map((r) => r.status);
const count = (sql: string) => (db.$client.query(sql).get() as { n: number }).n;

describe("pruning finished work", () => {
  test("old finished work goes; latest versions, open deliveries, recent work and exports stay", async () => {
    // 200 days ago: customer 1 twice (both delivered), customer 2 once (its latest), customer 5 in flight
    // when its second version arrived.
    await send(customerEvent(1, {}, "c1-a"));
    await finish(await claim());
    await send(customerEvent(1, { name: "One B" }, "c1-b"));
    await finish(await claim());
    await send(customerEvent(2, {}, "c2-a"));
    await finish(await claim());
    await send(customerEvent(5, {}, "c5-a"));
    const inFlight = await claim();
    await send(customerEvent(5, { name: "Five B" }, "c5-b"));
    // Customer 7: sent long ago, its delivery finished only recently.
    await send(customerEvent(7, {}, "c7-a"));
    const late = (await claim()).filter((d) => d.key === "7");
    await send(customerEvent(7, { name: "Seven B" }, "c7-b"));
    // 10 days ago: customer 1's third version, customer 6 twice, customer 7's first push ends.
    clock = NOW - 10 * DAY;
    await finish(late);
    await send(customerEvent(1, { name: "One C" }, "c1-c"));
    await finish((await claim()).filter((d) => d.key === "1"));
    await send(customerEvent(6, {}, "c6-a"));
    await send(customerEvent(6, { name: "Six B" }, "c6-b"));
    db.$client.run(
      `INSERT INTO invoice_export_status (invoice_key, status, changed_at, changed_by) VALUES ('9', 'transferred', ?1, 'export')`,
      [NOW - 300 * DAY],
    );
    const before = { records: count(`SELECT count(*) AS n FROM records`), events: count(`SELECT count(*) AS n FROM events`) };

    clock = NOW;
    const r = await pruneOnce(db, { retentionDays: 90, now: () => NOW });
    expect(r).toMatchObject({ retentionDays: 90, cutoff: NOW - 90 * DAY, events: 3, deliveries: 2 });

    // Pruned: customer 1's first two versions and their delivered pushes, and customer 7's first version
    // (its recently finished delivery stays until it is old too).
    for (const id of ["c1-a", "c1-b", "c7-a"]) expect(event(id)!.payload).toBe("");
    expect(deliveriesOf("c1-a")).toEqual([]);
    expect(deliveriesOf("c1-b")).toEqual([]);
    expect(deliveriesOf("c7-a")).toEqual(["done"]);
    // Kept: every record's latest version with its payload, whatever its age.
    for (const id of ["c1-c", "c2-a", "c5-b", "c7-b", "c6-b"]) expect(JSON.parse(event(id)!.payload).number).toBeDefined();
    expect(deliveriesOf("c2-a")).toEqual(["done"]);
    // Kept: an old version whose push is still in flight, and its delivery.
    expect(inFlight.map((d) => d.key)).toContain("5");
    expect(JSON.parse(event("c5-a")!.payload).name).toBe("Customer 5");
    expect(deliveriesOf("c5-a")).toEqual(["in_flight"]);
    expect(deliveriesOf("c5-b")).toHaveLength(1);
    // Kept: recent versions, even superseded ones.
    expect(JSON.parse(event("c6-a")!.payload).number).toBe("6");
    expect(deliveriesOf("c6-a")).toEqual(["superseded"]);
    // Rows, records and the export tables stay.
    expect({ records: count(`SELECT count(*) AS n FROM records`), events: count(`SELECT count(*) AS n FROM events`) }).toEqual(before);
    expect(count(`SELECT count(*) AS n FROM invoice_export_status`)).toBe(1);
    expect(lastPrune(db)).toEqual(r);

    // A second run finds nothing more; c7-a's delivery goes once it is old enough.
    expect(await pruneOnce(db, { retentionDays: 90, now: () => NOW })).toMatchObject({ events: 0, deliveries: 0 });
    // With 5 days, customer 6's superseded first version goes too, and customer 7's finished push.
    expect(await pruneOnce(db, { retentionDays: 5, now: () => NOW })).toMatchObject({ events: 1, deliveries: 2 });
    expect(event("c6-a")!.payload).toBe("");
    expect(deliveriesOf("c7-a")).toEqual([]);
    expect(deliveriesOf("c5-a")).toEqual(["in_flight"]);
  });

  test("needs-action, pending and waiting deliveries of a pruned record's latest version are never deleted", async () => {
    await send(customerEvent(1, {}, "a1"));
    const [d] = await claim();
    await outbox.complete([
      { delivery: d!, outcome: { kind: "needs_action", uncertain: false, problem: { code: "x", message: "refused" } } },
    ]);
    await send(customerEvent(3, {}, "b1"));
    const r = await pruneOnce(db, { retentionDays: 1, now: () => NOW });
    expect(r.events + r.deliveries).toBe(0);
    expect(deliveriesOf("a1")).toEqual(["needs_action"]);
    expect(deliveriesOf("b1")).toEqual(["pending"]);
  });

  test("a PSA re-sending a pruned event id gets 'duplicate', and nothing is stored or pushed again", async () => {
    await send(customerEvent(1, {}, "old-1"));
    await finish(await claim());
    await send(customerEvent(1, { name: "Newer" }, "old-2"));
    await finish(await claim());
    clock = NOW;
    expect((await pruneOnce(db, { retentionDays: 90, now: () => NOW })).events).toBe(1);
    const deliveries = count(`SELECT count(*) AS n FROM deliveries`);
    expect(await send(customerEvent(1, {}, "old-1"))).toEqual([{ id: "old-1", status: "duplicate" }]);
    // Even with other content: what it was is no longer known, so it cannot be compared.
    expect(await send(customerEvent(1, { name: "Changed" }, "old-1"))).toEqual([{ id: "old-1", status: "duplicate" }]);
    expect(count(`SELECT count(*) AS n FROM deliveries`)).toBe(deliveries);
    expect(JSON.parse((db.$client.query(`SELECT payload FROM records WHERE key = '1'`).get() as any).payload).name).toBe("Newer");
  });

  test("delivered inbox items lose their content and attachment but stay known; undelivered ones are kept", async () => {
    const inbox = new Inbox(sqliteRunner(db.$client), () => clock);
    const item = (id: string) => ({
      remoteId: id,
      type: "expense.posted",
      data: { amount: 100, id },
      attachment: { filename: `${id}.pdf`, contentType: "application/pdf", bytes: new Uint8Array(1000) },
    });
    await inbox.storeBatch("eco", "expenses", [item("old-delivered"), item("old-new")], null);
    const [delivered] = await inbox.undelivered(10);
    await inbox.markDelivered([delivered!.id]);
    clock = NOW - DAY;
    await inbox.storeBatch("eco", "expenses", [item("recent")], null);
    await inbox.markDelivered((await inbox.undelivered(10)).filter((r) => r.remoteId === "recent").map((r) => r.id));
    expect((await pruneOnce(db, { retentionDays: 90, now: () => NOW })).inboxItems).toBe(1);
    const rows = db.$client
      .query(`SELECT remote_id AS id, state, payload, attachment_name AS name, length(attachment) AS size FROM inbox ORDER BY id`)
      .all();
    expect(rows).toEqual([
      { id: "old-delivered", state: "delivered", payload: "{}", name: null, size: null },
      { id: "old-new", state: "new", payload: JSON.stringify({ amount: 100, id: "old-new" }), name: "old-new.pdf", size: 1000 },
      { id: "recent", state: "delivered", payload: JSON.stringify({ amount: 100, id: "recent" }), name: "recent.pdf", size: 1000 },
    ]);
    // Pulled again (an overlapping window): still a duplicate, not a new item for the PSA.
    expect(await inbox.storeBatch("eco", "expenses", [item("old-delivered")], null)).toMatchObject({ imported: 0, duplicates: 1 });
  });

  test("old pull runs go, but each job's last run and last good run stay (the scheduler's catch-up reads them)", async () => {
    const run = (stream: string, status: string, daysAgo: number) =>
      db.$client.run(
        `INSERT INTO job_runs (target, stream, trigger, status, started_at, finished_at) VALUES ('eco', ?1, 'schedule', ?2, ?3, ?3)`,
        [stream, status, NOW - daysAgo * DAY],
      );
    run("expenses", "ok", 300);
    run("expenses", "failed", 250);
    run("expenses", "ok", 200);
    run("expenses", "failed", 150);
    run("expenses", "failed", 5);
    run("payments", "ok", 400);
    db.$client.run(
      `INSERT INTO job_runs (target, stream, trigger, status, started_at) VALUES ('eco', 'payments', 'manual', 'running', ?1)`,
      [NOW - 300 * DAY],
    );
    expect((await pruneOnce(db, { retentionDays: 90, now: () => NOW })).jobRuns).toBe(3);
    const left = db.$client.query(`SELECT stream, status, (?1 - started_at) / ?2 AS daysAgo FROM job_runs ORDER BY id`).all(NOW, DAY);
    expect(left).toEqual([
      { stream: "expenses", status: "ok", daysAgo: 200 },
      { stream: "expenses", status: "failed", daysAgo: 5 },
      { stream: "payments", status: "ok", daysAgo: 400 },
      { stream: "payments", status: "running", daysAgo: 300 },
    ]);
  });

  test("the end of the old events is found by bisection, also with gaps in seq", () => {
    const rows = [1, 2, 5, 6, 9, 10].map((seq) => ({ seq, receivedAt: seq * 10 }));
    const first = (s: number) => rows.find((r) => r.seq >= s) ?? null;
    expect(lastSeqBefore(0, 10, first)).toBe(0);
    expect(lastSeqBefore(55, 10, first)).toBe(5);
    expect(lastSeqBefore(61, 10, first)).toBe(6);
    expect(lastSeqBefore(1000, 10, first)).toBe(10);
    expect(lastSeqBefore(1000, 0, () => null)).toBe(0);
  });
});

describe("a large prune and intake at the same time", () => {
  test("intake calls complete while the prune runs, and the prune still removes everything it should", async () => {
    // 1,000 customers × 8 versions, 200 days old: 7,000 superseded versions to prune, 50 per transaction.
    for (let v = 0; v < 8; v++) {
      await send(...Array.from({ length: 1000 }, (_, i) => customerEvent(i + 1, { name: `C ${i + 1} v${v}` }, `bulk-${i + 1}-${v}`)));
    }
    clock = NOW;
    let pruneDone = false;
    const prune = pruneOnce(db, { retentionDays: 90, batchSize: 50, now: () => NOW }).then((r) => {
      pruneDone = true;
      return r;
    });
    const during: boolean[] = [];
    for (let i = 0; i < 20; i++) {
      const [stored] = await send(customerEvent(10_000 + i, {}, `live-${i}`));
      expect(stored!.status).toBe("accepted");
      during.push(!pruneDone);
    }
    const r = await prune;
    // The intake calls were answered between the prune's transactions, not after all of them.
    expect(during.filter(Boolean).length).toBeGreaterThan(0);
    expect(r).toMatchObject({ events: 7000, deliveries: 7000 });
    expect(count(`SELECT count(*) AS n FROM events WHERE payload = ''`)).toBe(7000);
    expect(count(`SELECT count(*) AS n FROM deliveries WHERE status = 'pending'`)).toBe(1000 + 20);
    expect(count(`SELECT count(*) AS n FROM events WHERE event_id LIKE 'live-%' AND payload <> ''`)).toBe(20);
  }, 60_000);
});

describe("restore detection's high-water marks", () => {
  test("the newest delivery row stays even when it is old and finished, so max(id) never goes down", async () => {
    await send(customerEvent(1, {}, "only-1"));
    await finish(await claim());
    // The next version reaches no target (none takes it any more): the first one is then prunable.
    intake = new IntakeWriter(
      outbox,
      () => [],
      () => {},
      () => clock,
    );
    await send(customerEvent(1, { name: "B" }, "only-2"));
    const maxId = count(`SELECT max(id) AS n FROM deliveries`);
    expect(await pruneOnce(db, { retentionDays: 90, now: () => NOW })).toMatchObject({ events: 1, deliveries: 0 });
    expect(count(`SELECT max(id) AS n FROM deliveries`)).toBe(maxId);
  });
});
