// Alert mails through a real SMTP server on loopback (STARTTLS, login), from real problems of a real agent
// and e-conomic sandbox: the first problem of a target is mailed at once (what, which record, message,
// hint, status page link); later ones wait for the target's interval and come in one digest with counts,
// together with what was resolved. The notifier runs on a test clock (tick() by hand), so the interval
// is exact and no assertion depends on wall-clock time.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { NotificationsConfig } from "../agent/notify/config.ts";
import { Notifier } from "../agent/notify/index.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { silentLogger } from "../agent/log.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, projectEvent, waitFor } from "./helpers.ts";
import { startSmtp, type TestSmtp } from "./notify-smtp.ts";

let stack: Stack;
let smtp: TestSmtp;
let clock = Date.parse("2026-12-01T09:00:00Z");
let notifier: Notifier;
const MIN = 60_000;

beforeAll(async () => {
  stack = await startStack();
  smtp = await startSmtp({ user: "kontobro", password: "smtp-secret-1" });
  const config = NotificationsConfig.parse({
    recipients: ["it@example.com"],
    target_recipients: { eco: ["regnskap@example.com"] },
    status_page_url: "http://kontobro.example.local:8787/",
    min_interval_minutes: 15,
    smtp: {
      host: "127.0.0.1",
      port: smtp.port,
      security: "starttls",
      user: "kontobro",
      password: "smtp-secret-1",
      from: "kontobro <kontobro@example.com>",
      ca_file: smtp.caFile,
      timeout_ms: 5000,
    },
  });
  notifier = new Notifier({
    storage: sqliteRunner(stack.agent.db.$client),
    config,
    targets: [{ name: "eco", title: "Visma e-conomic" }],
    statusUrl: "http://kontobro.example.local:8787/",
    log: silentLogger,
    version: "test",
    now: () => clock,
    host: "kontobro-test",
  });
});
afterAll(async () => {
  await notifier.stop();
  await stack.stop();
  await smtp.stop();
});

const needsAction = async (n: number) => waitFor(`${n} needing action`, async () => (await stack.deliveries("needs_action")).length >= n);
const longName = "Rehabilitering av kontorbygg ".repeat(5); // 140 characters: e-conomic keeps 100

describe("alert mails", () => {
  test("the first problem of a target is mailed at once, with what, the record, message, hint and a link", async () => {
    expect((await stack.post([customerEvent(9000), projectEvent(6001, 9000, { name: longName })])).status).toBe(202);
    await needsAction(1);
    await notifier.tick();
    expect(smtp.mails.length).toBe(1);
    const mail = smtp.mails[0]!;
    console.log(`--- first mail, as received ---\n${mail.raw}`);
    expect(mail.secure).toBe(true);
    expect(mail.user).toBe("kontobro");
    expect(mail.envelopeFrom).toBe("kontobro@example.com");
    expect(mail.envelopeTo.sort()).toEqual(["it@example.com", "regnskap@example.com"]);
    expect(mail.headers).toMatchObject({
      from: "kontobro <kontobro@example.com>",
      to: "it@example.com, regnskap@example.com",
      subject: "[kontobro] eco: project 6001 needs action",
      "auto-submitted": "auto-generated",
      "x-kontobro-target": "eco",
      "mime-version": "1.0",
    });
    expect(mail.headers["content-type"]).toMatch(/^text\/plain; charset=utf-8/i);
    expect(mail.headers["message-id"]).toMatch(/^<.+@.+>$/);
    expect(Date.parse(mail.headers.date!)).toBeGreaterThan(0);
    expect(mail.body).toContain(`kontobro on kontobro-test, target "eco" (Visma e-conomic)`);
    expect(mail.body).toContain("Project 6001 needs action.");
    expect(mail.body).toMatch(/What: +project 6001 \(delivery \d+, 1 attempt\)/);
    expect(mail.body).toMatch(/Problem: +The project name .*100/);
    expect(mail.body).toMatch(/How to fix: +\S/);
    expect(mail.body).toContain("Status page: http://kontobro.example.local:8787/");
    expect(mail.body).toContain("at most one notice per target every 15 minutes");
  });

  test("later problems wait for the interval and come in one digest with counts, with what was resolved", async () => {
    expect((await stack.post([projectEvent(6002, 9000, { name: longName }), projectEvent("P-200" as any, 9000)])).status).toBe(202);
    await needsAction(2);
    await stack.addFaults({ kind: "500", path: "accounting-years", count: 50 });
    expect(await stack.agent.pulls.runNow("eco", "expenses", "manual")).toMatchObject({ status: "failed" });
    clock += 1 * MIN;
    await notifier.tick();
    expect(smtp.mails.length).toBe(1); // within 15 minutes of the first: nothing

    // Project 6001 fixed in the PSA: delivered, and so resolved.
    expect((await stack.post(projectEvent(6001, 9000))).status).toBe(202);
    await waitFor("6001 delivered", async () => (await stack.deliveries("done")).some((d: any) => d.key === "6001"));
    clock += 5 * MIN;
    await notifier.tick();
    expect(smtp.mails.length).toBe(1);

    clock += 10 * MIN; // 16 minutes after the first mail
    await notifier.tick();
    expect(smtp.mails.length).toBe(2);
    const digest = smtp.mails[1]!;
    console.log(`--- digest, as received ---\n${digest.raw}`);
    const open = (await stack.deliveries("needs_action")).length;
    expect(digest.headers.subject).toBe("[kontobro] eco: 3 new problems, 1 resolved");
    expect(digest.body).toContain(`Since the last notice: 3 new problems, 1 resolved. Needing action now: ${open + 1}.`);
    expect(digest.body).toContain("Project 6002 needs action");
    expect(digest.body).toContain("Project P-200 needs action");
    expect(digest.body).toMatch(/What: +project 6002 \(delivery \d+/);
    expect(digest.body).toContain("The expenses pull failed");
    expect(digest.body).toContain("- Project 6001: delivered (needed action since 2026-12-01 09:00:00 UTC)");

    // Nothing new: no mail, however much time passes.
    clock += 60 * MIN;
    await notifier.tick();
    expect(smtp.mails.length).toBe(2);
    const rows = stack.agent.db.$client.query(`SELECT status, count(*) AS n FROM notifications GROUP BY status`).all();
    expect(rows).toEqual([{ status: "sent", n: 2 }]);
  });
});
