// Alerts of hosted tenants on a real PostgreSQL (issue 17 item 3): each tenant's notifier, built as a hosted worker
// builds it (agent/hosted/tenant-notifier.ts) from the tenant's own `notifications`, runs on the tenant's runner;
// two workers (in-process, each on a client of its own) run every tenant's notifier at once. A needs-action
// delivery of tenant A is told once, to A's webhook and mailbox (the real SMTP server of the notify tests), never
// to B's; a worker that dies mid-send leaves its notice to be sent again after the lease (at least once).
import { afterAll, describe, expect, test } from "bun:test";
import { startEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { AgentConfig, type TargetConfig } from "../agent/config.ts";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { tenantNotifier } from "../agent/hosted/tenant-notifier.ts";
import { startTenantRuntime } from "../agent/hosted/tenant-runtime.ts";
import { Metrics } from "../agent/metrics.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { silentLogger } from "../agent/log.ts";
import { NotificationsConfig } from "../agent/notify/config.ts";
import { type Notifier, noticeLeaseMs } from "../agent/notify/index.ts";
import { Outbox } from "../agent/outbox.ts";
import { type EngineStorage, workerEngines } from "./engines.ts";
import { customerEvent, projectEvent, waitFor } from "./helpers.ts";
import { startSmtp, type TestSmtp } from "./notify-smtp.ts";

const { engines, open } = workerEngines("hosted alerts");
const onPostgres = engines.includes("postgres");

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const config = AgentConfig.parse({ http: { public_url: "https://kontobro.example.com/" } });
const targets = [{ name: "eco", kind: "economic" } as TargetConfig];

/** A loopback webhook receiver; `hold` keeps the first request unanswered until released (a worker dying mid-send). */
function receiver(o: { hold?: boolean } = {}) {
  const bodies: string[] = [];
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: async (req) => {
      bodies.push(await req.text());
      if (o.hold && bodies.length === 1) await held;
      return new Response("ok");
    },
  });
  cleanups.push(() => server.stop(true));
  cleanups.push(() => release());
  return { url: `http://127.0.0.1:${server.port}/hooks/T000/B000/XXXX`, bodies, release };
}

/** The tenant's notifier on one worker's runner, as tenant-runtime.ts starts it, on the test's clock. */
function notifierOn(runner: SqlRunner, slug: string, notifications: unknown, clock: { t: number }): Notifier {
  const n = tenantNotifier({
    tenant: { slug },
    runner,
    notifications: NotificationsConfig.parse(notifications),
    targets,
    config,
    log: silentLogger,
    now: () => clock.t,
  })!;
  cleanups.push(() => n.stop());
  return n;
}

/** A delivery of customer `key` to eco that needs action, through the tenant's real intake and outbox. */
async function needsAction(tenant: EngineStorage, key: number) {
  const outbox = new Outbox(tenant.storage);
  const intake = new IntakeWriter(outbox, () => ["eco"]);
  const parsed = parseEvents([customerEvent(key, { name: "x".repeat(255) })]);
  if (!parsed.ok) throw new Error("fixture");
  await intake.submit(parsed.events);
  await intake.close();
  const [d] = await outbox.claim("eco", 10, 60_000, () => true);
  await outbox.complete([
    {
      delivery: d!,
      outcome: {
        kind: "needs_action",
        uncertain: false,
        problem: { code: "economic.name_too_long", message: "The customer name is longer than the target keeps." },
      },
    },
  ]);
}

const slugOf = async (tenant: EngineStorage) =>
  (await tenant.storage.get<{ slug: string }>("SELECT slug FROM tenants WHERE id = CAST(current_setting('kontobro.tenant') AS INTEGER)"))!
    .slug;

