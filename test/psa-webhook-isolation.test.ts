// Issue 10 item 8: the PSA webhook never blocks on one item. A real HTTP server on loopback stands in for the
// PSA; one item's id makes it answer 400 or 500, or never answer. The other items arrive, the bad one is
// retried alone with growing delay, and stop() returns promptly even while a request hangs.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { databasePath } from "../agent/agent.ts";
import { openDatabase, type Db } from "../agent/db/index.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { masterItem } from "../agent/master/sync.ts";
import { Inbox } from "../agent/pulls/inbox.ts";
import { silentLogger } from "../agent/log.ts";
import { PsaDeliverer, type PsaWebhookOptions } from "../agent/pulls/psa-webhook.ts";
import { tempDir, waitFor } from "./helpers.ts";
import { day, seedPsa, startPullStack } from "./pull-harness.ts";

type Mode = "400" | "500" | "hang" | "ok";
interface Call {
  ids: string[];
  status: Mode;
  attemptsBefore?: number;
  delayBefore?: number;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function freshInbox(now?: () => number): Promise<{ db: Db; inbox: Inbox }> {
  const db = openDatabase(join(tempDir("kontobro-psa-webhook-"), "k.db"));
  db.$client.run(
    `INSERT INTO records (entity, key, payload, version, last_event_seq, updated_at) VALUES ('project', '4711', '{}', 1, 0, 0)`,
  );
  const inbox = new Inbox(sqliteRunner(db.$client), now);
  await inbox.storeBatch(
    "eco",
    "expenses",
    ["a", "b", "c", "d", "e"].map((id) => ({
      remoteId: id,
      type: "expense.posted",
      data: { description: id },
      requires: { entity: "project" as const, key: "4711" },
    })),
    null,
  );
  return { db, inbox };
}

/**
 * The PSA's endpoint: 200 for a request without the bad item; for one with it, what `modeFor` says (given how
 * often the item failed before). Each call records the bad item's attempts and scheduled delay at that moment.
 */
function startPsa(db: Db, bad: string, modeFor: (attemptsBefore: number) => Mode) {
  const calls: Call[] = [];
  const hung: (() => void)[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    idleTimeout: 0,
    async fetch(req) {
      const ids: string[] = JSON.parse(await req.text()).items.map((i: any) => i.remoteId);
      if (!ids.includes(bad)) {
        calls.push({ ids, status: "ok" });
        return new Response("ok");
      }
      const row = db.$client
        .query(`SELECT attempts, next_attempt_at - updated_at AS delay FROM inbox WHERE remote_id = ?1`)
        .get(bad) as any;
      const mode = modeFor(row.attempts);
      calls.push({ ids, status: mode, attemptsBefore: row.attempts, delayBefore: row.delay });
      if (mode === "ok") return new Response("ok");
      if (mode === "hang") return new Promise<Response>((resolve) => hung.push(() => resolve(new Response("too late"))));
      return new Response(`refused ${bad}`, { status: Number(mode) });
    },
  });
  cleanups.push(() => {
    hung.forEach((h) => h());
    server.stop(true);
  });
  return {
    url: `http://127.0.0.1:${server.port}/hook`,
    calls,
    accepted: () => calls.filter((c) => c.status === "ok").flatMap((c) => c.ids),
  };
}

const options = (url: string, over: Partial<PsaWebhookOptions> = {}): PsaWebhookOptions => ({
  url,
  secret: "psa-secret-0123456789abcdef",
  batchSize: 10,
  maxBodyBytes: 1_000_000,
  timeoutMs: 5000,
  retryBaseMs: 40,
  retryMaxMs: 10_000,
  pollMs: 50,
  userAgent: "kontobro-test",
  ...over,
});

function startDeliverer(inbox: Inbox, opts: PsaWebhookOptions, now?: () => number): PsaDeliverer {
  const d = new PsaDeliverer(inbox, opts, silentLogger, now);
  d.start();
  cleanups.push(() => d.stop());
  return d;
}

