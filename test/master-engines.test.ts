// Master per entity on both engines (issue 17): MasterSync and its store on a SQLite file and on a PostgreSQL tenant
// (test/engines.ts), against the eAccounting sandbox over loopback; the PSA's records stored by the real intake, the
// pulls' pages by the real inbox: who is master, new records both ways, changes only from the master (reported once
// per record), matching by number and name, renumbering in one system. On PostgreSQL each worker is a connection
// pool of its own, as in the hosted workers: pushes of two records on two workers at once and a pull on a third
// while they are under way (their requests landed, their answers not yet remembered) leave each record linked once,
// nothing reported, nothing delivered back; a pull's page holds a record's row until it commits, so a push's write
// of it on another worker waits.
import { afterEach, describe, expect, test } from "bun:test";
import type { Connector } from "../connectors/contract.ts";
import type { EaccountingConnector } from "../connectors/eaccounting/connector.ts";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { IntakeWriter, parseEvents, type ValidEvent } from "../agent/intake.ts";
import { masterSyncFor, withMasterGuard } from "../agent/master/index.ts";
import { renderMasterSection } from "../agent/master/status.ts";
import { Outbox } from "../agent/outbox.ts";
import { Inbox } from "../agent/pulls/inbox.ts";
import * as fx from "./eaccounting-fixtures.ts";
import { workerEngines } from "./engines.ts";

const { engines, open } = workerEngines("master data per entity");

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function env(o: Parameters<typeof fx.startEnv>[0] = {}) {
  const e = fx.startEnv(o);
  cleanups.push(() => e.stop());
  return e;
}

let n = 0;
/** The PSA sends customers: stored by the real intake (records, events), no target to deliver to here. */
async function psaSends(storage: SqlRunner, ...customers: Record<string, unknown>[]) {
  const parsed = parseEvents(customers.map((data) => ({ id: `c-${++n}`, type: "customer.upserted", data: fx.customerData(data) })));
  if (!parsed.ok) throw new Error("bad events");
  const intake = new IntakeWriter(new Outbox(storage), () => []);
  await intake.submit(parsed.events as ValidEvent[]);
  await intake.close();
}

/** The dispatcher's connector on a worker: pushes of customers and products through master per entity. */
const guarded = (storage: SqlRunner, connector: Connector) => withMasterGuard(connector, masterSyncFor(storage, "ea", connector));

/** A pull of `stream` on a worker, page after page, through the inbox with master per entity deciding. */
async function pull(storage: SqlRunner, connector: Connector, stream: string) {
  const inbox = new Inbox(storage);
  const sync = masterSyncFor(storage, "ea", connector, { withInbox: false })!;
  const totals = { imported: 0, duplicates: 0, ignored: 0 };
  for (;;) {
    const cursor = await inbox.cursor("ea", stream);
    const page = await connector.pull!(stream, cursor, { today: "2026-12-02", openInvoices: [] });
    const counts = await inbox.storeBatch("ea", stream, page.items, page.cursor, { pulled: (i, tx) => sync.pulled(i, tx) });
    for (const k of ["imported", "duplicates", "ignored"] as const) totals[k] += counts[k];
    if (!page.more) return totals;
  }
}

const openReports = (storage: SqlRunner) =>
  storage.all(
    `SELECT entity, key, kind, side, count FROM master_reports WHERE resolved_at IS NULL AND kind <> 'attention' ORDER BY entity, key, kind`,
  );
const masterRows = (storage: SqlRunner) =>
  storage.all(`SELECT key, remote_id AS remoteId, pending_fingerprint AS pending FROM master_records WHERE target = 'ea' ORDER BY key`);
const links = (storage: SqlRunner) => storage.all(`SELECT key, remote_id AS remoteId FROM links WHERE target = 'ea' ORDER BY key`);
const inboxItems = (storage: SqlRunner) => storage.all<{ type: string }>(`SELECT type, remote_id AS remoteId FROM inbox ORDER BY seq`);

/**
 * The connector with its pushes held after their request landed at the target, before the answer goes back to
 * master per entity: `landed` resolves once `count` pushes got there, `release` lets them go on.
 */
function holdPushes(connector: EaccountingConnector, count: number) {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let arrived = 0;
  let allLanded!: () => void;
  const landed = new Promise<void>((r) => (allLanded = r));
  const held = new Proxy(connector, {
    get(obj, prop) {
      if (prop === "push")
        return async (...args: Parameters<Connector["push"]>) => {
          const result = await obj.push(...args);
          if (++arrived === count) allLanded();
          await gate;
          return result;
        };
      const value = Reflect.get(obj, prop);
      return typeof value === "function" ? value.bind(obj) : value;
    },
  }) as Connector;
  return { connector: held, landed, release };
}

