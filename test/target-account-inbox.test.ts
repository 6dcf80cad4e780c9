// A target pointed at another account with its ids forgotten (agent/target-account.ts, --forget-links /
// ?forget_links): what was pulled from the old account must not stand for what the new one holds. A new account's
// numbers start again (e-conomic's entries and booked invoices from 1), so its pull items carry the old one's remote
// ids; taken as already seen they never reached the PSA. And an invoice whose payment status was final in the old
// account is booked anew in the new one: its status there must be asked for again; and what a person was told of the
// old account's master data is over. Both engines (test/engines.ts).
import { describe, expect, test } from "bun:test";
import type { PullItem } from "../connectors/contract.ts";
import { MasterStore } from "../agent/master/store.ts";
import { Inbox } from "../agent/pulls/inbox.ts";
import { reconcileAccounts } from "../agent/target-account.ts";
import { silentLogger } from "../agent/log.ts";
import { runPull } from "../agent/pulls/runner.ts";
import { Outbox } from "../agent/outbox.ts";
import { enqueueCustomers } from "./dispatch-fixture.ts";
import { workerEngines } from "./engines.ts";
import { pullOnlyConnector } from "./paged-target.ts";

const { engines, open } = workerEngines("target-account-inbox");

const books = (token: string, name = "books") => ({ name, kind: "economic", settings: { agreement_grant_token: token } });
const entry = (n: number, text: string): PullItem => ({
  remoteId: `entry:2026:${n}`,
  type: "expense.posted",
  data: { text },
});
const paid = (bookedNumber: number): PullItem => ({
  remoteId: `invoice:${bookedNumber}`,
  type: "invoice.status_changed",
  data: {},
  status: { entity: "invoice", key: "INV-1", value: "paid", final: true, baseline: "booked" },
});

