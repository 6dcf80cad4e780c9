// `kontobro run` on PostgreSQL (issue 17): one worker of a hosted installation. Any number of them, on any number
// of machines, share one database and serve all its active tenants: each registers in `workers` (heartbeat on the
// database's clock, recovery of dead workers' leases), runs every active tenant (agent/hosted/tenant-runtime.ts,
// agent/hosted/fleet.ts) and answers any tenant's requests (agent/hosted/app.ts).
import { randomBytes } from "node:crypto";
import { ConfigError, type AgentConfig } from "../config.ts";
import { describeIndexStep } from "../db/pg/index-steps.ts";
import { describeLockTimeout, describeLockWait, describeSlowStep } from "../db/pg/migrate-report.ts";
import type { PostgresStorage } from "../db/pg/open.ts";
import { RestoreWatch } from "../db/pg/restore-watch.ts";
import { Worker, workerTimingProblem } from "../db/pg/workers.ts";
import type { ReadinessCheck } from "../http/health.ts";
import { listen } from "../http/listen.ts";
import type { Logger } from "../log.ts";
import { Metrics } from "../metrics.ts";
import { openStorage } from "../storage.ts";
import { adminToken } from "../tenants/admin-token.ts";
import { TENANTS_CHANNEL, TenantStore } from "../tenants/store.ts";
import { VERSION } from "../version.ts";
import { createHostedApp } from "./app.ts";
import { shareTargetRates } from "./rate-share.ts";
import { TenantFleet } from "./fleet.ts";
import { startTenantRuntime } from "./tenant-runtime.ts";

export interface HostedWorker {
  url: string;
  /** workers.id */
  id: number;
  fleet: TenantFleet;
  /** Resolves with the exit code once the worker has ended by itself (declared dead: 1, after stopping cleanly). */
  ended: Promise<number>;
  stop(): Promise<void>;
}

/** `signal`: aborted (SIGTERM), an upgrade waiting for a table lock or another's migration stops (MigrationStopped). */
export async function startHostedWorker(config: AgentConfig, log: Logger, signal?: AbortSignal): Promise<HostedWorker> {
  const timing = workerTimingProblem(config.workers.heartbeat_ms, config.workers.dead_after_ms);
  if (timing) throw new ConfigError([`workers: ${timing}`]);
  const admin = adminToken(config.admin);
  const storage = await openStorage(config, {
    connection: {
      application_name: "kontobro-worker",
      // A transaction of ours waits only for its own statements, or for one OAuth token request under its tenant's
      // credentials row lock (agent/credentials.ts: request_timeout_ms stays under this). One left open longer is a
      // process frozen or cut off mid-transaction: the server ends it before the others declare the worker dead, so
      // its row locks never hold up their recovery of its leases (nor anyone's claims).
      idle_in_transaction_session_timeout: Math.floor(config.workers.dead_after_ms / 2),
    },
    // An upgrade on a large database may build indexes for minutes (CONCURRENTLY: the workers already running go on).
    migrate: {
      signal,
      onWait: (wait) => {
        // The first time as info; still waiting a minute later (and every minute), as a warning.
        const { msg, fields } = describeLockWait(wait);
        if (wait.waitedMs < 1_000) log.info(msg, fields);
        else log.warn(msg, fields);
      },
      onStep: (step) => {
        const { msg, index } = describeIndexStep(step);
        log.info(msg, { index });
      },
      // Every minute while a step runs: a concurrent build waits for transactions open on its table (a psql session
      // left in one waits forever), and the new workers listen only once the steps are done.
      onSlowStep: (report) => {
        const { msg, fields } = describeSlowStep(report);
        log.warn(msg, fields);
      },
      // Each time a migration gave up waiting for a lock (a long transaction on its table) and was rolled back.
      onLockTimeout: (report) => {
        const { msg, fields } = describeLockTimeout(report);
        log.warn(msg, fields);
      },
    },
  });
  if (storage.engine !== "postgres") throw new Error("startHostedWorker needs PostgreSQL storage ([storage] url)");
  try {
    return await startOn(storage, config, log, admin);
  } catch (e) {
    await storage.close().catch(() => {});
    throw e;
  }
}

