// Issue 10 item 9: the feed shows each item once. A PSA that follows the README (read the feed after its
// cursor, dedupe on id) receives every deliverable item exactly once, including an expense that waited as
// "ignored: project unknown" until the PSA sent its project. Ignored items are listed separately.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { PullItem } from "../connectors/contract.ts";
import { openDatabase } from "../agent/db/index.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { Inbox } from "../agent/pulls/inbox.ts";
import { projectEvent, tempDir } from "./helpers.ts";
import { day, seedPsa, startPullStack, type PullStack } from "./pull-harness.ts";

let stack: PullStack;
afterEach(async () => {
  await stack?.stop();
});

const expense = (text: string, project: number) => ({
  date: day(0),
  supplierNumber: 1,
  text,
  lines: [{ account: 2800, amount: 125, vatCode: "I25", projectNumber: project, costTypeNumber: 1 }],
});

/** The PSA as the README advises: pages through the feed from its cursor and keeps the first copy of each id. */
function psaReader(stack: PullStack) {
  let cursor = "0";
  const received = new Map<number, any>();
  const copies: number[] = [];
  return {
    received,
    copies,
    get cursor() {
      return cursor;
    },
    async read(): Promise<void> {
      for (;;) {
        const { status, body } = await stack.api(`/api/v1/inbox?after=${cursor}&limit=2`);
        expect(status).toBe(200);
        for (const item of body.items) {
          copies.push(item.id);
          if (!received.has(item.id)) received.set(item.id, item); // dedupe on id
        }
        cursor = body.next;
        if (!body.more) return;
      }
    },
  };
}

describe("the feed shows each item once", () => {
  test("an expense on a project the PSA sends later reaches a deduping PSA once, as a usable item", async () => {
    stack = await startPullStack({ psa: { webhook_url: undefined } });
    await seedPsa(stack, [4711]);
    await stack.book([expense("E1", 4711), expense("Waits for 9999", 9999), expense("E2", 4711)]);
    expect(await stack.runNow("expenses")).toMatchObject({ imported: 2, ignored: 1 });

    const psa = psaReader(stack);
    await psa.read();
    expect([...psa.received.values()].map((i) => i.data.description)).toEqual(["E1", "E2"]);
    // The waiting one is listed on its own, with what it needs; reading that list acknowledges nothing.
    const ignored = (await stack.api("/api/v1/inbox/ignored")).body;
    expect(ignored.items.map((i: any) => [i.data.description, i.state, i.requires])).toEqual([
      ["Waits for 9999", "ignored_unknown_project", { entity: "project", key: "9999" }],
    ]);
    expect((await stack.api("/api/v1/inbox/ignored")).body.items).toHaveLength(1);
    const idle = (await stack.api(`/api/v1/inbox?after=${psa.cursor}`)).body;
    expect(idle).toEqual({ items: [], next: psa.cursor, more: false }); // the cursor is stable

    // The PSA sends project 9999; the next pull releases the expense into the feed, after the cursor.
    await stack.sendPsa([projectEvent(9999, 10042)]);
    expect(await stack.runNow("expenses")).toMatchObject({ imported: 1, ignored: 0 });
    await psa.read();
    await psa.read(); // reading on past it acknowledges it
    const got = [...psa.received.values()];
    expect(got.map((i) => i.data.description)).toEqual(["E1", "E2", "Waits for 9999"]);
    expect(got.every((i) => i.state === "new")).toBe(true); // the copy the PSA kept is the usable one
    expect(new Set(psa.copies).size).toBe(psa.copies.length); // and no id ever came twice
    expect(got.find((i) => i.data.projectNumber === "9999").id).toBe(ignored.items[0].id); // same id as listed before
    expect((await stack.api("/api/v1/inbox/ignored")).body.items).toEqual([]);
    const states = stack.agent.db.$client.query(`SELECT state, delivered_via AS via FROM inbox ORDER BY seq`).all();
    expect(states).toEqual(Array(3).fill({ state: "delivered", via: "feed" }));
  });
});

describe("inbox feed and ignored list", () => {
  test("the feed holds only deliverable items; the ignored list pages on its own and acknowledges nothing", async () => {
    const db = openDatabase(join(tempDir("kontobro-feed-"), "k.db"));
    db.$client.run(
      `INSERT INTO records (entity, key, payload, version, last_event_seq, updated_at) VALUES ('project', '4711', '{}', 1, 0, 0)`,
    );
    const inbox = new Inbox(sqliteRunner(db.$client));
    const exp = (id: string, project: string): PullItem => ({
      remoteId: id,
      type: "expense.posted",
      data: { id },
      requires: { entity: "project", key: project },
    });
    await inbox.storeBatch("eco", "expenses", [exp("a", "4711"), exp("x", "9999"), exp("y", "9999"), exp("b", "4711")], null);

    const feed = await inbox.feed({ after: 0, limit: 10 });
    expect(feed.rows.map((r) => r.remoteId)).toEqual(["a", "b"]);
    const p1 = await inbox.ignored({ after: 0, limit: 1 });
    expect([p1.rows.map((r) => r.remoteId), p1.more]).toEqual([["x"], true]);
    expect((await inbox.ignored({ after: p1.rows[0]!.seq, limit: 1 })).rows.map((r) => r.remoteId)).toEqual(["y"]);
    const cursor = feed.rows.at(-1)!.seq;
    expect(await inbox.acknowledge(cursor)).toBe(2);
    expect((await inbox.ignored({ after: 0, limit: 10 })).rows.map((r) => r.state)).toEqual([
      "ignored_unknown_project",
      "ignored_unknown_project",
    ]);

    db.$client.run(
      `INSERT INTO records (entity, key, payload, version, last_event_seq, updated_at) VALUES ('project', '9999', '{}', 1, 0, 0)`,
    );
    await inbox.storeBatch("eco", "expenses", [exp("y", "9999"), exp("x", "9999")], null);
    const next = (await inbox.feed({ after: cursor, limit: 10 })).rows;
    expect(next.map((r) => [r.remoteId, r.state])).toEqual([
      ["y", "new"],
      ["x", "new"],
    ]); // in the order they became deliverable
    expect(next.every((r) => r.seq > cursor)).toBe(true);
    expect((await inbox.ignored({ after: 0, limit: 10 })).rows).toEqual([]);
  });
});
