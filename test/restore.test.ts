// Issue 10, item 2: restoring a backup never repeats an idempotency key for other content, is detected
// at start, and turns every open delivery into "look it up first". Real agent, real e-conomic sandbox.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { databasePath } from "../agent/agent.ts";
import { openDatabase } from "../agent/db/index.ts";
import { createLogger } from "../agent/log.ts";
import { backupDatabase, HIGHWATER_FILE, lastRestore, restoreDatabase, restoreReason } from "../agent/restore-sqlite.ts";
import { main } from "../agent/main.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, tempDir, waitFor } from "./helpers.ts";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const lines = (text: string, unitPrice: number) => ({ lines: [{ text, quantity: 1, unitPrice, kind: "hours" }] });

describe("restoring a backup", () => {
  test("a new invoice after the restore is booked with its own customer and lines, and a resent one is not booked twice", async () => {
    stack = await startStack();
    const s = stack;
    const booked = async (n: number) => (await s.sandboxState()).booked.filter((b: any) => b.bookedInvoiceNumber === n);
    await s.post([customerEvent(1), customerEvent(2), invoiceEvent(1001, 1, undefined, lines("First", 100_000))]);
    await s.waitDelivered(3);

    const backup = join(tempDir(), "backup.db");
    backupDatabase(databasePath(s.dataDir), backup); // while the agent runs
    await s.post([invoiceEvent(1002, 2, undefined, lines("Second", 222_200))]);
    await s.waitDelivered(4);

    await s.agent.stop();
    restoreDatabase(s.dataDir, databasePath(s.dataDir), backup);
    await s.restart();
    expect(lastRestore(s.agent.db)).toMatchObject({ reason: expect.stringContaining("backup taken at") });

    // The restored database hands out the delivery id invoice 1002 had; its key must not repeat.
    await s.post([invoiceEvent(1003, 1, undefined, lines("Third", 333_300))]);
    // The PSA sends again what the restore lost.
    await s.post([invoiceEvent(1002, 2, undefined, lines("Second", 222_200), "i-1002-again")]);
    await s.waitDelivered(5);
    const third = await booked(1003);
    expect(third).toHaveLength(1);
    expect(third[0]).toMatchObject({ customer: { customerNumber: 1 }, references: { other: "PSA-INV-1003" }, netAmount: 3333 });
    expect(await booked(1002)).toHaveLength(1);
    expect((await s.sandboxState()).drafts).toHaveLength(0);
    const statusPage = await (await fetch(`${s.agent.url}/`)).text();
    expect(statusPage).toContain("restore was detected");
  });

  test("open deliveries of a restored database are looked up before any create", async () => {
    stack = await startStack({ economic: { paused: true } });
    const s = stack;
    await s.post([customerEvent(7)]);
    const backup = join(tempDir(), "b.db");
    backupDatabase(databasePath(s.dataDir), backup);
    await s.agent.stop();
    restoreDatabase(s.dataDir, databasePath(s.dataDir), backup);
    await s.restart();
    const open = s.agent.db.$client.query("SELECT uncertain FROM deliveries WHERE status = 'pending'").all() as { uncertain: number }[];
    expect(open).toEqual([{ uncertain: 1 }]);
    expect(lastRestore(s.agent.db)!.openDeliveries).toBe(1);
  });

  test("a database copied back by hand (no backup marker) is noticed by the high-water marks", () => {
    const db = { installationId: "a", generation: 3, maxEventSeq: 10, maxDeliveryId: 12, maxInboxId: 0, maxInboxSeq: 0, backupOf: null };
    expect(restoreReason(db, { ...db, generation: 5 })).toContain("generation 3 < 5");
    expect(restoreReason(db, { ...db, maxDeliveryId: 40 })).toContain("maxDeliveryId 12 < 40");
    expect(restoreReason(db, { ...db })).toBeNull();
    expect(restoreReason(db, null)).toBeNull();
    expect(restoreReason(db, { ...db, installationId: "b" })).toContain("another installation");
  });
});

describe("kontobro backup / restore", () => {
  test("backup works while the agent runs; restore refuses while it runs, then keeps the replaced database", async () => {
    stack = await startStack({ economic: { paused: true } });
    const s = stack;
    const toml = join(tempDir(), "kontobro.toml");
    await Bun.write(toml, `[agent]\ndata_dir = "${s.dataDir}"\n`);
    const file = join(tempDir(), "nightly.db");
    expect(await main(["backup", file, "--config", toml])).toBe(0);
    expect(await main(["backup", file, "--config", toml])).toBe(1); // never overwrites
    expect(await main(["restore", file, "--config", toml])).toBe(1); // the agent runs
    expect(existsSync(`${databasePath(s.dataDir)}`)).toBe(true);
    await s.agent.stop();
    expect(await main(["restore", file, "--config", toml])).toBe(0);
    const replaced = [...new Bun.Glob("kontobro.db.replaced-*").scanSync(s.dataDir)].filter(
      (f) => !f.endsWith("-wal") && !f.endsWith("-shm"),
    );
    expect(replaced).toHaveLength(1);
    const db = openDatabase(databasePath(s.dataDir));
    expect(db.$client.query("SELECT value FROM settings WHERE name = 'backup_of'").get()).toBeTruthy();
    db.$client.close();
    expect(await main(["restore", join(tempDir(), "missing.db"), "--config", toml])).toBe(1);
    await s.restart();
  });
});

describe("the high-water marks beside the database", () => {
  // Written every 5 s; a write that failed was logged at each, for as long as it failed, and did not say what it
  // costs or what to do.
  test("a failing write is logged once, saying what it costs and what to do, and its recovery once", async () => {
    const logged: { level: string; msg: string; hint?: string }[] = [];
    stack = await startStack({ log: createLogger("info", {}, (l) => logged.push(JSON.parse(l))) });
    const about = () => logged.filter((l) => l.msg.includes(HIGHWATER_FILE));
    // Its temporary file's name taken by a directory: the write fails (EISDIR), whoever kontobro runs as.
    const tmp = join(stack.dataDir, `${HIGHWATER_FILE}.tmp`);
    mkdirSync(tmp);
    await waitFor("the failed write logged", () => about().length > 0, 8_000);
    await Bun.sleep(5_500); // the next write fails too
    expect(about()).toHaveLength(1);
    expect(about()[0]!.level).toBe("warn");
    expect(about()[0]!.msg).toContain("a restore of an older copy of the database would not be noticed at the next start");
    expect(about()[0]!.hint).toContain("free space");
    rmdirSync(tmp);
    await waitFor("written again", () => about().length === 2, 8_000);
    expect(about()[1]).toMatchObject({ level: "info", msg: `${HIGHWATER_FILE} is written again` });
  }, 30_000);
});
