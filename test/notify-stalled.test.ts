// A queue that stops moving is told by mail, though no delivery "needs action": the real agent, the e-conomic sandbox
// answering 500 to everything (retried by itself, breaker open) or the target paused in kontobro.toml and forgotten,
// and a real SMTP server over loopback. Once the queue moves again the recovery is told too.
import { afterAll, describe, expect, test } from "bun:test";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { silentLogger } from "../agent/log.ts";
import { NotificationsConfig } from "../agent/notify/config.ts";
import { Notifier } from "../agent/notify/index.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, projectEvent, waitFor } from "./helpers.ts";
import { startSmtp, type TestSmtp } from "./notify-smtp.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function stackWithMail(economic: Record<string, unknown> = {}): Promise<{ stack: Stack; smtp: TestSmtp }> {
  const smtp = await startSmtp();
  cleanups.push(() => smtp.stop());
  const stack = await startStack({
    economic,
    sections: {
      notifications: {
        recipients: ["it@example.com"],
        check_interval_seconds: 0.05,
        min_interval_minutes: 0,
        // 1.2 s: "an hour" of a real installation.
        stalled_after_minutes: 0.02,
        smtp: { host: "127.0.0.1", port: smtp.port, from: "kontobro@example.com", ca_file: smtp.caFile },
      },
    },
  });
  cleanups.push(() => stack.stop());
  return { stack, smtp };
}

const metrics = async (stack: Stack) => (await fetch(`${stack.agent.url}/metrics`)).text();

describe("a stuck queue is told", () => {
  test("a target answering 500 to everything: mailed with what to check, and resolved once it answers again", async () => {
    const { stack, smtp } = await stackWithMail();
    await stack.addFaults({ kind: "500", probability: 1 });
    await stack.post([customerEvent(1)]);
    const mail = (await waitFor("the stuck-queue mail", () => smtp.mails.find((m) => m.headers.subject?.includes("stuck"))))!;
    expect(mail.headers.subject).toBe("[kontobro] eco: the queue is stuck: customer 1 is not delivered yet");
    expect(mail.body).toContain("What:        the queue (its oldest: customer 1, delivery 1,");
    expect(mail.body).toContain("Customer 1, queued ");
    expect(mail.body).toMatch(/is not delivered after 1 s: \d+ attempts, next [^:]+: e-conomic: Internal server error/);
    expect(mail.body).toContain("Check the target's service status");
    const stuck = await metrics(stack);
    expect(stuck).toContain('kontobro_alerts_open{target="eco",kind="stalled"} 1');
    expect(Number(stuck.match(/^kontobro_delivery_oldest_open_age_seconds\{target="eco"\} (\S+)$/m)?.[1])).toBeGreaterThan(1);
    expect(await stack.deliveries("needs_action")).toEqual([]);

    await fetch(`${stack.sandboxUrl}/__sandbox/faults`, { method: "DELETE" });
    await stack.waitDelivered(1);
    expect(await metrics(stack)).toContain('kontobro_delivery_oldest_open_age_seconds{target="eco"} 0\n');
    const resolved = (await waitFor("the resolved mail", () => smtp.mails.find((m) => m.headers.subject?.includes("resolved")), 30_000))!;
    expect(resolved.headers.subject).toBe("[kontobro] eco: resolved: the queue (the queue moves again: nothing open is that old any more)");
  }, 60_000);

  test("a target down while the PSA keeps sending a record again: told, dated from its first version not delivered", async () => {
    const { stack, smtp } = await stackWithMail();
    await stack.addFaults({ kind: "500", probability: 1 });
    // A new version every 0.4 s, each replacing the one before (the "hour" is 1.2 s): the open delivery is never old.
    let mail: (typeof smtp.mails)[number] | undefined;
    for (let i = 0; i < 25 && !mail; i++) {
      await stack.post([customerEvent(5, { name: `Customer 5 v${i}` })]);
      await Bun.sleep(400);
      mail = smtp.mails.find((m) => m.headers.subject?.includes("stuck"));
    }
    expect(mail?.headers.subject).toBe("[kontobro] eco: the queue is stuck: customer 5 is not delivered yet");
    expect(mail!.body).toContain("since sent again by the PSA: each newer version replaced the one before, none reached the target");
    expect(mail!.body).toContain("Check the target's service status");
    const age = (await metrics(stack)).match(/^kontobro_delivery_oldest_open_age_seconds\{target="eco"\} (\S+)$/m)?.[1];
    expect(Number(age)).toBeGreaterThan(1.2);
  }, 60_000);

  test("a target paused in kontobro.toml and forgotten: mailed with how to unpause", async () => {
    const { stack, smtp } = await stackWithMail({ paused: true });
    await stack.post([customerEvent(2)]);
    const mail = (await waitFor("the stuck-queue mail", () => smtp.mails.find((m) => m.headers.subject?.includes("stuck"))))!;
    expect(mail.body).toContain("it has not been tried");
    expect(mail.body).toContain("The target is paused in kontobro.toml (paused = true)");
  }, 60_000);

  test("an invoice waiting behind a project that needs action is not told again as a stuck queue", async () => {
    const { stack, smtp } = await stackWithMail();
    await stack.post([customerEvent(4), projectEvent("P-104" as any, 4), invoiceEvent(40, 4, "P-104" as any)]);
    await waitFor("the project needs action, the invoice waits", async () => {
      const [action, waiting] = [await stack.deliveries("needs_action"), await stack.deliveries("waiting")];
      return action.length === 1 && waiting.length === 1;
    });
    await waitFor("the needs-action mail", () => smtp.mails[0]);
    await Bun.sleep(2500); // twice stalled_after_minutes
    expect(smtp.mails.map((m) => m.headers.subject)).toEqual(["[kontobro] eco: project P-104 needs action"]);
  }, 60_000);

  test("the server's clock gone back: what was queued 'later than now' is told, with the clock to check", async () => {
    // No [notifications] in the agent: only the notifier below, on the clock as it is now, composes and sends.
    const stack = await startStack({ economic: { paused: true } });
    cleanups.push(() => stack.stop());
    const smtp = await startSmtp();
    cleanups.push(() => smtp.stop());
    await stack.post([customerEvent(3)]);
    await waitFor("queued", async () => (await stack.deliveries("pending")).length === 1);
    // The clock went back two hours (a wrong time corrected): the agent's own notifier, on that clock.
    const clock = { t: Date.now() - 2 * 3_600_000 };
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
    });
    cleanups.push(() => notifier.stop());
    await notifier.tick();
    expect(smtp.mails).toHaveLength(1);
    const mail = smtp.mails[0]!;
    expect(mail.headers.subject).toBe("[kontobro] eco: the queue is stuck: customer 3 is not delivered yet");
    expect(mail.body).toContain("later than the time now");
    expect(mail.body).toContain("the server's clock went back");
    expect(mail.body).toContain("timedatectl, NTP");
  }, 60_000);
});