describe.each(engines)("%s", (engine) => {
  test("forgotten: the new account's pull items with the old one's remote ids are stored, and its invoices' status asked for", async () => {
    const { storage } = await open(engine);
    const inbox = new Inbox(storage);
    // The first agreement: recorded, an expense pulled, INV-1 booked (invoice 1 there) and paid.
    await storage.transaction((tx) => reconcileAccounts(tx, [books("first")]));
    await storage.run(
      `INSERT INTO links (target, entity, key, remote_id, payload_hash, updated_at) VALUES ('books', 'invoice', 'INV-1', '1', 'h', 1)`,
    );
    expect(await inbox.storeBatch("books", "expenses", [entry(1, "old")], "c1")).toMatchObject({ imported: 1 });
    expect(await inbox.storeBatch("books", "invoice-status", [paid(1)], null)).toMatchObject({ imported: 1 });
    expect(await inbox.openInvoices("books")).toEqual([{ key: "INV-1", remoteId: "1", status: "paid" }]); // paid lately: asked again
    // A change made to a customer in that account, reported to a person.
    const master = new MasterStore(storage);
    await master.report("books", "customer", "C-1", "changed_in_non_master", "psa", "C-1 was changed in the first agreement");
    expect((await master.openReports("books")).map((r) => r.key)).toEqual(["C-1"]);

    // Another agreement under the same name, its ids forgotten.
    const changed = await storage.transaction((tx) => reconcileAccounts(tx, [books("second")], { forget: ["books"] }));
    expect(changed.refused).toEqual([]);
    expect(changed.warnings).toEqual([expect.stringContaining("were forgotten")]);
    // The report was about a record of the old account: no longer open on the status page.
    expect(await master.openReports("books")).toEqual([]);

    // Its first expense is entry 1 as well: a new item for the PSA, not a duplicate.
    expect(await inbox.storeBatch("books", "expenses", [entry(1, "new")], "c1")).toMatchObject({ imported: 1, duplicates: 0 });
    const feed = await inbox.feed({ after: 0, limit: 10, target: "books" });
    const expenses = feed.rows.filter((r) => r.stream === "expenses");
    expect(expenses.map((r) => [r.remoteId, JSON.parse(r.payload).text])).toEqual([
      ["entry:2026:1", "old"],
      ["entry:2026:1", "new"],
    ]);
    expect(new Set(expenses.map((r) => r.id)).size).toBe(2);
    // Pulled again from the new account: now it is a duplicate.
    expect(await inbox.storeBatch("books", "expenses", [entry(1, "new")], "c1")).toMatchObject({ imported: 0, duplicates: 1 });

    // INV-1 booked anew there (invoice 1 again): its payment status is open, and its change reaches the PSA.
    await storage.run(
      `INSERT INTO links (target, entity, key, remote_id, payload_hash, updated_at) VALUES ('books', 'invoice', 'INV-1', '1', 'h', 2)`,
    );
    expect(await inbox.openInvoices("books")).toEqual([{ key: "INV-1", remoteId: "1", status: null }]);
    expect(await inbox.storeBatch("books", "invoice-status", [paid(1)], null)).toMatchObject({ imported: 1 });
    const statuses = (await inbox.feed({ after: 0, limit: 10, target: "books" })).rows.filter((r) => r.stream === "invoice-status");
    // (A status change's remote id ends with the time of the change, `@<ms>`: left out here.)
    expect(statuses.map((r) => [r.remoteId.replace(/@\d+$/, ""), JSON.parse(r.payload).previousStatus])).toEqual([
      ["invoice:1#1:paid", "booked"],
      ["invoice:1#1:paid", "booked"],
    ]);
  });

  test("a pull run under way when the ids are forgotten stores nothing more: its next page would start the old account afresh", async () => {
    const s = await open(engine);
    const inbox = new Inbox(s.storage);
    await s.storage.transaction((tx) => reconcileAccounts(tx, [books("first", "eco")]));
    // The old account's feed: two pages of one entry each (the cursor is the number of pages read).
    const calls: (string | null)[] = [];
    const connector = pullOnlyConnector(async (_stream, cursor) => {
      calls.push(cursor);
      const n = Number(cursor ?? 0) + 1;
      return { items: [entry(n, "old")], cursor: String(n), more: n < 2 };
    });
    let forgotten: Promise<unknown> | null = null;
    // The next page's cursor is read once the change has committed (as it is when the change lands between pages).
    const cursorOf = inbox.cursor.bind(inbox);
    inbox.cursor = async (target, stream) => {
      await forgotten;
      return cursorOf(target, stream);
    };
    const result = await runPull(
      {
        db: s.db,
        storage: s.storage,
        inbox,
        dataDir: s.engine === "sqlite" ? s.dataDir : null,
        worker: s.workerOf(s.storage),
        connectors: new Map([["eco", connector]]),
        log: silentLogger,
        // After its first page, the target is pointed at another account, its ids forgotten (another worker, the admin API).
        onStored: () => {
          forgotten ??= s.storage.transaction((tx) => reconcileAccounts(tx, [books("second", "eco")], { forget: ["eco"] }));
        },
      },
      { target: "eco", stream: "expenses", timezone: "UTC" },
      "manual",
    );
    await forgotten;
    // The run read the old account from its start again (its cursor was forgotten), but stored none of it.
    expect(calls).toEqual([null, null]);
    expect(result).toMatchObject({ status: "failed", problem: { code: "interrupted" } });
    expect(await inbox.cursor("eco", "expenses")).toBeNull();
    const current = await s.storage.all(`SELECT remote_id FROM inbox WHERE target = 'eco' AND forgotten_at IS NULL`);
    expect(current).toEqual([]);
    const run = await s.storage.get<{ status: string; message: string }>(
      `SELECT status, error_message AS message FROM job_runs WHERE target = 'eco' ORDER BY id DESC LIMIT 1`,
    );
    expect(run).toEqual({ status: "interrupted", message: expect.stringContaining("another account") });
  });

  test("a run started with the configuration before the change (a worker that has not heard of it) stores nothing", async () => {
    const s = await open(engine);
    const inbox = new Inbox(s.storage);
    const old = books("first", "eco");
    await s.storage.transaction((tx) => reconcileAccounts(tx, [old]));
    await inbox.storeBatch("eco", "expenses", [entry(1, "old")], "1");
    // The change commits; this worker still runs the old configuration and its schedule starts a run.
    await s.storage.transaction((tx) => reconcileAccounts(tx, [books("second", "eco")], { forget: ["eco"] }));
    const connector = pullOnlyConnector(async (_stream, cursor) => {
      const n = Number(cursor ?? 0) + 1;
      return { items: [entry(n, "old")], cursor: String(n), more: n < 2 };
    });
    const result = await runPull(
      {
        db: s.db,
        storage: s.storage,
        inbox,
        dataDir: s.engine === "sqlite" ? s.dataDir : null,
        worker: s.workerOf(s.storage),
        connectors: new Map([["eco", connector]]),
        log: silentLogger,
        targets: [old],
      },
      { target: "eco", stream: "expenses", timezone: "UTC" },
      "schedule",
    );
    expect(result).toMatchObject({
      status: "failed",
      problem: { code: "interrupted", message: expect.stringContaining("another account") },
    });
    expect(await inbox.cursor("eco", "expenses")).toBeNull();
    expect(await s.storage.all(`SELECT remote_id FROM inbox WHERE target = 'eco' AND forgotten_at IS NULL`)).toEqual([]);
    // With the configuration as it is now, the run goes.
    const now = await runPull(
      {
        db: s.db,
        storage: s.storage,
        inbox,
        dataDir: s.engine === "sqlite" ? s.dataDir : null,
        worker: s.workerOf(s.storage),
        connectors: new Map([["eco", connector]]),
        log: silentLogger,
        targets: [books("second", "eco")],
      },
      { target: "eco", stream: "expenses", timezone: "UTC" },
      "schedule",
    );
    expect(now).toMatchObject({ status: "ok", imported: 2 });
  });

  test("a push under way when the ids are forgotten leaves no link of the old account: its delivery goes to the new one", async () => {
    const s = await open(engine);
    await s.storage.transaction((tx) => reconcileAccounts(tx, [books("first", "t")]));
    const outbox = new Outbox(s.storage, Date.now, 15 * 60_000, { leaseOwner: s.workerOf(s.storage) });
    // Customer 1 booked in the first agreement; customer 2's push to it under way (a worker with the old configuration).
    await enqueueCustomers(outbox, [1]);
    const [first] = await outbox.claim("t", 1, 60_000, () => true);
    await outbox.complete([{ delivery: first!, outcome: { kind: "done", remoteId: "OLD-1", payloadHash: "h" } }]);
    await enqueueCustomers(outbox, [2]);
    const [second] = await outbox.claim("t", 1, 60_000, () => true);
    expect(second?.key).toBe("2");

    await s.storage.transaction((tx) => reconcileAccounts(tx, [books("second", "t")], { forget: ["t"] }));
    // Its answer comes from the old account after the change: nothing of it is written.
    await outbox.complete([{ delivery: second!, outcome: { kind: "done", remoteId: "OLD-2", payloadHash: "h" } }]);
    expect(await s.storage.all(`SELECT key FROM links WHERE target = 't'`)).toEqual([]);
    const row = await s.storage.get<{ status: string; uncertain: number }>(`SELECT status, uncertain FROM deliveries WHERE key = '2'`);
    expect({ status: row!.status, uncertain: Number(row!.uncertain) }).toEqual({ status: "pending", uncertain: 1 });
    const attempts = await s.storage.all<{ outcome: string; message: string }>(
      `SELECT a.outcome, a.message FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.key = '2'`,
    );
    expect(attempts).toEqual([{ outcome: "interrupted", message: expect.stringContaining("another account") }]);
    // It goes again, to the account the target points at now.
    const [again] = await outbox.claim("t", 1, 60_000, () => true);
    expect(again).toMatchObject({ key: "2", uncertain: true, link: null });
  });
});
