// Pure parts of the pull side (e-conomic mapping, cursor, webhook hints, config) and the inbox on a
// real SQLite file and on a real PostgreSQL server (dedupe, state changes, cursor written only with its batch).
import { describe, expect, test } from "bun:test";
import { type ConfigError, validateConfig } from "../agent/config.ts";
import { FINAL_RECHECK_MS, Inbox } from "../agent/pulls/inbox.ts";
import { buildBatch, signatureHeader } from "../agent/pulls/psa-webhook.ts";
import type { PullItem } from "../connectors/contract.ts";
import { EconomicConfig } from "../connectors/economic/config.ts";
import {
  economicWebhookStreams,
  entriesFilter,
  expenseAmounts,
  expenseItem,
  isExpense,
  parseExpenseCursor,
  paymentItem,
  paymentStatus,
  windowStart,
  type Entry,
} from "../connectors/economic/pull-map.ts";
import { workerEngines } from "./engines.ts";

const cfg = EconomicConfig.parse({
  app_secret_token: "a",
  agreement_grant_token: "b",
  expenses: { accounts: "2800, 2810", cost_types: [1, 2], activity: "Udlæg", billable: false },
});
const entry = (n: number, extra: Partial<Entry> = {}): Entry => ({
  entryNumber: n,
  voucherNumber: 10,
  date: "2026-11-20",
  account: { accountNumber: 2800 },
  amount: 100,
  ...extra,
});
const vat = new Map([["I25", { rate: 0.25, accountNumber: 7300 }]]);

