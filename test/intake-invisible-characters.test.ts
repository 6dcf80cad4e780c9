// A number, code, PSA id or event id holding a character nobody sees (U+200B ZERO WIDTH SPACE pasted with a number, a
// soft hyphen, a direction mark, a tab) was accepted: customer "10\u200b01" became a customer other than 1001 that
// looks the same in every list, pushed as a new customer (or refused by a target far from the PSA). Refused at intake,
// naming the character and where it is.
import { describe, expect, test } from "bun:test";
import { parseEvents } from "../agent/intake.ts";
import { customerEvent, invoiceEvent } from "./helpers.ts";

function problemsOf(body: unknown) {
  const r = parseEvents(body);
  if (r.ok) throw new Error(`accepted: ${JSON.stringify(r.events.map((e) => e.key))}`);
  return r.events.flatMap((e) => e.problems);
}

describe("identifiers with invisible characters", () => {
  test("a customer number with a zero-width space", () => {
    const [p, ...more] = problemsOf(customerEvent(7, { number: "10\u200b01" }));
    expect(more).toEqual([]);
    expect(p).toMatchObject({ field: "data.number" });
    expect(p!.message).toBe(
      'data.number: holds an invisible character (U+200B) after "10": remove it in the PSA, or it names something other than what everyone sees',
    );
  });

  test("a soft hyphen in a product code, a direction mark in a PSA id, a tab in an event id", () => {
    const product = { id: "pr-1", type: "product.upserted", data: { code: "KON\u00adS", name: "Konsulent" } };
    expect(problemsOf(product)[0]!.message).toContain("(U+00AD)");
    expect(problemsOf(invoiceEvent(1, 7, undefined, { psaId: "INV-1\u200e" }))[0]).toMatchObject({ field: "data.psaId" });
    expect(problemsOf({ ...customerEvent(7), id: "evt\t1" })[0]).toMatchObject({ field: "id" });
    expect(problemsOf(invoiceEvent(1, "7\u2060" as unknown as number))[0]).toMatchObject({ field: "data.customerNumber" });
  });

  test("letters of every script and spaces inside are visible: kept", () => {
    for (const number of ["Å-7", "ÆØÅ 12", "Čáslav-3", "東京-1"]) expect(parseEvents(customerEvent(7, { number })).ok).toBe(true);
  });
});
