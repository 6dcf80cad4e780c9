// Master per entity end to end, through the real agent (SQLite file, dispatcher, pulls, inbox, signed PSA webhook)
// against the eAccounting sandbox: both settings per entity, new records both ways, changes only from the master
// (the other side's change reported once per record), matching by number and name, renumbering in one system, the
// watermark stored with the batch, and no echo of our own push.
import { afterEach, describe, expect, test } from "bun:test";
import { Customer, Product } from "../agent/model.ts";
import { ev, startEaStack, type EaStack } from "./eaccounting-harness.ts";
import { customerData, productData } from "./eaccounting-fixtures.ts";
import { waitFor } from "./helpers.ts";

let s: EaStack | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

const FIXTURE_ARTICLES = 4; // the sandbox company's own articles (100, 200, 998, 999): new in eAccounting, so they reach the PSA once
const accepted = (type: string) => s!.psa.accepted().filter((i) => i.type === type);
const customerRow = async (number: string) => (await s!.state()).customers.find((c: any) => c.CustomerNumber === number);
const cursor = (stream: string) =>
  (s!.agent.db.$client.query(`SELECT value FROM cursors WHERE target = 'ea' AND stream = ?1`).get(stream) as { value: string } | null)
    ?.value;
/** Open reports, leaving out the "check the coding" notes of new articles (asserted on their own). */
const openReports = () =>
  s!.agent.db.$client
    .query(
      `SELECT entity, key, kind, side, count FROM master_reports WHERE resolved_at IS NULL AND kind <> 'attention' ORDER BY entity, key, kind`,
    )
    .all() as any[];

describe("the PSA is master (the default)", () => {
  test("PSA records go to eAccounting and are not echoed; eAccounting's new ones reach the PSA; its changes are reported once, not sent", async () => {
    s = await startEaStack();
    await s.send([ev("customer.upserted", customerData()), ev("product.upserted", productData())]);
    await s.waitDone(2);
    // The new article's coding is to be checked in eAccounting: on the status page.
    expect(await (await fetch(`${s.agent.url}/`)).text()).toContain("check the coding in eAccounting");
    // Our own pushes come back in the pulls: skipped. The company's own articles are new to the PSA: delivered.
    expect(await s.runNow("customers")).toMatchObject({ status: "ok", imported: 0, duplicates: 1 });
    expect(await s.runNow("products")).toMatchObject({ status: "ok", imported: FIXTURE_ARTICLES, duplicates: 1 });
    expect(cursor("customers")).toContain('"since"');

    // A customer and an article made in eAccounting reach the PSA in its canonical shape.
    await s.control("customers", {
      CustomerNumber: "7001",
      Name: "Från eAccounting AB",
      InvoiceAddress1: "Gatan 1",
      InvoicePostalCode: "11122",
      InvoiceCity: "Stockholm",
      InvoiceCountryCode: "SE",
      ContactPersonName: "Anna Svensson",
    });
    await s.control("articles", { Number: "EA-1", Name: "Artikel från eAccounting", NetPrice: 100 });
    expect(await s.runNow("customers")).toMatchObject({ imported: 1 });
    expect(await s.runNow("products")).toMatchObject({ imported: 1 });
    await waitFor(
      "both at the PSA",
      () => accepted("customer.upserted").length === 1 && accepted("product.upserted").length === FIXTURE_ARTICLES + 1,
    );
    const c = accepted("customer.upserted")[0];
    expect(c).toMatchObject({ target: "ea", stream: "customers" });
    expect(Customer.parse(c.data)).toMatchObject({
      number: "7001",
      name: "Från eAccounting AB",
      paymentTermsDays: 30,
      addresses: [{ city: "Stockholm", country: "SE" }],
    });
    expect(c.data.contacts[0]).toEqual({ name: "Anna Svensson", firstName: "Anna", lastName: "Svensson" });
    expect(Product.parse(accepted("product.upserted").find((i) => i.data.code === "EA-1").data)).toMatchObject({
      code: "EA-1",
      price: 10000,
      unit: "st",
      vatRate: 25,
    });
    // Pulled again: nothing new (the watermark, and one item per version).
    expect(await s.runNow("customers")).toMatchObject({ imported: 0 });

    // The PSA takes it and sends it back (its echo): matched, nothing sent to eAccounting.
    const before = await customerRow("7001");
    await s.send([ev("customer.upserted", c.data)]);
    await s.waitDone(3);
    const echo = (await s.deliveries("done")).find((d: any) => d.key === "7001");
    expect(echo.note).toContain("nothing sent");
    expect((await customerRow("7001")).ChangedUtc).toBe(before.ChangedUtc);

    // Changed in eAccounting, which is not the master: not sent to the PSA, reported once (however often it is seen).
    await s.control("clock", { advanceMs: 2000 });
    await s.control("customers/10042", { Name: "Fjordkraft (ändrad i eAccounting)" }, "PUT");
    expect(await s.runNow("customers")).toMatchObject({ imported: 0, ignored: 1 });
    await s.control("clock", { advanceMs: 2000 });
    await s.control("customers/10042", { Telephone: "+46 8 999" }, "PUT");
    expect(await s.runNow("customers")).toMatchObject({ imported: 0, ignored: 1 });
    expect(openReports()).toEqual([{ entity: "customer", key: "10042", kind: "changed_in_non_master", side: "target", count: 2 }]);
    const page = await (await fetch(`${s.agent.url}/`)).text();
    expect(page.match(/data-master-report="changed_in_non_master"/g)).toHaveLength(1);
    expect(page.match(/data-master-report="attention"/g)).toHaveLength(1);
    expect(page).toContain("changed in the non-master system");
    expect(accepted("customer.upserted").filter((i) => i.data.number === "10042")).toHaveLength(0);

    // The PSA, the master, changes it: its version goes to eAccounting and the report is resolved.
    await s.send([ev("customer.upserted", customerData({ name: "Fjordkraft AB" }))]);
    await s.waitDone(4);
    expect((await customerRow("10042")).Name).toBe("Fjordkraft AB");
    expect(openReports()).toEqual([]);
    // That push coming back is not echoed.
    expect(await s.runNow("customers")).toMatchObject({ imported: 0, ignored: 0 });
  });
});

