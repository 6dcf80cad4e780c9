// `kontobro demo --target eaccounting`, as its parts: the factory's sandbox and demo [[targets]] table, the demo's
// sample round through intake, and a person working in eAccounting (startDemoActivity). Both directions show: a
// customer and an article made in eAccounting reach the inbox feed; the PSA's invoice becomes a draft, then comes
// back numbered and paid.
import { afterEach, expect, test } from "bun:test";
import { startAgent, type RunningAgent } from "../agent/agent.ts";
import { demoConfig, sampleRound } from "../agent/demo.ts";
import { parseEvents, type ValidEvent } from "../agent/intake.ts";
import { silentLogger } from "../agent/log.ts";
import type { RunningSandbox } from "../connectors/contract.ts";
import { eaccounting, startDemoActivity } from "../connectors/eaccounting/index.ts";
import { tempDir, waitFor } from "./helpers.ts";

let agent: RunningAgent | undefined;
let sandbox: RunningSandbox | undefined;
let stopActivity: (() => void) | undefined;
afterEach(async () => {
  stopActivity?.();
  await agent?.stop();
  await sandbox?.stop();
  agent = sandbox = stopActivity = undefined;
});

test("the demo target: sample data goes to eAccounting; eAccounting's customer, article, invoice number and payment come back", async () => {
  sandbox = await eaccounting.startSandbox!({ port: 0 });
  const { config, targets } = demoConfig({ dataDir: tempDir("kontobro-ea-demo-"), port: 0, target: sandbox.demoTarget });
  agent = await startAgent(config, targets, silentLogger);
  const parsed = parseEvents(sampleRound(1));
  if (!parsed.ok) throw new Error("sample round invalid");
  await agent.intake.submit(parsed.events as ValidEvent[]);
  const state = async () => (await fetch(`${sandbox!.url}/__sandbox/state`)).json() as Promise<any>;
  await waitFor("the sample invoice as a draft", async () => (await state()).drafts.length === 1);

  stopActivity = startDemoActivity(sandbox.url, 300);
  await waitFor("eAccounting's own customer, and the draft sent", async () => {
    const s = await state();
    return s.customers.some((c: any) => c.CustomerNumber === "9001") && s.invoices.length === 1;
  });
  // The schedules run every minute; a run that is under way answers busy, so ask until one has run.
  const pull = async (stream: string) =>
    waitFor(`${stream} pulled`, async () => {
      const r = await agent!.pulls.runNow("eaccounting-demo", stream, "manual");
      return r.status === "busy" ? null : r;
    });
  await pull("customers");
  await pull("products");
  await waitFor("paid by the demo's person", async () => (await state()).invoices[0].PaymentStatus === 0);
  await pull("invoices");
  const feed = (await agent.pulls.inbox.feed({ after: 0, limit: 1000 })).rows.map((r) => ({ type: r.type, data: JSON.parse(r.payload) }));
  expect(feed.some((i) => i.type === "customer.upserted" && i.data.number === "9001" && i.data.contacts[0].firstName === "Anna")).toBe(
    true,
  );
  expect(feed.some((i) => i.type === "product.upserted" && i.data.code === "EA-1")).toBe(true);
  const sent = feed.find((i) => i.type === "invoice.sent");
  expect(sent?.data).toMatchObject({ invoiceNumber: "20001", psaId: "DEMO-INV-20001", eaccountingInvoiceNumber: 1001 });
  expect(feed.find((i) => i.type === "invoice.paid")?.data).toMatchObject({ invoiceNumber: "20001", eaccountingInvoiceNumber: 1001 });
  // The sample customer went to eAccounting and is not echoed back to the PSA.
  expect(feed.filter((i) => i.type === "customer.upserted" && i.data.number === "10001")).toEqual([]);
});
