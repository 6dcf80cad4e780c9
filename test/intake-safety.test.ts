// Issue 10, intake and model: one sign convention, canonical numbers, bounds, repeated ids with other
// content, order by the PSA's occurredAt, and a PDF stored once. A real SQLite file throughout.
import { beforeEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { openDatabase, type Db } from "../agent/db/index.ts";
import { EventConflict, IntakeWriter, parseEvents } from "../agent/intake.ts";
import { CreditNote, customerQuantity, customerTotal, dependenciesOf, Invoice } from "../agent/model.ts";
import { Outbox } from "../agent/outbox.ts";
import { customerEvent, invoiceEvent, tempDir } from "./helpers.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";

let db: Db;
let intake: IntakeWriter;

beforeEach(() => {
  db = openDatabase(join(tempDir(), "k.db"));
  intake = new IntakeWriter(new Outbox(sqliteRunner(db.$client)), () => ["t1"]);
});

async function send(...events: unknown[]) {
  const parsed = parseEvents(events);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.events));
  return intake.submit(parsed.events);
}
const one = <T>(sql: string, ...args: any[]) => db.$client.query(sql).get(...args) as T;

const base = {
  number: 9001,
  psaId: "PSA-CN-9001",
  customerNumber: 1,
  date: "2026-11-20",
  dueDate: "2026-12-04",
  creditedInvoiceNumber: 1001,
};

describe("sign convention (model)", () => {
  test("a credit note means the same whichever sign the PSA used, and always lowers what the customer owes", () => {
    const positive = CreditNote.parse({
      ...base,
      lines: [
        { text: "Hours", quantity: 2, unitPrice: 100_000 },
        { text: "Discount back", quantity: -1, unitPrice: 20_000 },
      ],
    });
    const minusQty = CreditNote.parse({
      ...base,
      lines: [
        { text: "Hours", quantity: -2, unitPrice: 100_000 },
        { text: "Discount back", quantity: 1, unitPrice: 20_000 },
      ],
    });
    const minusPrice = CreditNote.parse({
      ...base,
      lines: [
        { text: "Hours", quantity: 2, unitPrice: -100_000 },
        { text: "Discount back", quantity: 1, unitPrice: 20_000 },
      ],
    });
    for (const cn of [positive, minusQty, minusPrice]) {
      expect(cn.lines.map((l) => [l.quantity, l.unitPrice])).toEqual([
        [2, 100_000],
        [-1, 20_000],
      ]);
      expect(customerTotal(cn)).toBe(-180_000);
      expect(cn.lines.map((l) => customerQuantity(cn, l))).toEqual([-2, 1]);
    }
  });

  test("an invoice with a discount line keeps its signs; a negative invoice and a zero credit note are refused with a hint", () => {
    const inv = Invoice.parse({
      ...base,
      psaId: "PSA-1",
      lines: [
        { text: "Hours", quantity: 2, unitPrice: 100_000 },
        { text: "Discount", quantity: 1, unitPrice: -30_000 },
      ],
    });
    expect(inv.lines.map((l) => [l.quantity, l.unitPrice])).toEqual([
      [2, 100_000],
      [-1, 30_000],
    ]);
    expect(customerTotal(inv)).toBe(170_000);
    const negative = parseEvents([invoiceEvent(5, 1, undefined, { lines: [{ text: "Refund", quantity: 1, unitPrice: -5000 }] })]);
    expect(negative.ok).toBe(false);
    expect(JSON.stringify(negative)).toContain("invoice.credited");
    const zero = CreditNote.safeParse({
      ...base,
      lines: [
        { text: "a", quantity: 1, unitPrice: 100 },
        { text: "b", quantity: -1, unitPrice: 100 },
      ],
    });
    expect(zero.success).toBe(false);
  });

  test("absurd numbers are refused at intake with the bound in the message", () => {
    const r = parseEvents([invoiceEvent(5, 1, undefined, { lines: [{ text: "x", quantity: 1e300, unitPrice: 100 }] })]);
    expect(r.ok).toBe(false);
    expect(JSON.stringify(r)).toContain("1,000,000,000");
    const price = parseEvents([invoiceEvent(6, 1, undefined, { lines: [{ text: "x", quantity: 1, unitPrice: 1e17 }] })]);
    expect(price.ok).toBe(false);
    expect(JSON.stringify(price)).toContain("10,000,000,000,000");
    const product = parseEvents([invoiceEvent(7, 1, undefined, { lines: [{ text: "x", quantity: 1_000_000, unitPrice: 1_000_000_000 }] })]);
    expect(product.ok).toBe(false);
    expect(JSON.stringify(product)).toContain("quantity × unitPrice");
  });
});