describe("eAccounting is master of customers, the PSA of products", () => {
  test("changes of customers flow only from eAccounting, of products only from the PSA; new records both ways", async () => {
    s = await startEaStack({ target: { masters: { customers: "target", products: "psa" } } });
    await s.send([ev("customer.upserted", customerData()), ev("product.upserted", productData())]);
    await s.waitDone(2); // new records are created in eAccounting whoever is master
    await s.runNow("customers");
    await s.runNow("products");

    // eAccounting changes the customer: the PSA gets it; its echo is no change.
    await s.control("clock", { advanceMs: 2000 });
    await s.control("customers/10042", { Name: "Fjordkraft Sverige AB", InvoiceCity: "Göteborg", InvoicePostalCode: "41101" }, "PUT");
    expect(await s.runNow("customers")).toMatchObject({ imported: 1 });
    await waitFor("the change at the PSA", () => accepted("customer.upserted").length === 1);
    const changed = accepted("customer.upserted")[0];
    expect(changed.data).toMatchObject({ number: "10042", name: "Fjordkraft Sverige AB", addresses: [{ city: "Göteborg", zip: "41101" }] });
    await s.send([ev("customer.upserted", changed.data)]);
    await s.waitDone(3);
    expect(openReports()).toEqual([]);

    // The PSA changes the customer: not sent to eAccounting, reported once per record.
    const row = await customerRow("10042");
    await s.send([ev("customer.upserted", customerData({ name: "Fjordkraft (ändrad i PSA)" }))]);
    await s.send([ev("customer.upserted", customerData({ name: "Fjordkraft (ändrad igen)" }))]);
    await s.waitDone(5);
    expect(await customerRow("10042")).toEqual(row);
    const note = (await s.deliveries("done")).find((d: any) => d.key === "10042" && d.note?.startsWith("Not sent"));
    expect(note.note).toContain("master of customers");
    expect(openReports()).toEqual([{ entity: "customer", key: "10042", kind: "changed_in_non_master", side: "psa", count: 2 }]);
    expect((await (await fetch(`${s.agent.url}/`)).text()).match(/data-master-report="changed_in_non_master"/g)).toHaveLength(1);

    // A new customer made in the PSA still goes to eAccounting.
    await s.send([ev("customer.upserted", customerData({ number: "10043", name: "Ny kund från PSA AB" }))]);
    await s.waitDone(6);
    expect((await customerRow("10043")).Name).toBe("Ny kund från PSA AB");

    // Products: the PSA is master. A change in eAccounting is reported, not delivered; the PSA's goes out.
    await s.control("clock", { advanceMs: 2000 });
    await s.control("articles/KONS", { Name: "Konsult (ändrad i eAccounting)" }, "PUT");
    expect(await s.runNow("products")).toMatchObject({ imported: 0, ignored: 1 });
    await s.send([ev("product.upserted", productData({ price: 150000 }))]);
    await s.waitDone(7);
    expect((await s.state()).articles.find((a: any) => a.Number === "KONS")).toMatchObject({
      Name: "Konsulttimmar senior",
      NetPrice: 1500,
    });
    expect(openReports().map((r) => `${r.entity} ${r.key} ${r.kind}`)).toEqual(["customer 10042 changed_in_non_master"]);
  });

  test("a customer in both systems before the first sync, differing: eAccounting's version goes to the PSA", async () => {
    s = await startEaStack({ target: { masters: { customers: "target" } } });
    await s.control("customers", {
      CustomerNumber: "10042",
      Name: "Fjordkraft Consulting AB",
      InvoiceAddress1: "Kungsgatan 9",
      InvoicePostalCode: "41119",
      InvoiceCity: "Göteborg",
      InvoiceCountryCode: "SE",
    });
    await s.send([ev("customer.upserted", customerData())]);
    await s.waitDone(1);
    expect((await s.deliveries("done"))[0].note).toContain("its version was sent to the PSA");
    await waitFor("eAccounting's version at the PSA", () => accepted("customer.upserted").length === 1);
    expect(accepted("customer.upserted")[0].data.addresses[0]).toMatchObject({ street: "Kungsgatan 9", city: "Göteborg" });
    expect((await s.state()).customers).toHaveLength(1);
  });
});

