// A failed fsync of the database's WAL stops dispatch until kontobro is restarted (agent/db/wal-sync.ts). That must
// not go unnoticed: a real agent (SQLite file, HTTP, the e-conomic sandbox) whose WAL fsync fails answers /readyz 503
// naming it, sets kontobro_database_fsync_failed in /metrics, shows it first on the status page, mails it (an alert
// of kind storage), and refuses events (503: the PSA keeps them); once restarted it is ready, the alert is resolved
// and it delivers again. The fsync fails as in
// test/wal-sync.test.ts: a FIFO in the WAL's place, opened by the first round that syncs.
import { afterAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { renameSync, rmSync } from "node:fs";
import { createLogger } from "../agent/log.ts";
import { DemoMailbox } from "../agent/notify/demo-mailbox.ts";
import { databasePath } from "../agent/storage.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, waitFor } from "./helpers.ts";

let stack: Stack | undefined;
afterAll(async () => {
  await stack?.stop();
});

const readyz = async (s: Stack) => {
  const res = await fetch(`${s.agent.url}/readyz`);
  return {
    status: res.status,
    body: (await res.json()) as { status: string; checks: { name: string; ok: boolean; message: string; hint?: string }[] },
  };
};
const fsyncFailedGauge = async (s: Stack) =>
  /^kontobro_database_fsync_failed (\d)$/m.exec(await (await fetch(`${s.agent.url}/metrics`)).text())?.[1];
const statusPage = async (s: Stack) => (await fetch(`${s.agent.url}/`)).text();

describe("a failed fsync of the WAL", () => {
  test("is reported by /readyz, /metrics and the status page, intake refuses events, and a restart ends it", async () => {
    const mailbox = new DemoMailbox();
    const logged: { level: string; msg: string; target?: string; error?: { message: string }; hint?: string }[] = [];
    stack = await startStack({
      log: createLogger("warn", {}, (line) => logged.push(JSON.parse(line))),
      sections: {
        notifications: {
          recipients: ["it@example.com"],
          check_interval_seconds: 0.05,
          smtp: { host: "127.0.0.1", from: "kontobro@example.com" },
        },
      },
      extras: { mailbox },
    });
    const wal = `${databasePath(stack.dataDir)}-wal`;
    // The intake writer opens its connection (and SQLite's WAL) now, before the name leads elsewhere.
    await stack.agent.intake.pragma("user_version");
    expect((await readyz(stack)).status).toBe(200);
    expect(await fsyncFailedGauge(stack)).toBe("0");
    expect(await statusPage(stack)).not.toContain('class="card fault durability"');

    // SQLite keeps writing the real WAL by its descriptors; the round's fsync opens the name: a FIFO, and fsync fails.
    renameSync(wal, `${wal}.real`);
    execFileSync("mkfifo", [wal]);
    expect((await stack.post(customerEvent(1))).status).toBe(202);

    const notReady = await waitFor("/readyz 503", async () => {
      const r = await readyz(stack!);
      return r.status === 503 ? r : null;
    }).then((r) => r!);
    expect(notReady.body.status).toBe("not_ready");
    const check = notReady.body.checks.find((c) => c.name === "durability")!;
    expect(check.ok).toBe(false);
    expect(check.message).toMatch(/An fsync of the database's WAL failed at .*nothing is sent to the targets until kontobro is restarted/);
    expect(check.hint).toContain("Check the disk");
    expect(check.hint).toContain("restart kontobro");
    expect(await fsyncFailedGauge(stack)).toBe("1");
    const page = await statusPage(stack);
    expect(page).toContain('class="card fault durability" role="alert"');
    expect(page).toContain("Nothing is sent: the database cannot be made durable");
    const mail = await waitFor("the alert mail", () =>
      mailbox.list().find((m) => m.subject.includes("the database cannot be made durable")),
    );
    expect(mail!.subject).toBe("[kontobro] eco: nothing is sent: the database cannot be made durable");
    expect(mail!.text).toContain("Check the disk");
    // Nothing was sent, and no event is acknowledged while it lasts: the PSA keeps it and sends it again.
    const sandboxCounts = async () => ((await (await fetch(`${stack!.sandboxUrl}/__sandbox/stats`)).json()) as any).counts;
    expect((await sandboxCounts()).customers).toBe(0);
    const refused = await stack.post(customerEvent(2));
    expect(refused.status).toBe(503);
    expect(refused.body.message).toContain("Nothing was stored");
    // And the dispatcher waits without writing: no round leases and releases the delivery again and again (each such
    // release counted an attempt and wrote an attempt row, some twenty a second at the test's poll).
    const churn = () =>
      stack!.agent.db.$client
        .query(`SELECT (SELECT sum(attempts) FROM deliveries) AS attempts, (SELECT count(*) FROM delivery_attempts) AS rows`)
        .get();
    const before = churn();
    const linesBefore = logged.length;
    await Bun.sleep(500);
    expect(churn()).toEqual(before);
    // Nor does it log the fault again at every poll (one line a second per target, for as long as it lasted): the
    // dispatcher said it once, with what to do.
    expect(logged.length).toBe(linesBefore);
    const dispatcherLines = logged.filter((l) => l.target === "eco");
    expect(dispatcherLines).toHaveLength(1);
    expect(dispatcherLines[0]!.level).toBe("error");
    expect(dispatcherLines[0]!.msg).toContain("nothing is sent to this target until kontobro is restarted");
    expect(dispatcherLines[0]!.hint).toContain("Check the disk");

    // The operator checked the disk and restarted kontobro.
    rmSync(wal);
    renameSync(`${wal}.real`, wal);
    await stack.restart();
    expect((await readyz(stack)).status).toBe(200);
    expect(await fsyncFailedGauge(stack)).toBe("0");
    const storageAlert = () =>
      stack!.agent.db.$client.query(`SELECT resolution FROM alerts WHERE kind = 'storage'`).get() as { resolution: string | null } | null;
    await waitFor("the alert resolved", () => storageAlert()?.resolution);
    expect(storageAlert()!.resolution).toBe("kontobro was restarted and makes its commits durable again");
    expect((await stack.post(customerEvent(2))).status).toBe(202);
    await stack.waitDelivered(2);
    expect((await sandboxCounts()).customers).toBe(2);
  });
});
