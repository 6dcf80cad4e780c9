// A Logger says whether a level is written (Logger.enabled), and the dispatcher builds no line's fields for a level
// that is not (issue 16, goal 3: a "delivered" line per delivery, built and dropped below log level info). The real
// outbox and dispatcher on a SQLite file.
import { expect, test } from "bun:test";
import { join } from "node:path";
import type { Connector } from "../connectors/contract.ts";
import { TargetError } from "../connectors/http.ts";
import { Dispatcher } from "../agent/dispatcher.ts";
import { openDatabase } from "../agent/db/index.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { createLogger, silentLogger, type Level, type Logger } from "../agent/log.ts";
import { Metrics } from "../agent/metrics.ts";
import { Outbox } from "../agent/outbox.ts";
import { recordSource } from "../agent/record-source.ts";
import { enqueueCustomers, memoryTarget } from "./dispatch-fixture.ts";
import { tempDir, waitFor } from "./helpers.ts";

test("enabled says which levels a logger writes, as its lines do", () => {
  const lines: string[] = [];
  const log = createLogger("warn", {}, (l) => lines.push(l));
  expect((["debug", "info", "warn", "error"] as Level[]).map((l) => log.enabled(l))).toEqual([false, false, true, true]);
  expect(log.child({ target: "t" }).enabled("info")).toBe(false);
  log.info("dropped");
  log.warn("kept");
  expect(lines.map((l) => JSON.parse(l).msg)).toEqual(["kept"]);
  expect(createLogger("debug", {}, () => {}).enabled("debug")).toBe(true);
  expect(silentLogger.enabled("error")).toBe(false);
});

/** A logger at `level` that records every call of its line methods, written or not. */
function recordingLogger(level: Level) {
  const calls: { level: Level; msg: string }[] = [];
  const real = createLogger(level, {}, () => {});
  const at =
    (l: Level) =>
    (msg: string): void => {
      calls.push({ level: l, msg });
    };
  const log: Logger = {
    enabled: real.enabled,
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: () => log,
  };
  return { log, calls };
}

for (const level of ["info", "warn"] as Level[])
  test(`the dispatcher asks for a "delivered" line only when info is written (log level ${level})`, async () => {
    const db = openDatabase(join(tempDir("kontobro-log-levels-"), "k.db"));
    const outbox = new Outbox(sqliteRunner(db.$client));
    const target = memoryTarget(false);
    const { log, calls } = recordingLogger(level);
    const dispatcher = new Dispatcher(
      "t",
      target.connector,
      outbox,
      { concurrency: 2, leaseMs: 30_000, backoff: { baseMs: 10, maxMs: 50 }, idlePollMs: 20, keyPrefix: "k" },
      log,
      new Metrics(),
      recordSource(outbox.runner),
    );
    await enqueueCustomers(outbox, [1, 2, 3]);
    dispatcher.start();
    try {
      await waitFor("three deliveries done", async () => {
        const row = db.$client.query("SELECT count(*) AS n FROM deliveries WHERE status = 'done'").get() as { n: number };
        return row.n === 3;
      });
    } finally {
      await dispatcher.stop(1000);
      db.$client.close();
    }
    expect(target.pushed.sort()).toEqual([1, 2, 3]);
    expect(calls.filter((c) => c.msg === "delivered").length).toBe(level === "info" ? 3 : 0);
  });

// A push that will be retried said what failed but not what to do: a retryable problem's hint (eAccounting's "not
// connected yet: run `kontobro connect …`", retried until someone does) was in no log line.
test("a push that failed and will be retried logs the problem's hint", async () => {
  const db = openDatabase(join(tempDir("kontobro-log-levels-"), "k.db"));
  const outbox = new Outbox(sqliteRunner(db.$client));
  const lines: { msg: string; code?: string; hint?: string }[] = [];
  const connector = {
    ...memoryTarget(false).connector,
    push: async () => {
      throw new TargetError("retryable", { code: "t.not_connected", message: "No authorisation yet.", hint: "Run `kontobro connect t`." });
    },
  } as Connector;
  const dispatcher = new Dispatcher(
    "t",
    connector,
    outbox,
    { concurrency: 1, leaseMs: 30_000, backoff: { baseMs: 10, maxMs: 50 }, idlePollMs: 20, keyPrefix: "k" },
    createLogger("warn", {}, (l) => lines.push(JSON.parse(l))),
    new Metrics(),
    recordSource(outbox.runner),
  );
  await enqueueCustomers(outbox, [1]);
  dispatcher.start();
  try {
    await waitFor("a retry logged", () => lines.find((l) => l.msg === "push failed; will retry"));
  } finally {
    await dispatcher.stop(1000);
    db.$client.close();
  }
  expect(lines.find((l) => l.msg === "push failed; will retry")).toMatchObject({
    code: "t.not_connected",
    hint: "Run `kontobro connect t`.",
  });
});