describe("e-conomic expenses mapping", () => {
  test("config: comma lists (blank = all), defaults, and a plain message for a bad list", () => {
    expect(cfg.expenses).toMatchObject({
      accounts: [2800, 2810],
      cost_types: [1, 2],
      lookback_days: 2,
      activity: "Udlæg",
      billable: false,
    });
    expect(EconomicConfig.parse({ app_secret_token: "a", agreement_grant_token: "b" }).expenses.accounts).toEqual([]);
    expect(
      EconomicConfig.parse({ app_secret_token: "a", agreement_grant_token: "b", expenses: { accounts: " " } }).expenses.accounts,
    ).toEqual([]);
    const bad = EconomicConfig.safeParse({ app_secret_token: "a", agreement_grant_token: "b", expenses: { accounts: "2800, drift" } });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]!.message).toContain("comma-separated list of account numbers");
  });

  test("only entries on a project, on a configured account and cost type", () => {
    const e = cfg.expenses;
    expect(isExpense(entry(1, { project: { projectNumber: 4711 }, costType: { costTypeNumber: 1 } }), e)).toBe(true);
    expect(isExpense(entry(1, { costType: { costTypeNumber: 1 } }), e)).toBe(false); // no project
    expect(
      isExpense(entry(1, { project: { projectNumber: 4711 }, account: { accountNumber: 2820 }, costType: { costTypeNumber: 1 } }), e),
    ).toBe(false);
    expect(isExpense(entry(1, { project: { projectNumber: 4711 }, costType: { costTypeNumber: 3 } }), e)).toBe(false);
    expect(
      isExpense(entry(1, { project: { projectNumber: 4711 }, account: { accountNumber: 9999 } }), { ...e, accounts: [], cost_types: [] }),
    ).toBe(true);
    expect(entriesFilter("2026-11-18", 42, [1, 2])).toBe(
      "date$gte:2026-11-18$and:entryNumber$gt:42$and:(entryType$eq:supplierInvoice$or:entryType$eq:financeVoucher)$and:costType.costTypeNumber$in:[1,2]",
    );
  });

  test("amount including VAT: the voucher's own VAT for one cost line, the rate for several", () => {
    const cost = entry(1, { amount: 99.99, vatAccount: { vatCode: "I25" } });
    const voucher = [
      cost,
      entry(2, { account: { accountNumber: 7300 }, amount: 25.01 }),
      entry(3, { account: { accountNumber: 6800 }, amount: -125, supplier: { supplierNumber: 1 } }),
    ];
    expect(expenseAmounts(cost, voucher, vat)).toEqual({ net: 9999, vat: 2501, gross: 12500 });
    const second = entry(4, { amount: 40, vatAccount: { vatCode: "I25" } });
    expect(expenseAmounts(second, [...voucher, second], vat)).toEqual({ net: 4000, vat: 1000, gross: 5000 });
    expect(expenseAmounts(entry(5, { amount: 10 }), [], vat)).toEqual({ net: 1000, vat: 0, gross: 1000 });
  });

  test("an expense item carries what the PSA needs and requires its project", () => {
    const cost = entry(7, {
      project: { projectNumber: 4711 },
      costType: { costTypeNumber: 2 },
      text: "Cement",
      currency: "DKK",
      vatAccount: { vatCode: "I25" },
    });
    const supplier = entry(8, {
      account: { accountNumber: 6800 },
      amount: -125,
      supplier: { supplierNumber: 3 },
      supplierInvoiceNumber: "F-9",
      dueDate: "2026-12-01",
    });
    const item = expenseItem("2026", cost, [cost, entry(9, { account: { accountNumber: 7300 }, amount: 25 }), supplier], {
      cfg: cfg.expenses,
      vat,
      supplierName: "Kontorland",
    });
    expect(item).toMatchObject({ remoteId: "entry:2026:7", type: "expense.posted", requires: { entity: "project", key: "4711" } });
    expect(item.data).toMatchObject({
      projectNumber: "4711",
      activity: "Udlæg",
      billable: false,
      description: "Cement",
      amount: 12500,
      amountExclVat: 10000,
      vatAmount: 2500,
      invoiceDate: "2026-11-20",
      dueDate: "2026-12-01",
      supplier: { number: 3, name: "Kontorland" },
      supplierInvoiceNumber: "F-9",
      voucherNumber: 10,
      costTypeNumber: 2,
    });
  });

  test("the window: lookback from the last day fully covered, never into the future", () => {
    expect(windowStart(undefined, "2026-11-21", 2)).toBe("2026-11-19");
    expect(windowStart("2026-11-14", "2026-11-21", 2)).toBe("2026-11-12"); // down for a week: the week is caught up
    expect(windowStart("2026-11-25", "2026-11-21", 2)).toBe("2026-11-19");
    expect(windowStart("2026-01-01", "2026-01-01", 0)).toBe("2026-01-01");
    expect(parseExpenseCursor(null)).toEqual({ v: 1 });
    expect(() => parseExpenseCursor("{broken")).toThrow("cannot be read");
  });

  test("payment status and webhook hints", () => {
    expect(paymentStatus({ remainder: 0 }, false, false)).toBe("paid");
    expect(paymentStatus({ remainder: 10 }, false, true)).toBe("overdue");
    expect(paymentStatus({ remainder: 10, sent: "x" }, false, false)).toBe("sent");
    expect(paymentStatus({ remainder: 10 }, false, false)).toBe("unpaid");
    // Paid in part (short by a bank fee, or a first instalment): partly paid, overdue or not; overpaid is paid.
    expect(paymentStatus({ grossAmount: 125, remainder: 0.5, sent: "x" }, false, true)).toBe("partially_paid");
    expect(paymentStatus({ grossAmount: 125, remainder: 125, sent: "x" }, false, true)).toBe("overdue");
    expect(paymentStatus({ grossAmount: 125, remainder: -5 }, false, false)).toBe("paid");
    expect(paymentItem("20001", { bookedInvoiceNumber: 20001, grossAmount: 125, remainder: 25.5 }, "partially_paid", true)).toMatchObject({
      type: "invoice.status_changed",
      data: { status: "partially_paid", amount: 12500, paidAmount: 9950, remainder: 2550, overdue: true },
      status: { value: "partially_paid", detail: "2550", final: false, baseline: "unpaid" },
    });
    expect(paymentItem("20001", { bookedInvoiceNumber: 20001, grossAmount: 125, remainder: 0 }, "paid", false)).toMatchObject({
      type: "invoice.paid",
      status: { value: "paid", final: true, baseline: "unpaid" },
    });
    expect(economicWebhookStreams({ type: "invoice", invoice: "20001" })).toEqual(["payments"]);
    expect(economicWebhookStreams({ type: "daybook", daybook: "1", from: "5", to: "9" })).toEqual(["expenses"]);
    expect(economicWebhookStreams({ eventtype: "INVOICE_BOOKED" })).toEqual(["payments"]);
    expect(economicWebhookStreams({ type: "customer", old: "1", new: "2" })).toEqual([]);
    expect(economicWebhookStreams({ daybookno: "1" })).toEqual(["expenses"]);
    expect(economicWebhookStreams({})).toEqual(["expenses", "payments"]);
  });
});