async function startOn(storage: PostgresStorage, config: AgentConfig, log: Logger, admin: string | null): Promise<HostedWorker> {
  let endWith: (code: number) => void = () => {};
  const ended = new Promise<number>((resolve) => (endWith = resolve));
  let stop: () => Promise<void> = async () => {};
  let lost = false;
  // The heartbeat has a connection of its own: a main pool busy with slow work (token refreshes waiting on a slow
  // identity server, a large export) must not keep it from the database until the others declare this worker dead.
  const worker = await Worker.register(storage.separatePool(1), {
    heartbeatMs: config.workers.heartbeat_ms,
    deadAfterMs: config.workers.dead_after_ms,
    // Declared dead (silent longer than dead_after_ms: a pause, a partition): the others have taken back its leases,
    // and its outcomes no longer land. It stops and exits 1 rather than registering anew in this process: a fresh
    // start (the service manager restarts it) is the one tested way to come back, with nothing of the old run kept.
    onLost: () => {
      lost = true;
      log.error(
        "this worker was declared dead by the others (no heartbeat reached the database for longer than workers.dead_after_ms); its leases were taken back. Stopping and exiting 1 so the service manager starts it afresh",
        { worker: worker.id, deadAfterMs: config.workers.dead_after_ms },
      );
      void stop().then(
        () => endWith(1),
        () => endWith(1),
      );
    },
    onBeat: (recovered) => {
      if (recovered.workers.length > 0) log.warn("took back the leases of workers that stopped answering", { ...recovered });
      shareRates();
    },
    onError: (e) => log.warn("heartbeat failed; trying again at the next beat", { worker: worker.id, error: e }),
  });
  // Each target's request rate is shared by the live workers (agent/hosted/rate-share.ts), counted at every beat.
  let liveWorkers = await shareTargetRates(storage.client, config.workers.dead_after_ms);
  function shareRates() {
    shareTargetRates(storage.client, config.workers.dead_after_ms).then(
      (n) => {
        if (n !== liveWorkers) log.info("live workers changed: each takes its share of every target's request rate", { workers: n });
        liveWorkers = n;
      },
      (e) => log.warn("could not count the live workers; the share of the targets' request rates stays as it was", { error: e }),
    );
  }
  const metrics = new Metrics();
  const tenants = new TenantStore(storage.client);
  // Before any tenant runs: a restore or move of the database is applied first (agent/db/pg/restore-watch.ts).
  const history = new RestoreWatch(storage.client, log);
  try {
    await history.check();
  } catch (e) {
    await worker.stop().catch(() => {});
    throw e;
  }
  // Random per start, and new after a restore (delivery ids repeat then): part of every idempotency key.
  let epoch = randomBytes(4).toString("hex");
  const fleet = new TenantFleet({
    listTenants: () => tenants.list(),
    runner: (id) => storage.runner(id),
    start: (tenant, runner) =>
      startTenantRuntime(tenant, runner, {
        config,
        workerId: worker.id,
        epoch,
        metrics,
        log,
        fence: () => worker.fence(),
        now: () => worker.now(),
      }),
    log,
  });
  worker.start();
  await fleet.refresh();
  const refresher = setInterval(() => void fleet.refresh(), config.workers.tenants_refresh_ms);
  // A change of a tenant on any worker (its admin API, `kontobro tenant`) is announced at its commit: refreshed at once,
  // and again whenever the listening connection is back (what was announced while it was down is lost); the periodic
  // refresh remains the fallback.
  const announcements = await storage.client.listen(
    TENANTS_CHANNEL,
    () => void fleet.refresh(),
    () => void fleet.refresh(),
  );
  let looking = false;
  const lookAtHistory = async () => {
    if (looking || lost) return;
    looking = true;
    try {
      if (await history.check()) {
        epoch = randomBytes(4).toString("hex");
        await fleet.restartAll();
      }
    } catch (e) {
      log.warn("could not compare the database with its history; trying again at the next heartbeat", { worker: worker.id, error: e });
    } finally {
      looking = false;
    }
  };
  const watcher = setInterval(() => void lookAtHistory(), config.workers.heartbeat_ms);

  const readiness = async (): Promise<ReadinessCheck[]> => {
    try {
      const [row] = (await storage.client.unsafe("SELECT count(*)::integer AS n FROM workers WHERE id = $1", [worker.id])) as {
        n: number;
      }[];
      const registered: ReadinessCheck =
        row!.n > 0 && !lost
          ? {
              name: "worker",
              ok: true,
              message: `Registered as worker ${worker.id}; running ${fleet.size} tenant(s); ${liveWorkers} live worker(s) share each target's request rate.`,
            }
          : {
              name: "worker",
              ok: false,
              message: `Worker ${worker.id} is no longer registered: it was declared dead and is stopping.`,
              hint: "It exits and the service manager starts it afresh.",
            };
      return [{ name: "database", ok: true, message: "The database answers." }, registered];
    } catch (e) {
      return [
        {
          name: "database",
          ok: false,
          message: `The database does not answer: ${(e as Error).message}`,
          hint: "Check that the PostgreSQL server runs and that this machine reaches it ([storage] url).",
        },
      ];
    }
  };

  const app = createHostedApp({
    version: VERSION,
    startedAt: Date.now(),
    workerId: worker.id,
    maxBodyBytes: config.http.max_body_bytes,
    maxWebhookBodyBytes: config.pulls.webhook_max_body_bytes,
    metrics,
    tenants,
    fleet,
    runner: (id) => storage.runner(id),
    readiness,
    admin: admin ? { token: admin, tenants } : null,
  });
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = listen(app, config.http, " (each worker on one machine needs its own)");
  } catch (e) {
    clearInterval(refresher);
    void announcements.unlisten().catch(() => {});
    clearInterval(watcher);
    await fleet.stop();
    await worker.stop();
    throw e;
  }
  const url = `http://${config.http.host.includes(":") ? `[${config.http.host}]` : config.http.host}:${server.port}`;
  log.info("kontobro worker started", { version: VERSION, url, worker: worker.id, storage: storage.location, tenants: fleet.size });

  let stopping: Promise<void> | null = null;
  stop = () =>
    (stopping ??= (async () => {
      log.info("stopping: finishing pushes in flight", { worker: worker.id });
      server.stop(false);
      clearInterval(refresher);
      void announcements.unlisten().catch(() => {});
      clearInterval(watcher);
      // Dispatchers finish or release their pushes; intake commits what it was given.
      await fleet.stop();
      server.stop(true);
      // Its row goes, and a lease still held goes back to pending, to be looked up before any new create.
      await worker.stop();
      await storage.close();
      log.info("stopped", { worker: worker.id });
    })());
  return { url, id: worker.id, fleet, ended, stop: () => stop() };
}
