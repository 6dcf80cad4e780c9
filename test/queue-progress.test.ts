// A target's queue catching up after a burst (agent/queue-progress.ts): the state from counts (pure), the counts
// from a real SQLite file with the outbox's indexes, and what `kontobro status` and the status page read.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { openDatabase, type Db } from "../agent/db/index.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { silentLogger } from "../agent/log.ts";
import {
  BURST_ENDS_BELOW,
  BURST_STARTS_AT,
  countsSince,
  describeQueueProgress,
  isCatchingUp,
  nextQueueProgress,
  QUEUE_COUNTS,
  QueueProgressWatch,
  queueTotal,
  readQueueProgress,
  type QueueProgress,
} from "../agent/queue-progress.ts";
import { tempDir } from "./helpers.ts";

/** Counts as the watch makes them (since: what delivered and needing action are counted from). */
const seen = (at: number, open: number, delivered = 0, needsAction = 0, since: number | null = null) => ({
  at,
  open,
  since,
  delivered,
  needsAction,
});

describe("nextQueueProgress", () => {
  test("a few open deliveries are no burst; many start one, from the last count that found the queue quiet", () => {
    expect(countsSince(null, 1000, BURST_STARTS_AT - 1, 0)).toBeNull();
    expect(nextQueueProgress("eco", null, seen(1000, BURST_STARTS_AT - 1))).toBeNull();
    // Quiet at 0; at 1000 there are 500 open and 20 were delivered in between: they belong to this burst.
    expect(countsSince(null, 1000, 500, 0)).toBe(0);
    const started = nextQueueProgress("eco", null, seen(1000, 500, 20, 0, 0))!;
    expect(started).toMatchObject({ target: "eco", since: 0, delivered: 20, open: 500, finishedAt: null });
    expect(isCatchingUp(started)).toBe(true);
    expect(queueTotal(started)).toBe(520);
    expect(describeQueueProgress(started, 1000)).toBe("catching up: 20 of 520 delivered (3%) · 20/s · about 25 s left");
  });

  test("goes on with the counts, and is over when few are open; then a new burst starts afresh", () => {
    let p: QueueProgress | null = nextQueueProgress("eco", null, seen(0, 500, 0, 0, 0));
    expect(countsSince(p, 2000, 300, 1500)).toBe(0);
    p = nextQueueProgress("eco", p, seen(2000, 300, 200, 0, 0));
    expect(p).toMatchObject({ delivered: 200, open: 300, finishedAt: null });
    expect(describeQueueProgress(p!, 2000)).toBe("catching up: 200 of 500 delivered (40%) · 100/s · about 3 s left");
    p = nextQueueProgress("eco", p, seen(4000, 0, 497, 3, 0));
    expect(p!.finishedAt).toBe(4000);
    expect(describeQueueProgress(p!, 5000)).toBe("caught up: 497 delivered in 4 s, 3 need action");
    // Once over, counts below the start leave it as it was (nothing to write).
    expect(countsSince(p, 6000, 5, 5000)).toBeNull();
    expect(nextQueueProgress("eco", p, seen(6000, 5))).toBe(p);
    expect(countsSince(p, 8000, 1000, 6000)).toBe(6000);
    const again = nextQueueProgress("eco", p, seen(8000, 1000, 0, 0, 6000))!;
    expect(again).toMatchObject({ since: 6000, delivered: 0, open: 1000, finishedAt: null });
  });

  test("the end allows a trickle of new events to stay open; those last few are followed until none is", () => {
    const p = nextQueueProgress("eco", null, seen(0, 500, 0, 0, 0));
    const over = nextQueueProgress("eco", p, seen(1000, BURST_ENDS_BELOW - 1, 491, 0, 0))!;
    expect(over.finishedAt).toBe(1000);
    expect(countsSince(over, 2000, 0, 1000)).toBe(0);
    expect(describeQueueProgress(over, 1000)).toBe(`caught up: 491 delivered in 1 s, ${BURST_ENDS_BELOW - 1} still open`);
    const all = nextQueueProgress("eco", over, seen(2000, 0, 500, 0, 0))!;
    expect(describeQueueProgress(all, 2000)).toBe("caught up: 500 delivered in 1 s");
    expect(countsSince(all, 3000, 3, 2000)).toBeNull();
    expect(nextQueueProgress("eco", all, seen(3000, 3))).toBe(all);
    // Not for ever: once it is no longer shown, a stuck few are left to the target's card.
    expect(countsSince(over, 1000 + 11 * 60_000, 3, 1000)).toBeNull();
  });

  test("counts the agent stopped refreshing say so", () => {
    const p = nextQueueProgress("eco", null, seen(1000, 500, 0, 0, 1000))!;
    expect(describeQueueProgress(p, 10_000)).not.toContain("is the agent running");
    expect(describeQueueProgress(p, 120_000)).toContain("(counted at 1970-01-01 00:00:01 UTC: is the agent running?)");
  });
});

