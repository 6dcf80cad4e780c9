// Nothing is lost while the mail server is down: the notice stays in the database, the status page shows
// why it was not sent and when it is tried again, and it arrives once the server answers. Refused
// credentials (a real 401 from the e-conomic sandbox) and their recovery are told too, and the JSON alert
// webhook gets the same notices, signed.
import { afterAll, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { validateConfig } from "../agent/config.ts";
import { statusOf } from "../agent/http/context.ts";
import { renderStatusPage } from "../agent/http/status-page.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { silentLogger } from "../agent/log.ts";
import { NotificationsConfig } from "../agent/notify/config.ts";
import { alertGauges } from "../agent/notify/gauges.ts";
import { Notifier } from "../agent/notify/index.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, projectEvent, waitFor } from "./helpers.ts";
import { freePort, startSmtp, testCertificate, type TestSmtp } from "./notify-smtp.ts";

const MIN = 60_000;
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function notifierFor(stack: Stack, config: unknown, clock: { t: number }) {
  const n = new Notifier({
    storage: sqliteRunner(stack.agent.db.$client),
    config: NotificationsConfig.parse(config),
    targets: [{ name: "eco", title: "Visma e-conomic" }],
    statusUrl: "http://kontobro.example.local:8787/",
    log: silentLogger,
    version: "test",
    now: () => clock.t,
    host: "kontobro-test",
  });
  cleanups.push(() => n.stop());
  return n;
}

const statusPage = async (stack: Stack, notifier: Notifier) =>
  String(
    await renderStatusPage(
      statusOf({ db: stack.agent.db, intake: stack.agent.intake, notifier, targets: [], version: "test", startedAt: 0 } as any),
    ),
  );

describe("notices survive a mail server that is down", () => {
  test("kept, shown on the status page with the reason, retried, and delivered once the server answers", async () => {
    const stack = await startStack();
    cleanups.push(() => stack.stop());
    const port = await freePort();
    const cert = testCertificate();
    const clock = { t: Date.parse("2026-12-01T09:00:00Z") };
    const notifier = notifierFor(
      stack,
      {
        recipients: ["it@example.com"],
        retry_base_ms: 60_000,
        retry_max_ms: 600_000,
        smtp: { host: "127.0.0.1", port, security: "starttls", from: "kontobro@example.com", ca_file: cert.caFile, timeout_ms: 2000 },
      },
      clock,
    );

    await stack.post([customerEvent(1), projectEvent("P-300" as any, 1)]);
    await waitFor("needs action", async () => (await stack.deliveries("needs_action")).length === 1);
    await notifier.tick();
    const row = () =>
      stack.agent.db.$client
        .query(`SELECT status, attempts, last_error AS lastError, next_attempt_at AS nextAt FROM notifications`)
        .get() as any;
    expect(row()).toMatchObject({ status: "pending", attempts: 1 });
    expect(row().lastError).toContain(`cannot connect to the mail server 127.0.0.1:${port}`);
    expect(row().nextAt).toBeGreaterThan(clock.t);
    const page = await statusPage(stack, notifier);
    expect(page).toContain("Not sent yet");
    expect(page).toContain("[kontobro] eco: project P-300 needs action");
    expect(page).toContain(`cannot connect to the mail server 127.0.0.1:${port}`);
    expect(page).toContain("nothing is lost while the mail server is unreachable");

    // Before the retry is due nothing is tried; the server comes up on the configured port.
    await notifier.tick();
    expect(row().attempts).toBe(1);
    const smtp: TestSmtp = await startSmtp({ port, cert });
    cleanups.push(() => smtp.stop());
    clock.t = row().nextAt;
    await notifier.tick();
    expect(row()).toMatchObject({ status: "sent", attempts: 2, lastError: null });
    expect(smtp.mails.map((m) => m.headers.subject)).toEqual(["[kontobro] eco: project P-300 needs action"]);
    expect(smtp.mails[0]!.secure).toBe(true);
    expect(await statusPage(stack, notifier)).toContain("Every notice was sent.");
  }, 30_000); // a real mail server, sandbox and agent: several seconds at a load of 20 on 2 cores
});

describe("credentials and the alert webhook", () => {
  test("a 401 from the target is told, and so is its recovery, by mail and by the signed JSON webhook", async () => {
    const stack = await startStack({ economic: { agreement_grant_token: "revoked-grant" } });
    cleanups.push(() => stack.stop());
    const smtp = await startSmtp();
    cleanups.push(() => smtp.stop());
    const hooks: { headers: Headers; body: string }[] = [];
    const receiver = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async (req) => {
        hooks.push({ headers: req.headers, body: await req.text() });
        return new Response("ok");
      },
    });
    cleanups.push(async () => receiver.stop(true));
    const clock = { t: Date.parse("2026-12-01T09:00:00Z") };
    const notifier = notifierFor(
      stack,
      {
        recipients: ["it@example.com"],
        smtp: { host: "127.0.0.1", port: smtp.port, security: "starttls", from: "kontobro@example.com", ca_file: smtp.caFile },
        webhook: { url: `http://127.0.0.1:${receiver.port}/hooks/T000/B000/XXXX`, secret: "alert-webhook-secret-1" },
      },
      clock,
    );

    await stack.post(customerEvent(4001));
    const [failed] = (await waitFor("refused", async () => {
      const d = await stack.deliveries("needs_action");
      return d.length ? d : null;
    }))!;
    await notifier.tick();
    expect(smtp.mails.length).toBe(1);
    const mail = smtp.mails[0]!;
    console.log(`--- credentials mail, as received ---\n${mail.raw}`);
    expect(mail.headers.subject).toBe("[kontobro] eco: 2 new problems need action");
    expect(mail.body).toContain("Visma e-conomic refuses kontobro's credentials");
    expect(mail.body).toContain("Customer 4001 needs action");
    expect(mail.body).toMatch(/How to fix: +Check the e-conomic tokens|How to fix: +.*token/);

    expect(hooks.length).toBe(1);
    const hook = JSON.parse(hooks[0]!.body);
    console.log(`--- alert webhook body ---\n${JSON.stringify(hook, null, 2)}`);
    expect(hooks[0]!.headers.get("content-type")).toBe("application/json");
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(hooks[0]!.headers.get("kontobro-signature")!)!;
    expect(v1).toBe(createHmac("sha256", "alert-webhook-secret-1").update(`${t}.${hooks[0]!.body}`).digest("hex"));
    expect(hook).toMatchObject({
      type: "kontobro.notice",
      target: "eco",
      targetTitle: "Visma e-conomic",
      host: "kontobro-test",
      subject: "[kontobro] eco: 2 new problems need action",
      statusPage: "http://kontobro.example.local:8787/",
      counts: { new: 2, resolved: 0, open: 2 },
    });
    expect(hook.problems.map((p: any) => [p.kind, p.what])).toEqual([
      ["delivery", "customer 4001"],
      ["credentials", "the credentials"],
    ]);
    expect(hook.text).toContain("kontobro: eco: 2 new problems need action");
    // /metrics reads the same rows: the refusal and the open alerts by kind.
    const metrics = await (await fetch(`${stack.agent.url}/metrics`)).text();
    expect(metrics).toContain(`kontobro_target_credentials_refused{target="eco"} 1`);
    expect(metrics).toContain(`kontobro_alerts_open{target="eco",kind="credentials"} 1`);
    expect(metrics).toContain(`kontobro_alerts_open{target="eco",kind="delivery"} 1`);

    // Fixed token, restart, retry: delivered and accepted; one notice with both recoveries.
    const { targets } = validateConfig(
      {
        targets: [
          {
            name: "eco",
            kind: "economic",
            rest_url: stack.sandboxUrl,
            projects_url: `${stack.sandboxUrl}/projectsapi/v1.1.0`,
            app_secret_token: "demo-app-secret",
            agreement_grant_token: "demo-agreement-grant",
            requests_per_second: 0,
          },
        ],
      },
      {},
    );
    await stack.restartWith({ settings: targets[0]!.settings });
    const retried = await fetch(`${stack.agent.url}/api/v1/deliveries/${failed.id}/retry`, {
      method: "POST",
      headers: { authorization: "Bearer test-token-0123456789" },
    });
    expect(retried.status).toBe(200);
    await stack.waitDelivered(1);
    clock.t += 20 * MIN;
    const again = notifierFor(
      stack,
      {
        recipients: ["it@example.com"],
        smtp: { host: "127.0.0.1", port: smtp.port, security: "starttls", from: "kontobro@example.com", ca_file: smtp.caFile },
        webhook: { url: `http://127.0.0.1:${receiver.port}/hooks/T000/B000/XXXX`, secret: "alert-webhook-secret-1" },
      },
      clock,
    );
    await again.tick();
    expect(smtp.mails.length).toBe(2);
    const resolved = smtp.mails[1]!;
    console.log(`--- recovery mail, as received ---\n${resolved.raw}`);
    expect(resolved.headers.subject).toBe("[kontobro] eco: 2 problems resolved");
    expect(resolved.body).toContain("- Customer 4001: delivered");
    expect(resolved.body).toContain("- The credentials: the target accepts the credentials again");
    expect(JSON.parse(hooks[1]!.body).counts).toEqual({ new: 0, resolved: 2, cameAndWent: 0, open: 0 });
  }, 30_000);
});

