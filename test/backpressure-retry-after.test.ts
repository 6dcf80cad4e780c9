// Issue 10 item 5: a 429 with Retry-After pauses the whole target, not one delivery. A real agent and
// the e-conomic sandbox over loopback; requests are counted at the sandbox.
import { afterEach, describe, expect, test } from "bun:test";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, waitFor } from "./helpers.ts";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const requestsAtTarget = async (s: Stack) =>
  ((await (await fetch(`${s.sandboxUrl}/__sandbox/stats`)).json()) as any).requests.total as number;
const faults429 = async (s: Stack) => ((await (await fetch(`${s.sandboxUrl}/__sandbox/stats`)).json()) as any).faults["429"] as number;
const metric = async (s: Stack, name: string) => {
  const text = await (await fetch(`${s.agent.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{target="eco"`));
  return line ? Number(line.split(" ").pop()) : undefined;
};
const statusPage = async (s: Stack) => (await fetch(`${s.agent.url}/`)).text();

/** Requests that reach the target during `ms` (a window, not a timing assertion). */
async function requestsDuring(s: Stack, ms: number): Promise<number> {
  const before = await requestsAtTarget(s);
  await Bun.sleep(ms);
  return (await requestsAtTarget(s)) - before;
}

describe("a 429 with Retry-After pauses the whole target", () => {
  test("during a 600 s Retry-After at most one request reaches the target, however many deliveries wait; a restart keeps the pause", async () => {
    stack = await startStack({ dispatch: { concurrency: 8 } });
    await stack.post([customerEvent(1)]);
    await stack.waitDelivered(1);
    // From now on the target answers every request with 429 and Retry-After: 600.
    await stack.addFaults({ kind: "429", probability: 1, retryAfterSeconds: 600 });
    const sentAt = Date.now();
    const before = await requestsAtTarget(stack);
    await stack.post(Array.from({ length: 40 }, (_, i) => customerEvent(100 + i)));
    await waitFor("the first 429", async () => (await faults429(stack!)) >= 1);
    // Only the pushes claimed together with the first one (concurrency 8) were sent; the other 32 wait.
    await Bun.sleep(3000);
    expect((await requestsAtTarget(stack)) - before).toBeLessThanOrEqual(8 + 1);

    // The pause is stored and shown: "paused by the target until" about now + 600 s.
    const until = await waitFor(
      "the pause on /metrics",
      async () => (await metric(stack!, "kontobro_target_paused_until_seconds")) || undefined,
    );
    expect(until! * 1000).toBeGreaterThanOrEqual(sentAt + 590_000);
    expect(until! * 1000).toBeLessThanOrEqual(Date.now() + 610_000);
    expect(await statusPage(stack)).toContain("Paused by the target until");

    // Pushes already in flight when the 429 came have finished; from here on, the window.
    expect(await requestsDuring(stack, 3000)).toBeLessThanOrEqual(1);
    const open = [...(await stack.deliveries("pending")), ...(await stack.deliveries("in_flight"))].filter((d) => d.entity === "customer");
    expect(open.length).toBe(40); // nothing was lost or given up: all wait for the pause to end

    // The pause is stored: a restarted agent does not send either, and still shows it.
    await stack.restart();
    expect(await requestsDuring(stack, 2000)).toBeLessThanOrEqual(1);
    expect(await statusPage(stack)).toContain("Paused by the target until");
  }, 30_000);

  test("a short Retry-After: when the pause ends every waiting delivery goes through, and the status no longer shows a pause", async () => {
    stack = await startStack({ dispatch: { concurrency: 8 } });
    await stack.addFaults({ method: "POST", path: "^/customers$", kind: "429", count: 1, retryAfterSeconds: 1 });
    await stack.post(Array.from({ length: 20 }, (_, i) => customerEvent(200 + i)));
    await stack.waitDelivered(20);
    expect((await stack.sandboxState()).customers.filter((c: any) => c.customerNumber >= 200)).toHaveLength(20);
    expect(await metric(stack, "kontobro_target_paused_until_seconds")).toBe(0);
    expect(await statusPage(stack)).not.toContain("Paused by the target until");
  }, 30_000);
});
