// A hosted worker judges and writes stored times by the database's clock (Worker.now), not its machine's (review
// finding 5). Here the worker's machine runs an hour fast: another worker paused the target for ten more minutes (a
// Retry-After, written on the database's clock); on its own clock that pause ended fifty minutes ago, and it would
// send into the 429. Real parts: a tenant on a real PostgreSQL server (test/engines.ts), its runtime as a hosted worker
// starts it (agent/hosted/tenant-runtime.ts) from a stored configuration, the e-conomic sandbox on loopback.
import { afterAll, describe, expect, test } from "bun:test";
import { startEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { AgentConfig } from "../agent/config.ts";
import { startTenantRuntime } from "../agent/hosted/tenant-runtime.ts";
import { parseEvents } from "../agent/intake.ts";
import { silentLogger } from "../agent/log.ts";
import { Metrics } from "../agent/metrics.ts";
import { initialState, TargetStateStore } from "../agent/target-state.ts";
import { workerEngines } from "./engines.ts";
import { customerEvent, waitFor } from "./helpers.ts";

const { engines, open } = workerEngines("a hosted worker's clock");
const HOUR = 3_600_000;
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe.skipIf(!engines.includes("postgres"))("a hosted worker whose machine runs an hour fast", () => {
  test("keeps a pause another worker wrote on the database's clock, and writes due times on that clock", async () => {
    const sandbox = await startEconomicSandbox({ port: 0 });
    cleanups.push(() => sandbox.stop());
    const tenant = await open("postgres");
    const runner = tenant.storage;
    const row = (await runner.get<{ id: number; slug: string }>(
      "SELECT id, slug FROM tenants WHERE id = CAST(current_setting('kontobro.tenant') AS INTEGER)",
    ))!;
    // The database's clock, as Worker.now would tell this worker: an hour behind its machine's Date.now.
    const databaseNow = () => Date.now() - HOUR;
    await new TargetStateStore(runner).put({
      ...initialState("books", databaseNow()),
      pausedUntil: databaseNow() + 10 * 60_000,
      pauseReason: "429: Retry-After 600",
    });
    const config = {
      targets: [
        {
          name: "books",
          kind: "economic",
          rest_url: sandbox.url,
          projects_url: `${sandbox.url}/projectsapi/v1.1.0`,
          app_secret_token: "demo-app-secret",
          agreement_grant_token: "demo-agreement-grant",
          requests_per_second: 0,
        },
      ],
    };
    const runtime = await startTenantRuntime(
      { ...row, name: row.slug, state: "active", config, targets: [], createdAt: 1, updatedAt: 1 },
      runner,
      {
        config: AgentConfig.parse({ dispatch: { idle_poll_ms: 50 } }),
        workerId: tenant.workerOf(runner)!,
        epoch: "e1",
        metrics: new Metrics(),
        log: silentLogger,
        now: databaseNow,
      },
    );
    cleanups.push(() => runtime.stop());
    const parsed = parseEvents([customerEvent(7001)]);
    if (!parsed.ok) throw new Error("fixture");
    await runtime.intake.submit(parsed.events);
    const delivery = async () =>
      (await runner.get<{ status: string; attempts: number; createdAt: number; nextAttemptAt: number }>(
        "SELECT status, attempts, created_at AS createdAt, next_attempt_at AS nextAttemptAt FROM deliveries",
      ))!;
    // Written on the database's clock.
    const written = await delivery();
    expect(Math.abs(written.createdAt - databaseNow())).toBeLessThan(60_000);
    expect(Math.abs(written.nextAttemptAt - databaseNow())).toBeLessThan(60_000);
    // Still paused on the database's clock: nothing is sent while several rounds pass.
    await Bun.sleep(1_000);
    expect(await delivery()).toMatchObject({ status: "pending", attempts: 0 });
    // The pause ends on the database's clock: the customer is booked.
    const store = new TargetStateStore(runner);
    await store.put({ ...(await store.get("books")), pausedUntil: databaseNow() - 1 });
    runtime.notify();
    await waitFor("the customer booked", async () => (await delivery()).status === "done", 20_000);
  }, 60_000);
});