describe("a mail server broken for good", () => {
  test("the oldest unsent notice's age is on /metrics; one still unsent after retention_days is dropped with a warning, not kept for years", async () => {
    const stack = await startStack();
    cleanups.push(() => stack.stop());
    const port = await freePort(); // nothing listens there, ever
    const t0 = Date.now() - 3_600_000; // stored an hour ago: /metrics reads its age by the real clock
    const clock = { t: t0 };
    const warnings: string[] = [];
    const notifier = new Notifier({
      storage: sqliteRunner(stack.agent.db.$client),
      config: NotificationsConfig.parse({
        recipients: ["it@example.com"],
        retry_base_ms: 60_000,
        retry_max_ms: 600_000,
        smtp: { host: "127.0.0.1", port, security: "none", from: "kontobro@example.com", timeout_ms: 2000 },
      }),
      targets: [{ name: "eco", title: "Visma e-conomic" }],
      statusUrl: "http://kontobro.example.local:8787/",
      log: { ...silentLogger, warn: (msg: string) => void warnings.push(msg) },
      version: "test",
      now: () => clock.t,
      host: "kontobro-test",
      retentionDays: 30,
    });
    cleanups.push(() => notifier.stop());

    await stack.post([customerEvent(1), projectEvent("P-301" as any, 1)]);
    await waitFor("needs action", async () => (await stack.deliveries("needs_action")).length === 1);
    await notifier.tick();
    const pending = () =>
      stack.agent.db.$client
        .query(`SELECT id, created_at AS createdAt FROM notifications WHERE status = 'pending' ORDER BY id`)
        .all() as any[];
    const [first] = pending();
    expect(first.createdAt).toBe(t0);
    const gauge = (await alertGauges(sqliteRunner(stack.agent.db.$client), ["eco"])).find(
      (g) => g.name === "kontobro_notifications_oldest_unsent_age_seconds",
    );
    expect(gauge?.rows).toHaveLength(1);
    expect(gauge!.rows[0]!.labels).toEqual({ channel: "email" });
    expect(gauge!.rows[0]!.value).toBeGreaterThanOrEqual(3600);
    expect(gauge!.rows[0]!.value).toBeLessThan(3660);

    // 31 days on, still unsent: the old notice goes (its problem is still open, so a reminder tells it anew).
    clock.t = t0 + 31 * 86_400_000;
    await notifier.tick();
    const left = pending();
    expect(left.map((r) => r.id)).not.toContain(first.id);
    expect(left.every((r) => r.createdAt > t0)).toBe(true);
    expect(warnings.some((w) => w.startsWith("dropped 1 notice(s) not sent in 30 days"))).toBe(true);
  }, 30_000);
});
