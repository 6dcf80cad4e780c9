// Master per entity when both systems change one record, through the real agent against the eAccounting sandbox:
// the master wins, and the other side's change is reported, never lost without a word.
import { afterEach, describe, expect, test } from "bun:test";
import { ev, startEaStack, type EaStack } from "./eaccounting-harness.ts";
import { customerData } from "./eaccounting-fixtures.ts";

let s: EaStack | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

const openReports = () =>
  s!.agent.db.$client
    .query(`SELECT entity, key, kind, side FROM master_reports WHERE resolved_at IS NULL AND kind <> 'attention' ORDER BY key, kind`)
    .all() as any[];
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
