// A configuration change that points a target at another account takes back the target's leases (agent/target-
// account.ts, PUSHES_TO_OLD), and a dispatcher round on another worker writes its pushes' outcomes on the same
// deliveries: both hold some of those rows while asking for others, in their own order, and PostgreSQL aborted one
// of them as a deadlock (it was retried; nothing was lost, but a round or a change failed for it). The change now
// takes the target's lock first (lockTargets, as every round does before it touches a delivery), so it waits for the
// round to commit and then finds the outcomes written. Real PostgreSQL: two workers' connections, one tenant.
import { describe, expect, test } from "bun:test";
import { SQL } from "bun";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { Outbox } from "../agent/outbox.ts";
import { reconcileAccounts } from "../agent/target-account.ts";
import { enqueueCustomers } from "./dispatch-fixture.ts";
import { workerEngines } from "./engines.ts";

const { engines, open } = workerEngines("config-change-lock-order");

const books = (token: string) => ({ name: "t", kind: "economic", settings: { agreement_grant_token: token } });

/** `tx` whose round stops before its delivered pushes' UPDATE until `gate` resolves (what it wrote before stays locked). */
function stoppingBeforeDone(tx: SqlRunner, reached: () => void, gate: Promise<void>): SqlRunner {
  return new Proxy(tx, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "all") return typeof value === "function" ? value.bind(target) : value;
      return async (text: string, ...params: unknown[]) => {
        if (text.trimStart().startsWith("WITH pushed")) {
          reached();
          await gate;
        }
        return target.all(text, ...params);
      };
    },
  });
}

describe.each(engines.filter((e) => e === "postgres"))("%s", (engine) => {
  test("a change taking a target's leases back waits for a round writing their outcomes: no deadlock", async () => {
    const s = await open(engine);
    const admin = new SQL(s.server!.adminUrl);
    let release: (() => void) | undefined;
    try {
      await s.storage.transaction((tx) => reconcileAccounts(tx, [books("first")]));
      const outbox = new Outbox(s.storage, Date.now, 15 * 60_000, { leaseOwner: s.workerOf(s.storage) });
      await enqueueCustomers(outbox, [1, 2]);
      const [one, two] = await outbox.claim("t", 2, 60_000, () => true);
      expect([one?.key, two?.key]).toEqual(["1", "2"]);

      // The round: customer 2's push failed (retry: its row written and locked), then it stops before customer 1's
      // delivered push is written.
      let reached!: () => void;
      const atDone = new Promise<void>((r) => (reached = r));
      const gate = new Promise<void>((r) => {
        release = r;
      });
      const order: string[] = [];
      const round = s.storage
        .transaction((tx) =>
          outbox.completeAndClaim(
            stoppingBeforeDone(tx, reached, gate),
            [
              {
                delivery: two!,
                outcome: { kind: "retry", problem: { code: "http_503", message: "unavailable" }, delayMs: 0, uncertain: false },
              },
              { delivery: one!, outcome: { kind: "done", remoteId: "OLD-1", payloadHash: "h" } },
            ],
            "",
            0,
            0,
            () => true,
          ),
        )
        .then(() => order.push("round"));
      await atDone;

      // The change on another worker, forgetting the old account's ids: it waits for something the round holds.
      const other = await s.worker();
      const change = other
        .transaction((tx) => reconcileAccounts(tx, [books("second")], { forget: ["t"] }))
        .then(() => order.push("change"));
      const deadline = Date.now() + 10_000;
      let waiting: { query: string }[] = [];
      while (waiting.length === 0 && Date.now() < deadline) {
        await Bun.sleep(20);
        waiting = await admin`SELECT query FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`;
      }
      release!();
      const settled = await Promise.allSettled([round, change]);
      // Before: PostgreSQL found a deadlock and aborted one of them (whichever's check ran first).
      expect(settled.map((r) => (r.status === "rejected" ? String(r.reason) : "ok"))).toEqual(["ok", "ok"]);
      // It waited at the target's lock, before holding any of the deliveries the round was about to write (before: at
      // its UPDATE of the deliveries, holding customer 1's).
      expect(waiting.map((w) => w.query.replace(/\s+/g, " "))).toEqual([expect.stringContaining("FROM target_state")]);
      expect(order).toEqual(["round", "change"]);
      // The round's outcomes stand (written before the change, which found no lease left to take back).
      const rows = await s.storage.all<{ key: string; status: string; remoteId: string | null }>(
        `SELECT key, status, remote_id AS "remoteId" FROM deliveries ORDER BY key`,
      );
      expect(rows).toEqual([
        { key: "1", status: "done", remoteId: "OLD-1" },
        { key: "2", status: "pending", remoteId: null },
      ]);
    } finally {
      release?.();
      await admin.close();
    }
  }, 60_000);
});
