// A quantity a PSA computed in binary floating point (0.1 + 0.2 = 0.30000000000000004) means 0.3: intake keeps 0.3,
// so a target that allows two decimals takes it (e-conomic's pre-flight said "17 decimals, round it in the PSA",
// where the PSA shows 0.3), and every target gets the quantity the invoice shows.
import { describe, expect, test } from "bun:test";
import { parseEvents } from "../agent/intake.ts";
import type { Invoice } from "../agent/model.ts";
import { invoiceRules } from "../connectors/economic/invoice-rules.ts";
import { invoiceEvent } from "./helpers.ts";

function parsedLines(quantities: number[]): Invoice {
  const e = invoiceEvent(100, 7);
  const r = parseEvents({
    ...e,
    data: { ...e.data, lines: quantities.map((quantity) => ({ text: "Work", quantity, unitPrice: 145000 })) },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.events));
  return r.events[0]!.data as Invoice;
}

describe("quantities lose binary noise at intake, nothing else", () => {
  test("0.1 + 0.2 is 0.3, 3 × 0.1 is 0.3, 1.1 × 3 is 3.3, and negated the same", () => {
    const inv = parsedLines([0.1 + 0.2, 3 * 0.1, 1.1 * 3, -(0.1 + 0.2)]);
    expect(inv.lines.map((l) => l.quantity)).toEqual([0.3, 0.3, 3.3, -0.3]);
  });

  test("a quantity with real decimals is kept as sent (a target's own rules decide)", () => {
    const inv = parsedLines([1 / 3, 0.125, 7.5, 0.0000015]);
    expect(inv.lines.map((l) => l.quantity)).toEqual([1 / 3, 0.125, 7.5, 0.0000015]);
  });

  test("e-conomic's pre-flight takes 0.1 + 0.2 hours", () => {
    expect(invoiceRules(parsedLines([0.1 + 0.2]))).toEqual([]);
  });
});