describe("canonical numbers", () => {
  test("0101 and 101 are the same customer; product codes keep their zeros", async () => {
    await send(customerEvent(101));
    await send({
      ...invoiceEvent(1, 0, undefined, {
        customerNumber: "0101",
        lines: [{ text: "x", quantity: 1, unitPrice: 100, productCode: "0042" }],
      }),
    });
    const inv = JSON.parse(one<{ payload: string }>("SELECT payload FROM records WHERE entity = 'invoice'").payload);
    expect(inv.customerNumber).toBe("101");
    expect(inv.lines[0].productCode).toBe("0042");
    expect(dependenciesOf("invoice", inv)).toEqual([
      { entity: "customer", key: "101" },
      { entity: "product", key: "0042", ifKnown: true },
    ]);
  });
});

describe("a repeated event id", () => {
  test("with the same content is a duplicate; with other content it is refused (409) and nothing of that batch is stored", async () => {
    await send(customerEvent(1, {}, "evt-1"));
    expect((await send(customerEvent(1, {}, "evt-1")))[0]!.status).toBe("duplicate");
    const err = await send(customerEvent(2, {}, "evt-new"), customerEvent(1, { name: "Other name" }, "evt-1")).catch((e) => e);
    expect(err).toBeInstanceOf(EventConflict);
    expect(err.events).toEqual([
      expect.objectContaining({ index: 1, id: "evt-1", problems: [expect.objectContaining({ code: "event.id_reused" })] }),
    ]);
    expect(one<{ n: number }>("SELECT count(*) AS n FROM events").n).toBe(1);
    expect(one<{ name: string }>("SELECT json_extract(payload, '$.name') AS name FROM records WHERE key = '1'").name).toBe("Customer 1");
  });

  test("a conflicting request does not disturb another request committed in the same group", async () => {
    await send(customerEvent(1, {}, "evt-1"));
    const [bad, good] = await Promise.allSettled([
      send(customerEvent(1, { name: "Changed" }, "evt-1")),
      send(customerEvent(3, {}, "evt-3")),
    ]);
    expect(bad.status).toBe("rejected");
    expect(good.status).toBe("fulfilled");
    expect(one<{ n: number }>("SELECT count(*) AS n FROM records WHERE key = '3'").n).toBe(1);
  });
});

describe("order by the PSA's occurredAt", () => {
  test("a late older version is acknowledged as stale and never pushed; the newer one stays", async () => {
    const v2 = { ...customerEvent(1, { name: "Version 2" }, "v2"), occurredAt: "2026-11-20T10:00:02Z" };
    const v1 = { ...customerEvent(1, { name: "Version 1" }, "v1"), occurredAt: "2026-11-20T12:00:01+02:00" };
    expect((await send(v2))[0]!.status).toBe("accepted");
    expect((await send(v1))[0]!.status).toBe("stale");
    expect(one<{ name: string }>("SELECT json_extract(payload, '$.name') AS name FROM records WHERE key = '1'").name).toBe("Version 2");
    expect(one<{ stale: number }>("SELECT stale FROM events WHERE event_id = 'v1'").stale).toBe(1);
    const open = db.$client
      .query("SELECT e.event_id AS id FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.status = 'pending'")
      .all();
    expect(open).toEqual([{ id: "v2" }]);
  });

  test("an occurredAt without a time zone is refused with an example", () => {
    const r = parseEvents([{ ...customerEvent(1), occurredAt: "2026-11-20 10:00" }]);
    expect(r.ok).toBe(false);
    expect(JSON.stringify(r)).toContain("2026-03-31T14:05:00Z");
  });
});

