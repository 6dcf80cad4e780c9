// A scheduled pull that stops completing is told, though no run failed: the real agent and e-conomic sandbox (its
// expenses pull, "0 6 * * *"), a real SMTP server over loopback. The days are made by moving the stored times back (when
// the job was first scheduled, when a run started): first no run at all (the schedule never started one), then a run
// that hangs, then a good run that resolves it.
import { afterAll, describe, expect, test } from "bun:test";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { silentLogger } from "../agent/log.ts";
import { NotificationsConfig } from "../agent/notify/config.ts";
import { syncAlerts } from "../agent/notify/alerts.ts";
import { Notifier } from "../agent/notify/index.ts";
import { longestInterval, OVERDUE_MARGIN_MS, type ScheduledPull } from "../agent/notify/overdue-pulls.ts";
import { waitFor } from "./helpers.ts";
import { startSmtp } from "./notify-smtp.ts";
import { startPullStack } from "./pull-harness.ts";

const HOUR = 3_600_000;
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe("a scheduled pull that stops completing", () => {
  test("the interval is the schedule's longest: a weekday schedule's weekend", () => {
    expect(longestInterval("0 6 * * *", "UTC")).toBe(24 * HOUR);
    expect(longestInterval("0 6 * * 1-5", "UTC")).toBe(72 * HOUR);
    expect(longestInterval("*/10 * * * *", "UTC")).toBe(10 * 60_000);
  });

  test("is mailed naming the pull and the likely cause, then as hung, and resolved by a good run", async () => {
    const stack = await startPullStack({ economic: { expenses: { accounts: "2800", cost_types: "1" }, request_timeout_ms: 30_000 } });
    cleanups.push(() => stack.stop());
    const smtp = await startSmtp();
    cleanups.push(() => smtp.stop());
    const storage = sqliteRunner(stack.agent.db.$client);
    const notifier = new Notifier({
      storage,
      config: NotificationsConfig.parse({
        recipients: ["it@example.com"],
        min_interval_minutes: 0,
        smtp: { host: "127.0.0.1", port: smtp.port, from: "kontobro@example.com", ca_file: smtp.caFile },
      }),
      targets: [{ name: "eco", title: "Visma e-conomic" }],
      pulls: stack.agent.pulls.scheduler.jobs.filter((j) => j.stream === "expenses"),
      statusUrl: "http://kontobro.example.local:8787/",
      log: silentLogger,
      version: "test",
      host: "kontobro-test",
    });
    cleanups.push(() => notifier.stop());
    const subjects = () => smtp.mails.map((m) => m.headers.subject);
    const openPullAlert = async () =>
      storage.get<{ code: string; message: string; hint: string }>(
        "SELECT code, message, hint FROM alerts WHERE kind = 'pull' AND subject = 'expenses' AND resolved_at IS NULL",
      );

    const scheduledAgo = (ms: number) =>
      storage.run("UPDATE settings SET value = ?1 WHERE name = 'pull_first_seen:eco:expenses'", String(Date.now() - ms));

    // Two days and the margin without a run: the daily schedule never started one.
    await scheduledAgo(48 * HOUR + OVERDUE_MARGIN_MS - 60_000);
    await notifier.tick();
    expect(subjects()).toEqual([]);
    await scheduledAgo(48 * HOUR + OVERDUE_MARGIN_MS + 60_000);
    await notifier.tick();
    expect(subjects()).toEqual(["[kontobro] eco: the expenses pull has stopped completing"]);
    const mail = smtp.mails[0]!.body;
    expect(mail).toContain(
      'The expenses pull (schedule "0 6 * * *", Europe/Copenhagen, at least every 24 h) has not completed for 2 days 0 h, since it was first scheduled (',
    );
    expect(mail).toContain("No run has started since: the schedule does not start it, or the job fails before its run is recorded.");
    expect(mail).toContain("Check [targets.pulls.expenses] of eco in kontobro.toml (cron, timezone, enabled)");

    // A run that does not end (the target answers after 4 s here): told as hung once it has run longer than an interval.
    await stack.control("faults", { kind: "latency", probability: 1, latencyMs: 4000 });
    const run = stack.runNow("expenses");
    await waitFor("the run under way", async () => (await storage.get("SELECT 1 AS r FROM job_runs WHERE status = 'running'")) !== null);
    await notifier.tick();
    expect((await openPullAlert())!.message).toContain("No run has started since"); // a run under way gets its interval
    await storage.run("UPDATE job_runs SET started_at = ?1 WHERE status = 'running'", Date.now() - 24 * HOUR - OVERDUE_MARGIN_MS - 60_000);
    await notifier.tick();
    expect((await openPullAlert())!.message).toMatch(/Its run \d+, started .*, is still running: it hangs\./);
    expect((await openPullAlert())!.hint).toContain("then restart kontobro");

    // It ends well: resolved, and told.
    await stack.control("faults", undefined, "DELETE");
    expect((await run).status).toBe("ok");
    await notifier.tick();
    expect(await openPullAlert()).toBeNull();
    expect(subjects()).toEqual([
      "[kontobro] eco: the expenses pull has stopped completing",
      "[kontobro] eco: resolved: the expenses pull (the pull succeeded)",
    ]);
  }, 60_000);

  test("is resolved once the pull is no longer scheduled, though its last run did not end well", async () => {
    const stack = await startPullStack({ economic: { expenses: { accounts: "2800", cost_types: "1" }, request_timeout_ms: 30_000 } });
    cleanups.push(() => stack.stop());
    const smtp = await startSmtp();
    cleanups.push(() => smtp.stop());
    const storage = () => sqliteRunner(stack.agent.db.$client);
    const notifierFor = (pulls: ScheduledPull[]) => {
      const notifier = new Notifier({
        storage: storage(),
        config: NotificationsConfig.parse({
          recipients: ["it@example.com"],
          min_interval_minutes: 0,
          smtp: { host: "127.0.0.1", port: smtp.port, from: "kontobro@example.com", ca_file: smtp.caFile },
        }),
        targets: [{ name: "eco", title: "Visma e-conomic" }],
        pulls,
        statusUrl: "http://kontobro.example.local:8787/",
        log: silentLogger,
        version: "test",
        host: "kontobro-test",
      });
      cleanups.push(() => notifier.stop());
      return notifier;
    };
    // A run that hangs for longer than an interval: told as hung.
    await stack.control("faults", { kind: "latency", probability: 1, latencyMs: 4000 });
    const run = stack.runNow("expenses");
    await waitFor("the run under way", async () => (await storage().get("SELECT 1 AS r FROM job_runs WHERE status = 'running'")) !== null);
    await storage().run("UPDATE settings SET value = ?1 WHERE name = 'pull_first_seen:eco:expenses'", String(Date.now() - 72 * HOUR));
    await storage().run(
      "UPDATE job_runs SET started_at = ?1 WHERE status = 'running'",
      Date.now() - 24 * HOUR - OVERDUE_MARGIN_MS - 60_000,
    );
    await notifierFor(stack.agent.pulls.scheduler.jobs.filter((j) => j.stream === "expenses")).tick();
    expect(smtp.mails.map((m) => m.headers.subject)).toEqual(["[kontobro] eco: the expenses pull has stopped completing"]);

    // The operator makes the pull one run only when asked (no cron) and restarts. Nothing runs the job on its own any
    // more, so nothing ends its last run either (a run left "running" is ended when its job next runs): before, its
    // alert stayed open, with a reminder every day, for ever. It is over: the pull is no longer scheduled.
    const expenses = stack.agent.pulls.scheduler.jobs.find((j) => j.stream === "expenses")!;
    await notifierFor([{ ...expenses, cron: null }]).tick();
    expect(await storage().get("SELECT 1 AS open FROM alerts WHERE kind = 'pull' AND resolved_at IS NULL")).toBeNull();
    expect(smtp.mails.map((m) => m.headers.subject)).toContain(
      "[kontobro] eco: resolved: the expenses pull (the pull is no longer scheduled)",
    );
    await stack.control("faults", undefined, "DELETE");
    await run;
  }, 60_000);

  test("a failed pull's alert is resolved once the pull is taken out of kontobro.toml", async () => {
    const stack = await startPullStack({ economic: { expenses: { accounts: "2800", cost_types: "1" } } });
    cleanups.push(() => stack.stop());
    const storage = sqliteRunner(stack.agent.db.$client);
    const expenses = stack.agent.pulls.scheduler.jobs.filter((j) => j.stream === "expenses");
    const sync = (pulls: ScheduledPull[]) =>
      storage.transaction((tx) =>
        syncAlerts(tx, Date.now(), [], { targets: [{ name: "eco" }], stalledAfterMs: 0, pulls, now: Date.now() }),
      );
    await stack.control("faults", { kind: "500", probability: 1 });
    expect((await stack.runNow("expenses")).status).toBe("failed");
    await stack.control("faults", undefined, "DELETE");
    await sync(expenses);
    const openPull = () => storage.get<{ n: number }>("SELECT count(*) AS n FROM alerts WHERE kind = 'pull' AND resolved_at IS NULL");
    expect((await openPull())!.n).toBe(1);
    // Still configured: still open.
    await sync(expenses);
    expect((await openPull())!.n).toBe(1);
    // Taken out (the operator gave up on it): before, the failed run stayed a problem for ever.
    await sync([]);
    expect((await openPull())!.n).toBe(0);
    expect(await storage.get("SELECT resolution FROM alerts WHERE kind = 'pull'")).toEqual({
      resolution: "the pull is no longer configured",
    });
  }, 60_000);
});
