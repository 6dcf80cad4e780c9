// A restore must never lose or double a record the agent pushed after the backup (agent/restore.ts, "Pushes the
// restored database has forgotten"): the restored database has forgotten those pushes, the PSA sends them again,
// and their new deliveries are looked up at the target before anything is created. Real agents against the
// real Uni Micro and eAccounting sandboxes over loopback; the rule itself on a real SQLite file.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { databasePath, startAgent, type RunningAgent } from "../agent/agent.ts";
import { openDatabase } from "../agent/db/index.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { demoConfig, startDemoTarget, type DemoTarget } from "../agent/demo.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { silentLogger } from "../agent/log.ts";
import { Outbox } from "../agent/outbox.ts";
import { mayHaveBeenPushed, RESTORE_LOOKUP_DAYS } from "../agent/restore.ts";
import { backupDatabase, beginRun, lastRestore, restoreDatabase } from "../agent/restore-sqlite.ts";
import { customerData, invoiceData, projectData } from "./eaccounting-fixtures.ts";
import { ev, startEaStack, type EaStack } from "./eaccounting-harness.ts";
import { customerEvent, invoiceEvent, tempDir, waitFor } from "./helpers.ts";

const DAY = 86_400_000;

describe("a credit draft pushed after the backup, its marking refused, then a restore (Uni Micro)", () => {
  let agent: RunningAgent | undefined;
  let target: DemoTarget | undefined;
  afterEach(async () => {
    await agent?.stop();
    await target?.stop();
    agent = target = undefined;
  });

  test("the resent credit note adopts its own unmarked draft and is booked once", async () => {
    target = await startDemoTarget("unimicro");
    const t = target;
    const dataDir = tempDir();
    const { config, targets } = demoConfig({ dataDir, port: 0, target: { ...t.target, requests_per_second: 0 } });
    Object.assign(config.dispatch, { retry_base_ms: 20, retry_max_ms: 200, idle_poll_ms: 50 });
    agent = await startAgent(config, targets, silentLogger);
    const sandbox = (path: string, init?: RequestInit) =>
      fetch(`${t.sandboxUrl}/__sandbox/${path}`, { ...init, headers: { "content-type": "application/json" } }).then((r) => r.json() as any);
    const invoices = async () => Object.values((await sandbox("state")).companies as Record<string, any>)[0].invoices as any[];
    const post = async (events: unknown[]) => {
      const res = await fetch(`${agent!.url}/api/v1/events`, {
        method: "POST",
        body: JSON.stringify(events),
        headers: { authorization: `Bearer ${agent!.apiToken}`, "content-type": "application/json" },
      });
      expect(res.status).toBe(202);
    };
    const delivery = (key: string) =>
      agent!.db.$client
        .query("SELECT status, uncertain, error_code AS code FROM deliveries WHERE key = ?1 ORDER BY id DESC")
        .get(key) as any;

    const customer = customerEvent(10501, {}, "c-10501");
    const original = invoiceEvent(80001, 10501);
    const credit = {
      ...invoiceEvent(80002, 10501),
      id: "cn-80002",
      type: "invoice.credited",
      data: { ...invoiceEvent(80002, 10501).data, creditedInvoiceNumber: 80001 },
    };
    await post([customer, original]);
    await waitFor("the invoice booked", async () => delivery("80001")?.status === "done");
    const backup = join(tempDir(), "backup.db");
    backupDatabase(databasePath(dataDir), backup);

    // After the backup: the credit draft is made, but every PUT that would mark it as kontobro's is refused.
    const originalId = (await invoices()).find((i) => i.InvoiceNumber === "80001").ID;
    await sandbox("faults", {
      method: "POST",
      body: JSON.stringify({ method: "PUT", path: `^/api/biz/invoices/(?!${originalId}$)\\d+$`, fault: "500", count: 10_000 }),
    });
    await post([credit]);
    await waitFor("an unmarked credit draft at the target, its marking refused", async () => {
      const drafts = (await invoices()).filter((i) => i.InvoiceType === 1 && i.StatusCode === 42001);
      const refused = (await sandbox("state")).requests.filter((r: any) => r.method === "PUT" && r.fault === "500");
      return drafts.length === 1 && !drafts[0].InternalNote && refused.length > 0;
    });
    await agent.stop();
    await sandbox("faults", { method: "DELETE" });

    restoreDatabase(dataDir, databasePath(dataDir), backup);
    agent = await startAgent(config, targets, silentLogger);
    expect(lastRestore(agent.db)?.lookupsUntil).toBeTruthy();
    // The PSA sends everything again: the customer and invoice are duplicates, the credit note is new here.
    await post([customer, original, credit]);
    const outcome = await waitFor("the credit note finished", () => {
      const d = delivery("80002");
      return d && (d.status === "done" || d.status === "needs_action") ? d : null;
    });
    expect(outcome).toMatchObject({ status: "done", code: null });
    const credits = (await invoices()).filter((i) => i.InvoiceType === 1);
    expect(credits).toHaveLength(1);
    expect(credits[0]).toMatchObject({ StatusCode: 42002, InvoiceNumber: "80002" });
  }, 30_000);
});

