// The attempt history behind the record page, on a real SQLite file: every push attempt gets one row with
// its outcome, written with the outcome (and only when the outcome is); pushes left without an answer
// (shutdown, an expired lease) say so; retention prunes the history older than retention_days.
import { beforeEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { openDatabase, type Db } from "../agent/db/index.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { Outbox, type ClaimedDelivery } from "../agent/outbox.ts";
import { Inbox } from "../agent/pulls/inbox.ts";
import { deliveryAttempts, findRecords, pulledFor, recordEvents } from "../agent/record-queries.ts";
import { pruneOnce } from "../agent/retention.ts";
import { customerEvent, invoiceEvent, projectEvent, tempDir } from "./helpers.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";

const DAY = 86_400_000;
const ALL = () => true;
let db: Db;
let clock: number;
let outbox: Outbox;
let intake: IntakeWriter;

beforeEach(() => {
  db = openDatabase(join(tempDir("kontobro-attempts-"), "kontobro.db"));
  clock = Date.UTC(2026, 0, 1);
  outbox = new Outbox(sqliteRunner(db.$client), () => clock);
  intake = new IntakeWriter(
    outbox,
    (e) => (e === "customer" || e === "invoice" ? ["eco"] : []),
    () => {},
    () => clock,
  );
});

async function send(...events: object[]) {
  const parsed = parseEvents(events);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.events));
  return intake.submit(parsed.events);
}
const claimOne = async () => (await outbox.claim("eco", 1, 60_000, ALL))[0]!;
const problem = { code: "x.failed", message: "It failed.", hint: "Fix it." };
const history = async (d: { id: number }) =>
  (await deliveryAttempts(sqliteRunner(db.$client), [d.id])).map(({ attempt, outcome, code, message, hint, remoteId }) => ({
    attempt,
    outcome,
    code,
    message,
    hint,
    remoteId,
  }));

describe("delivery attempts", () => {
  test("each outcome is one row: retry and needs action with the problem, delivered with the remote id and note", async () => {
    await send(customerEvent(1));
    let d: ClaimedDelivery = await claimOne();
    await outbox.complete([{ delivery: d, outcome: { kind: "retry", problem, delayMs: 0, uncertain: false } }]);
    d = await claimOne();
    await outbox.complete([{ delivery: d, outcome: { kind: "needs_action", problem, uncertain: false } }]);
    await outbox.retry(d.id);
    d = await claimOne();
    await outbox.complete([{ delivery: d, outcome: { kind: "done", remoteId: "R-1", payloadHash: "h", note: "kept the due date" } }]);
    expect(await history(d)).toEqual([
      { attempt: 1, outcome: "retry", code: "x.failed", message: "It failed.", hint: "Fix it.", remoteId: null },
      { attempt: 2, outcome: "needs_action", code: "x.failed", message: "It failed.", hint: "Fix it.", remoteId: null },
      { attempt: 3, outcome: "delivered", code: null, message: "kept the due date", hint: null, remoteId: "R-1" },
    ]);
  });

  test("a failure while a newer version waits is recorded as replaced; a wait as held back", async () => {
    await send(customerEvent(1, {}, "c-1"));
    const d = await claimOne();
    await send(customerEvent(1, { name: "New" }, "c-1b"));
    await outbox.complete([{ delivery: d, outcome: { kind: "retry", problem, delayMs: 0, uncertain: true } }]);
    expect((await history(d)).map((a) => a.outcome)).toEqual(["superseded"]);
    const newer = await claimOne();
    await outbox.complete([{ delivery: newer, outcome: { kind: "wait", on: "customer:2", reason: "waiting for customer 2" } }]);
    expect(await history(newer)).toEqual([
      { attempt: 1, outcome: "wait", code: null, message: "waiting for customer 2", hint: null, remoteId: null },
    ]);
  });

  test("pushes left without an answer say so, at shutdown and when a lease ran out; a late outcome for them is not recorded twice", async () => {
    await send(customerEvent(1), customerEvent(2));
    const [a, b] = await outbox.claim("eco", 2, 60_000, ALL);
    await outbox.release([a!.id]);
    expect(await history(a!)).toMatchObject([
      { attempt: 1, outcome: "interrupted", message: expect.stringContaining("No answer was recorded") },
    ]);
    clock += 120_000;
    expect(await outbox.recoverExpiredLeases()).toBe(1);
    expect(await history(b!)).toMatchObject([{ attempt: 1, outcome: "interrupted", hint: expect.stringContaining("not created twice") }]);
    // The answer of the lost push arrives after all: the delivery is no longer in flight, so nothing changes.
    await outbox.complete([{ delivery: b!, outcome: { kind: "done", remoteId: "R-2", payloadHash: "h" } }]);
    expect((await history(b!)).map((x) => x.outcome)).toEqual(["interrupted"]);
  });

  test("retention prunes attempts older than retention_days, oldest first, and keeps the newer ones", async () => {
    await send(customerEvent(1));
    const d = await claimOne();
    await outbox.complete([{ delivery: d, outcome: { kind: "retry", problem, delayMs: 0, uncertain: false } }]);
    clock += 100 * DAY;
    await outbox.complete([{ delivery: await claimOne(), outcome: { kind: "retry", problem, delayMs: 0, uncertain: false } }]);
    clock += 1 * DAY;
    await outbox.complete([{ delivery: await claimOne(), outcome: { kind: "needs_action", problem, uncertain: false } }]);
    const r = await pruneOnce(db, { retentionDays: 90, now: () => clock, batchSize: 1 });
    expect(r.attempts).toBe(1);
    expect((await history(d)).map((a) => a.attempt)).toEqual([2, 3]);
  });
});

