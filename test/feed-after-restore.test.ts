// Issue 10, item 2 (feed side): after a restore, the same entry pulled again reaches the PSA under the id
// it already knows, and a new entry never takes an id or a position the PSA has seen, even when the whole
// folder (marks file included) was restored and the restore cannot be detected.
import { expect, test } from "bun:test";
import { cpSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { databasePath } from "../agent/agent.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { Inbox } from "../agent/pulls/inbox.ts";
import { backupDatabase, lastRestore, restoreDatabase } from "../agent/restore-sqlite.ts";
import { startStack } from "./e2e-harness.ts";
import { tempDir } from "./helpers.ts";

const AUTH = { authorization: "Bearer test-token-0123456789" };

test("an expense the PSA already took before the restore is not handed to it again under another id", async () => {
  const stack = await startStack({ economic: { paused: true } });
  const s = stack;
  const feed = async (after: number) =>
    (await (await fetch(`${s.agent.url}/api/v1/inbox?after=${after}`, { headers: AUTH })).json()) as any;
  const pull = (remoteId: string, cursor: string) =>
    new Inbox(sqliteRunner(s.agent.db.$client)).storeBatch(
      "eco",
      "expenses",
      [{ remoteId, type: "expense.posted", data: { entry: remoteId, amount: 1250 } }],
      cursor,
    );
  try {
    await pull("entry:2026:1", "c1");
    const backup = join(tempDir(), "nightly.db");
    backupDatabase(databasePath(s.dataDir), backup);
    await pull("entry:2026:2", "c2"); // posted after the backup
    const first = await feed(0);
    const took = first.items.map((i: any) => ({ id: i.id, remoteId: i.remoteId }));
    await feed(Number(first.next)); // the PSA acknowledges both

    await s.agent.stop();
    restoreDatabase(s.dataDir, databasePath(s.dataDir), backup);
    await s.restart();
    expect(lastRestore(s.agent.db)).not.toBeNull();
    // The restored watermark is c1, so the next pull brings entry 2 again.
    expect(await new Inbox(sqliteRunner(s.agent.db.$client)).cursor("eco", "expenses")).toBe("c1");
    await pull("entry:2026:2", "c2");
    const after = await feed(Number(first.next)).then((f) => (f.error ? feed(0) : f)); // as the 409 hint says
    const handedAgain = after.items.filter((i: any) => !took.some((t: any) => t.id === i.id));
    expect(handedAgain.map((i: any) => `${i.remoteId} as id ${i.id}`)).toEqual([]);
  } finally {
    await stack.stop();
  }
}, 30_000);

test("a folder copied back (not detectable): no feed id reused, nothing acknowledged unseen", async () => {
  const stack = await startStack({ economic: { paused: true } });
  const s = stack;
  const feed = async (after: number) =>
    (await (await fetch(`${s.agent.url}/api/v1/inbox?after=${after}`, { headers: AUTH })).json()) as any;
  const pulled = (remoteId: string) =>
    new Inbox(sqliteRunner(s.agent.db.$client)).storeBatch(
      "eco",
      "expenses",
      [{ remoteId, type: "expense.posted", data: { remoteId } }],
      null,
    );
  try {
    await pulled("r1");
    await pulled("r2");
    await s.agent.stop();
    const copy = tempDir("kontobro-folder-copy-");
    cpSync(s.dataDir, copy, { recursive: true }); // nightly file-level backup of the stopped agent's folder

    await s.restart();
    await pulled("r3");
    const seen = await feed(0); // the PSA reads everything: ids 1..3, cursor 3
    const seenIds = seen.items.map((i: any) => i.id);
    const cursor = Number(seen.next);
    expect(seen.items.map((i: any) => i.remoteId)).toEqual(["r1", "r2", "r3"]);

    await s.agent.stop();
    for (const f of readdirSync(s.dataDir)) rmSync(join(s.dataDir, f), { recursive: true, force: true });
    cpSync(copy, s.dataDir, { recursive: true }); // the folder is restored
    await s.restart();

    await pulled("r4"); // a new expense after the restore
    const r4 = s.agent.db.$client.query("SELECT id, seq FROM inbox WHERE remote_id = 'r4'").get() as { id: number; seq: number };
    const next = await feed(cursor); // the PSA continues from its cursor
    expect({
      r4IdIsNew: !seenIds.includes(r4.id),
      r4InFeed: next.items.map((i: any) => i.remoteId),
    }).toEqual({ r4IdIsNew: true, r4InFeed: ["r4"] });
  } finally {
    await stack.stop();
  }
}, 30_000);
