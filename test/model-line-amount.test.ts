// A line's amount is quantity × unit price rounded half away from zero, as the invoice shows it, not as binary floating
// point happens to land: 1.005 × 100 øre is 100.5 øre, so 101, though the product in binary is 100.49999999999999.
import { describe, expect, test } from "bun:test";
import { customerTotal, lineAmount } from "../agent/model.ts";

describe("a line's amount in minor units", () => {
  test("halves that binary floating point puts just below are rounded up, as the decimals say", () => {
    expect(1.005 * 100).toBeLessThan(100.5); // the reason for this test
    expect(lineAmount({ quantity: 1.005, unitPrice: 100 })).toBe(101);
    expect(lineAmount({ quantity: 2.675, unitPrice: 100 })).toBe(268);
    expect(lineAmount({ quantity: -1.005, unitPrice: 100 })).toBe(-101);
    expect(lineAmount({ quantity: 1.005, unitPrice: -100 })).toBe(-101);
  });

  test("other products are as before: exact ones, halves, below halves, large amounts", () => {
    expect(lineAmount({ quantity: 7.5, unitPrice: 145000 })).toBe(1087500);
    expect(lineAmount({ quantity: 0.5, unitPrice: 1 })).toBe(1);
    expect(lineAmount({ quantity: -0.5, unitPrice: 1 })).toBe(-1);
    expect(lineAmount({ quantity: 1 / 3, unitPrice: 100 })).toBe(33);
    expect(lineAmount({ quantity: 0.004999, unitPrice: 100 })).toBe(0);
    expect(lineAmount({ quantity: 1000, unitPrice: 9_999_999_999 })).toBe(9_999_999_999_000);
    expect(lineAmount({ quantity: 0.333333, unitPrice: 3_000_000_000_000 })).toBe(999_999_000_000);
  });

  test("a credit note's total takes the same rounding", () => {
    expect(customerTotal({ kind: "credit_note", lines: [{ quantity: 1.005, unitPrice: 100 } as any] })).toBe(-101);
  });
});