describe("record queries", () => {
  test("search by number and PSA id; events of a record in order; items pulled for a project and an invoice", async () => {
    await send(
      customerEvent(101),
      projectEvent(101, 101),
      invoiceEvent(10042, 101, 101),
      customerEvent(7, {}, "c-7a"),
      customerEvent(7, { name: "B" }, "c-7b"),
    );
    const keys = async (req: Parameters<typeof findRecords>[1]) =>
      (await findRecords(sqliteRunner(db.$client), req, ["customer", "project", "product", "invoice"])).map((r) => `${r.entity}:${r.key}`);
    expect(await keys({ keys: ["0101", "101"], kind: null })).toEqual(["customer:101", "project:101"]);
    expect(await keys({ keys: ["101"], kind: "project" })).toEqual(["project:101"]);
    expect(await keys({ keys: ["PSA-INV-10042"], kind: null })).toEqual(["invoice:10042"]);
    expect(await keys({ keys: ["10042"], kind: "credit_note" })).toEqual([]);

    const page = await recordEvents(sqliteRunner(db.$client), "customer", "7", 1);
    expect(page.total).toBe(2);
    expect(page.events.map((e) => e.eventId)).toEqual(["c-7b"]);
    expect(page.before?.eventId).toBe("c-7a");

    const inbox = new Inbox(sqliteRunner(db.$client), () => clock);
    await inbox.storeBatch(
      "eco",
      "expenses",
      [{ remoteId: "entry:1", type: "expense.posted", data: { amount: 100 }, requires: { entity: "project", key: "101" } }],
      "c1",
    );
    await inbox.storeBatch(
      "eco",
      "payments",
      [
        {
          remoteId: "invoice:9",
          type: "invoice.paid",
          data: { status: "paid" },
          status: { entity: "invoice", key: "10042", value: "paid", final: true, baseline: "unpaid" },
        },
      ],
      null,
    );
    expect((await pulledFor(sqliteRunner(db.$client), "project", "101")).map((i) => i.type)).toEqual(["expense.posted"]);
    expect((await pulledFor(sqliteRunner(db.$client), "invoice", "10042")).map((i) => i.remoteId.replace(/@\d+$/, ""))).toEqual([
      "invoice:9#1:paid",
    ]);
    expect(await pulledFor(sqliteRunner(db.$client), "customer", "101")).toEqual([]);
  });
});