function outbox(): Db {
  return openDatabase(join(tempDir("kontobro-queue-progress-"), "kontobro.db"));
}

/** Deliveries as the outbox writes them (one event is enough: the counts only read deliveries). */
function queue(db: Db, target: string, n: number, now: number): void {
  const c = db.$client;
  const seq = Number(
    c.run(
      `INSERT INTO events (event_id, type, entity, key, payload, received_at) VALUES (?1, 'customer.upserted', 'customer', '1', '{}', ?2)`,
      [`e-${target}-${now}-${Math.random()}`, now],
    ).lastInsertRowid,
  );
  const insert = c.prepare(
    `INSERT INTO deliveries (event_seq, target, entity, key, status, next_attempt_at, created_at, updated_at) VALUES (?1, ?2, 'customer', ?3, 'pending', ?4, ?4, ?4)`,
  );
  c.transaction(() => {
    for (let i = 0; i < n; i++) insert.run(seq, target, `${now}-${i}`, now);
  })();
}

const deliver = (db: Db, target: string, n: number, at: number) =>
  db.$client.run(
    `UPDATE deliveries SET status = 'done', done_at = ?2, updated_at = ?2 WHERE id IN (SELECT id FROM deliveries WHERE target = ?1 AND status = 'pending' ORDER BY id LIMIT ?3)`,
    [target, at, n],
  );

