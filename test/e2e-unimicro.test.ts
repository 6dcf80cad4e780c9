// The agent end to end against the Uni Micro sandbox: the same core, another connector.
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

async function start() {
  target = await startDemoTarget("unimicro");
  const { config, targets } = demoConfig({ dataDir: tempDir(), port: 0, target: { ...target.target, requests_per_second: 0 } });
  config.dispatch.retry_base_ms = 20;
  config.dispatch.retry_max_ms = 200;
  config.dispatch.idle_poll_ms = 50;
  agent = await startAgent(config, targets, silentLogger);
}

const post = (events: unknown[]) =>
  fetch(`${agent.url}/api/v1/events`, {
    method: "POST",
    body: JSON.stringify(events),
    headers: { authorization: `Bearer ${agent.apiToken}`, "content-type": "application/json" },
  });
const count = (status: string) => (agent.db.$client.query("SELECT count(*) AS n FROM deliveries WHERE status = ?").get(status) as any).n;
const state = async () => (await fetch(`${target.sandboxUrl}/__sandbox/state`)).json() as Promise<any>;
const bookedInvoices = (s: any) => JSON.stringify(s).match(/"InvoiceNumber":"80001"/g)?.length ?? 0;

describe("Uni Micro end to end", () => {
  test("customer → project → invoice through the agent, exactly once despite a dropped answer", async () => {
    await start();
    await fetch(`${target.sandboxUrl}/__sandbox/faults`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ rules: [{ method: "POST", path: "^/api/biz/invoices$", kind: "drop_after_commit", count: 1 }] }),
    });
    expect((await post([invoiceEvent(80001, 10501, 701), projectEvent(701, 10501), customerEvent(10501)])).status).toBe(202);
    await waitFor("all delivered", () => count("done") === 3);
    const s = await state();
    expect(s.requests.filter((r: any) => r.fault === "drop_after_commit")).toHaveLength(1); // the answer really was lost
    expect(bookedInvoices(s)).toBe(1);
  });

  test("a rule broken in the PSA data fails before any call, with a hint", async () => {
    await start();
    await post([{ id: "p", type: "project.upserted", data: { number: "P-7", name: "x" } }]);
    await waitFor("needs action", () => count("needs_action") === 1);
    const row = agent.db.$client
      .query("SELECT error_message AS m, error_hint AS h FROM deliveries WHERE status = 'needs_action'")
      .get() as any;
    expect(row.m).toContain("P-7");
    expect(row.h).toBeTruthy();
  });
});
