// The matching report (`kontobro match TARGET`) against the eAccounting sandbox: records in both systems, in one,
// number matching but name not, the same name under another number; from the data directory or --psa FILE; a dry
// run that writes nothing (no record, link or master row; only GETs at eAccounting).
import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runMatch } from "../agent/cli/match.ts";
import { validateConfig } from "../agent/config.ts";
import { openDatabase } from "../agent/db/index.ts";
import { IntakeWriter, parseEvents, type ValidEvent } from "../agent/intake.ts";
import { Outbox } from "../agent/outbox.ts";
import { startEaccountingSandbox } from "../connectors/eaccounting/sandbox/index.ts";
import { customerData, targetConfig } from "./eaccounting-fixtures.ts";
import { tempDir } from "./helpers.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const psaEvents = [
  { id: "c1", type: "customer.upserted", data: customerData() },
  { id: "c2", type: "customer.upserted", data: customerData({ number: "10043", name: "Nordlys AB" }) },
  { id: "c3", type: "customer.upserted", data: customerData({ number: "10044", name: "Bara i PSA AB" }) },
  { id: "c4", type: "customer.upserted", data: customerData({ number: "10045", name: "Havøy Konsult AS" }) },
  { id: "p1", type: "product.upserted", data: { code: "100", name: "Konsulttimmar", unit: "h", price: 125000 } },
  { id: "p2", type: "product.upserted", data: { code: "KONS", name: "Konsult senior" } },
];

async function setup() {
  const srv = startEaccountingSandbox();
  cleanups.push(() => srv.stop());
  const person = (body: object) =>
    fetch(`${srv.url}/__sandbox/customers`, {
      method: "POST",
      body: JSON.stringify(body),
      headers: { "content-type": "application/json" },
    });
  const addr = { InvoiceAddress1: "Storgatan 1", InvoicePostalCode: "11122", InvoiceCity: "Stockholm", InvoiceCountryCode: "SE" };
  await person({ CustomerNumber: "10042", Name: "Fjordkraft consulting  AB", ...addr }); // the same (case and spaces aside)
  await person({ CustomerNumber: "10043", Name: "Annat Namn AB", ...addr });
  await person({ CustomerNumber: "7001", Name: "Bara i eAccounting AB", ...addr });
  await person({ CustomerNumber: "7002", Name: "Havøy Konsult AS", ...addr });
  const dataDir = tempDir("kontobro-match-");
  const { config, targets } = validateConfig(
    { agent: { data_dir: dataDir }, targets: [{ name: "ea", kind: "eaccounting", ...targetConfig(srv.url) }] },
    {},
  );
  return { srv, dataDir, config, target: targets[0]! };
}

const counts = (dataDir: string) => {
  const db = openDatabase(join(dataDir, "kontobro.db"));
  try {
    return Object.fromEntries(
      ["records", "links", "deliveries", "master_records", "master_reports", "inbox"].map((t) => [
        t,
        (db.$client.query(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n,
      ]),
    );
  } finally {
    db.$client.close();
  }
};

describe("kontobro match", () => {
  test("classifies by number and name from the data directory, and writes nothing", async () => {
    const { srv, dataDir, config, target } = await setup();
    const db = openDatabase(join(dataDir, "kontobro.db"));
    const parsed = parseEvents(psaEvents);
    if (!parsed.ok) throw new Error("bad events");
    await new IntakeWriter(new Outbox(sqliteRunner(db.$client)), () => []).submit(parsed.events as ValidEvent[]);
    db.$client.close();
    const before = counts(dataDir);
    const lines: string[] = [];
    const { code, reports } = await runMatch({ config, target, out: (l) => lines.push(l) });
    expect(code).toBe(1);
    const [customers, products] = reports;
    expect(customers).toMatchObject({
      entity: "customer",
      master: "psa",
      both: [{ key: "10042", psaName: "Fjordkraft Consulting AB", targetName: "Fjordkraft consulting  AB", differs: true }],
      nameMismatch: [{ key: "10043", psaName: "Nordlys AB", targetName: "Annat Namn AB" }],
      onlyPsa: [
        { key: "10044", name: "Bara i PSA AB" },
        { key: "10045", name: "Havøy Konsult AS" },
      ],
      onlyTarget: [
        { key: "7001", name: "Bara i eAccounting AB" },
        { key: "7002", name: "Havøy Konsult AS" },
      ],
      sameNameOtherNumber: [{ psaKey: "10045", targetKey: "7002", name: "Havøy Konsult AS" }],
    });
    expect(products!.both.map((p) => p.key)).toEqual(["100"]);
    expect(products!.onlyPsa.map((p) => p.key)).toEqual(["KONS"]);
    expect(products!.onlyTarget.map((p) => p.key).sort()).toEqual(["200", "998", "999"]);
    const text = lines.join("\n");
    expect(text).toContain("dry run; nothing was written");
    expect(text).toContain('10043: "Nordlys AB" in the PSA, "Annat Namn AB" in Visma eAccounting');
    expect(text).toContain("Havøy Konsult AS: 10045 in the PSA, 7002 in Visma eAccounting");
    expect(text).toContain("1 record(s) to fix before the first sync of ea");
    // A dry run: nothing of the PSA's or the master's kind was written; eAccounting was only read.
    expect(counts(dataDir)).toEqual(before);
    const requests = srv.sandbox.state().requests.filter((r) => r.path.startsWith("/v2/"));
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.every((r) => r.method === "GET")).toBe(true);
    expect(srv.sandbox.state().customers).toHaveLength(4);
  });

  test("the PSA's side from --psa FILE, as JSON; nothing to fix exits 0", async () => {
    const { dataDir, config, target } = await setup();
    const file = join(dataDir, "psa.json");
    writeFileSync(file, JSON.stringify([psaEvents[0], psaEvents[2]]));
    const lines: string[] = [];
    const { code } = await runMatch({ config, target, psaFile: file, json: true, out: (l) => lines.push(l) });
    expect(code).toBe(0);
    const body = JSON.parse(lines.join("\n"));
    expect(body.psa).toBe(file);
    expect(body.reports[0].both.map((p: any) => p.key)).toEqual(["10042"]);
    expect(body.reports[0].nameMismatch).toEqual([]);
  });
});