describe("the invoice PDF", () => {
  test("is stored once: in the event that carries it, not again in the record", async () => {
    const pdf = Buffer.from("%PDF-1.4 tiny").toString("base64");
    await send(customerEvent(1), invoiceEvent(1, 1, undefined, { pdf: { filename: "f.pdf", contentBase64: pdf } }));
    const record = JSON.parse(one<{ payload: string }>("SELECT payload FROM records WHERE entity = 'invoice'").payload);
    expect(record.pdf).toEqual({ filename: "f.pdf", size: 13 });
    const event = JSON.parse(one<{ payload: string }>("SELECT payload FROM events WHERE entity = 'invoice'").payload);
    expect(event.pdf.contentBase64).toBe(pdf);
  });
});

describe("one document per number and per PSA id", () => {
  test("a credit note numbered like a stored invoice is refused (409) instead of replacing it", async () => {
    await send(invoiceEvent(1, 1));
    const err = await send({
      id: "cn-1",
      type: "invoice.credited",
      data: { ...invoiceEvent(1, 1).data, psaId: "PSA-CN-1", creditedInvoiceNumber: 1, number: 1 },
    }).catch((e) => e);
    // (creditedInvoiceNumber may not equal its own number: the model refuses that first)
    expect(err).toBeInstanceOf(Error);
    const cn = {
      id: "cn-2",
      type: "invoice.credited",
      data: { ...invoiceEvent(2, 1).data, psaId: "PSA-CN-2", creditedInvoiceNumber: 5, number: 1 },
    };
    const conflict = await send(cn).catch((e) => e);
    expect(conflict).toBeInstanceOf(EventConflict);
    expect(conflict.events[0].problems[0]).toMatchObject({ code: "invoice.number_taken", field: "data.number" });
    expect(conflict.events[0].problems[0].message).toContain('PSA id "PSA-INV-1"');
    expect(
      one<{ kind: string }>("SELECT json_extract(payload, '$.kind') AS kind FROM records WHERE entity = 'invoice' AND key = '1'").kind,
    ).toBe("invoice");
  });

  test("a PSA id used by another number is refused; a new version of the same document is fine", async () => {
    await send(invoiceEvent(1, 1));
    expect((await send(invoiceEvent(1, 1, undefined, { heading: "Corrected" }, "i-1-v2")))[0]!.status).toBe("accepted");
    const other = await send(invoiceEvent(2, 1, undefined, { psaId: "PSA-INV-1" })).catch((e) => e);
    expect(other).toBeInstanceOf(EventConflict);
    expect(other.events[0].problems[0]).toMatchObject({ code: "invoice.psa_id_taken", field: "data.psaId" });
  });

  test("a resend of an event an older version stored with another spelling is a duplicate, not a conflict", async () => {
    await send(customerEvent(101, {}, "evt-0101"));
    db.$client.run(`UPDATE events SET payload = replace(payload, '"number":"101"', '"number":"0101"') WHERE event_id = 'evt-0101'`);
    expect((await send(customerEvent(101, {}, "evt-0101")))[0]!.status).toBe("duplicate");
  });
});

describe("a group whose listener fails", () => {
  test("fails only its own callers: later groups are stored and close() finishes", async () => {
    let calls = 0;
    const failing = new IntakeWriter(
      new Outbox(sqliteRunner(db.$client)),
      () => ["t1"],
      () => {
        if (calls++ === 0) throw new Error("listener bug");
      },
    );
    const events = (n: number) => {
      const parsed = parseEvents([customerEvent(n)]);
      if (!parsed.ok) throw new Error("test event invalid");
      return parsed.events;
    };
    await expect(failing.submit(events(1))).rejects.toThrow("listener bug");
    const second = await Promise.race([failing.submit(events(2)), Bun.sleep(2_000).then(() => "still waiting")]);
    expect(second).toMatchObject([{ status: "accepted" }]);
    const closed = await Promise.race([failing.close().then(() => "closed"), Bun.sleep(2_000).then(() => "close() hangs")]);
    expect(closed).toBe("closed");
    // The failed group's events were stored: sent again, they are duplicates.
    expect(one<{ n: number }>("SELECT count(*) AS n FROM events").n).toBe(2);
  });
});
