// Issue 10, item 3 (e-conomic): an invoice booked in e-conomic with our number but another
// references.other was not made by kontobro. It is refused (needs action, naming the foreign invoice),
// never linked, and the push leaves no draft behind: on a plain push and on the uncertain path.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { EconomicConnector } from "../connectors/economic/connector.ts";
import type { StartedEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { isTargetError } from "../connectors/http.ts";
import { startStack } from "./e2e-harness.ts";
import { bookByHand, canonical, draftsFor, pushCtx, startEconomic } from "./economic-fixtures.ts";
import { customerEvent, invoiceEvent, waitFor } from "./helpers.ts";

let sb: StartedEconomicSandbox;
let conn: EconomicConnector;
let customer: any;
beforeAll(async () => {
  ({ sb, conn } = await startEconomic());
  customer = canonical(customerEvent(5));
  await conn.push("customer", customer, pushCtx());
});
afterAll(() => sb.stop());

async function refusal(number: number, ctx: ReturnType<typeof pushCtx>) {
  const inv = canonical(invoiceEvent(number, 5));
  const e = await conn.push("invoice", inv, ctx).then(
    () => null,
    (err) => err,
  );
  expect(isTargetError(e)).toBe(true);
  return e;
}

describe("economic foreign invoice number", () => {
  test("plain push: refused as needing action, naming the foreign invoice; nothing linked, no draft left", async () => {
    await bookByHand(sb, 80001, 5, "MANUAL-7");
    const e = await refusal(80001, pushCtx({ customer }));
    expect(e).toMatchObject({ kind: "permanent", code: "economic.invoice_number_taken", field: "number" });
    expect(e.message).toContain("booked invoice 80001");
    expect(e.message).toContain('reference "MANUAL-7"');
    expect(e.message).toContain("dated 2026-10-01");
    expect(e.message).toContain("customer 5");
    expect(e.hint).toContain("number range");
    // The foreign invoice is untouched and the draft this push made for the booking is gone.
    expect(sb.sandbox.state.booked.get(80001)!.invoice.references.other).toBe("MANUAL-7");
    expect(draftsFor(sb, "PSA-INV-80001")).toEqual([]);
    expect(await conn.find("invoice", canonical(invoiceEvent(80001, 5))).catch((err) => err.code)).toBe("economic.invoice_number_taken");
  });

  test("uncertain path (reconcile): the lookup refuses it too, and removes our drafts of earlier attempts", async () => {
    await bookByHand(sb, 80002, 5, undefined);
    // A draft from an earlier attempt whose answer was lost.
    sb.sandbox.state.drafts.set(999, {
      invoice: { draftInvoiceNumber: 999, references: { other: "PSA-INV-80002" }, customer: { customerNumber: 5 }, lines: [] },
    });
    const e = await refusal(80002, pushCtx({ customer, uncertain: true }));
    expect(e).toMatchObject({ kind: "permanent", code: "economic.invoice_number_taken" });
    expect(e.message).toContain("booked invoice 80002");
    expect(e.message).toContain("no PSA reference");
    expect(draftsFor(sb, "PSA-INV-80002")).toEqual([]);
  });

  test("through the agent: the delivery needs action with the message, and is never marked done", async () => {
    const stack = await startStack();
    try {
      await stack.post([customerEvent(6)]);
      await stack.waitDelivered(1);
      // A person books 80003 by hand with another reference before the PSA sends its invoice 80003.
      await bookByHand({ restUrl: stack.sandboxUrl } as StartedEconomicSandbox, 80003, 6, "BY-HAND");
      await stack.post([invoiceEvent(80003, 6)]);
      const d = await waitFor("invoice needs action", async () =>
        (await stack.deliveries("needs_action")).find((x) => x.entity === "invoice"),
      );
      expect(d.errorCode).toBe("economic.invoice_number_taken");
      expect(d.errorMessage).toContain('reference "BY-HAND"');
      expect((await stack.deliveries("done")).some((x) => x.entity === "invoice")).toBe(false);
      expect((await stack.sandboxState()).drafts).toEqual([]);
    } finally {
      await stack.stop();
    }
  });
});
