// A master-data write answered after request_timeout_ms (brief A). The attempt gave up at the deadline and its request
// was cut off, but e-conomic carried the PUT out all the same, later: the next attempt had meanwhile sent the PSA's newer
// version, and the old one landed over it. e-conomic kept the old name and address, and nobody noticed. Now every
// write of a push is listened to past its deadline (connectors/http.ts), and the delivery stays leased until it has
// answered: the newer version is sent only after the old one landed. Real parts: the agent (SQLite file, intake,
// dispatcher) and the e-conomic sandbox over loopback, whose latency fault makes the first PUT land late.
import { afterEach, describe, expect, test } from "bun:test";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, waitFor } from "./helpers.ts";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const LATE_MS = 1_500;

describe("a master-data write answered late", () => {
  test("an e-conomic customer PUT answered after the timeout does not overwrite the newer version", async () => {
    stack = await startStack({ economic: { request_timeout_ms: 300 } });
    const s = stack;
    const customer = async () => (await s.sandboxState()).customers.find((c: any) => c.customerNumber === 10042);
    await s.post([customerEvent(10042, { name: "Fjord AS" })]);
    await s.waitDelivered(1);
    // Version 1's PUT lands only after LATE_MS; version 2 arrives while it is on its way.
    await s.addFaults({ method: "PUT", path: "^/customers/10042$", kind: "latency", latencyMs: LATE_MS, count: 1 });
    await s.post([customerEvent(10042, { name: "Fjord AS v1", addresses: [{ street: "Old street 1", city: "Bergen", country: "NO" }] })]);
    await waitFor("version 1's PUT at e-conomic", async () => (await s.sandboxState()).faults.latency === 1);
    await s.post([customerEvent(10042, { name: "Fjord AS v2", addresses: [{ street: "New street 2", city: "Oslo", country: "NO" }] })]);
    // Newest first: version 2's delivery, then version 1's (superseded once its attempt gave up), then the create.
    await waitFor("version 2 delivered", async () => {
      const [v2, v1] = await s.deliveries();
      return v2?.status === "done" && v1?.status === "superseded";
    });
    await Bun.sleep(LATE_MS + 300); // past version 1's landing, had nobody waited for it
    expect(await customer()).toMatchObject({ name: "Fjord AS v2", address: "New street 2", city: "Oslo" });
  }, 20_000);
});
