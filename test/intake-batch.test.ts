// Intake decides a whole request before writing it (agent/intake-store.ts, issue 16): versions of one record,
// repeats, stale versions and taken numbers inside one request must come out as if the events had been sent
// one request at a time. Both engines: a real SQLite file, and a tenant on a real PostgreSQL server (test/engines.ts).
import { describe, expect, test } from "bun:test";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { EventConflict, IntakeWriter, parseEvents } from "../agent/intake.ts";
import { Outbox } from "../agent/outbox.ts";
import { type Engine, storageEngines } from "./engines.ts";
import { customerEvent, invoiceEvent } from "./helpers.ts";

const NOW = 1_760_000_000_000;
const { engines, open: openStorage } = storageEngines("intake's decisions per request");

async function open(engine: Engine): Promise<{ db: SqlRunner; intake: IntakeWriter }> {
  const db = await openStorage(engine);
  return {
    db,
    intake: new IntakeWriter(
      new Outbox(db, () => NOW),
      () => ["t1", "t2"],
      undefined,
      () => NOW,
    ),
  };
}

const send = (intake: IntakeWriter, events: unknown[]) => {
  const parsed = parseEvents(events);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.events));
  return intake.submit(parsed.events);
};

/**
 * Everything intake writes, in a form two databases can be compared by: event seqs and delivery ids by their order
 * (PostgreSQL numbers them across tenants), and what refers to them by the same order.
 */
async function state(db: SqlRunner) {
  const events = await db.all<any>("SELECT seq, event_id, type, key, payload, occurred_at, stale FROM events ORDER BY seq");
  const deliveries = await db.all<any>("SELECT id, event_seq, target, key, status, uncertain, caused_by FROM deliveries ORDER BY id");
  const seqRank = new Map(events.map((e, i) => [e.seq, i + 1]));
  const idRank = new Map(deliveries.map((d, i) => [d.id, i + 1]));
  return {
    events: events.map((e) => ({ ...e, seq: seqRank.get(e.seq) })),
    records: (
      await db.all<any>("SELECT entity, key, payload, version, last_event_seq, occurred_at, psa_id FROM records ORDER BY entity, key")
    ).map((r) => ({ ...r, last_event_seq: seqRank.get(r.last_event_seq) })),
    deliveries: deliveries.map((d) => ({
      ...d,
      id: idRank.get(d.id),
      event_seq: seqRank.get(d.event_seq),
      caused_by: d.caused_by === null ? null : idRank.get(d.caused_by),
    })),
    exports: await db.all("SELECT invoice_key, status FROM invoice_export_status ORDER BY invoice_key"),
  };
}

/** An intake whose transactions' statements are kept (their texts), to count them. */
function counting(db: SqlRunner): { intake: IntakeWriter; texts: string[] } {
  const texts: string[] = [];
  const seen = (tx: SqlRunner): SqlRunner => ({
    ...tx,
    all: (text, ...p) => {
      texts.push(text);
      return tx.all(text, ...p);
    },
    get: (text, ...p) => {
      texts.push(text);
      return tx.get(text, ...p);
    },
    run: (text, ...p) => {
      texts.push(text);
      return tx.run(text, ...p);
    },
  });
  const counted: SqlRunner = { ...db, transaction: (fn) => db.transaction((tx) => fn(seen(tx))) };
  return {
    intake: new IntakeWriter(
      new Outbox(counted, () => NOW),
      () => ["t1", "t2"],
      undefined,
      () => NOW,
    ),
    texts,
  };
}