describe.each(engines)("master per entity on %s", (engine) => {
  test("the PSA is master: a new customer is created once and its coming back skipped; a change in eAccounting is reported once (seen twice), not delivered; the PSA's change is sent and resolves it; the status section shows the report", async () => {
    const s = await open(engine);
    const e = env();
    // Pushes on one worker, pulls on another (on SQLite the same file).
    const [a, b] = [s.storage, await s.worker()];
    await psaSends(a, {});
    const created = await guarded(a, e.connector).push("customer", fx.customer(), fx.ctx());
    expect((await e.state()).customers.map((c: any) => c.CustomerNumber)).toEqual(["10042"]);
    expect(await pull(b, e.connector, "customers")).toEqual({ imported: 0, duplicates: 1, ignored: 0 });
    expect(await masterRows(b)).toEqual([{ key: "10042", remoteId: created.remoteId, pending: null }]);

    await e.control("clock", { advanceMs: 2000 });
    await e.control("customers/10042", { Name: "Fjordkraft (ändrad i eAccounting)" }, "PUT");
    expect(await pull(b, e.connector, "customers")).toEqual({ imported: 0, duplicates: 0, ignored: 1 });
    await e.control("clock", { advanceMs: 2000 });
    await e.control("customers/10042", { Telephone: "+46 8 999" }, "PUT");
    expect(await pull(b, e.connector, "customers")).toEqual({ imported: 0, duplicates: 0, ignored: 1 });
    expect(await openReports(a)).toEqual([{ entity: "customer", key: "10042", kind: "changed_in_non_master", side: "target", count: 2 }]);
    expect(await inboxItems(a)).toEqual([]);
    const section = String(await renderMasterSection(b));
    expect(section.match(/data-master-report="changed_in_non_master"/g)).toHaveLength(1);
    expect(section).toContain("changed in the non-master system");

    // The PSA, the master, changes it: its version goes to eAccounting, the report is resolved, its coming back skipped.
    await psaSends(a, { name: "Fjordkraft AB" });
    await guarded(a, e.connector).push("customer", fx.customer({ name: "Fjordkraft AB" }), fx.ctx());
    expect((await e.state()).customers[0].Name).toBe("Fjordkraft AB");
    expect(await openReports(b)).toEqual([]);
    expect(String(await renderMasterSection(b))).toBe("");
    expect(await pull(b, e.connector, "customers")).toEqual({ imported: 0, duplicates: 1, ignored: 0 });
  }, 30_000);

  test("eAccounting is master of customers: at the first match its differing version goes to the inbox, not the PSA's to eAccounting", async () => {
    const s = await open(engine);
    const e = env();
    await e.control("customers", {
      CustomerNumber: "10042",
      Name: "Fjordkraft Consulting AB",
      InvoiceAddress1: "Hamngatan 9",
      InvoicePostalCode: "41101",
      InvoiceCity: "Göteborg",
      InvoiceCountryCode: "SE",
    });
    const connector = e.connectorWith({}, { masters: { customer: "target" } });
    await psaSends(s.storage, {});
    const result = await guarded(s.storage, connector).push("customer", fx.customer(), fx.ctx());
    expect(result.note).toContain("its version was sent to the PSA, the PSA's was not sent");
    expect((await e.state()).customers[0].InvoiceCity).toBe("Göteborg");
    expect((await inboxItems(s.storage)).map((i) => i.type)).toEqual(["customer.upserted"]);
    // Pulled later on another worker: nothing new (the inbox has this version).
    expect(await pull(await s.worker(), connector, "customers")).toMatchObject({ imported: 0, ignored: 0 });
  }, 30_000);

  test("matching by number and name: a number whose names differ needs action and is reported; a renumbering in one system is said, once, before a second record is made", async () => {
    const s = await open(engine);
    const e = env();
    const [a, b] = [s.storage, await s.worker()];
    await e.control("customers", {
      CustomerNumber: "10043",
      Name: "Helt annat företag AB",
      InvoiceAddress1: "Gatan 1",
      InvoicePostalCode: "11122",
      InvoiceCity: "Stockholm",
      InvoiceCountryCode: "SE",
    });
    const connector = e.connectorWith({}, { masters: { customer: "target" } });
    await psaSends(a, {}, { number: "10043" });
    const refused = await fx.thrown(guarded(a, connector).push("customer", fx.customer({ number: "10043" }), fx.ctx()));
    expect(refused).toMatchObject({ code: "master.number_name_mismatch", kind: "permanent" });
    expect(refused.hint).toContain("kontobro match ea");
    // 10042 is new: created, linked. eAccounting (the master) renumbers it to 10050: not a new customer for the PSA.
    await guarded(a, connector).push("customer", fx.customer(), fx.ctx());
    await e.control("clock", { advanceMs: 2000 });
    await e.control("customers/10042", { CustomerNumber: "10050" }, "PUT");
    expect(await pull(b, connector, "customers")).toMatchObject({ imported: 0, ignored: 2 });
    expect(await openReports(b)).toEqual([
      { entity: "customer", key: "10042", kind: "renumbered", side: "target", count: 1 },
      { entity: "customer", key: "10043", kind: "number_name_mismatch", side: "target", count: 2 },
    ]);
    expect(String(await renderMasterSection(a))).toContain("was renumbered in Visma eAccounting to 10050");
    // The PSA renumbers 10042 to 10060 alone (the same name): said before a second customer is made; a retry makes it.
    await psaSends(a, { number: "10060" });
    const said = await fx.thrown(guarded(b, connector).push("customer", fx.customer({ number: "10060" }), fx.ctx()));
    expect(said).toMatchObject({ code: "master.renumbered" });
    expect(said.hint).toContain("press retry: kontobro creates 10060");
    await guarded(a, connector).push("customer", fx.customer({ number: "10060" }), fx.ctx());
    expect((await e.state()).customers.map((c: any) => c.CustomerNumber).sort()).toEqual(["10043", "10050", "10060"]);
    expect(await inboxItems(a)).toEqual([]);
  }, 30_000);

  test("two workers push two new customers at once and a third pulls while both are under way: each linked once, nothing reported or delivered back; a change under way is recognised as the push's own", async () => {
    const s = await open(engine);
    const e = env();
    const [a, b, c] = [s.storage, await s.worker(), await s.worker()];
    await psaSends(a, { number: "20001", name: "Alfa AB" }, { number: "20002", name: "Beta AB" });
    // Signed in once before the connectors of the workers start (they share the tenant's stored tokens).
    expect(await pull(c, e.connector, "customers")).toEqual({ imported: 0, duplicates: 0, ignored: 0 });
    // Each worker has its own connector (they share the tenant's credentials, as workers do).
    const onA = holdPushes(e.connectorWith({}), 1);
    const onB = holdPushes(e.connectorWith({}), 1);
    const pushes = [
      guarded(a, onA.connector).push("customer", fx.customer({ number: "20001", name: "Alfa AB" }), fx.ctx()),
      guarded(b, onB.connector).push("customer", fx.customer({ number: "20002", name: "Beta AB" }), fx.ctx()),
    ];
    await Promise.all([onA.landed, onB.landed]);
    expect((await e.state()).customers.map((x: any) => x.CustomerNumber).sort()).toEqual(["20001", "20002"]);
    // The pull finds both at eAccounting before either push has remembered its answer: the PSA's own, linked.
    expect(await pull(c, e.connector, "customers")).toEqual({ imported: 0, duplicates: 2, ignored: 0 });
    onA.release();
    onB.release();
    const [r1, r2] = await Promise.all(pushes);
    expect(await masterRows(c)).toEqual([
      { key: "20001", remoteId: r1!.remoteId, pending: null },
      { key: "20002", remoteId: r2!.remoteId, pending: null },
    ]);
    expect(await links(c)).toEqual([
      { key: "20001", remoteId: r1!.remoteId },
      { key: "20002", remoteId: r2!.remoteId },
    ]);

    // A change of 20001 on worker A: its request has landed, its answer is held; the pull on C sees the new version,
    // which is the push's own (its pending fingerprint): skipped, not reported.
    await e.control("clock", { advanceMs: 2000 });
    await psaSends(a, { number: "20001", name: "Alfa Sverige AB" });
    const change = holdPushes(e.connectorWith({}), 1);
    const pushed = guarded(a, change.connector).push("customer", fx.customer({ number: "20001", name: "Alfa Sverige AB" }), fx.ctx());
    await change.landed;
    // (What the last pull saw may come again: the watermark is read inclusively; it is skipped as unchanged.)
    expect(await pull(c, e.connector, "customers")).toMatchObject({ imported: 0, ignored: 0 });
    change.release();
    await pushed;
    expect(await pull(b, e.connector, "customers")).toMatchObject({ imported: 0, ignored: 0 });
    expect(await openReports(a)).toEqual([]);
    expect(await inboxItems(a)).toEqual([]);
    expect((await masterRows(a)).map((r: any) => r.pending)).toEqual([null, null]);
  }, 30_000);
});

