// Issue 10, item 1 (e-conomic): a credit note is booked as an invoice with the customer's quantities, so
// its booked total is negative however the PSA wrote the signs. Totals are read from the sandbox, which
// computes netAmount/grossAmount from the lines as e-conomic does, never from our mapping.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { lineAmount } from "../agent/model.ts";
import type { StartedEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import type { EconomicConnector } from "../connectors/economic/connector.ts";
import { canonical, pushCtx, startEconomic } from "./economic-fixtures.ts";
import { customerEvent, invoiceEvent } from "./helpers.ts";

let sb: StartedEconomicSandbox;
let conn: EconomicConnector;
let customer: any;
beforeAll(async () => {
  ({ sb, conn } = await startEconomic());
  customer = canonical(customerEvent(12, { addresses: [{ street: "Vestergade 1", zip: "8000", city: "Aarhus", country: "DK" }] }));
  await conn.push("customer", customer, pushCtx());
});
afterAll(() => sb.stop());

const creditEvent = (n: number, lines: object[]) => ({
  ...invoiceEvent(n, 12),
  id: `cn-${n}`,
  type: "invoice.credited",
  data: { ...invoiceEvent(n, 12).data, creditedInvoiceNumber: 70001, lines },
});

/** Books the canonical payload and returns what e-conomic booked, in minor units. */
async function book(payload: any): Promise<{ net: number; gross: number; quantities: number[] }> {
  await conn.push("invoice", payload, pushCtx({ customer }));
  const booked = sb.sandbox.state.booked.get(Number(payload.number))!.invoice;
  return {
    net: Math.round(booked.netAmount * 100),
    gross: Math.round(booked.grossAmount * 100),
    quantities: booked.lines.map((l: any) => l.quantity),
  };
}

const canonicalTotal = (payload: any) => payload.lines.reduce((s: number, l: any) => s + lineAmount(l), 0);

describe("economic credit signs", () => {
  test("an invoice books its total as a charge", async () => {
    const inv = canonical(invoiceEvent(70001, 12));
    const booked = await book(inv);
    expect(booked.net).toBe(canonicalTotal(inv));
    expect(booked.net).toBeGreaterThan(0);
    expect(booked.gross).toBeGreaterThan(booked.net); // domestic customer: VAT on top
  });

  test("a credit note sent with positive lines is booked with a negative total", async () => {
    const cn = canonical(
      creditEvent(70002, [
        { text: "Consulting credited", quantity: 7.5, unitPrice: 145000, kind: "hours" },
        { text: "Travel credited", quantity: 1, unitPrice: 50000, kind: "expenses" },
      ]),
    );
    const booked = await book(cn);
    expect(booked.net).toBe(-canonicalTotal(cn));
    expect(booked.net).toBe(-1137500);
    expect(booked.gross).toBeLessThan(0);
    expect(booked.quantities).toEqual([-7.5, -1]);
  });

  test("a credit note sent with all-negative lines (normalised by intake) is booked with the same negative total", async () => {
    // Before the fix the connector negated lines that were already negative and booked a charge.
    const cn = canonical(
      creditEvent(70003, [
        { text: "Consulting credited", quantity: -7.5, unitPrice: 145000, kind: "hours" },
        { text: "Travel credited", quantity: 1, unitPrice: -50000, kind: "expenses" },
      ]),
    );
    expect(canonicalTotal(cn)).toBeGreaterThan(0); // the model's convention: a credit note's total is > 0
    const booked = await book(cn);
    expect(booked.net).toBe(-1137500);
    expect(booked.gross).toBeLessThan(0);
  });

  test("no credit note ever increases what the customer owes, whatever its sign pattern", async () => {
    const shapes: object[][] = [
      [{ text: "a", quantity: 2, unitPrice: 10000, kind: "hours" }],
      [{ text: "a", quantity: -2, unitPrice: 10000, kind: "hours" }],
      [{ text: "a", quantity: 2, unitPrice: -10000, kind: "hours" }],
      // Mixed: credit 3 hours, but 1 hour of the credit is taken back (relative meaning kept).
      [
        { text: "credit", quantity: 3, unitPrice: 10000, kind: "hours" },
        { text: "taken back", quantity: -1, unitPrice: 10000, kind: "hours" },
      ],
      [
        { text: "credit", quantity: -3, unitPrice: 10000, kind: "hours" },
        { text: "taken back", quantity: 1, unitPrice: 10000, kind: "hours" },
      ],
    ];
    let n = 70100;
    for (const lines of shapes) {
      const cn = canonical(creditEvent(++n, lines));
      const booked = await book(cn);
      expect({ n, net: booked.net }).toEqual({ n, net: -canonicalTotal(cn) });
      expect(booked.net).toBeLessThan(0);
      expect(booked.gross).toBeLessThan(0);
    }
    // And the sandbox's ledger agrees: every credit note leaves a negative remainder (the customer owes less).
    for (const [number, rec] of sb.sandbox.state.booked) if (number > 70001) expect(rec.invoice.remainder).toBeLessThan(0);
  });
});
