// A NUL character (JSON "\u0000") in any text is refused at intake with the field that holds it, like a lone surrogate.
// PostgreSQL's text holds no NUL: the record key or PSA id column refuses it, and reading it out of the group's JSON
// list of keys (->>) fails with "unsupported Unicode escape sequence", so a hosted tenant's group commit failed for
// every caller in it; a target would get an invoice number or text with an invisible character.
import { describe, expect, test } from "bun:test";
import { malformedTextAt, parseEvents } from "../agent/intake.ts";
import { customerEvent, invoiceEvent } from "./helpers.ts";

const problemOf = (body: unknown) => {
  const r = parseEvents(body);
  if (r.ok) throw new Error("accepted");
  return r.events[0]!.problems[0]!;
};

describe("NUL in text", () => {
  test("in a number, the PSA id, a line's text, the event id or a key: refused, named, and said what it is", () => {
    const invoice = invoiceEvent(7, 1, undefined, { psaId: "PSA\u0000-7" });
    expect(problemOf(invoice)).toMatchObject({ code: "invalid.text", field: "data.psaId" });
    expect(problemOf(invoice).message).toBe("data.psaId: is not text kontobro can store: it holds a NUL character (\\u0000)");
    expect(problemOf(customerEvent(1, { number: "42\u0000" })).field).toBe("data.number");
    const line = invoiceEvent(7, 1) as any;
    line.data.lines[0].text = "Work\u0000";
    expect(problemOf(line).field).toBe("data.lines.0.text");
    expect(problemOf(customerEvent(1, {}, "c\u00001")).field).toBe("id");
    expect(malformedTextAt({ tags: { "a\u0000": "b" } })).toBe("tags.a\u0000");
  });

  test("other control characters in free text still pass (a tab, a line break)", () => {
    expect(parseEvents(customerEvent(1, { name: "Acme\tAS\nBergen" })).ok).toBe(true);
  });
});
