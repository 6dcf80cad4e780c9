// The outbox state machine on both engines (issue 17): a real SQLite file, and a real PostgreSQL server
// (test/pg-server.ts), each test there a tenant of its own (row-level security gives it an empty outbox).
// Claim, lease, outcomes, waiting, coalescing, recovery, and four claimers at once.
import { beforeEach, describe, expect, test } from "bun:test";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { type ClaimedDelivery, Outbox } from "../agent/outbox.ts";
import { storageEngines } from "./engines.ts";
import { customerEvent, invoiceEvent, projectEvent } from "./helpers.ts";

const ALL = () => true;
const { engines, open } = storageEngines("the outbox tests");

describe.each(engines)("outbox on %s", (engine) => {
  let runner: SqlRunner;
  let clock: number;
  let outbox: Outbox;
  let intake: IntakeWriter;
  let targets: string[];

  async function send(...events: unknown[]) {
    const parsed = parseEvents(events);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed));
    return intake.submit(parsed.events);
  }
  const status = (id: number) =>
    runner.get<any>("SELECT status, waiting_on AS waitingOn, uncertain, attempts FROM deliveries WHERE id = ?1", id);
  const done = (d: { id: number } & any, remoteId = "r") =>
    outbox.complete([{ delivery: d, outcome: { kind: "done", remoteId, payloadHash: "h" } }]);

  beforeEach(async () => {
    runner = await open(engine);
    clock = 1_000_000;
    outbox = new Outbox(runner, () => clock);
    targets = ["t1", "t2"];
    intake = new IntakeWriter(
      outbox,
      () => targets,
      () => {},
      () => clock,
    );
  });

  test("one delivery per event and target; a repeated event id is stored once", async () => {
    const e = customerEvent(1, {}, "same-id");
    expect((await send(e))[0]!.status).toBe("accepted");
    expect((await send(e))[0]!.status).toBe("duplicate");
    expect((await runner.get<{ n: number }>("SELECT count(*) AS n FROM events"))!.n).toBe(1);
    expect((await runner.all<{ target: string }>("SELECT target FROM deliveries ORDER BY target")).map((r) => r.target)).toEqual([
      "t1",
      "t2",
    ]);
  });

  test("claim leases a delivery once, counts the attempt, and does not hand it out again", async () => {
    await send(customerEvent(1));
    const first = await outbox.claim("t1", 10, 60_000, ALL);
    expect(first).toHaveLength(1);
    expect(first[0]!.attempts).toBe(1);
    expect(first[0]!.payload.name).toBe("Customer 1");
    expect(await outbox.claim("t1", 10, 60_000, ALL)).toHaveLength(0);
    expect((await status(first[0]!.id)).status).toBe("in_flight");
  });

  test("a retry outcome waits for its delay; needs_action stays until retried", async () => {
    await send(customerEvent(1));
    const [d] = await outbox.claim("t1", 10, 60_000, ALL);
    await outbox.complete([
      { delivery: d!, outcome: { kind: "retry", delayMs: 5000, uncertain: true, problem: { code: "http_503", message: "down" } } },
    ]);
    expect(await outbox.claim("t1", 10, 60_000, ALL)).toHaveLength(0);
    clock += 5000;
    const [again] = await outbox.claim("t1", 10, 60_000, ALL);
    expect(again!.uncertain).toBe(true);
    expect(again!.attempts).toBe(2);
    await outbox.complete([
      { delivery: again!, outcome: { kind: "needs_action", uncertain: false, problem: { code: "x", message: "bad", hint: "fix" } } },
    ]);
    clock += 10 * 60_000;
    expect(await outbox.claim("t1", 10, 60_000, ALL)).toHaveLength(0);
    expect((await outbox.retry(again!.id)).ok).toBe(true);
    expect(await outbox.claim("t1", 10, 60_000, ALL)).toHaveLength(1);
  });

  test("customer → project → invoice: dependents wait until their dependency is at the target", async () => {
    await send(invoiceEvent(100, 1, 50), projectEvent(50, 1), customerEvent(1));
    // Only the customer can go; the project and invoice wait for it.
    const first = await outbox.claim("t1", 10, 60_000, ALL);
    expect(first.map((d) => d.entity)).toEqual(["customer"]);
    const waiting = await runner.all("SELECT entity, waiting_on AS on_ FROM deliveries WHERE target='t1' AND status='waiting' ORDER BY id");
    expect(waiting).toEqual([
      { entity: "invoice", on_: "customer:1" },
      { entity: "project", on_: "customer:1" },
    ]);
    await done(first[0]);
    const second = await outbox.claim("t1", 10, 60_000, ALL);
    expect(second.map((d) => d.entity)).toEqual(["project"]); // the invoice now waits for the project
    await done(second[0]);
    expect((await outbox.claim("t1", 10, 60_000, ALL)).map((d) => d.entity)).toEqual(["invoice"]);
  });

  test("a failed customer blocks only its own records, never unrelated ones", async () => {
    await send(customerEvent(1), customerEvent(2));
    const [c1, c2] = await outbox.claim("t1", 10, 60_000, ALL);
    await outbox.complete([
      { delivery: c1!, outcome: { kind: "needs_action", uncertain: false, problem: { code: "bad", message: "bad customer" } } },
    ]);
    await done(c2);
    await send(invoiceEvent(100, 1), invoiceEvent(200, 2));
    const ready = await outbox.claim("t1", 10, 60_000, ALL);
    expect(ready.map((d) => d.key)).toEqual(["200"]);
    const blocked = await runner.get<{ m: string }>("SELECT error_message AS m FROM deliveries WHERE target='t1' AND key='100'");
    expect(blocked!.m).toContain("needs action");
  });

  test("a credit note waits for the invoice it credits, unless that invoice was never sent to kontobro", async () => {
    await send(customerEvent(1));
    await done((await outbox.claim("t1", 10, 60_000, ALL))[0]);
    const credit = (n: number, credited: number) => ({
      ...invoiceEvent(n, 1),
      id: `cn-${n}`,
      type: "invoice.credited",
      data: { ...invoiceEvent(n, 1).data, creditedInvoiceNumber: credited },
    });
    await send(invoiceEvent(100, 1), credit(101, 100), credit(201, 9999));
    expect((await outbox.claim("t1", 10, 60_000, ALL)).map((d) => d.key).sort()).toEqual(["100", "201"]);
    expect(await runner.get("SELECT waiting_on AS w FROM deliveries WHERE target='t1' AND key='101'")).toEqual({ w: "invoice:100" });
  });

  test("coalescing: repeated updates of a waiting record are superseded by the newest", async () => {
    await send(customerEvent(1, { name: "v1" }), customerEvent(1, { name: "v2" }), customerEvent(1, { name: "v3" }));
    const rows = await runner.all("SELECT status, count(*) AS n FROM deliveries WHERE target='t1' GROUP BY status ORDER BY status");
    expect(rows).toEqual([
      { status: "pending", n: 1 },
      { status: "superseded", n: 2 },
    ]);
    const [d] = await outbox.claim("t1", 10, 60_000, ALL);
    expect(d!.payload.name).toBe("v3");
  });

  test("an update arriving while the record is in flight waits for it, then goes", async () => {
    await send(customerEvent(1, { name: "v1" }));
    const [first] = await outbox.claim("t1", 10, 60_000, ALL);
    await send(customerEvent(1, { name: "v2" }));
    expect(await outbox.claim("t1", 10, 60_000, ALL)).toHaveLength(0);
    await done(first);
    const [second] = await outbox.claim("t1", 10, 60_000, ALL);
    expect(second!.payload.name).toBe("v2");
  });

  test("expired leases (a crash) come back as uncertain; live ones do not", async () => {
    await send(customerEvent(1), customerEvent(2));
    const [a] = await outbox.claim("t1", 1, 1000, ALL);
    clock += 500;
    const [b] = await outbox.claim("t1", 1, 60_000, ALL);
    clock += 1000;
    expect(await outbox.recoverExpiredLeases()).toBe(1);
    expect(await status(a!.id)).toMatchObject({ status: "pending", uncertain: 1 });
    expect((await status(b!.id)).status).toBe("in_flight");
    expect(await outbox.recoverExpiredLeases(true)).toBe(1);
    expect(await status(b!.id)).toMatchObject({ status: "pending", uncertain: 1 });
  });

  test("an outcome for a lease already given up changes nothing, a wait included (no second write, no attempt row)", async () => {
    await send(customerEvent(1));
    const [a] = await outbox.claim("t1", 1, 60_000, ALL);
    await outbox.release([a!.id]); // shutdown gave the lease up: pending again, uncertain
    await outbox.complete([{ delivery: a!, outcome: { kind: "wait", on: "customer:2", reason: "waiting for customer 2" } }]);
    await outbox.complete([
      { delivery: a!, outcome: { kind: "retry", problem: { code: "x", message: "m" }, uncertain: false, delayMs: 0 } },
    ]);
    expect(await status(a!.id)).toMatchObject({ status: "pending", waitingOn: null, uncertain: 1 });
    const outcomes = await runner.all<{ outcome: string }>("SELECT outcome FROM delivery_attempts WHERE delivery_id = ?1", a!.id);
    expect(outcomes.map((o) => o.outcome)).toEqual(["interrupted"]);
  });

  test("nothing of a rejected batch is stored", async () => {
    const parsed = parseEvents([customerEvent(1), { id: "bad", type: "customer.upserted", data: { number: 2 } }]);
    expect(parsed.ok).toBe(false);
    expect(await runner.get("SELECT count(*) AS n FROM events")).toEqual({ n: 0 });
  });

  test("a newer version that replaces an uncertain delivery inherits the doubt (it looks up before creating)", async () => {
    await send(customerEvent(1, { name: "v1" }));
    const [d1] = await outbox.claim("t1", 10, 60_000, ALL);
    await outbox.complete([
      { delivery: d1!, outcome: { kind: "retry", delayMs: 60_000, uncertain: true, problem: { code: "timeout", message: "t" } } },
    ]);
    await send(customerEvent(1, { name: "v2" }));
    expect((await status(d1!.id)).status).toBe("superseded");
    const [d2] = await outbox.claim("t1", 10, 60_000, ALL);
    expect(d2!.payload.name).toBe("v2");
    expect(d2!.uncertain).toBe(true);
  });

  const held = (id: number) =>
    runner.get<any>(
      "SELECT status, uncertain, next_attempt_at AS nextAttemptAt, error_code AS errorCode, error_message AS errorMessage FROM deliveries WHERE id = ?1",
      id,
    );
  const newest = async (key: string) =>
    (await runner.get<{ id: number }>("SELECT max(id) AS id FROM deliveries WHERE target = 't1' AND key = ?1", key))!.id;

  test("a newer version of a record whose delivery is held after a crash waits for that hold, and says why", async () => {
    await send(customerEvent(1, { name: "v1" }));
    const [d1] = await outbox.claim("t1", 10, 1000, ALL, 60_000);
    clock += 5_000;
    expect(await outbox.recoverExpiredLeases()).toBe(1); // a write of it may land until clock + 60 s
    const hold = await held(d1!.id);
    expect(hold).toMatchObject({ status: "pending", errorCode: "interrupted", nextAttemptAt: clock + 60_000 });
    clock += 1_000;
    await send(customerEvent(1, { name: "v2" }));
    const d2 = await newest("1");
    expect(d2).not.toBe(d1!.id);
    expect(await held(d1!.id)).toMatchObject({ status: "superseded" });
    expect(await held(d2)).toEqual({ ...hold, uncertain: 1 });
    // A third version, during the same hold, inherits it again (the second one's own hold now).
    await send(customerEvent(1, { name: "v3" }));
    expect(await held(await newest("1"))).toEqual({ ...hold, uncertain: 1 });
    expect(await outbox.claim("t1", 10, 60_000, ALL)).toHaveLength(0);
    clock = hold.nextAttemptAt;
    const [d3] = await outbox.claim("t1", 10, 60_000, ALL);
    expect(d3).toMatchObject({ uncertain: true, payload: { name: "v3" } });
    // The other target's delivery of v1 was never held: its versions go at once.
    expect((await outbox.claim("t2", 10, 60_000, ALL)).map((d) => d.payload.name)).toEqual(["v3"]);
  });

  test("a newer version sent after a restore waits for the restore's hold; once the hold is over it goes at once", async () => {
    await send(customerEvent(1, { name: "v1" }), customerEvent(2, { name: "v1" }));
    expect(await outbox.holdAfterRestore("t1", 60_000)).toBe(2);
    const hold = await held(await newest("1"));
    expect(hold).toMatchObject({ errorCode: "restored", nextAttemptAt: clock + 60_000 });
    clock += 1_000;
    await send(customerEvent(1, { name: "v2" }));
    expect(await held(await newest("1"))).toEqual(hold);
    clock += 60_000; // the hold is over: a newer version is due when it is stored, with nothing to say
    await send(customerEvent(2, { name: "v2" }));
    expect(await held(await newest("2"))).toMatchObject({ status: "pending", nextAttemptAt: clock, errorCode: null });
  });

  test("a newer version does not take over an older one's retry delay (only a hold for a write still landing)", async () => {
    await send(customerEvent(1, { name: "v1" }));
    const [d1] = await outbox.claim("t1", 10, 60_000, ALL);
    await outbox.complete([
      { delivery: d1!, outcome: { kind: "retry", delayMs: 60_000, uncertain: false, problem: { code: "http_503", message: "m" } } },
    ]);
    await send(customerEvent(1, { name: "v2" }));
    expect(await held(await newest("1"))).toMatchObject({ status: "pending", nextAttemptAt: clock, errorCode: null });
  });

  test("an older version that needed action is retired once a newer one is delivered (a retry cannot overwrite it)", async () => {
    await send(customerEvent(1, { name: "v1" }));
    const [d1] = await outbox.claim("t1", 10, 60_000, ALL);
    await send(customerEvent(1, { name: "v2" })); // arrives while v1 is in flight
    await outbox.complete([
      { delivery: d1!, outcome: { kind: "needs_action", uncertain: false, problem: { code: "bad", message: "v1 invalid" } } },
    ]);
    const [d2] = await outbox.claim("t1", 10, 60_000, ALL);
    await done(d2);
    expect((await status(d1!.id)).status).toBe("superseded");
    expect(await outbox.retryAllNeedingAction("t1")).toBe(0);
  });

  test("a failing push with a newer version queued gives way to it", async () => {
    await send(customerEvent(1, { name: "v1" }));
    const [d1] = await outbox.claim("t1", 10, 60_000, ALL);
    await send(customerEvent(1, { name: "v2" }));
    await outbox.complete([
      { delivery: d1!, outcome: { kind: "retry", delayMs: 0, uncertain: true, problem: { code: "timeout", message: "t" } } },
    ]);
    expect((await status(d1!.id)).status).toBe("superseded");
    const [d2] = await outbox.claim("t1", 10, 60_000, ALL);
    expect(d2!.payload.name).toBe("v2");
    expect(d2!.uncertain).toBe(true);
  });

  test("a target added later gets the customer the PSA sent before, then the invoice", async () => {
    targets = ["t1"];
    await send(customerEvent(1));
    targets = ["t1", "t2"];
    await send(invoiceEvent(100, 1));
    const first = await outbox.claim("t2", 10, 60_000, ALL);
    const second = await outbox.claim("t2", 10, 60_000, ALL);
    expect([...first, ...second].map((d) => d.entity)).toEqual(["customer"]);
    await done([...first, ...second][0]);
    expect((await outbox.claim("t2", 10, 60_000, ALL)).map((d) => d.entity)).toEqual(["invoice"]);
  });

  // Credit notes of one invoice go to a target one at a time (a target may make a credit note from the invoice as a
  // draft the push marks only later, Uni Micro's credit action): two side by side took each other's drafts.
  const creditNote = (n: number, credited: number) => ({
    ...invoiceEvent(n, 1, undefined, { creditedInvoiceNumber: credited }),
    type: "invoice.credited",
  });
  async function creditNotesOf100() {
    targets = ["t1"];
    await send(customerEvent(1));
    await done((await outbox.claim("t1", 10, 60_000, ALL))[0]);
    await send(creditNote(201, 100), creditNote(202, 100), creditNote(203, 101));
  }
  const keys = (ds: ClaimedDelivery[]) => ds.map((d) => d.key);
  const outcomes = {
    done: { kind: "done", remoteId: "r", payloadHash: "h" },
    needs_action: { kind: "needs_action", uncertain: false, problem: { code: "x", message: "bad", hint: "fix" } },
    retry: { kind: "retry", delayMs: 5000, uncertain: false, problem: { code: "http_503", message: "down" } },
  } as const;
  for (const [kind, outcome] of Object.entries(outcomes)) {
    test(`a credit note is not claimed while another of its invoice is in flight, nor two in one claim; it goes once the first is ${kind}`, async () => {
      await creditNotesOf100();
      const [first, other] = await outbox.claim("t1", 10, 60_000, ALL);
      expect(keys([first!, other!])).toEqual(["201", "203"]);
      const waiting = await runner.get<any>(
        "SELECT id, status, waiting_on AS waitingOn, error_message AS why FROM deliveries WHERE key = '202'",
      );
      expect([waiting.status, waiting.waitingOn]).toEqual(["waiting", "invoice:201"]);
      expect(waiting.why).toContain("credit note 201 of invoice 100");
      expect(await outbox.claim("t1", 10, 60_000, ALL)).toEqual([]);
      await outbox.complete([{ delivery: first!, outcome }]);
      expect(keys(await outbox.claim("t1", 10, 60_000, ALL))).toEqual(["202"]);
      expect((await status(first!.id)).status).not.toBe("in_flight");
    });
  }

  test("a credit note waits while another of its invoice is to be retried in doubt (it may have been booked), then follows it", async () => {
    await creditNotesOf100();
    const [first] = await outbox.claim("t1", 10, 60_000, ALL);
    await outbox.complete([{ delivery: first!, outcome: { ...outcomes.retry, uncertain: true } }]);
    expect(keys(await outbox.claim("t1", 10, 60_000, ALL))).toEqual([]);
    clock += 5_000;
    const [again] = await outbox.claim("t1", 10, 60_000, ALL);
    expect(again!.key).toBe("201");
    await outbox.complete([{ delivery: again!, outcome: outcomes.done }]);
    expect(keys(await outbox.claim("t1", 10, 60_000, ALL))).toEqual(["202"]);
  });

  test("a credit note waits for one of its invoice released with a write still on its way, then follows it", async () => {
    targets = ["t1"];
    await send(customerEvent(1));
    await done((await outbox.claim("t1", 10, 60_000, ALL))[0]);
    await send(creditNote(201, 100));
    const [first] = await outbox.claim("t1", 10, 60_000, ALL, 30_000);
    await send(creditNote(202, 100));
    await outbox.release([first!.id], true);
    expect(await outbox.claim("t1", 10, 60_000, ALL)).toEqual([]);
    expect((await status(first!.id)).status).toBe("pending");
    clock += 30_000;
    const [again] = await outbox.claim("t1", 10, 60_000, ALL);
    expect(keys([again!])).toEqual(["201"]);
    expect(await outbox.claim("t1", 10, 60_000, ALL)).toEqual([]);
    await done(again);
    expect(keys(await outbox.claim("t1", 10, 60_000, ALL))).toEqual(["202"]);
  });

  test("four claimers at once never get the same delivery, and each record's versions go one at a time, in order", async () => {
    targets = ["t1"];
    const claimers = Array.from({ length: 4 }, () => new Outbox(runner, () => clock));
    const records = Array.from({ length: 30 }, (_, i) => i + 1);
    const timesClaimed = new Map<number, number>();
    const claimedByRecord = new Map<string, ClaimedDelivery[]>();
    /** Deliveries whose outcome is being written: only after that may the record's next version be claimed. */
    const finishing = new Set<number>();
    const problems: string[] = [];
    let sending = true;
    const sender = (async () => {
      for (let v = 1; v <= 4; v++) {
        await send(...records.map((n) => customerEvent(n, { name: `v${v}` }, `c${n}-v${v}`)));
        await Bun.sleep(2);
      }
      sending = false;
    })();
    const stillOpen = async () =>
      (await runner.get<{ n: number }>("SELECT count(*) AS n FROM deliveries WHERE status NOT IN ('done', 'superseded')"))!.n;
    const work = async (claimer: Outbox) => {
      for (;;) {
        const batch = await claimer.claim("t1", 5, 60_000, ALL);
        if (batch.length === 0) {
          if (!sending && (await stillOpen()) === 0) return;
          await Bun.sleep(1);
          continue;
        }
        for (const d of batch) {
          timesClaimed.set(d.id, (timesClaimed.get(d.id) ?? 0) + 1);
          const earlier = claimedByRecord.get(d.key) ?? [];
          const unfinished = earlier.filter((e) => !finishing.has(e.id));
          if (unfinished.length > 0) problems.push(`${d.key}: delivery ${d.id} claimed while ${unfinished[0]!.id} was in flight`);
          if (earlier.some((e) => e.eventSeq > d.eventSeq)) problems.push(`${d.key}: an older version claimed after a newer one`);
          claimedByRecord.set(d.key, [...earlier, d]);
        }
        await Bun.sleep(1); // the pushes
        for (const d of batch) finishing.add(d.id);
        await claimer.complete(
          batch.map((d) => ({ delivery: d, outcome: { kind: "done" as const, remoteId: `r-${d.key}`, payloadHash: "h" } })),
        );
      }
    };
    await Promise.all([sender, ...claimers.map(work)]);
    expect(problems).toEqual([]);
    expect([...timesClaimed.values()].filter((n) => n !== 1)).toEqual([]);
    // Every record ends with its newest version delivered.
    const latest = await runner.all<{ key: string; name: string }>(
      `SELECT d.key, e.payload AS name FROM deliveries d JOIN events e ON e.seq = d.event_seq
        WHERE d.status = 'done' AND d.event_seq = (SELECT max(event_seq) FROM deliveries WHERE key = d.key)`,
    );
    expect(latest.map((r) => [r.key, JSON.parse(r.name).name]).sort()).toEqual(records.map((n) => [String(n), "v4"]).sort());
  }, 60_000);
});
