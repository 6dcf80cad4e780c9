// Master per entity when both systems change one record, through the real agent against the eAccounting sandbox:
// the master wins, and the other side's change is reported, never lost without a word.
import { afterEach, describe, expect, test } from "bun:test";
import { ev, STREAMS, startEaStack, TOKEN, type EaStack } from "./eaccounting-harness.ts";
import { startAgent } from "../agent/agent.ts";
import { validateConfig } from "../agent/config.ts";
import { silentLogger } from "../agent/log.ts";
import { customerData, targetConfig } from "./eaccounting-fixtures.ts";
import { waitFor } from "./helpers.ts";
import { PSA_SECRET } from "./pull-harness.ts";

let s: EaStack | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

const openReports = () =>
  s!.agent.db.$client
    .query(`SELECT entity, key, kind, side FROM master_reports WHERE resolved_at IS NULL AND kind <> 'attention' ORDER BY key, kind`)
    .all() as any[];
/** The agent started again on its data directory with other `masters` (the sandbox and the PSA stay). */
async function restartWith(masters: Record<string, string>) {
  await s!.agent.stop();
  const OFF = { cron: "0 0 1 1 *", timezone: "Europe/Stockholm", enabled: false };
  const { config, targets } = validateConfig(
    {
      agent: { data_dir: s!.dataDir },
      http: { port: 0, api_token: TOKEN },
      dispatch: { retry_base_ms: 20, retry_max_ms: 200, idle_poll_ms: 50 },
      psa: { webhook_url: s!.psa.url, webhook_secret: PSA_SECRET, retry_base_ms: 20, retry_max_ms: 200, poll_ms: 50 },
      targets: [
        {
          name: "ea",
          kind: "eaccounting",
          ...targetConfig(s!.sandboxUrl),
          pulls: Object.fromEntries(STREAMS.map((x) => [x, OFF])),
          masters,
        },
      ],
    },
    {},
  );
  s!.agent = await startAgent(config, targets, silentLogger);
}
const customerRow = async (number: string) => (await s!.state()).customers.find((c: any) => c.CustomerNumber === number);

describe("a change made at both sides at once", () => {
  test("the PSA is master: its change wins, and eAccounting's change it overwrote (not yet pulled) is reported", async () => {
    s = await startEaStack();
    await s.send([ev("customer.upserted", customerData())]);
    await s.waitDone(1);
    expect(await s.runNow("customers")).toMatchObject({ imported: 0 });
    // Someone renames the customer in eAccounting; before the next pull, the PSA changes its address.
    await s.control("clock", { advanceMs: 2000 });
    await s.control("customers/10042", { Name: "Fjordkraft (ändrad i eAccounting)" }, "PUT");
    await s.send([
      ev(
        "customer.upserted",
        customerData({ name: "Fjordkraft AB", addresses: [{ street: "Nygatan 2", zip: "41101", city: "Göteborg", country: "SE" }] }),
      ),
    ]);
    await s.waitDone(2);
    expect((await customerRow("10042")).Name).toBe("Fjordkraft AB");
    expect(await s.runNow("customers")).toMatchObject({ imported: 0 });
    expect(openReports()).toEqual([{ entity: "customer", key: "10042", kind: "changed_in_non_master", side: "target" }]);
    expect(await s.page()).toContain("the PSA&#39;s version has replaced it in Visma eAccounting");
  });

  test("eAccounting is master: its change wins and reaches the PSA; the PSA's change is reported, not sent", async () => {
    s = await startEaStack({ target: { masters: { customers: "target" } } });
    await s.send([ev("customer.upserted", customerData())]);
    await s.waitDone(1);
    expect(await s.runNow("customers")).toMatchObject({ imported: 0 });
    await s.control("clock", { advanceMs: 2000 });
    await s.control("customers/10042", { Name: "Fjordkraft (ändrad i eAccounting)" }, "PUT");
    await s.send([ev("customer.upserted", customerData({ name: "Fjordkraft AB" }))]);
    await s.waitDone(2);
    expect(await s.runNow("customers")).toMatchObject({ imported: 1 });
    expect((await customerRow("10042")).Name).toBe("Fjordkraft (ändrad i eAccounting)");
    expect(s.psa.accepted().map((i) => i.data.name)).toEqual(["Fjordkraft (ändrad i eAccounting)"]);
    expect(openReports()).toEqual([{ entity: "customer", key: "10042", kind: "changed_in_non_master", side: "psa" }]);
    expect(await s.page()).toContain("Visma eAccounting&#39;s version was sent to the PSA in its place");
    // The PSA takes eAccounting's version (its echo): the two agree again, the report is resolved.
    await s.send([ev("customer.upserted", s.psa.accepted()[0].data)]);
    await s.waitDone(3);
    expect(openReports()).toEqual([]);
  });
});

describe("the master switched in kontobro.toml with records already linked", () => {
  test("from the PSA to eAccounting: a change eAccounting made while the PSA was master goes to the PSA at the next pull", async () => {
    s = await startEaStack();
    await s.send([ev("customer.upserted", customerData())]);
    await s.waitDone(1);
    expect(await s.runNow("customers")).toMatchObject({ imported: 0 });
    await s.control("clock", { advanceMs: 2000 });
    await s.control("customers/10042", { Name: "Fjordkraft (ändrad i eAccounting)" }, "PUT");
    expect(await s.runNow("customers")).toMatchObject({ imported: 0, ignored: 1 });
    expect(openReports()).toEqual([{ entity: "customer", key: "10042", kind: "changed_in_non_master", side: "target" }]);
    // A later change elsewhere moves the watermark past it (beyond the pull's overlap).
    await s.control("clock", { advanceMs: 3_600_000 });
    await s.control("customers", {
      CustomerNumber: "7001",
      Name: "Annan kund AB",
      InvoicePostalCode: "11122",
      InvoiceCity: "Stockholm",
      InvoiceCountryCode: "SE",
    });
    expect(await s.runNow("customers")).toMatchObject({ imported: 1 });
    await waitFor("7001 at the PSA", () => s!.psa.accepted().length === 1);
    // eAccounting becomes master of customers: its version is the one that counts now.
    await restartWith({ customers: "target" });
    expect(await s.runNow("customers")).toMatchObject({ imported: 1 });
    await waitFor("at the PSA", () => s!.psa.accepted().length === 2);
    expect(s.psa.accepted()[1].data).toMatchObject({ number: "10042", name: "Fjordkraft (ändrad i eAccounting)" });
    expect(openReports()).toEqual([]);
    expect(await s.runNow("customers")).toMatchObject({ imported: 0 });
  });
});