describe("an invoice pushed after the backup, then a restore (eAccounting)", () => {
  let s: EaStack | undefined;
  afterEach(async () => {
    await s?.stop();
    s = undefined;
  });

  test("the resent invoice finds its draft: one draft, not two; the status page says until when records are looked up", async () => {
    s = await startEaStack();
    const stack = s;
    await stack.send([ev("customer.upserted", customerData()), ev("project.upserted", projectData())]);
    await stack.waitDone(2);
    const backup = join(tempDir(), "backup.db");
    backupDatabase(databasePath(stack.dataDir), backup);
    const inv = ev("invoice.finalized", invoiceData());
    await stack.send([inv]);
    await stack.waitDone(3);
    expect((await stack.state()).drafts).toHaveLength(1);

    await stack.agent.stop();
    restoreDatabase(stack.dataDir, databasePath(stack.dataDir), backup);
    await stack.restart();
    await stack.send([inv]);
    await waitFor("the resent invoice done", async () => (await stack.deliveries("done")).some((d: any) => d.entity === "invoice"));
    const drafts = (await stack.state()).drafts;
    expect(drafts).toHaveLength(1);
    expect(drafts[0]).toMatchObject({ ElectronicReference: "kontobro:psa-inv-20001" });
    const page = await stack.page();
    expect(page).toContain("restore was detected");
    expect(page).toContain(`Until ${lastRestore(stack.agent.db)!.lookupsUntil}`);
  }, 30_000);
});

describe("which new deliveries a restore puts in doubt", () => {
  test("a record with no link at the target, within the window or dated before it closes; never a linked one", async () => {
    const dataDir = tempDir();
    const path = databasePath(dataDir);
    let db = openDatabase(path);
    db.$client.run(`INSERT INTO settings (name, value) VALUES ('installation_id', 'test')`);
    const backup = join(tempDir(), "b.db");
    backupDatabase(path, backup);
    db.$client.close();
    restoreDatabase(dataDir, path, backup);
    db = openDatabase(path);
    const restoredAt = new Date("2026-11-20T10:00:00Z");
    beginRun(db, dataDir, restoredAt);
    // A record the restored database had pushed: it has a link at t1 (none at t2).
    db.$client.run(
      `INSERT INTO links (target, entity, key, remote_id, payload_hash, updated_at) VALUES ('t1', 'customer', '1', 'r1', 'h', 0)`,
    );

    let clock = restoredAt.getTime() + DAY;
    const intake = new IntakeWriter(
      new Outbox(sqliteRunner(db.$client), () => clock),
      () => ["t1", "t2"],
      () => {},
      () => clock,
    );
    const send = async (...events: unknown[]) => {
      const parsed = parseEvents(events);
      if (!parsed.ok) throw new Error(JSON.stringify(parsed));
      await intake.submit(parsed.events);
    };
    const doubt = (key: string) =>
      Object.fromEntries(
        (
          db.$client.query("SELECT target, uncertain FROM deliveries WHERE entity = 'customer' AND key = ?1 ORDER BY id DESC").all(key) as {
            target: string;
            uncertain: number;
          }[]
        )
          .reverse()
          .map((r) => [r.target, r.uncertain]),
      );

    await send(customerEvent(1), customerEvent(2));
    expect(doubt("1")).toEqual({ t1: 0, t2: 1 });
    expect(doubt("2")).toEqual({ t1: 1, t2: 1 });

    // After the window: only a change that says it happened before the window closed.
    clock = restoredAt.getTime() + (RESTORE_LOOKUP_DAYS + 1) * DAY;
    const dated = (n: number, at: number) => ({ ...customerEvent(n), occurredAt: new Date(at).toISOString() });
    await send(customerEvent(3), dated(4, restoredAt.getTime() - DAY), dated(5, clock - 1000));
    expect(doubt("3")).toEqual({ t1: 0, t2: 0 });
    expect(doubt("4")).toEqual({ t1: 1, t2: 1 });
    expect(doubt("5")).toEqual({ t1: 0, t2: 0 });
    db.$client.close();
  });

  test("the rule: nothing without a restore; inside the window everything; after it, what is dated inside it", () => {
    const doubt = { since: 1_000, until: 1_000 + RESTORE_LOOKUP_DAYS * DAY };
    expect(mayHaveBeenPushed(null, null, 0)).toBe(false);
    expect(mayHaveBeenPushed(doubt, null, doubt.until - 1)).toBe(true);
    expect(mayHaveBeenPushed(doubt, null, doubt.until)).toBe(false);
    expect(mayHaveBeenPushed(doubt, doubt.until - 1, doubt.until + DAY)).toBe(true);
    expect(mayHaveBeenPushed(doubt, doubt.until, doubt.until + DAY)).toBe(false);
  });
});