describe("pull configuration", () => {
  const base = { targets: [{ name: "eco", kind: "economic", app_secret_token: "a", agreement_grant_token: "b" }] };
  const problems = (raw: unknown) => {
    try {
      validateConfig(raw, {});
      return [];
    } catch (e) {
      return (e as ConfigError).problems;
    }
  };

  test("defaults: expenses daily at 06:00 and payments at 23:00, Europe/Copenhagen", () => {
    const { targets, config } = validateConfig(base, {});
    expect(targets[0]!.pulls).toEqual([
      { stream: "expenses", cron: "0 6 * * *", timezone: "Europe/Copenhagen" },
      { stream: "payments", cron: "0 23 * * *", timezone: "Europe/Copenhagen" },
    ]);
    expect(config.psa.webhook_url).toBeUndefined();
    expect(config.pulls.webhook_debounce_ms).toBe(5000);
  });

  test("one line per problem, naming the key", () => {
    const t = (pulls: unknown) => ({ targets: [{ ...base.targets[0], pulls }] });
    expect(problems(t({ expenses: { cron: "0 25 * * *", timezone: "Mars/Base" } }))).toEqual([
      expect.stringMatching(/^targets\[0\]\.pulls\.expenses\.cron: "0 25 \* \* \*" is not a valid cron expression/),
      expect.stringMatching(/^targets\[0\]\.pulls\.expenses\.timezone: "Mars\/Base" is not a time zone/),
    ]);
    expect(problems(t({ expenses: { cron: "0 6 * * *" } }))).toEqual([
      expect.stringContaining("targets[0].pulls.expenses.timezone: is required"),
    ]);
    expect(problems(t({ invoices: { cron: "0 6 * * *", timezone: "UTC" } }))).toEqual([
      expect.stringContaining('has no stream "invoices"; use expenses or payments'),
    ]);
    expect(problems({ ...base, psa: { webhook_url: "https://psa.example.com/h" } })).toEqual([
      "psa.webhook_secret: is required when webhook_url is set (the PSA checks the signature with it)",
    ]);
    const off = validateConfig(t({ payments: { cron: "0 21 * * *", timezone: "Europe/Oslo", enabled: false } }), {});
    expect(off.targets[0]!.pulls![1]).toEqual({ stream: "payments", cron: null, timezone: "Europe/Oslo" });
  });
});

const { engines, open } = workerEngines("the inbox tests");
const knownProject = (key: string) =>
  `INSERT INTO records (entity, key, payload, version, last_event_seq, updated_at) VALUES ('project', '${key}', '{}', 1, 0, 0)`;