describe.skipIf(!onPostgres)("hosted alerts on PostgreSQL, two tenants, two workers", () => {
  test("a needs-action delivery of tenant A is told once, to A's webhook and mailbox, linking A's page; B hears nothing", async () => {
    const smtp: TestSmtp = await startSmtp();
    cleanups.push(() => smtp.stop());
    const hookA = receiver();
    const hookB = receiver();
    const a = await open("postgres");
    const b = await open("postgres");
    const [slugA, slugB] = [await slugOf(a), await slugOf(b)];
    const clock = { t: Date.parse("2026-12-02T08:00:00Z") };
    const settingsA = {
      recipients: ["it@tenant-a.example"],
      smtp: { host: "127.0.0.1", port: smtp.port, security: "starttls", from: "kontobro@example.com", ca_file: smtp.caFile },
      webhook: { url: hookA.url },
    };
    const settingsB = { recipients: ["it@tenant-b.example"], webhook: { url: hookB.url } };
    // Worker 1 and worker 2 each run both tenants' notifiers.
    const [a2, b2] = [await a.worker(), await b.worker()];
    const notifiers = [
      notifierOn(a.storage, slugA, settingsA, clock),
      notifierOn(a2, slugA, settingsA, clock),
      notifierOn(b.storage, slugB, settingsB, clock),
      notifierOn(b2, slugB, settingsB, clock),
    ];

    await needsAction(a, 7001);
    // While another worker's round holds A's round turn (its row locked until that round commits), a worker's round
    // of A skips: nothing is synced or composed.
    await a.storage.run("INSERT INTO settings (name, value) VALUES ('notifier_round', '') ON CONFLICT (name) DO NOTHING");
    await a2.transaction(async (round) => {
      expect(await round.lockForUpdate("SELECT name FROM settings WHERE name = 'notifier_round' FOR UPDATE")).toBe(1);
      await notifiers[0]!.tick();
      expect(await a.storage.all("SELECT id FROM alerts")).toEqual([]);
    });
    // Every worker's rounds at once, again and again (within min_interval_minutes: no second notice is due).
    for (let round = 0; round < 4; round++) {
      await Promise.all(notifiers.map((n) => n.tick()));
      clock.t += 1000;
    }

    expect(hookA.bodies.length).toBe(1);
    expect(smtp.mails.length).toBe(1);
    expect(hookB.bodies).toEqual([]);
    const hook = JSON.parse(hookA.bodies[0]!);
    expect(hook).toMatchObject({ type: "kontobro.notice", target: "eco", statusPage: `https://kontobro.example.com/t/${slugA}/` });
    expect(hook.problems.map((p: any) => p.what)).toEqual(["customer 7001"]);
    const mail = smtp.mails[0]!;
    expect(mail.envelopeTo).toEqual(["it@tenant-a.example"]);
    expect(mail.headers.subject).toBe("[kontobro] eco: customer 7001 needs action");
    expect(mail.body).toContain(`https://kontobro.example.com/t/${slugA}/`);
    // A's rows: one alert, one notice per channel, both sent once; B's runners see none of them, and store none.
    expect(await a.storage.all("SELECT kind, subject FROM alerts")).toEqual([{ kind: "delivery", subject: "customer:7001" }]);
    expect(await a2.all("SELECT channel, status, attempts FROM notifications ORDER BY channel")).toEqual([
      { channel: "email", status: "sent", attempts: 1 },
      { channel: "webhook", status: "sent", attempts: 1 },
    ]);
    for (const runner of [b.storage, b2]) {
      expect(await runner.all("SELECT id FROM alerts")).toEqual([]);
      expect(await runner.all("SELECT id FROM notifications")).toEqual([]);
    }
  }, 60_000);

  /** The tenant's work as two workers start it (tenant-runtime.ts), from a stored configuration with a target on `sandbox`. */
  async function runTenant(tenant: EngineStorage, slug: string, sandboxUrl: string, grant: string, hookUrl: string) {
    const id = (await tenant.storage.get<{ id: number }>("SELECT CAST(current_setting('kontobro.tenant') AS INTEGER) AS id"))!.id;
    const stored = {
      targets: [
        {
          name: "books",
          kind: "economic",
          rest_url: sandboxUrl,
          projects_url: `${sandboxUrl}/projectsapi/v1.1.0`,
          app_secret_token: "demo-app-secret",
          agreement_grant_token: grant,
          requests_per_second: 0,
        },
      ],
      notifications: { check_interval_seconds: 0.05, webhook: { url: hookUrl } },
    };
    const row = { id, slug, name: slug, state: "active" as const, config: stored, targets: [], createdAt: 1, updatedAt: 1 };
    const runtimes = [];
    for (const runner of [tenant.storage, await tenant.worker()]) {
      const deps = { config, workerId: tenant.workerOf(runner)!, epoch: "e1", metrics: new Metrics(), log: silentLogger };
      runtimes.push(await startTenantRuntime(row, runner, deps));
    }
    return runtimes;
  }

  test("the tenant's runtime on two workers: a project the target refuses is told once, from the tenant's stored [notifications]", async () => {
    const sandbox = await startEconomicSandbox({ port: 0 });
    cleanups.push(() => sandbox.stop());
    const hook = receiver();
    const tenant = await open("postgres");
    const slug = await slugOf(tenant);
    const runtimes = await runTenant(tenant, slug, sandbox.url, "demo-agreement-grant", hook.url);
    const parsed = parseEvents([customerEvent(8001), projectEvent("P-300" as any, 8001)]);
    if (!parsed.ok) throw new Error("fixture");
    await runtimes[1]!.intake.submit(parsed.events);
    await waitFor("the notice", async () => hook.bodies.length > 0, 30_000);
    await waitFor(
      "marked sent",
      async () => (await tenant.storage.all("SELECT id FROM notifications WHERE status = 'pending'")).length === 0,
    );
    for (const r of runtimes) await r.stop();
    expect(hook.bodies.length).toBe(1);
    const notice = JSON.parse(hook.bodies[0]!);
    expect(notice).toMatchObject({
      target: "books",
      targetTitle: "Visma e-conomic",
      statusPage: `https://kontobro.example.com/t/${slug}/`,
    });
    expect(notice.problems.map((p: any) => p.what)).toEqual(["project P-300"]);
  }, 60_000);

  test("a target refusing the tenant's credentials is told to that tenant, and the refusal is the tenant's own", async () => {
    const sandbox = await startEconomicSandbox({ port: 0 });
    cleanups.push(() => sandbox.stop());
    const hook = receiver();
    const tenant = await open("postgres");
    const other = await open("postgres");
    const slug = await slugOf(tenant);
    const runtimes = await runTenant(tenant, slug, sandbox.url, "revoked-grant", hook.url);
    const parsed = parseEvents([customerEvent(8002)]);
    if (!parsed.ok) throw new Error("fixture");
    await runtimes[0]!.intake.submit(parsed.events);
    await waitFor(
      "the credentials notice",
      async () => hook.bodies.some((b) => JSON.parse(b).problems.some((p: any) => p.kind === "credentials")),
      30_000,
    );
    for (const r of runtimes) await r.stop();
    const told = hook.bodies.flatMap((b) => JSON.parse(b).problems.map((p: any) => [p.kind, p.what]));
    expect(told).toContainEqual(["credentials", "the credentials"]);
    expect(
      (await tenant.storage.all<{ name: string }>("SELECT name FROM settings WHERE name LIKE 'credentials:%'")).map((r) => r.name),
    ).toEqual(["credentials:books"]);
    expect(await other.storage.all("SELECT name FROM settings WHERE name LIKE 'credentials:%'")).toEqual([]);
  }, 60_000);

  test("a worker that dies mid-send: its notice is not sent by another worker during the lease, and is sent after it", async () => {
    const hook = receiver({ hold: true });
    const tenant = await open("postgres");
    const slug = await slugOf(tenant);
    const clock = { t: Date.parse("2026-12-02T08:00:00Z") };
    // The send waits for the receiver far longer than the test: the first worker's round never ends by itself.
    const settings = { webhook: { url: hook.url, timeout_ms: 3_600_000 } };
    const [w1, w2] = [await tenant.worker(), await tenant.worker()];
    const dying = notifierOn(w1, slug, settings, clock);
    const survivor = notifierOn(w2, slug, settings, clock);

    await needsAction(tenant, 7002);
    void dying.tick(); // composes, claims the notice and sends it: the receiver holds the request, the worker "dies"
    await waitFor("the first worker's send", async () => hook.bodies.length === 1);
    const row = () =>
      w2.get<{ status: string; attempts: number; nextAt: number }>("SELECT status, attempts, next_attempt_at AS nextAt FROM notifications");
    expect((await row())!.status).toBe("pending");

    // While the lease runs, the other worker's rounds send nothing.
    await survivor.tick();
    clock.t += noticeLeaseMs(NotificationsConfig.parse(settings)) - 1;
    await survivor.tick();
    expect(hook.bodies.length).toBe(1);

    // The lease has run out: the other worker sends it (at least once), and it is marked sent.
    clock.t += 2;
    await survivor.tick();
    expect(hook.bodies.length).toBe(2);
    expect(hook.bodies[1]).toBe(hook.bodies[0]!);
    expect(await row()).toMatchObject({ status: "sent", attempts: 1 });

    // The dead worker's late answer changes nothing and sends nothing more.
    hook.release();
    await survivor.tick();
    expect(hook.bodies.length).toBe(2);
    expect(await row()).toMatchObject({ status: "sent", attempts: 1 });
  }, 60_000);
});

test("hosted alerts link the tenant's page on [http] public_url, else on the listening address", async () => {
  const { tenantStatusPageUrl } = await import("../agent/notify/index.ts");
  const n = NotificationsConfig.parse({});
  expect(tenantStatusPageUrl(n, { host: "127.0.0.1", port: 8787, public_url: "https://k.example.com" }, "acme")).toBe(
    "https://k.example.com/t/acme/",
  );
  expect(tenantStatusPageUrl(n, { host: "127.0.0.1", port: 8787, public_url: "https://k.example.com/base/" }, "acme")).toBe(
    "https://k.example.com/base/t/acme/",
  );
  expect(tenantStatusPageUrl(n, { host: "10.0.0.5", port: 9000 }, "acme")).toBe("http://10.0.0.5:9000/t/acme/");
  const own = NotificationsConfig.parse({ status_page_url: "https://status.acme.example/" });
  expect(tenantStatusPageUrl(own, { host: "127.0.0.1", port: 8787, public_url: "https://k.example.com/" }, "acme")).toBe(
    "https://status.acme.example/",
  );
});
