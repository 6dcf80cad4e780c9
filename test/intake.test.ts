import { describe, expect, test } from "bun:test";
import { MAX_EVENTS_PER_REQUEST, parseEvents } from "../agent/intake.ts";
import { customerEvent, invoiceEvent } from "./helpers.ts";

describe("intake validation", () => {
  test("valid events get their entity and key", () => {
    const r = parseEvents([customerEvent(7), invoiceEvent(100, 7)]);
    expect(r.ok).toBe(true);
    if (r.ok)
      expect(r.events.map((e) => [e.entity, e.key])).toEqual([
        ["customer", "7"],
        ["invoice", "100"],
      ]);
  });

  test("each invalid field is named, with a message and a hint", () => {
    const r = parseEvents([
      customerEvent(1),
      {
        id: "x",
        type: "invoice.finalized",
        data: { ...invoiceEvent(1, 1).data, lines: [{ text: "a", quantity: 1, unitPrice: 12.5 }], date: "31.03.2026" },
      },
    ]);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.status).toBe(422);
    expect(r.events).toHaveLength(1);
    expect(r.events[0]!.index).toBe(1);
    const fields = r.events[0]!.problems.map((p) => p.field);
    expect(fields).toContain("data.date");
    expect(fields).toContain("data.lines.0.unitPrice");
    expect(r.events[0]!.problems.find((p) => p.field === "data.lines.0.unitPrice")!.message).toContain("minor units");
    for (const p of r.events[0]!.problems) expect(p.hint).toBeTruthy();
  });

  test("unknown types, missing ids and wrong shapes are refused clearly", () => {
    const r = parseEvents([{ type: "customer.deleted", data: {} }]);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.events[0]!.problems.map((p) => p.field)).toContain("id");
    const t = parseEvents({ id: "1", type: "customer.deleted", data: {} });
    if (!t.ok) expect(t.events[0]!.problems[0]!.hint).toContain("customer.upserted");
    for (const body of [null, 42, "text", []]) expect(parseEvents(body).ok).toBe(false);
  });

  test("more than the limit per request is a 400", () => {
    const r = parseEvents(Array.from({ length: MAX_EVENTS_PER_REQUEST + 1 }, (_, i) => customerEvent(i + 1)));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.status).toBe(400);
      expect(r.message).toContain("1001");
    }
  });

  test("a credit note must name the invoice it credits", () => {
    const base = invoiceEvent(101, 1).data;
    expect(parseEvents({ id: "cn", type: "invoice.credited", data: base }).ok).toBe(false);
    expect(parseEvents({ id: "cn", type: "invoice.credited", data: { ...base, creditedInvoiceNumber: 100 } }).ok).toBe(true);
  });
});
