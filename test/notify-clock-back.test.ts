// The server's clock went back a day (NTP correcting a clock that ran ahead, a VM restored) while a notice waited for
// its retry: the retry time was set by the clock as it was, a day ahead. Before, the notice (an alert that something
// needs action) waited that day; now it is due no later than the longest backoff or lease after now. Real parts: the
// agent on a real SQLite file, the e-conomic sandbox, a real mail server over loopback.
import { afterAll, expect, test } from "bun:test";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { silentLogger } from "../agent/log.ts";
import { NotificationsConfig } from "../agent/notify/config.ts";
import { Notifier } from "../agent/notify/index.ts";
import { startStack } from "./e2e-harness.ts";
import { customerEvent, projectEvent, waitFor } from "./helpers.ts";
import { freePort, startSmtp, testCertificate } from "./notify-smtp.ts";

const DAY = 86_400_000;
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

test("a notice whose retry was set by a clock a day ahead goes within the longest backoff after the clock went back", async () => {
  const stack = await startStack();
  cleanups.push(() => stack.stop());
  const port = await freePort();
  const cert = testCertificate();
  const clock = { t: Date.parse("2026-12-02T09:00:00Z") };
  const notifier = new Notifier({
    storage: sqliteRunner(stack.agent.db.$client),
    config: NotificationsConfig.parse({
      recipients: ["it@example.com"],
      retry_base_ms: 60_000,
      retry_max_ms: 600_000,
      smtp: { host: "127.0.0.1", port, security: "starttls", from: "kontobro@example.com", ca_file: cert.caFile, timeout_ms: 2000 },
    }),
    targets: [{ name: "eco", title: "Visma e-conomic" }],
    statusUrl: "http://kontobro.example.local:8787/",
    log: silentLogger,
    version: "test",
    now: () => clock.t,
    host: "kontobro-test",
  });
  cleanups.push(() => notifier.stop());

  await stack.post([customerEvent(1), projectEvent("P-300" as any, 1)]);
  await waitFor("needs action", async () => (await stack.deliveries("needs_action")).length === 1);
  await notifier.tick(); // the mail server is down: kept, retried later
  const row = () => stack.agent.db.$client.query(`SELECT status, attempts, next_attempt_at AS nextAt FROM notifications`).get() as any;
  expect(row()).toMatchObject({ status: "pending", attempts: 1 });

  const smtp = await startSmtp({ port, cert });
  cleanups.push(() => smtp.stop());
  clock.t -= DAY;
  await notifier.tick();
  // The longest backoff (10 min), the lease (5 min) and a minute's slack: due by then, not a day later.
  clock.t += 11 * 60_000 + 1;
  await notifier.tick();
  expect(row()).toMatchObject({ status: "sent", attempts: 2 });
  expect(smtp.mails.map((m) => m.headers.subject)).toEqual(["[kontobro] eco: project P-300 needs action"]);
}, 30_000);