const rowOf = (db: Db, remoteId: string) =>
  db.$client.query(`SELECT state, attempts, error_code AS code, error_hint AS hint FROM inbox WHERE remote_id = ?1`).get(remoteId) as any;

describe("one bad item never holds back the others", () => {
  for (const [mode, code] of [
    ["500", "psa_http_500"],
    ["hang", "psa_timeout"],
    ["400", "psa_http_400"],
  ] as const) {
    test(`the PSA answers ${mode === "hang" ? "nothing (timeout)" : mode} for one item: the 4 good ones arrive once, the bad one backs off alone with growing delay`, async () => {
      const { db, inbox } = await freshInbox();
      const psa = startPsa(db, "c", () => mode);
      const deliverer = startDeliverer(inbox, options(psa.url, { timeoutMs: mode === "hang" ? 300 : 5000 }));

      await waitFor("the four good items at the PSA", () => psa.accepted().length === 4);
      await waitFor("the bad item tried five times", () => rowOf(db, "c").attempts >= 5, 30_000);
      await deliverer.stop();

      expect([...psa.accepted()].sort()).toEqual(["a", "b", "d", "e"]); // each exactly once
      const badCalls = psa.calls.filter((c) => c.ids.includes("c"));
      // After the first failure the bad item is only ever sent alone ...
      expect(badCalls.slice(1).every((c) => c.ids.length === 1)).toBe(true);
      // ... and waits longer each time (the delay kontobro scheduled before each retry).
      const delays = badCalls.slice(2).map((c) => c.delayBefore!);
      expect(delays.length).toBeGreaterThanOrEqual(3);
      for (let i = 1; i < delays.length; i++) expect(delays[i]!).toBeGreaterThanOrEqual(delays[i - 1]!);
      expect(delays.at(-1)!).toBeGreaterThan(delays[0]!);
      expect(rowOf(db, "c")).toMatchObject({ state: "new", code });
      for (const id of ["a", "b", "d", "e"]) expect(rowOf(db, id)).toMatchObject({ state: "delivered", code: null });
    }, 40_000);
  }
});

describe("stopping", () => {
  test("stop() returns promptly while a request hangs in the middle of one-by-one isolation; nothing is lost", async () => {
    const { db, inbox } = await freshInbox();
    // The batch is refused at once (so isolation starts), then the bad item's own request hangs for good.
    const psa = startPsa(db, "c", (attemptsBefore) => (attemptsBefore === 0 ? "500" : "hang"));
    const deliverer = startDeliverer(inbox, options(psa.url, { timeoutMs: 120_000 }));
    await waitFor("the bad item's own request hanging", () => psa.calls.some((c) => c.status === "hang"));

    const outcome = await Promise.race([deliverer.stop().then(() => "stopped"), Bun.sleep(10_000).then(() => "still waiting for the PSA")]);
    expect(outcome).toBe("stopped");
    const calls = psa.calls.length;
    // The aborted request is not the PSA's failure: the item keeps its attempts and its place.
    expect(rowOf(db, "c")).toMatchObject({ state: "new", attempts: 1 });
    await Bun.sleep(100);
    expect(psa.calls.length).toBe(calls); // the loop is over: nothing more was sent

    // After a restart (the PSA healthy again) everything not yet taken arrives.
    const healthy = startPsa(db, "c", () => "ok");
    startDeliverer(inbox, options(healthy.url));
    await waitFor(
      "all items delivered",
      () => (db.$client.query(`SELECT count(*) AS n FROM inbox WHERE state = 'delivered'`).get() as any).n === 5,
    );
    expect([...psa.accepted(), ...healthy.accepted()].sort()).toEqual(["a", "b", "c", "d", "e"]);
  });
});

