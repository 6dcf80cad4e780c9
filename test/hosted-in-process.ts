// Hosted work in the test's own process, for the tests that need no worker process (test/hosted-process.ts starts
// those): a real PostgreSQL server per test file, the storage a worker opens on it, the e-conomic sandbox on loopback,
// and the tenant runtimes a test starts as a hosted worker does (agent/hosted/tenant-runtime.ts), all stopped after
// the file. A test file calls hostedInProcess() at its top level and skips its tests when `unavailable` says why.
import { afterAll, beforeAll } from "bun:test";
import { startEconomicSandbox, type StartedEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { AgentConfig } from "../agent/config.ts";
import { openPostgres, type PostgresStorage } from "../agent/db/pg/open.ts";
import { startTenantRuntime, type TenantRuntime } from "../agent/hosted/tenant-runtime.ts";
import { parseEvents, type ValidEvent } from "../agent/intake.ts";
import { silentLogger } from "../agent/log.ts";
import { Metrics } from "../agent/metrics.ts";
import type { Tenant } from "../agent/tenants/store.ts";
import { customerEvent } from "./helpers.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

export interface HostedInProcess {
  /** Why PostgreSQL cannot run here (the file's tests are skipped), or null. */
  unavailable: string | null;
  server: PgServer;
  storage: PostgresStorage;
  sandbox: StartedEconomicSandbox;
  /** The tenant's runtime as a hosted worker starts it, on this file's storage (`config`: kontobro.toml's keys). */
  start(tenant: Tenant, workerId: number, epoch: string, config?: Record<string, unknown>): Promise<TenantRuntime>;
}

export function hostedInProcess(what: string): HostedInProcess {
  const unavailable = pgUnavailable();
  if (unavailable) console.warn(`${what} skipped: ${unavailable}`);
  const runtimes: TenantRuntime[] = [];
  const hosted = {
    unavailable,
    async start(tenant, workerId, epoch, config = {}) {
      const runtime = await startTenantRuntime(tenant, hosted.storage.runner(tenant.id), {
        config: AgentConfig.parse(config),
        workerId,
        epoch,
        metrics: new Metrics(),
        log: silentLogger,
      });
      runtimes.push(runtime);
      return runtime;
    },
  } as HostedInProcess;
  beforeAll(async () => {
    if (unavailable) return;
    hosted.server = await startPgServer();
    hosted.storage = await openPostgres(hosted.server.url, { max: 6 });
    hosted.sandbox = await startEconomicSandbox({ port: 0 });
  }, 120_000);
  afterAll(async () => {
    for (const r of runtimes) await r.stop();
    await hosted.sandbox?.stop();
    await hosted.storage?.close();
    await hosted.server?.stop();
  });
  return hosted;
}

/** An e-conomic target on `sandboxUrl`, paused: no dispatcher of a runtime claims in the background. */
export const pausedEconomicTarget = (sandboxUrl: string, name: string, grant = "demo-agreement-grant") => ({
  name,
  kind: "economic",
  rest_url: sandboxUrl,
  projects_url: `${sandboxUrl}/projectsapi/v1.1.0`,
  app_secret_token: "demo-app-secret",
  agreement_grant_token: grant,
  requests_per_second: 0,
  paused: true,
});

/** Customers' events as intake takes them. */
export function customerEvents(...numbers: number[]): ValidEvent[] {
  const parsed = parseEvents(numbers.map((n) => customerEvent(n)));
  if (!parsed.ok) throw new Error("fixture");
  return parsed.events;
}
