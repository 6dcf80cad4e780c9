// A problem that stays open is told again: the real agent and e-conomic sandbox (a project the target refuses), a real
// SMTP server over loopback, and the notifier on a test clock. One mail when it appears, none for remind_after_hours,
// then one reminder listing it (remind_after_hours, default 24), and the next only remind_after_hours after that.
import { afterAll, describe, expect, test } from "bun:test";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { silentLogger } from "../agent/log.ts";
import { NotificationsConfig } from "../agent/notify/config.ts";
import { Notifier } from "../agent/notify/index.ts";
import { startStack } from "./e2e-harness.ts";
import { customerEvent, projectEvent, waitFor } from "./helpers.ts";
import { startSmtp } from "./notify-smtp.ts";

const HOUR = 3_600_000;
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe("a problem left open for days", () => {
  test("is told again after remind_after_hours, in one reminder, and not in between", async () => {
    const stack = await startStack();
    cleanups.push(() => stack.stop());
    const smtp = await startSmtp();
    cleanups.push(() => smtp.stop());
    const clock = { t: Date.now() };
    const notifier = new Notifier({
      storage: sqliteRunner(stack.agent.db.$client),
      config: NotificationsConfig.parse({
        recipients: ["it@example.com"],
        smtp: { host: "127.0.0.1", port: smtp.port, from: "kontobro@example.com", ca_file: smtp.caFile },
      }),
      targets: [{ name: "eco", title: "Visma e-conomic" }],
      statusUrl: "http://kontobro.example.local:8787/",
      log: silentLogger,
      version: "test",
      now: () => clock.t,
      host: "kontobro-test",
    });
    cleanups.push(() => notifier.stop());
    const subjects = () => smtp.mails.map((m) => m.headers.subject);

    await stack.post([customerEvent(1), projectEvent("P-400" as any, 1)]);
    await waitFor("needs action", async () => (await stack.deliveries("needs_action")).length === 1);
    await notifier.tick();
    expect(subjects()).toEqual(["[kontobro] eco: project P-400 needs action"]);

    clock.t += 23 * HOUR;
    await notifier.tick();
    expect(subjects()).toHaveLength(1);

    clock.t += 1 * HOUR;
    await notifier.tick();
    expect(subjects()).toEqual(["[kontobro] eco: project P-400 needs action", "[kontobro] eco: reminder: 1 problem still open"]);
    const reminder = smtp.mails[1]!.body;
    expect(reminder).toContain("Reminder: this problem is still open since the last notice (");
    expect(reminder).toContain("1. Project P-400 needs action");
    expect(reminder).toContain("How to fix:");

    clock.t += 12 * HOUR;
    await notifier.tick();
    expect(subjects()).toHaveLength(2);
    clock.t += 12 * HOUR;
    await notifier.tick();
    expect(subjects()).toHaveLength(3);
  }, 30_000);
});
