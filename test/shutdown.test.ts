// SIGTERM-style shutdown: pushes in flight finish within the grace period, or their leases are released
// (pending, uncertain) and the next start checks the target before sending: nothing lost, nothing twice.
import { afterEach, describe, expect, test } from "bun:test";
import { openDatabase } from "../agent/db/index.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, waitFor } from "./helpers.ts";

let stack: Stack;

/** Reads a delivery from the closed agent's database file. */
function storedRow(s: Stack, entity: string) {
  const db = openDatabase(`${s.dataDir}/kontobro.db`);
  try {
    return db.$client.query("SELECT status, uncertain FROM deliveries WHERE entity = ?").get(entity);
  } finally {
    db.$client.close();
  }
}
afterEach(async () => {
  await stack?.stop();
});

const row = (s: Stack, entity: string) =>
  s.agent.db.$client.query("SELECT status, uncertain FROM deliveries WHERE entity = ?").get(entity) as any;

describe("graceful shutdown", () => {
  test("a push in flight finishes during the grace period", async () => {
    stack = await startStack({ dispatch: { shutdown_grace_ms: 5000 } });
    await stack.addFaults({ method: "POST", path: "^/customers$", kind: "latency", latencyMs: 400, count: 1 });
    await stack.post([customerEvent(1)]);
    await waitFor("in flight", () => row(stack, "customer")?.status === "in_flight");
    await stack.agent.stop();
    expect(storedRow(stack, "customer")).toEqual({ status: "done", uncertain: 0 });
    expect((await stack.sandboxState()).customers).toHaveLength(1);
  });

  test("without grace the lease is released as uncertain, and the restart books the invoice exactly once", async () => {
    // The restart tries the invoice again only once the target's late_answer_wait_ms has passed since the stop.
    stack = await startStack({ dispatch: { shutdown_grace_ms: 0 }, economic: { request_timeout_ms: 1000, late_answer_wait_ms: 1000 } });
    await stack.post([customerEvent(2)]);
    await stack.waitDelivered(1);
    // The booking reaches e-conomic but answers slowly: we stop before the answer arrives.
    await stack.addFaults({ method: "PUT", path: "^/invoices/booked/", kind: "latency", latencyMs: 500, count: 1 });
    await stack.post([invoiceEvent(70001, 2)]);
    await waitFor("invoice in flight", () => row(stack, "invoice")?.status === "in_flight");
    await stack.agent.stop();
    expect(storedRow(stack, "invoice")).toEqual({ status: "pending", uncertain: 1 });
    await stack.restart();
    await waitFor("invoice delivered", () => row(stack, "invoice")?.status === "done");
    const booked = (await stack.sandboxState()).booked.filter((b: any) => b.bookedInvoiceNumber === 70001);
    expect(booked).toHaveLength(1);
  });
});
