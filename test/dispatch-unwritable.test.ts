// The target booked an invoice, then its outcome could not be written (the database full or read-only at the round):
// once it can be written again, or after a restart, the invoice is booked once, and the dispatcher went on meanwhile.
// Real agent, real SQLite file, the e-conomic sandbox over loopback.
import { afterEach, describe, expect, test } from "bun:test";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, waitFor } from "./helpers.ts";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const booked = async (s: Stack) => (await s.sandboxState()).booked as any[];

/** Posts invoice 1 and makes the database unwritable while e-conomic books it (its answer comes after 1.5 s). */
async function bookWhileUnwritable(s: Stack): Promise<void> {
  expect((await s.post(customerEvent(1))).status).toBe(202);
  await s.waitDelivered(1);
  await s.addFaults({ kind: "latency", method: "PUT", path: "^/invoices/booked/", latencyMs: 1500, count: 1 });
  expect((await s.post(invoiceEvent(1, 1))).status).toBe(202);
  await waitFor("the draft", async () => (await s.sandboxState()).counts.drafts === 1, 10_000);
  s.agent.db.$client.run("PRAGMA query_only = 1");
  await waitFor("the invoice booked", async () => (await booked(s)).length === 1, 10_000);
  await Bun.sleep(1000); // rounds fail meanwhile
}

describe("an outcome that cannot be written", () => {
  test("written once the database takes writes again: booked once, the dispatcher goes on", async () => {
    stack = await startStack();
    await bookWhileUnwritable(stack);
    const ready = await fetch(`${stack.agent.url}/readyz`);
    expect(ready.status).toBe(503);
    const checks = ((await ready.json()) as any).checks;
    expect(checks.find((c: any) => c.name === "database").message).toContain("cannot be written");
    expect(checks.find((c: any) => c.name === "dispatch:eco").message).toContain("nothing is sent");
    // The status page says it first (before: nothing; the invoice looked as if on its way).
    const page = await (await fetch(`${stack.agent.url}/`)).text();
    expect(page).toContain("eco: nothing is sent");
    expect(page).toContain("attempt to write a readonly database");
    stack.agent.db.$client.run("PRAGMA query_only = 0");
    await waitFor("the invoice done", async () => (await stack!.deliveries("done")).length === 2, 20_000);
    expect(await booked(stack)).toHaveLength(1);
    expect((await stack.post(invoiceEvent(2, 1))).status).toBe(202);
    await waitFor("the next invoice done", async () => (await stack!.deliveries("done")).length === 3, 20_000);
    expect(await booked(stack)).toHaveLength(2);
  }, 60_000);

  test("a restart while it cannot be written: stops cleanly; the invoice is found at the target, never booked twice", async () => {
    stack = await startStack({ economic: { late_answer_wait_ms: 1000, request_timeout_ms: 5000 } });
    await bookWhileUnwritable(stack);
    await stack.restart();
    await waitFor("the invoice done", async () => (await stack!.deliveries("done")).length === 2, 30_000);
    expect(await booked(stack)).toHaveLength(1);
    const invoice = (await stack.deliveries("done")).find((d: any) => d.entity === "invoice");
    expect(invoice).toMatchObject({ attempts: 2, remoteId: "1" }); // found by the lookup, not booked again
  }, 60_000);
});
