// An invoice dated in an accounting year that is closed, or not created yet, at e-conomic (it runs for years: January
// comes every year): it needs action naming the date and the year and how to go on, is never booked on another date,
// leaves no draft, and is booked with its own date once the year is open and a person retries it.
import { afterEach, describe, expect, test } from "bun:test";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, projectEvent, waitFor } from "./helpers.ts";

let stack: Stack;
afterEach(async () => {
  await stack?.stop();
});

const year = (method: string, y: string, body?: object) =>
  fetch(`${stack.sandboxUrl}/__sandbox/accounting-years/${y}`, {
    method,
    ...(body ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } } : {}),
  });

async function refusedInvoice(): Promise<any> {
  await stack.post([customerEvent(10042), projectEvent(4711, 10042), invoiceEvent(20001, 10042, 4711, { date: "2026-11-20" })]);
  return waitFor("invoice needs action", async () => (await stack.deliveries("needs_action")).find((d) => d.entity === "invoice"));
}

async function retriedAndBooked(id: number): Promise<void> {
  const res = await fetch(`${stack.agent.url}/api/v1/deliveries/${id}/retry`, {
    method: "POST",
    headers: { authorization: "Bearer test-token-0123456789" },
  });
  expect(res.status).toBe(200);
  await waitFor("invoice booked after retry", async () => (await stack.deliveries("done")).some((d) => d.id === id));
  const s = await stack.sandboxState();
  expect(s.booked.map((b: any) => [b.bookedInvoiceNumber, b.date])).toEqual([[20001, "2026-11-20"]]);
  expect(s.drafts).toHaveLength(0);
}

describe("e-conomic: an invoice dated in a closed or missing accounting year", () => {
  test("closed: needs action naming the year and `kontobro retry`; booked with its date once the year is opened", async () => {
    stack = await startStack();
    await year("PUT", "2026", { closed: true });
    const inv = await refusedInvoice();
    expect(inv.errorCode).toBe("economic.accounting_year_closed");
    expect(inv.errorMessage).toContain("dated 2026-11-20, in accounting year 2026 (2026-01-01 to 2026-12-31), which is closed");
    expect(inv.errorHint).toContain("Open accounting year 2026 in e-conomic");
    expect(inv.errorHint).toContain("kontobro retry");
    const s = await stack.sandboxState();
    expect(s.booked).toHaveLength(0);
    expect(s.drafts).toHaveLength(0); // no draft left behind

    await year("PUT", "2026", { closed: false });
    await retriedAndBooked(inv.id);
  });

  test("not created yet: needs action saying so; booked with its date once the year is created", async () => {
    stack = await startStack();
    expect((await year("DELETE", "2026")).status).toBe(204);
    const inv = await refusedInvoice();
    expect(inv.errorCode).toBe("economic.accounting_year_closed");
    expect(inv.errorMessage).toContain("dated 2026-11-20, in no accounting year in e-conomic");
    expect(inv.errorHint).toContain("Create the accounting year containing 2026-11-20 in e-conomic");
    expect((await stack.sandboxState()).booked).toHaveLength(0);

    await year("PUT", "2026", {});
    await retriedAndBooked(inv.id);
  });
});