const pgOnly = engines.includes("postgres") ? describe : describe.skip;

pgOnly("master per entity across workers (PostgreSQL)", () => {
  test("a pull's page holds the record's row until it commits, though it writes nothing there: a push's write of it on another worker waits, then lands", async () => {
    const s = await open("postgres");
    const e = env();
    const [a, b] = [s.storage, await s.worker()];
    await psaSends(a, {});
    await guarded(a, e.connector).push("customer", fx.customer(), fx.ctx());
    // The record as eAccounting holds it, unchanged since the push: the page's decision is to skip it.
    const page = await e.connector.pull!("customers", null, { today: "2026-12-02", openInvoices: [] });
    const [item] = page.items;
    const sync = masterSyncFor(b, "ea", e.connector, { withInbox: false })!;
    let wrote = false;
    let write: Promise<unknown> | undefined;
    const decided = await b.transaction(async (tx) => {
      const outcome = await sync.pulled(item!, tx);
      // Another worker's push sets the record's pending fingerprint meanwhile: it waits for this page.
      write = a.run(`UPDATE master_records SET pending_fingerprint = 'x' WHERE target = 'ea' AND key = '10042'`).then(() => (wrote = true));
      await Bun.sleep(300);
      expect(wrote).toBe(false);
      return outcome;
    });
    expect(decided).toBe("skip");
    await write;
    expect(wrote).toBe(true);
    expect(await masterRows(a)).toEqual([{ key: "10042", remoteId: expect.any(String), pending: "x" }]);
  }, 30_000);
});