describe("matching by number and name", () => {
  test("a number whose names differ is not taken for the same record: needs action on the push, reported on the pull", async () => {
    s = await startEaStack();
    await s.control("customers", {
      CustomerNumber: "10042",
      Name: "Helt annat företag AB",
      InvoiceAddress1: "Gatan 1",
      InvoicePostalCode: "11122",
      InvoiceCity: "Stockholm",
      InvoiceCountryCode: "SE",
    });
    await s.send([ev("customer.upserted", customerData())]);
    const d = await waitFor("needs action", async () => (await s!.deliveries("needs_action"))[0]);
    expect(d).toMatchObject({ entity: "customer", key: "10042", errorCode: "master.number_name_mismatch" });
    expect(d.errorMessage).toContain('named "Helt annat företag AB"');
    expect(d.errorHint).toContain("kontobro match ea");
    expect(await s.runNow("customers")).toMatchObject({ imported: 0, ignored: 1 });
    expect(openReports()).toEqual([{ entity: "customer", key: "10042", kind: "number_name_mismatch", side: "target", count: 2 }]);
    expect((await s.state()).customers).toHaveLength(1);
  });

  test("renumbered in the master alone breaks the match: detected and said, on both sides", async () => {
    s = await startEaStack({ target: { masters: { customers: "target" } } });
    await s.send([ev("customer.upserted", customerData())]);
    await s.waitDone(1);
    // eAccounting (the master) renumbers 10042 → 10050: not delivered as a new customer to the PSA.
    await s.control("clock", { advanceMs: 2000 });
    await s.control("customers/10042", { CustomerNumber: "10050" }, "PUT");
    expect(await s.runNow("customers")).toMatchObject({ imported: 0, ignored: 1 });
    const [r] = openReports();
    expect(r).toMatchObject({ key: "10042", kind: "renumbered", side: "target" });
    expect(await (await fetch(`${s.agent.url}/`)).text()).toContain("was renumbered in Visma eAccounting to 10050");
    // The PSA renumbers 10042 → 10060 alone (a new number, the same name): said once, before a second customer is made.
    await s.send([ev("customer.upserted", customerData({ number: "10060" }))]);
    const d = await waitFor("needs action", async () => (await s!.deliveries("needs_action"))[0]);
    expect(d).toMatchObject({ key: "10060", errorCode: "master.renumbered" });
    expect(d.errorHint).toContain("press retry: kontobro creates 10060");
    await s.api(`/api/v1/deliveries/${d.id}/retry`, { method: "POST" });
    await s.waitDone(2);
    expect((await s.state()).customers.map((c: any) => c.CustomerNumber).sort()).toEqual(["10050", "10060"]);
  });
});
