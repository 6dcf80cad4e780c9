// Uni Micro computes an invoice draft's totals itself (unimicro.md §8.1) and answers the draft's POST with the row. One
// it computes otherwise than the PSA (here a price list of the sandbox's, a fault) is never booked: through the real
// agent, the invoice needs action naming both totals, its draft stays unbooked, and a retry once the price is right
// rewrites and books it.
import { afterEach, describe, expect, test } from "bun:test";
import { startAgent, type RunningAgent } from "../agent/agent.ts";
import { demoConfig, startDemoTarget, type DemoTarget } from "../agent/demo.ts";
import { silentLogger } from "../agent/log.ts";
import { customerEvent, invoiceEvent, projectEvent, tempDir, waitFor } from "./helpers.ts";

let agent: RunningAgent;
let target: DemoTarget;
afterEach(async () => {
  await agent?.stop();
  await target?.stop();
});

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${agent.url}/api/v1${path}`, {
    ...init,
    headers: { authorization: `Bearer ${agent.apiToken}`, "content-type": "application/json" },
  });
const deliveries = async (status: string) => ((await (await api(`/deliveries?limit=1000&status=${status}`)).json()) as any).deliveries;
const priceList = (prices: Record<string, number>) =>
  fetch(`${target.sandboxUrl}/__sandbox/price-list`, { method: "PUT", body: JSON.stringify(prices) });
const invoices = async () => {
  const companies = ((await (await fetch(`${target.sandboxUrl}/__sandbox/state`)).json()) as any).companies;
  return Object.values<any>(companies)[0].invoices as any[];
};

describe("Uni Micro: the draft's own total checked before booking", () => {
  test("a draft priced otherwise is not booked: needs action with both totals; retry books it once priced right", async () => {
    target = await startDemoTarget("unimicro");
    const { config, targets } = demoConfig({ dataDir: tempDir(), port: 0, target: { ...target.target, requests_per_second: 0 } });
    Object.assign(config.dispatch, { retry_base_ms: 20, retry_max_ms: 200, idle_poll_ms: 50 });
    agent = await startAgent(config, targets, silentLogger);
    expect((await priceList({ "1": 1500, "2": 1500, "3": 1500 })).status).toBe(200);

    expect(
      (
        await api("/events", {
          method: "POST",
          body: JSON.stringify([customerEvent(10501), projectEvent(701, 10501), invoiceEvent(80001, 10501, 701)]),
        })
      ).status,
    ).toBe(202);
    const inv = await waitFor("invoice needs action", async () =>
      (await deliveries("needs_action")).find((d: any) => d.entity === "invoice"),
    );
    expect(inv.errorCode).toBe("unimicro.total_differs");
    expect(inv.errorMessage).toMatch(/computed its total excluding VAT as \d+\.\d\d NOK, but the PSA invoiced 11375\.00 NOK/);
    expect(inv.errorMessage).toMatch(/It was not booked\. Its draft \(ID \d+\) stays unbooked/);
    expect(inv.errorHint).toContain("kontobro retry");
    expect((await invoices()).map((r: any) => r.StatusCode)).toEqual([42001]); // a draft, not booked

    await priceList({});
    expect((await api(`/deliveries/${inv.id}/retry`, { method: "POST" })).status).toBe(200);
    await waitFor("invoice booked after retry", async () => (await deliveries("done")).some((d: any) => d.id === inv.id));
    expect((await invoices()).map((r: any) => [r.StatusCode, r.TaxExclusiveAmount])).toEqual([[42002, 11375]]);
  });
});
