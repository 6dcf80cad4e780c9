// Master per entity with two accounting systems beside one PSA, through the real agent (SQLite file, dispatcher,
// pulls, inbox, signed PSA webhook) against two eAccounting sandboxes: the PSA has one set of customers, so a
// number each system gave a different customer of its own must not reach the PSA as one customer.
import { afterEach, describe, expect, test } from "bun:test";
import { startAgent, type RunningAgent } from "../agent/agent.ts";
import { validateConfig } from "../agent/config.ts";
import { silentLogger } from "../agent/log.ts";
import { startEaccountingSandbox } from "../connectors/eaccounting/sandbox/index.ts";
import { targetConfig } from "./eaccounting-fixtures.ts";
import { STREAMS, TOKEN } from "./eaccounting-harness.ts";
import { tempDir } from "./helpers.ts";
import { PSA_SECRET, startPsaReceiver } from "./pull-harness.ts";

const OFF = { cron: "0 0 1 1 *", timezone: "Europe/Stockholm", enabled: false };
const stops: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

async function twoTargets(masters: Record<string, Record<string, string>> = {}) {
  const a = startEaccountingSandbox();
  const b = startEaccountingSandbox();
  const psa = startPsaReceiver();
  stops.push(
    () => a.stop(),
    () => b.stop(),
    () => psa.stop(),
  );
  const target = (name: string, url: string) => ({
    name,
    kind: "eaccounting",
    ...targetConfig(url),
    pulls: Object.fromEntries(STREAMS.map((s) => [s, OFF])),
    ...(masters[name] ? { masters: masters[name] } : {}),
  });
  const { config, targets } = validateConfig(
    {
      agent: { data_dir: tempDir("kontobro-master-two-") },
      http: { port: 0, api_token: TOKEN },
      dispatch: { retry_base_ms: 20, retry_max_ms: 200, idle_poll_ms: 50 },
      psa: { webhook_url: psa.url, webhook_secret: PSA_SECRET, retry_base_ms: 20, retry_max_ms: 200, poll_ms: 50 },
      pulls: { webhook_debounce_ms: 50 },
      targets: [target("ea", a.url), target("eb", b.url)],
    },
    {},
  );
  const agent: RunningAgent = await startAgent(config, targets, silentLogger);
  stops.push(() => agent.stop());
  const control = async (url: string, path: string, body: unknown) => {
    const res = await fetch(`${url}/__sandbox/${path}`, {
      method: "POST",
      body: JSON.stringify(body),
      headers: { "content-type": "application/json" },
    });
    if (res.status >= 300) throw new Error(`sandbox ${path}: ${res.status} ${await res.text()}`);
  };
  const runNow = async (t: string, stream: string) =>
    (await (
      await fetch(`${agent.url}/api/v1/pulls/${t}/${stream}`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } })
    ).json()) as any;
  return { a, b, psa, agent, control, runNow };
}

const customer = (number: string, name: string) => ({
  CustomerNumber: number,
  Name: name,
  InvoiceAddress1: "Gatan 1",
  InvoicePostalCode: "11122",
  InvoiceCity: "Stockholm",
  InvoiceCountryCode: "SE",
});

describe("two accounting systems, one PSA", () => {
  test("a customer number each system gave a different customer reaches the PSA once; the other is reported, not merged", async () => {
    const s = await twoTargets();
    await s.control(s.a.url, "customers", customer("7001", "Alfa Bygg AB"));
    await s.control(s.b.url, "customers", customer("7001", "Beta Konsult AB"));
    expect(await s.runNow("ea", "customers")).toMatchObject({ status: "ok", imported: 1 });
    expect(await s.runNow("eb", "customers")).toMatchObject({ status: "ok", imported: 0, ignored: 1 });
    await Bun.sleep(300);
    const got = s.psa.accepted().filter((i) => i.type === "customer.upserted" && i.data.number === "7001");
    expect(got.map((i) => i.data.name)).toEqual(["Alfa Bygg AB"]);
    const reports = s.agent.db.$client
      .query(`SELECT target, key, kind FROM master_reports WHERE resolved_at IS NULL AND kind <> 'attention'`)
      .all();
    expect(reports).toEqual([{ target: "eb", key: "7001", kind: "number_name_mismatch" }]);
  });
});
