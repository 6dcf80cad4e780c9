// A queue that stops moving is told by mail, though no delivery "needs action": the real agent, the e-conomic sandbox
// answering 500 to everything (retried by itself, breaker open) or the target paused in kontobro.toml and forgotten,
// and a real SMTP server over loopback. Once the queue moves again the recovery is told too.
import { afterAll, describe, expect, test } from "bun:test";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, waitFor } from "./helpers.ts";
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
    expect(await metrics(stack)).toContain('kontobro_alerts_open{target="eco",kind="stalled"} 1');
    expect(await stack.deliveries("needs_action")).toEqual([]);

    await fetch(`${stack.sandboxUrl}/__sandbox/faults`, { method: "DELETE" });
    await stack.waitDelivered(1);
    const resolved = (await waitFor("the resolved mail", () => smtp.mails.find((m) => m.headers.subject?.includes("resolved")), 30_000))!;
    expect(resolved.headers.subject).toBe("[kontobro] eco: resolved: the queue (the queue moves again: nothing open is that old any more)");
  }, 60_000);

  test("a target paused in kontobro.toml and forgotten: mailed with how to unpause", async () => {
    const { stack, smtp } = await stackWithMail({ paused: true });
    await stack.post([customerEvent(2)]);
    const mail = (await waitFor("the stuck-queue mail", () => smtp.mails.find((m) => m.headers.subject?.includes("stuck"))))!;
    expect(mail.body).toContain("it has not been tried");
    expect(mail.body).toContain("The target is paused in kontobro.toml (paused = true)");
  }, 60_000);
});
