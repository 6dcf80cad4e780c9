// The record page's pure parts (agent/record-story.ts): what each event changed against the version before
// it, how a record is named, and how a search for a number is read.
import { describe, expect, test } from "bun:test";
import {
  eventStory,
  flattenPayload,
  kindOf,
  kindOfEvent,
  payloadChanges,
  recordName,
  recordSummary,
  retryLabel,
  searchRequest,
  showValue,
  type StoredEvent,
} from "../agent/record-story.ts";

const event = (seq: number, payload: unknown, extra: Partial<StoredEvent> = {}): StoredEvent => ({
  seq,
  eventId: `e-${seq}`,
  type: "customer.upserted",
  payload: payload === "" ? "" : JSON.stringify(payload),
  receivedAt: 1_000 * seq,
  occurredAt: null,
  stale: false,
  ...extra,
});

describe("payload changes", () => {
  test("leaves are named by path; arrays by position; empty arrays and objects are leaves", () => {
    expect([...flattenPayload({ a: 1, b: { c: "x", d: [] }, lines: [{ q: 2 }, { q: 3 }], e: {} })]).toEqual([
      ["a", 1],
      ["b.c", "x"],
      ["b.d", []],
      ["lines[0].q", 2],
      ["lines[1].q", 3],
      ["e", {}],
    ]);
  });

  test("changed, removed and added fields, in the order of the version before and then the new ones", () => {
    const before = { name: "Acme", email: "a@x.no", addresses: [{ city: "Bergen", zip: "5013" }] };
    const after = { name: "Acme AS", addresses: [{ city: "Oslo", zip: "5013" }, { city: "Tromsø" }], phone: "123" };
    expect(payloadChanges(before, after)).toEqual([
      { path: "name", before: "Acme", after: "Acme AS" },
      { path: "email", before: "a@x.no" },
      { path: "addresses[0].city", before: "Bergen", after: "Oslo" },
      { path: "addresses[1].city", after: "Tromsø" },
      { path: "phone", after: "123" },
    ]);
  });

  test("the same content is no change; a number and its string are different", () => {
    expect(payloadChanges({ a: [1, { b: null }] }, { a: [1, { b: null }] })).toEqual([]);
    expect(payloadChanges({ n: 1 }, { n: "1" })).toEqual([{ path: "n", before: 1, after: "1" }]);
    expect(payloadChanges({ tags: [] }, { tags: ["x"] })).toEqual([
      { path: "tags", before: [] },
      { path: "tags[0]", after: "x" },
    ]);
  });
});

describe("event story", () => {
  test("the first version, then each event against the version before it", () => {
    const story = eventStory([event(1, { name: "A", vat: "1" }), event(2, { name: "B", vat: "1" }), event(3, { name: "B", vat: "1" })]);
    expect(story.map((e) => e.change)).toEqual([
      { kind: "first" },
      { kind: "changed", changes: [{ path: "name", before: "A", after: "B" }] },
      { kind: "same" },
    ]);
  });

  test("a stale event is compared with the version kept, but the next event is compared with that version, not the stale one", () => {
    const story = eventStory([event(1, { name: "A" }), event(2, { name: "Old" }, { stale: true }), event(3, { name: "C" })]);
    expect(story.map((e) => e.change)).toEqual([
      { kind: "first" },
      { kind: "changed", changes: [{ path: "name", before: "A", after: "Old" }] },
      { kind: "changed", changes: [{ path: "name", before: "A", after: "C" }] },
    ]);
    expect(story[1]!.stale).toBe(true);
  });

  test("pruned content: the pruned event and the one after it say that what changed is not known", () => {
    const story = eventStory([event(1, ""), event(2, { name: "B" }), event(3, { name: "C" })]);
    expect(story.map((e) => e.change.kind)).toEqual(["pruned", "previous_pruned", "changed"]);
  });

  test("a page of a longer story compares its first event with the one before the page", () => {
    const story = eventStory([event(5, { name: "E" })], event(4, { name: "D" }));
    expect(story[0]!.change).toEqual({ kind: "changed", changes: [{ path: "name", before: "D", after: "E" }] });
    // Without the content of the one before, it is not called the first version.
    expect(eventStory([event(5, { name: "E" })], event(4, ""))[0]!.change).toEqual({ kind: "previous_pruned" });
  });
});

describe("naming and searching", () => {
  test("credit notes are invoice records named as credit notes, from their payload or their event type", () => {
    expect(kindOf("invoice", { kind: "credit_note" })).toBe("credit_note");
    expect(kindOf("invoice", { kind: "invoice" })).toBe("invoice");
    expect(kindOfEvent("invoice", "invoice.credited")).toBe("credit_note");
    expect(kindOfEvent("project", "project.upserted")).toBe("project");
    expect(recordName("credit_note", "5001")).toBe("credit note 5001");
    expect(retryLabel("invoice", "10042", "eco")).toBe("Retry invoice 10042 at eco");
  });

  test("summaries say what a record is", () => {
    expect(recordSummary("customer", { name: "Acme AS", orgNumber: "999" })).toBe("Acme AS · org. no. 999");
    expect(
      recordSummary("invoice", {
        kind: "credit_note",
        creditedInvoiceNumber: "10042",
        customerNumber: "31",
        date: "2026-11-20",
        currency: "NOK",
        lines: [
          { quantity: 7.5, unitPrice: 145000 },
          { quantity: 1, unitPrice: 50000 },
        ],
      }),
    ).toBe("credits invoice 10042 · customer 31 · 2026-11-20 · 11,375.00 NOK");
  });

  test("a search is read as the number typed and its canonical spelling, optionally of one kind", () => {
    expect(searchRequest(" 0101 ", "")).toEqual({ ok: true, request: { keys: ["0101", "101"], kind: null } });
    expect(searchRequest("P-100", "project")).toEqual({ ok: true, request: { keys: ["P-100"], kind: "project" } });
    expect(searchRequest("", "")).toMatchObject({ ok: false, message: expect.stringContaining("Type a number") });
    expect(searchRequest("1", "order")).toMatchObject({ ok: false, message: expect.stringContaining("not a kind of record") });
    expect(searchRequest("x".repeat(51), "")).toMatchObject({ ok: false });
  });

  test("values are shown quoted and shortened", () => {
    expect(showValue("Acme")).toBe('"Acme"');
    expect(showValue(undefined)).toBe("(none)");
    expect(showValue("x".repeat(200), 10)).toBe('"xxxxxxxx…');
  });
});