describe.each(engines)("inbox (%s)", (engine) => {
  /** A status change's remote id without the time of the change (AgentInbox: `…@<ms>`). */
  const withoutTime = (remoteId: string) => remoteId.replace(/@\d+$/, "");
  const fresh = async () => {
    const { storage } = await open(engine);
    await storage.run(knownProject("4711"));
    return { storage, inbox: new Inbox(storage) };
  };
  const exp = (id: string, project = "4711"): PullItem => ({
    remoteId: id,
    type: "expense.posted",
    data: { id },
    requires: { entity: "project", key: project },
  });

  test("stored once per remote id; unknown projects kept as ignored, released when the project is known", async () => {
    const { storage, inbox } = await fresh();
    expect(await inbox.storeBatch("eco", "expenses", [exp("a"), exp("b", "9999")], "c1")).toEqual({
      fetched: 2,
      imported: 1,
      duplicates: 0,
      ignored: 1,
    });
    // Seen again: "a" is a duplicate; "b" is still on a project the PSA does not know.
    expect(await inbox.storeBatch("eco", "expenses", [exp("a"), exp("b", "9999")], "c2")).toEqual({
      fetched: 2,
      imported: 0,
      duplicates: 1,
      ignored: 1,
    });
    await storage.run(knownProject("9999"));
    expect(await inbox.storeBatch("eco", "expenses", [exp("b", "9999")], null)).toEqual({
      fetched: 1,
      imported: 1,
      duplicates: 0,
      ignored: 0,
    });
    expect(await inbox.cursor("eco", "expenses")).toBe("c2");
    const { rows } = await inbox.feed({ after: 0, limit: 10 });
    // The released item moved to the end of the feed, so a reader past it sees it again.
    expect(rows.map((r) => [r.remoteId, r.state])).toEqual([
      ["a", "new"],
      ["b", "new"],
    ]);
    // Positions grow with the clock and past every earlier one (the release took a new one).
    expect(rows[1]!.seq).toBeGreaterThan(rows[0]!.seq + 1);
    expect((await inbox.storeBatch("other", "expenses", [exp("a")], null)).imported).toBe(1); // unique per target
  });

  test("status items are stored only on change, from the baseline", async () => {
    const { inbox } = await fresh();
    const st = (value: string): PullItem => ({
      remoteId: "invoice:7",
      type: value === "paid" ? "invoice.paid" : "invoice.status_changed",
      data: { status: value },
      status: { entity: "invoice", key: "7", value, baseline: "unpaid", final: value === "paid" },
    });
    expect((await inbox.storeBatch("eco", "payments", [st("unpaid")], null)).imported).toBe(0);
    expect((await inbox.storeBatch("eco", "payments", [st("sent")], null)).imported).toBe(1);
    expect((await inbox.storeBatch("eco", "payments", [st("sent")], null)).duplicates).toBe(1);
    expect((await inbox.storeBatch("eco", "payments", [st("paid")], null)).imported).toBe(1);
    const rows = (await inbox.feed({ after: 0, limit: 10 })).rows;
    expect(rows.map((r) => [withoutTime(r.remoteId), r.type, JSON.parse(r.payload).previousStatus])).toEqual([
      ["invoice:7#1:sent", "invoice.status_changed", "unpaid"],
      ["invoice:7#2:paid", "invoice.paid", "sent"],
    ]);
    expect(rows[0]!.remoteId).toMatch(/^invoice:7#1:sent@\d+$/);
  });

  test("a status's detail (a partly paid invoice's remainder) makes each change its own item, under its own id", async () => {
    const { inbox } = await fresh();
    const st = (value: string, detail?: string): PullItem => ({
      remoteId: "invoice:7",
      type: value === "paid" ? "invoice.paid" : "invoice.status_changed",
      data: { status: value },
      status: { entity: "invoice", key: "7", value, baseline: "unpaid", final: value === "paid", ...(detail ? { detail } : {}) },
    });
    expect((await inbox.storeBatch("eco", "payments", [st("partially_paid", "40000")], null)).imported).toBe(1);
    expect((await inbox.storeBatch("eco", "payments", [st("partially_paid", "40000")], null)).duplicates).toBe(1);
    expect((await inbox.storeBatch("eco", "payments", [st("partially_paid", "25000")], null)).imported).toBe(1); // paid more
    expect((await inbox.storeBatch("eco", "payments", [st("partially_paid", "40000")], null)).imported).toBe(1); // one reversed
    expect((await inbox.storeBatch("eco", "payments", [st("paid")], null)).imported).toBe(1);
    const rows = (await inbox.feed({ after: 0, limit: 10 })).rows;
    expect(rows.map((r) => [withoutTime(r.remoteId), JSON.parse(r.payload).previousStatus])).toEqual([
      ["invoice:7#1:partially_paid:40000", "unpaid"],
      ["invoice:7#2:partially_paid:25000", "partially_paid"],
      ["invoice:7#3:partially_paid:40000", "partially_paid"],
      ["invoice:7#4:paid", "partially_paid"],
    ]);
  });

  test("after a restore rolled the changes back, a change never gets the id of one the PSA took before it", async () => {
    const { storage } = await fresh();
    let clock = 1_000_000;
    const inbox = new Inbox(storage, () => clock);
    const st = (value: string, detail?: string): PullItem => ({
      remoteId: "invoice:7",
      type: "invoice.status_changed",
      data: { status: value },
      status: { entity: "invoice", key: "7", value, baseline: "unpaid", ...(detail ? { detail } : {}) },
    });
    await inbox.storeBatch("eco", "payments", [st("sent")], null);
    // The backup is taken here.
    const backup = {
      status: await storage.all("SELECT value, changes FROM pull_status"),
      lastItem: (await storage.get<{ id: number }>("SELECT max(id) AS id FROM inbox"))!.id,
    };
    clock += 60_000;
    await inbox.storeBatch("eco", "payments", [st("partially_paid", "60000")], null);
    clock += 60_000;
    await inbox.storeBatch("eco", "payments", [st("partially_paid", "30000")], null);
    const taken = (await inbox.feed({ after: 0, limit: 10 })).rows.map((r) => r.id);
    expect(taken).toHaveLength(3);
    // The backup restored (the status and the feed as they were), then the bank returns the second part: 60000 again.
    await storage.run("DELETE FROM inbox WHERE id > ?1", backup.lastItem);
    await storage.run(
      "UPDATE pull_status SET value = ?1, changes = ?2",
      (backup.status[0] as any).value,
      (backup.status[0] as any).changes,
    );
    clock += 60_000;
    expect((await inbox.storeBatch("eco", "payments", [st("partially_paid", "60000")], null)).imported).toBe(1);
    const rows = (await inbox.feed({ after: 0, limit: 10 })).rows;
    expect(rows.map((r) => withoutTime(r.remoteId))).toEqual(["invoice:7#1:sent", "invoice:7#2:partially_paid:60000"]);
    expect(taken).not.toContain(rows[1]!.id);
  });

  test("an invoice seen paid is asked about for FINAL_RECHECK_MS after it became paid, however often it is seen paid meanwhile", async () => {
    const { storage } = await fresh();
    let clock = 1_000_000;
    const inbox = new Inbox(storage, () => clock);
    await storage.run(
      `INSERT INTO links (target, entity, key, remote_id, payload_hash, updated_at) VALUES ('eco', 'invoice', '7', '20007', 'h', 1)`,
    );
    const st = (value: string): PullItem => ({
      remoteId: "invoice:20007",
      type: value === "paid" ? "invoice.paid" : "invoice.status_changed",
      data: { status: value },
      status: { entity: "invoice", key: "7", value, baseline: "unpaid", final: value === "paid" },
    });
    expect(await inbox.openInvoices("eco")).toEqual([{ key: "7", remoteId: "20007", status: null }]);
    await inbox.storeBatch("eco", "payments", [st("paid")], null);
    clock += FINAL_RECHECK_MS - 1;
    expect((await inbox.storeBatch("eco", "payments", [st("paid")], null)).duplicates).toBe(1); // seen paid again
    expect(await inbox.openInvoices("eco")).toEqual([{ key: "7", remoteId: "20007", status: "paid" }]);
    clock += 2;
    expect(await inbox.openInvoices("eco")).toEqual([]);
  });

  test("a crash while storing a page stores nothing of it, cursor included", async () => {
    const { inbox } = await fresh();
    await inbox.storeBatch("eco", "expenses", [exp("a")], "before");
    const poison: PullItem = { remoteId: "p", type: "expense.posted", data: { n: 1n } }; // JSON.stringify throws mid-transaction
    await expect(inbox.storeBatch("eco", "expenses", [exp("b"), poison], "after")).rejects.toThrow();
    expect(await inbox.cursor("eco", "expenses")).toBe("before");
    expect((await inbox.feed({ after: 0, limit: 10 })).rows.map((r) => r.remoteId)).toEqual(["a"]);
  });

  test("a run's page is stored only while its run is running and the cursor is still the one it was pulled from", async () => {
    const { inbox } = await fresh();
    const running = { cursorWas: null, stillRunning: async () => true };
    expect(await inbox.storeBatch("eco", "expenses", [exp("a")], "c1", undefined, running)).toMatchObject({ imported: 1 });
    // Another run wrote a cursor first (there is one now), or moved it past the one this page was pulled from.
    await expect(inbox.storeBatch("eco", "expenses", [exp("b")], "c2", undefined, running)).rejects.toThrow(
      /not stored: the cursor moved from null while the page was fetched/,
    );
    await expect(inbox.storeBatch("eco", "expenses", [exp("b")], "c2", undefined, { ...running, cursorWas: "c0" })).rejects.toThrow(
      /not stored: the cursor moved from "c0"/,
    );
    // The run was ended by another worker's recovery: nothing, even with the right cursor.
    await expect(
      inbox.storeBatch("eco", "expenses", [exp("b")], "c2", undefined, { cursorWas: "c1", stillRunning: async () => false }),
    ).rejects.toThrow(/not stored: its run was ended by another worker/);
    expect(await inbox.cursor("eco", "expenses")).toBe("c1");
    expect((await inbox.feed({ after: 0, limit: 10 })).rows.map((r) => r.remoteId)).toEqual(["a"]);
    expect(await inbox.storeBatch("eco", "expenses", [exp("b")], "c2", undefined, { ...running, cursorWas: "c1" })).toMatchObject({
      imported: 1,
    });
    expect(await inbox.cursor("eco", "expenses")).toBe("c2");
  });

  test("the feed pages with a stable cursor; reading past items acknowledges them", async () => {
    const { inbox } = await fresh();
    await inbox.storeBatch(
      "eco",
      "expenses",
      ["a", "b", "c", "d", "e"].map((x) => exp(x)),
      null,
    );
    const p1 = await inbox.feed({ after: 0, limit: 2 });
    expect([p1.rows.map((r) => r.remoteId), p1.more]).toEqual([["a", "b"], true]);
    expect(await inbox.acknowledge(p1.rows[1]!.seq)).toBe(2);
    const p2 = await inbox.feed({ after: p1.rows[1]!.seq, limit: 2 });
    expect(p2.rows.map((r) => r.remoteId)).toEqual(["c", "d"]);
    expect((await inbox.undelivered(10)).map((r) => r.remoteId)).toEqual(["c", "d", "e"]);
  });

  test("webhook batches: signed over timestamp and body, cut to the size limit", async () => {
    const { inbox } = await fresh();
    await inbox.storeBatch("eco", "expenses", [exp("a"), exp("b"), exp("c")], null);
    const rows = await inbox.undelivered(10);
    const all = buildBatch(rows, () => undefined, 1_000_000);
    expect(all.ids).toHaveLength(3);
    expect(JSON.parse(all.body).items.map((i: any) => i.remoteId)).toEqual(["a", "b", "c"]);
    expect(buildBatch(rows, () => undefined, 10).ids).toHaveLength(1); // always at least one
    const header = signatureHeader("secret-secret-secret", 1700000000, '{"items":[]}');
    expect(header).toBe(
      "t=1700000000,v1=" + new Bun.CryptoHasher("sha256", "secret-secret-secret").update('1700000000.{"items":[]}').digest("hex"),
    );
  });
});