describe("stopping the agent", () => {
  test("the agent stops within its grace while the PSA holds a webhook request open", async () => {
    let held = 0;
    const release: (() => void)[] = [];
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      idleTimeout: 0,
      fetch: () => {
        held++;
        return new Promise<Response>((r) => release.push(() => r(new Response("late"))));
      },
    });
    cleanups.push(() => {
      release.forEach((r) => r());
      server.stop(true);
    });
    const stack = await startPullStack({ psa: { webhook_url: `http://127.0.0.1:${server.port}/hook`, timeout_ms: 120_000 } });
    cleanups.push(() => stack.stop());
    await seedPsa(stack, [4711]);
    await stack.book(
      [1, 2, 3].map((n) => ({
        date: day(0),
        supplierNumber: 1,
        text: `E${n}`,
        lines: [{ account: 2800, amount: 100 * n, vatCode: "I25", projectNumber: 4711, costTypeNumber: 1 }],
      })),
    );
    expect(await stack.runNow("expenses")).toMatchObject({ imported: 3 });
    await waitFor("a webhook request held open by the PSA", () => held > 0);

    const outcome = await Promise.race([
      stack.agent.stop().then(() => "stopped"),
      Bun.sleep(10_000).then(() => "still waiting for the PSA"),
    ]);
    expect(outcome).toBe("stopped");
    const db = openDatabase(databasePath(stack.dataDir));
    cleanups.push(() => db.$client.close());
    const rows = db.$client.query(`SELECT state, attempts FROM inbox`).all();
    expect(rows).toEqual(Array(3).fill({ state: "new", attempts: 0 })); // kept for the next start, not counted as failed
  });
});

describe("a PSA that is down", () => {
  test("retries of failed items pause after consecutive failures (one request per pause); new items still go out; the first success resumes", async () => {
    let t = 1_000_000;
    const now = () => t; // the clock moves only when the test says so
    const { db, inbox } = await freshInbox(now);
    let down = true;
    const calls: string[][] = [];
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        calls.push(JSON.parse(await req.text()).items.map((i: any) => i.remoteId));
        return new Response(down ? "down" : "ok", { status: down ? 503 : 200 });
      },
    });
    cleanups.push(() => server.stop(true));
    const deliverer = startDeliverer(
      inbox,
      options(`http://127.0.0.1:${server.port}/hook`, { retryBaseMs: 1000, retryMaxMs: 60_000 }),
      now,
    );

    await waitFor("the first batch", () => calls.length === 1);
    expect(calls[0]).toEqual(["a", "b", "c", "d", "e"]);
    // The server saw the request; wait until the deliverer has stored its failure before the clock moves on
    // (otherwise, on a busy machine, the retry is scheduled from the new time and never falls due).
    const failed = () => (db.$client.query(`SELECT count(*) AS n FROM inbox WHERE attempts > 0`).get() as { n: number }).n;
    await waitFor("the first failure stored", () => failed() === 5);
    t += 3_600_000;
    deliverer.notify(); // every item is due again
    await waitFor("the first retry, alone", () => calls.length === 2);
    await Bun.sleep(300);
    // Two failed requests in a row: retries pause, so nothing more goes out while the clock stands.
    expect(calls.slice(1)).toEqual([["a"]]);
    // A new item is not held back by the pause.
    await inbox.storeBatch(
      "eco",
      "expenses",
      [{ remoteId: "f", type: "expense.posted", data: {}, requires: { entity: "project", key: "4711" } }],
      null,
    );
    deliverer.notify();
    await waitFor("the new item tried", () => calls.length === 3);
    await Bun.sleep(300);
    expect(calls.slice(2)).toEqual([["f"]]);
    await waitFor("the new item's failure stored", () => failed() === 6);
    // The PSA is back: when the pause is over, one success ends it and everything flows, each item once.
    down = false;
    t += 3_600_000;
    deliverer.notify();
    await waitFor(
      "all delivered",
      () => (db.$client.query(`SELECT count(*) AS n FROM inbox WHERE state = 'delivered'`).get() as any).n === 6,
    );
    expect(calls.slice(3).every((c) => c.length === 1)).toBe(true);
    expect(calls.slice(3).flat().sort()).toEqual(["a", "b", "c", "d", "e", "f"]);
  });
});