/** A deterministic mix: several versions per record, with and without occurredAt, exact resends, invoices. */
function mixedEvents(seed: number, count: number): unknown[] {
  let x = seed;
  const next = (n: number) => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x % n;
  };
  const sent: unknown[] = [];
  for (let i = 0; i < count; i++) {
    const pick = next(10);
    if (pick === 0 && sent.length > 0)
      sent.push(sent[next(sent.length)]); // an exact resend
    else if (pick < 3) {
      const n = 500 + next(4);
      sent.push(invoiceEvent(n, 1, undefined, { dueDate: `2026-12-${10 + next(9)}` }, `i-${seed}-${i}`));
    } else {
      const at = next(3) === 0 ? {} : { occurredAt: `2026-03-0${1 + next(5)}T10:00:00Z` };
      sent.push({ ...customerEvent(1 + next(3), { name: `Customer v${i}` }, `c-${seed}-${i}`), ...at });
    }
  }
  return sent;
}

describe.each(engines)("a request is stored as if its events came one at a time, on %s", (engine) => {
  for (const seed of [1, 7, 42, 2026]) {
    test(`seed ${seed}: versions, resends, stale versions and invoices`, async () => {
      const events = mixedEvents(seed, 40);
      const single = await open(engine);
      // Something stored before, with an open delivery, so the request's versions supersede it.
      await send(single.intake, [customerEvent(1, {}, "before-1"), invoiceEvent(500, 1)]);
      const batched = await open(engine);
      await send(batched.intake, [customerEvent(1, {}, "before-1"), invoiceEvent(500, 1)]);

      const one: string[] = [];
      for (const e of events) one.push(...(await send(single.intake, [e])).map((r) => r.status));
      const all: string[] = (await send(batched.intake, events)).map((r) => r.status);
      expect(all).toEqual(one);
      expect(all).toContain("duplicate");
      expect(all).toContain("stale");
      expect(await state(batched.db)).toEqual(await state(single.db));
    });
  }

  test("requests committed in one group see each other, and a refused one leaves nothing behind", async () => {
    const requests: unknown[][] = [
      [customerEvent(1, { name: "v1" }, "a")],
      [customerEvent(1, { name: "v2" }, "b"), invoiceEvent(800, 1)],
      // Refused (the id "a" with other content): its new customer and its version of customer 1 must vanish.
      [customerEvent(2, {}, "x"), customerEvent(1, { name: "v3" }, "y"), customerEvent(3, {}, "a")],
      [customerEvent(1, { name: "v4" }, "c"), invoiceEvent(801, 1, undefined, { psaId: "PSA-INV-800" }, "i-801")],
      [invoiceEvent(800, 1), customerEvent(2, {}, "x")],
    ];
    const outcome = (p: Promise<{ status: string }[]>) =>
      p.then(
        (r) => r.map((x) => x.status),
        (e) => (e instanceof EventConflict ? e.events.map((c) => `conflict ${c.index}`) : String(e)),
      );
    const grouped = await open(engine);
    const together = await Promise.all(requests.map((r) => outcome(send(grouped.intake, r))));
    const single = await open(engine);
    const oneByOne: (string | string[])[] = [];
    for (const r of requests) oneByOne.push(await outcome(send(single.intake, r)));
    expect(together).toEqual(oneByOne);
    expect(together).toEqual([["accepted"], ["accepted", "accepted"], ["conflict 2"], ["conflict 1"], ["duplicate", "accepted"]]);
    expect(await state(grouped.db)).toEqual(await state(single.db));
  });

  test("two versions of a record in one request: one pending delivery per target, the earlier superseded", async () => {
    const { db, intake } = await open(engine);
    await send(intake, [customerEvent(1, { name: "A" }, "a"), customerEvent(1, { name: "B" }, "b")]);
    const record = (await db.get<{ version: number; payload: string }>("SELECT version, payload FROM records"))!;
    expect({ version: record.version, name: JSON.parse(record.payload).name }).toEqual({ version: 2, name: "B" });
    const rows = await db.all(
      "SELECT e.event_id AS id, d.target, d.status FROM deliveries d JOIN events e ON e.seq = d.event_seq ORDER BY d.id",
    );
    expect(rows).toEqual([
      { id: "a", target: "t1", status: "superseded" },
      { id: "a", target: "t2", status: "superseded" },
      { id: "b", target: "t1", status: "pending" },
      { id: "b", target: "t2", status: "pending" },
    ]);
  });

  test("an earlier attempt's doubt carries over to the version that supersedes it", async () => {
    const { db, intake } = await open(engine);
    await send(intake, [customerEvent(1, {}, "a")]);
    await db.run("UPDATE deliveries SET uncertain = 1 WHERE target = 't1'");
    await send(intake, [customerEvent(1, { name: "B" }, "b"), customerEvent(1, { name: "C" }, "c")]);
    const open_ = await db.all("SELECT target, uncertain FROM deliveries WHERE status = 'pending' ORDER BY target");
    expect(open_).toEqual([
      { target: "t1", uncertain: 1 },
      { target: "t2", uncertain: 0 },
    ]);
  });

  test("a request updating stored records supersedes all their older deliveries in one statement", async () => {
    const db = await openStorage(engine);
    const { intake, texts } = counting(db);
    await send(
      intake,
      [1, 2, 3].map((n) => customerEvent(n, {}, `a${n}`)),
    );
    await db.run("UPDATE deliveries SET uncertain = 1 WHERE (target = 't1' AND key = '1') OR (target = 't2' AND key = '2')");
    texts.length = 0;
    await send(intake, [...[1, 2, 3].map((n) => customerEvent(n, { name: "B" }, `b${n}`)), customerEvent(4, {}, "b4")]);
    expect(texts.filter((t) => t.includes("SET status = 'superseded'"))).toHaveLength(1);
    const rows = await db.all(
      "SELECT e.event_id AS id, d.target, d.status, d.uncertain FROM deliveries d JOIN events e ON e.seq = d.event_seq ORDER BY e.event_id, d.target",
    );
    expect(rows).toEqual(
      ["a1", "a2", "a3", "b1", "b2", "b3", "b4"].flatMap((id) =>
        ["t1", "t2"].map((target) => ({
          id,
          target,
          status: id.startsWith("a") ? "superseded" : "pending",
          uncertain: (target === "t1" && id.endsWith("1")) || (target === "t2" && id.endsWith("2")) ? 1 : 0,
        })),
      ),
    );
  });

  test("a request's invoices are marked to transfer in one statement", async () => {
    const db = await openStorage(engine);
    const { intake, texts } = counting(db);
    await send(intake, [invoiceEvent(801, 1), invoiceEvent(802, 1), customerEvent(1, {}, "c1"), invoiceEvent(803, 1)]);
    expect(texts.filter((t) => t.includes("INTO invoice_export_status"))).toHaveLength(1);
    expect(await db.all("SELECT invoice_key, status, changed_by FROM invoice_export_status ORDER BY invoice_key")).toEqual(
      ["801", "802", "803"].map((invoice_key) => ({ invoice_key, status: "to_transfer", changed_by: "finalized" })),
    );
    // A request without invoices writes none.
    texts.length = 0;
    await send(intake, [customerEvent(2, {}, "c2")]);
    expect(texts.filter((t) => t.includes("INTO invoice_export_status"))).toHaveLength(0);
  });

  test("conflicts inside one request store nothing of it", async () => {
    const { db, intake } = await open(engine);
    const cases: unknown[][] = [
      [customerEvent(1, {}, "x"), customerEvent(2, {}, "x")], // one id, two contents
      [invoiceEvent(700, 1), { ...invoiceEvent(700, 1, undefined, { psaId: "PSA-OTHER" }), id: "i-700b" }], // number taken
      [invoiceEvent(701, 1), { ...invoiceEvent(702, 1, undefined, { psaId: "PSA-INV-701" }), id: "i-702" }], // PSA id taken
    ];
    for (const events of cases) {
      const err = await send(intake, events).catch((e) => e);
      expect(err).toBeInstanceOf(EventConflict);
      expect((err as EventConflict).events.map((c) => c.index)).toEqual([1]);
    }
    expect(await db.get("SELECT count(*) AS n FROM events")).toEqual({ n: 0 });
    expect(await db.get("SELECT count(*) AS n FROM deliveries")).toEqual({ n: 0 });
  });
});
