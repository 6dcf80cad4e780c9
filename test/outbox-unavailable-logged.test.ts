// A dispatcher whose rounds fail because the database will not serve them (a table it needs gone for a while, as a
// lock held or a disk that refuses would) tries again at every poll. It says so once, with what to do, not once a
// poll for as long as it lasts (at the default poll of a second, a line a second per target filling the log), says
// it again only when the error changes, and says when it works again. A real agent on a SQLite file, the e-conomic
// sandbox over loopback; the table is moved away and back by a second connection.
import { Database } from "bun:sqlite";
import { afterAll, expect, test } from "bun:test";
import { createLogger } from "../agent/log.ts";
import { databasePath } from "../agent/storage.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, waitFor } from "./helpers.ts";

let stack: Stack | undefined;
afterAll(async () => {
  await stack?.stop();
});

test("a database that fails every round is logged once until it works again, then its recovery once", async () => {
  const logged: { level: string; msg: string; target?: string; error?: { message: string }; hint?: string; failedRounds?: number }[] = [];
  stack = await startStack({ log: createLogger("info", {}, (line) => logged.push(JSON.parse(line))) });
  expect((await stack.post(customerEvent(1))).status).toBe(202);
  await stack.waitDelivered(1);

  const other = new Database(databasePath(stack.dataDir));
  other.exec("PRAGMA busy_timeout = 5000");
  other.exec("ALTER TABLE deliveries RENAME TO deliveries_away");
  const failures = () => logged.filter((l) => l.target === "eco" && l.msg.startsWith("dispatcher could not read or write the outbox"));
  await waitFor("a failed round", async () => failures().length > 0);
  // 20 polls of 50 ms, each a failed round.
  await Bun.sleep(1000);
  expect(failures()).toHaveLength(1);
  expect(failures()[0]!.level).toBe("warn");
  expect(failures()[0]!.error?.message).toContain("deliveries");
  expect(failures()[0]!.hint).toContain("/readyz");

  other.exec("ALTER TABLE deliveries_away RENAME TO deliveries");
  other.close();
  const recovered = await waitFor("the recovery logged", async () =>
    logged.find((l) => l.target === "eco" && l.msg === "dispatcher reads and writes the outbox again"),
  );
  expect(recovered!.failedRounds).toBeGreaterThan(5);
  expect(failures()).toHaveLength(1);
  // And it delivers again.
  expect((await stack.post(customerEvent(2))).status).toBe(202);
  await stack.waitDelivered(2);
});
