// A document's total is bounded like every amount (README: at most 10^13 minor units). Before, each line was bounded
// but not their sum: 1,000 lines near the bound added up past 2^53, where a number no longer holds every integer, so the
// total kontobro compared with what a target booked was not the total sent.
import { describe, expect, test } from "bun:test";
import { parseEvents } from "../agent/intake.ts";
import { invoiceEvent } from "./helpers.ts";

const withLines = (type: string, unitPrice: number, count: number) => {
  const e = invoiceEvent(100, 7, undefined, type === "invoice.credited" ? { creditedInvoiceNumber: 99 } : {});
  return { ...e, type, data: { ...e.data, lines: Array.from({ length: count }, () => ({ text: "Work", quantity: 1, unitPrice })) } };
};

describe("a document's total is bounded", () => {
  test.each(["invoice.finalized", "invoice.credited"])(
    "%s whose lines add up past 10^13 minor units is refused, naming the bound",
    (type) => {
      const r = parseEvents(withLines(type, 9_000_000_000_000, 2));
      expect(r.ok).toBe(false);
      if (r.ok) return;
      const [p, ...more] = r.events[0]!.problems;
      expect(more).toEqual([]);
      expect(p!.field).toBe("data.lines");
      expect(p!.message).toBe(
        "data.lines: the lines add up to 18,000,000,000,000 minor units; a document's total must be at most 10,000,000,000,000 minor units in absolute value",
      );
    },
  );

  test("a total at the bound is taken", () => {
    expect(parseEvents(withLines("invoice.finalized", 5_000_000_000_000, 2)).ok).toBe(true);
  });
});