describe("QueueProgressWatch on a real outbox", () => {
  test("a burst from the first count to caught up, kept in settings for the status page and the CLI", async () => {
    const db = outbox();
    const r = sqliteRunner(db.$client);
    let now = 1_000_000;
    const watch = new QueueProgressWatch(r, ["eco", "quiet"], silentLogger, () => now);
    queue(db, "quiet", 3, now);
    queue(db, "eco", 400, now);
    // Delivered before the burst is seen: not part of it.
    deliver(db, "eco", 100, now - 1);
    await watch.tick();
    expect(await readQueueProgress(r, "quiet", now)).toBeNull();
    expect(await readQueueProgress(r, "eco", now)).toMatchObject({ since: now, delivered: 0, open: 300, finishedAt: null });

    now += 2000;
    deliver(db, "eco", 120, now);
    db.$client.run(
      `UPDATE deliveries SET status = 'needs_action', updated_at = ?1 WHERE id = (SELECT max(id) FROM deliveries WHERE target = 'eco')`,
      [now],
    );
    await watch.tick();
    const mid = (await readQueueProgress(r, "eco", now))!;
    expect(mid).toMatchObject({ delivered: 120, needsAction: 1, open: 179 });
    expect(describeQueueProgress(mid, now)).toBe("catching up: 120 of 300 delivered (40%), 1 need action · 60/s · about 3 s left");

    now += 3000;
    deliver(db, "eco", 179, now);
    await watch.tick();
    const over = (await readQueueProgress(r, "eco", now))!;
    expect(over.finishedAt).toBe(now);
    expect(describeQueueProgress(over, now)).toBe("caught up: 299 delivered in 5 s, 1 need action");
    // A new watch (the agent restarted) does not start the finished burst again, and it is shown for a while only.
    const later = new QueueProgressWatch(r, ["eco"], silentLogger, () => now + 1000);
    await later.tick();
    expect((await readQueueProgress(r, "eco", now + 1000))!.finishedAt).toBe(now);
    expect(await readQueueProgress(r, "eco", now + 11 * 60_000)).toBeNull();
    db.$client.close();
  });

  test("what was delivered between the last quiet count and the first count of the burst belongs to it", async () => {
    const db = outbox();
    const r = sqliteRunner(db.$client);
    let now = 3_000_000;
    const watch = new QueueProgressWatch(r, ["eco"], silentLogger, () => now);
    now += 1000;
    await watch.tick(); // quiet
    now += 1000;
    queue(db, "eco", 300, now - 900);
    deliver(db, "eco", 50, now - 500);
    await watch.tick();
    expect(await readQueueProgress(r, "eco", now)).toMatchObject({ since: 3_001_000, delivered: 50, open: 250 });
    expect(describeQueueProgress((await readQueueProgress(r, "eco", now))!, now)).toBe(
      "catching up: 50 of 300 delivered (16%) · 50/s · about 5 s left",
    );
    db.$client.close();
  });

  test("a burst under way when the agent stopped goes on after a restart, from when it started", async () => {
    const db = outbox();
    const r = sqliteRunner(db.$client);
    let now = 5_000_000;
    queue(db, "eco", 200, now);
    await new QueueProgressWatch(r, ["eco"], silentLogger, () => now).tick();
    now += 60_000;
    deliver(db, "eco", 50, now);
    await new QueueProgressWatch(r, ["eco"], silentLogger, () => now).tick();
    expect(await readQueueProgress(r, "eco", now)).toMatchObject({ since: 5_000_000, delivered: 50, open: 150 });
    db.$client.close();
  });

  test("shared by workers (a hosted tenant): each goes on from the stored progress, counts only targets it pushed to, and leaves a fresh count alone", async () => {
    const db = outbox();
    const r = sqliteRunner(db.$client);
    let now = 7_000_000;
    const pushed = { a: new Set<string>(), b: new Set<string>() };
    const worker = (name: "a" | "b") =>
      new QueueProgressWatch(r, ["eco"], silentLogger, () => now, { shared: true, active: (t) => pushed[name].delete(t) });
    const [a, b] = [worker("a"), worker("b")];
    queue(db, "eco", 300, now);
    // Nobody pushed: no count, nothing stored (an idle tenant costs no statement).
    await a.tick();
    await b.tick();
    expect(await readQueueProgress(r, "eco", now)).toBeNull();
    now += 1000;
    pushed.a.add("eco");
    deliver(db, "eco", 30, now);
    await a.tick();
    expect(await readQueueProgress(r, "eco", now)).toMatchObject({ since: 7_000_000, delivered: 30, open: 270 });
    // B pushed too, but A counted 200 ms ago: B leaves the row as it is.
    now += 200;
    pushed.b.add("eco");
    deliver(db, "eco", 10, now);
    await b.tick();
    expect(await readQueueProgress(r, "eco", now)).toMatchObject({ delivered: 30, updatedAt: 7_001_000 });
    // Later only B pushes: it goes on with A's burst (same start, A's samples kept).
    now += 1800;
    pushed.b.add("eco");
    deliver(db, "eco", 60, now);
    await b.tick();
    const p = (await readQueueProgress(r, "eco", now))!;
    expect(p).toMatchObject({ since: 7_000_000, delivered: 100, open: 200, updatedAt: 7_003_000 });
    expect(p.samples.map((x) => x.done)).toEqual([0, 30, 100]);
    // A burst under way is counted whether or not this worker pushed: A, which pushed nothing since, ends it.
    now += 1000;
    deliver(db, "eco", 200, now);
    await a.tick();
    expect((await readQueueProgress(r, "eco", now))!.finishedAt).toBe(now);
    db.$client.close();
  });

  test("each count is a range of an outbox index, never a scan of the table", () => {
    const db = outbox();
    for (const q of Object.values(QUEUE_COUNTS)) {
      const plan = (db.$client.query(`EXPLAIN QUERY PLAN ${q}`).all(...(q.includes("?2") ? ["eco", 0] : ["eco"])) as { detail: string }[])
        .map((r) => r.detail)
        .join("\n");
      expect(plan).toMatch(/^SEARCH deliveries USING (COVERING )?INDEX deliveries_\w+ \(target=\? AND/);
      expect(plan).not.toContain("SCAN");
    }
    db.$client.close();
  });
});
