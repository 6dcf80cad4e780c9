// A line's amount is quantity × unit price rounded half away from zero, as the invoice shows it, not as binary floating
// point happens to land: 1.005 × 100 øre is 100.5 øre, so 101, though the product in binary is 100.49999999999999.
import { describe, expect, test } from "bun:test";
import { bookedAmountDiffers, customerTotal, lineAmount, roundingRoom } from "../agent/model.ts";

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

describe("what a target may book for the same lines by rounding alone", () => {
  const whole = Array.from({ length: 40 }, () => ({ quantity: 7.5, unitPrice: 123_456 }) as any);
  const invoice = (lines: any[]) => ({ kind: "invoice" as const, lines });

  test("whole lines round nowhere: any difference is a change, however many lines there are", () => {
    expect(roundingRoom(whole)).toBe(0);
    expect(bookedAmountDiffers(invoice(whole), customerTotal(invoice(whole)))).toBe(false);
    // 0.30 more on a 40-line invoice was taken as rounding (one minor unit a line) and never booked.
    expect(bookedAmountDiffers(invoice(whole), customerTotal(invoice(whole)) + 30)).toBe(true);
    expect(bookedAmountDiffers(invoice(whole), customerTotal(invoice(whole)) - 1)).toBe(true);
  });

  test("lines that round leave one minor unit each: halves rounded to even, or only the sum rounded", () => {
    const halves = [
      { quantity: 0.5, unitPrice: 101 } as any,
      { quantity: 0.5, unitPrice: 101 } as any,
      { quantity: 2, unitPrice: 100 } as any,
    ];
    expect(roundingRoom(halves)).toBe(2);
    expect(customerTotal(invoice(halves))).toBe(302); // 51 + 51 + 200
    expect(bookedAmountDiffers(invoice(halves), 300)).toBe(false); // 50 + 50 + 200 where halves go to even
    expect(bookedAmountDiffers(invoice(halves), 301)).toBe(false); // 50.5 + 50.5 + 200, rounded once
    expect(bookedAmountDiffers(invoice(halves), 299)).toBe(true);
    const thirds = Array.from({ length: 3 }, () => ({ quantity: 0.333, unitPrice: 100 }) as any);
    expect(customerTotal(invoice(thirds))).toBe(99);
    expect(bookedAmountDiffers(invoice(thirds), 100)).toBe(false); // 99.9 rounded once
    expect(bookedAmountDiffers({ kind: "credit_note", lines: thirds }, -100)).toBe(false);
    expect(bookedAmountDiffers({ kind: "credit_note", lines: thirds }, -103)).toBe(true);
  });
});
