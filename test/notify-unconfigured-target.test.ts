// Deliveries queued for a target that is renamed (or removed) in kontobro.toml are told, not left where nothing sends
// them and nothing looks: the real agent and e-conomic sandbox, a real SMTP server over loopback. A customer queued for
// "eco" while it was paused; the agent restarted with the target renamed "eco-new".
import { afterAll, describe, expect, test } from "bun:test";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { silentLogger } from "../agent/log.ts";
import { NotificationsConfig } from "../agent/notify/config.ts";
import { Notifier } from "../agent/notify/index.ts";
import { startStack } from "./e2e-harness.ts";
import { customerEvent } from "./helpers.ts";
import { startSmtp } from "./notify-smtp.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const notifierFor = (stack: Awaited<ReturnType<typeof startStack>>, smtp: Awaited<ReturnType<typeof startSmtp>>, target: string) =>
  new Notifier({
    storage: sqliteRunner(stack.agent.db.$client),
    config: NotificationsConfig.parse({
      recipients: ["it@example.com"],
      min_interval_minutes: 0,
      smtp: { host: "127.0.0.1", port: smtp.port, from: "kontobro@example.com", ca_file: smtp.caFile },
    }),
    targets: [{ name: target, title: "Visma e-conomic" }],
    statusUrl: "http://kontobro.example.local:8787/",
    log: silentLogger,
    version: "test",
    host: "kontobro-test",
  });

describe("a target renamed in kontobro.toml with deliveries queued", () => {
  test("is mailed at once, naming the old name and the risk of a new one, and resolved once it has its name back", async () => {
    const stack = await startStack({ economic: { paused: true } });
    cleanups.push(() => stack.stop());
    const smtp = await startSmtp();
    cleanups.push(() => smtp.stop());
    expect((await stack.post([customerEvent(1)])).status).toBe(202);

    await stack.restartWith({ name: "eco-new", paused: false });
    const renamed = notifierFor(stack, smtp, "eco-new");
    await renamed.tick();
    expect(smtp.mails.map((m) => m.headers.subject)).toEqual(["[kontobro] eco: deliveries are queued for a target not in kontobro.toml"]);
    const body = smtp.mails[0]!.body;
    expect(body).toContain('1 delivery is queued for target "eco" (the oldest since ');
    expect(body).toContain("which is not an enabled target in kontobro.toml (removed, renamed, or enabled = false): nothing sends it.");
    expect(body).toContain('Renamed? Give the target its old name back (name = "eco")');
    await renamed.stop();

    await stack.restartWith({ name: "eco", paused: false });
    await stack.waitDelivered(1);
    const back = notifierFor(stack, smtp, "eco");
    await back.tick();
    await back.stop();
    expect(smtp.mails.map((m) => m.headers.subject)).toEqual([
      "[kontobro] eco: deliveries are queued for a target not in kontobro.toml",
      "[kontobro] eco: resolved: the queue (the target is configured again, or nothing is queued for it any more)",
    ]);
  }, 60_000);
});