describe("the state of one record reaches the PSA in order", () => {
  test("an invoice's 'paid' waits while its older 'sent' is being retried (refused, PSA down): the PSA never hears sent after paid", async () => {
    let t = 1_000_000;
    const now = () => t; // the clock moves only when the test says so
    const db = openDatabase(join(tempDir("kontobro-psa-webhook-"), "k.db"));
    const inbox = new Inbox(sqliteRunner(db.$client), now);
    const status = (value: string) => ({
      remoteId: "invoice:1001",
      type: value === "paid" ? "invoice.paid" : "invoice.status_changed",
      data: { invoiceNumber: "1001", status: value },
      status: { entity: "invoice" as const, key: "1001", value, final: value === "paid", baseline: "unpaid" },
    });
    const expense = { remoteId: "entry:1", type: "expense.posted", data: { status: "cost" } };
    let refuseSent = true;
    const heard: string[] = [];
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        const statuses: string[] = JSON.parse(await req.text()).items.map((i: any) => i.data.status);
        if (refuseSent && statuses.includes("sent")) return new Response("not now", { status: 503 });
        heard.push(...statuses);
        return new Response("ok");
      },
    });
    cleanups.push(() => server.stop(true));
    await inbox.storeBatch("eco", "payments", [status("sent")], null);
    const deliverer = startDeliverer(
      inbox,
      options(`http://127.0.0.1:${server.port}/hook`, { retryBaseMs: 1000, retryMaxMs: 60_000 }),
      now,
    );
    const attempts = () => (db.$client.query(`SELECT max(attempts) AS n FROM inbox`).get() as { n: number }).n;
    await waitFor("'sent' refused once", () => attempts() === 1);
    // Paid meanwhile, and an expense: the expense is another record's and goes out; 'paid' waits for 'sent'.
    await inbox.storeBatch("eco", "payments", [status("paid")], null);
    await inbox.storeBatch("eco", "expenses", [expense], null);
    deliverer.notify();
    await waitFor("the expense delivered", () => heard.includes("cost"));
    await Bun.sleep(300);
    expect(heard).toEqual(["cost"]);
    // The PSA takes 'sent' now: it is retried when due, and 'paid' follows it.
    refuseSent = false;
    t += 3_600_000;
    deliverer.notify();
    await waitFor("both statuses delivered", () => heard.length === 3);
    expect(heard).toEqual(["cost", "sent", "paid"]);
  });
});

describe("a master record's versions reach the PSA in order", () => {
  test("customer 7001's later version waits while its older one is being retried: the PSA never ends with the older name", async () => {
    let t = 1_000_000;
    const now = () => t;
    const db = openDatabase(join(tempDir("kontobro-psa-webhook-"), "k.db"));
    const inbox = new Inbox(sqliteRunner(db.$client), now);
    const version = (name: string, modifiedAt: string) =>
      masterItem({ entity: "customer", key: "7001", remoteId: "c-7001", data: { number: "7001", name } as any, modifiedAt });
    let refuseOld = true;
    const heard: string[] = [];
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        const names: string[] = JSON.parse(await req.text()).items.map((i: any) => i.data.name);
        if (refuseOld && names.includes("Alfa Bygg")) return new Response("not now", { status: 503 });
        heard.push(...names);
        return new Response("ok");
      },
    });
    cleanups.push(() => server.stop(true));
    await inbox.storeBatch("ea", "customers", [version("Alfa Bygg", "2026-11-20T10:00:00Z")], null);
    const deliverer = startDeliverer(
      inbox,
      options(`http://127.0.0.1:${server.port}/hook`, { retryBaseMs: 1000, retryMaxMs: 60_000 }),
      now,
    );
    const attempts = () => (db.$client.query(`SELECT max(attempts) AS n FROM inbox`).get() as { n: number }).n;
    await waitFor("the first version refused once", () => attempts() === 1);
    await inbox.storeBatch("ea", "customers", [version("Alfa Bygg AB", "2026-11-20T11:00:00Z")], null);
    deliverer.notify();
    await Bun.sleep(500);
    expect(heard).toEqual([]);
    refuseOld = false;
    t += 3_600_000;
    deliverer.notify();
    await waitFor("both versions delivered", () => heard.length === 2);
    expect(heard).toEqual(["Alfa Bygg", "Alfa Bygg AB"]);
  });
});
