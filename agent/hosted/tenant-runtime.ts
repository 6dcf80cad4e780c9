// One tenant's work on this worker (hosted mode, issue 17): its targets from the stored configuration, their
// connectors, one outbox whose leases carry this worker's id, a dispatcher per target, an intake writer, and its pulls
// (scheduler, inbox, PSA webhook deliverer from the tenant's own [psa], the targets' webhook tokens), and master data
// per entity where a target's connector keeps it (agent/master/: its pushes and pulls of customers and products). Every
// statement runs through the tenant's runner, so row-level security holds it to the tenant's rows. Any number of
// workers run the same tenant at once: claims, the (tenant, target) unit lock and the intake_writer lock make them
// take turns where it matters (agent/db/pg/README.md §6).
import { randomUUID } from "node:crypto";
import { createConnectors } from "../agent.ts";
import { tenantCredentialStore } from "../credentials.ts";
import { lateAnswerWaitOf, type AgentConfig, type TargetConfig } from "../config.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import { Dispatcher } from "../dispatcher.ts";
import { IntakeUnavailable, IntakeWriter } from "../intake.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { Entity } from "../model.ts";
import { masterSyncFor, withMasterGuard } from "../master/index.ts";
import { Outbox } from "../outbox.ts";
import { createPulls, type PullsRuntime } from "../pulls/index.ts";
import { recordSource } from "../record-source.ts";
import { breakerPolicy, TargetStateStore } from "../target-state.ts";
import { loadTenantConfig } from "../tenants/config.ts";
import { exportSettings, type ExportSettings } from "../exports/config.ts";
import { deliverOnStart } from "../exports/deliver.ts";
import type { Tenant } from "../tenants/store.ts";
import { CredentialsWatch } from "../notify/credentials.ts";
import { QueueProgressWatch } from "../queue-progress.ts";
import type { WorkBoard } from "../running-work.ts";
import { liveWorkerIds, sqlWorkBoard } from "../running-work-sql.ts";
import { tenantNotifier } from "./tenant-notifier.ts";
import { startStatsPrune } from "./stats-prune.ts";

/**
 * The worker's metrics as a tenant's dispatchers use them, noting each target the tenant pushed to (its queue watch
 * counts only those). Everything else is the worker's own Metrics.
 */
function pushesSeen(metrics: Metrics, pushed: Set<string>): Metrics {
  const seen = Object.create(metrics) as Metrics;
  seen.observePush = (target, seconds, outcome) => {
    pushed.add(target);
    metrics.observePush(target, seconds, outcome);
  };
  return seen;
}

/** A target of the tenant as this worker runs it. */
export interface RuntimeTarget {
  name: string;
  kind: string;
  /** Sending now: enabled and not paused. */
  sending: boolean;
  /** Why it is not sending (its events are queued for it all the same), or null. */
  held: string | null;
}

export interface TenantRuntime {
  tenant: { id: number; slug: string };
  /** tenants.updated_at when it started: a changed tenant is started afresh. */
  version: number;
  intake: IntakeWriter;
  /** The tenant's outbox on this worker: its claims lease nothing once the tenant's version moved on. */
  outbox: Outbox;
  targets: RuntimeTarget[];
  /** The tenant's pull jobs, inbox and PSA webhook deliverer on this worker. */
  pulls: PullsRuntime;
  /** The tenant's own [exports] settings: its exports API (/api/v1/exports) runs with them. */
  exports: ExportSettings;
  /** The database's clock as this worker knows it (RuntimeDeps.now): leases other workers compare, as the export delivery's. */
  now: () => number;
  /** Where the tenant's exports and pulls on this worker report their progress, for every worker's page to show. */
  work: WorkBoard;
  /** Wakes the tenant's dispatchers (new deliveries). */
  notify(): void;
  /** How the tenant's alerts go (each channel's description), for its page; empty without [notifications]. */
  notificationChannels: string[];
  /** Dispatchers finish or release their pushes, then what intake was given is committed. */
  stop(): Promise<void>;
}

export interface RuntimeDeps {
  config: AgentConfig;
  /** This worker's id (workers.id): the leases its outbox takes carry it. */
  workerId: number;
  /** Random per start of the worker: idempotency keys never repeat across restarts. */
  epoch: string;
  metrics: Metrics;
  log: Logger;
  /** Why this worker may send nothing now (Worker.fence: its heartbeat too old, or declared dead), or null. */
  fence?: () => string | null;
  /**
   * The database's clock as this worker knows it (Worker.now): every time other workers compare (due times, leases,
   * shared pauses, notice leases) is written and judged by it. Default Date.now.
   */
  now?: () => number;
}

/** Every connector's default request timeout. */
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** The longest a request of this target may take: its `request_timeout_ms` (every connector's setting). Pure. */
export function requestTimeoutOf(t: TargetConfig): number {
  const ms = t.settings?.request_timeout_ms;
  return typeof ms === "number" && ms > 0 ? ms : DEFAULT_REQUEST_TIMEOUT_MS;
}

/** The tenant's setting, created with `make()` the first time (the same statements as queries.ts's ensureSetting). */
async function ensureSetting(runner: SqlRunner, name: string, make: () => string): Promise<string> {
  return runner.transaction(async (tx) => {
    await tx.run(`INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING`, name, make());
    return (await tx.get<{ value: string }>(`SELECT value FROM settings WHERE name = ?1`, name))!.value;
  });
}

/**
 * Starts the tenant's work. Throws a TenantError when its stored configuration is no longer valid (nothing is
 * started then: an intake without its targets would store events that never get their deliveries).
 */
export async function startTenantRuntime(tenant: Tenant, runner: SqlRunner, deps: RuntimeDeps): Promise<TenantRuntime> {
  const { config, metrics } = deps;
  const log = deps.log.child({ tenant: tenant.slug });
  const { targets, sections } = loadTenantConfig(tenant.config);
  const enabled = targets.filter((t) => t.enabled);
  for (const t of enabled) {
    if (t.paused) log.warn("target is paused: events are queued for it but not sent", { target: t.name });
    // A push passes this worker's fence (agent/db/pg/workers.ts) until its last heartbeat is dead_after / 2 old; a
    // request let through then must land before the others take the lease back at dead_after, or their lookup may
    // miss it and create again.
    if (requestTimeoutOf(t) > config.workers.dead_after_ms / 2)
      log.warn(
        `target ${t.name} of tenant ${tenant.slug}: its request_timeout_ms (${requestTimeoutOf(t)}) is more than half of [workers] dead_after_ms (${config.workers.dead_after_ms}); if this worker freezes or loses the database just as a request leaves, another worker may look the record up before that request lands and create it again. Raise dead_after_ms to at least ${2 * requestTimeoutOf(t)} or lower the target's request_timeout_ms`,
        { target: t.name },
      );
  }
  // No SQLite database here: no per-target counters kept across restarts. OAuth tokens: the tenant's credentials rows.
  const connectors = createConnectors(enabled, log, undefined, {
    // A refresh whose transaction is lost stores its rotated tokens again, or keeps them and says so in the tenant's log.
    credentials: (target) =>
      tenantCredentialStore(runner, target, Date.now, { log, signIn: `kontobro tenant connect ${tenant.slug} ${target}` }),
    signIn: (target) => `kontobro tenant connect ${tenant.slug} ${target}`,
  });
  // Watched: a 401 marks the target's credentials refused (the tenant's settings rows), a success working again: alerts.
  const credentials = new CredentialsWatch(runner, log, deps.now);
  await credentials.reconcile(enabled);
  for (const [name, c] of credentials.wrap(connectors, (n) => enabled.find((t) => t.name === n)?.settings)) connectors.set(name, c);
  // Every time stored for other workers to compare (due times, leases, pauses) is on the database's clock.
  const now = deps.now ?? Date.now;
  // A claim leases nothing once the tenant's configuration is no longer the one this runtime runs: a target may point
  // at another account now, and this runtime is about to be replaced. The tenant's row is read KEY SHARE, so a change
  // (which locks it FOR UPDATE first) waits for a claim that read the old version to commit, then takes its leases back;
  // SKIP LOCKED: a change under way is not waited for (the round may hold delivery rows the change takes back) but
  // claims nothing, as after it.
  const outbox = new Outbox(runner, now, config.dispatch.missing_record_grace_minutes * 60_000, {
    leaseOwner: deps.workerId,
    claimGuard: async (tx) => {
      const row = await tx.get<{ version: number }>(
        `SELECT updated_at AS version FROM tenants WHERE id = ?1 FOR KEY SHARE SKIP LOCKED`,
        tenant.id,
      );
      if (row?.version === tenant.updatedAt) return true;
      log.debug("claim skipped: the tenant's configuration changed; this runtime is being replaced", { version: tenant.updatedAt });
      return false;
    },
  });
  const installationId = await ensureSetting(runner, "installation_id", () => randomUUID());
  const exports = exportSettings(sections.exports);
  // Its exports and pulls report progress to running_work (any worker's page shows them); its queues' bursts are
  // counted by the workers that push them (agent/queue-progress.ts: the tenant's settings rows, shared).
  const work = sqlWorkBoard(runner, { worker: deps.workerId, liveWorkers: liveWorkerIds });
  const pushed = new Set<string>();
  // Files of an export that committed just before a worker stopped are written to the tenant's output_dir now (on
  // this worker's machine: README, hosted mode); the files waiting are locked, so two workers never write one twice.
  await deliverOnStart(runner, exports, log, now);
  const targetState = new TargetStateStore(runner);
  const records = recordSource(runner);
  const dispatchers = new Map<string, Dispatcher>();
  for (const t of enabled) {
    if (t.paused) continue;
    const connector = connectors.get(t.name)!;
    dispatchers.set(
      t.name,
      new Dispatcher(
        t.name,
        // Customers and products go through master per entity where the connector offers master data (agent/master/),
        // on the tenant's runner: a target master's version found at a first match goes to the tenant's inbox.
        withMasterGuard(connector, masterSyncFor(runner, t.name, connector, { now })),
        outbox,
        {
          concurrency: config.dispatch.concurrency,
          leaseMs: config.dispatch.lease_seconds * 1000,
          backoff: { baseMs: config.dispatch.retry_base_ms, maxMs: config.dispatch.retry_max_ms },
          idlePollMs: config.dispatch.idle_poll_ms,
          // Unique per tenant, installation, start of this worker and target: no two pushes share a key.
          keyPrefix: `kontobro-${installationId}-${deps.epoch}-${deps.workerId}-${t.name}`,
          breaker: breakerPolicy(config.dispatch),
          targetState,
          // Other workers run this target too: a breaker probe out may be theirs (a dead worker's is freed by the
          // recovery of its leases, agent/db/pg/dead-workers.ts).
          soleWorker: false,
          // Pushes send nothing while this worker is fenced; a lease taken back while its push runs (released at a
          // stop, or recovered from a worker declared dead) is held for the longest a write of it may still land, the
          // target's late_answer_wait_ms (agent/db/pg/README.md §6).
          ...(deps.fence ? { fence: deps.fence } : {}),
          now,
          lateAnswerWaitMs: lateAnswerWaitOf(t),
        },
        log.child({ target: t.name }),
        pushesSeen(metrics, pushed),
        records,
      ),
    );
  }
  const notify = () => {
    for (const d of dispatchers.values()) d.notify();
  };
  // Deliveries are made for every enabled target that takes the entity, sending or paused: paused ones wait.
  const targetsByEntity = new Map<Entity, string[]>();
  const targetsFor = (entity: Entity) => {
    let names = targetsByEntity.get(entity);
    if (!names) targetsByEntity.set(entity, (names = [...connectors].filter(([, c]) => c.supports(entity)).map(([n]) => n)));
    return names;
  };
  // A group of events is stored only while the tenant's configuration is the one this runtime runs: a change commits
  // under the tenant's intake turn (TenantStore.setConfig), so a group after it would make deliveries for the old
  // targets; it is refused with 503, sent again, and taken by the new runtime.
  const intake = new IntakeWriter(outbox, targetsFor, notify, now, async (tx) => {
    const row = await tx.get<{ version: number }>(`SELECT updated_at AS version FROM tenants WHERE id = ?1`, tenant.id);
    if (row?.version !== tenant.updatedAt)
      throw new IntakeUnavailable(
        `Tenant "${tenant.slug}" was changed or removed while these events were on their way; nothing was stored.`,
        1,
      );
  });
  intake.observer = (results) => metrics.countStored(results);
  // Pulls of the targets that run here. Each schedule slot runs once across all workers (the first to record its run
  // in job_runs runs it), a webhook hint or "run now" runs on the worker that got it unless a run is under way anywhere.
  const pulls = await createPulls({
    db: null,
    storage: runner,
    soleProcess: false,
    worker: deps.workerId,
    now,
    config: { agent: config.agent, pulls: config.pulls, psa: sections.psa },
    targets: enabled,
    connectors,
    log,
    work,
  });
  try {
    await pulls.start();
  } catch (e) {
    await pulls.stop();
    throw e;
  }
  for (const d of dispatchers.values()) d.start();
  const queueProgress = new QueueProgressWatch(runner, [...dispatchers.keys()], log.child({ component: "queue-progress" }), now, {
    shared: true,
    active: (target) => pushed.delete(target),
  });
  queueProgress.start();
  // The tenant's alerts from its own [notifications]; every worker runs them, one round at a time per tenant.
  const notifier = tenantNotifier({
    tenant,
    runner,
    notifications: sections.notifications,
    targets: enabled,
    connectors,
    pulls: pulls.scheduler.jobs,
    psaWebhook: Boolean(sections.psa?.webhook_url),
    config,
    log,
    now: deps.now,
  });
  notifier?.start();
  // Its delivery statistics' hours older than the charts show, as the SQLite agent's retention prunes them.
  const statsPrune = startStatsPrune(runner, { retentionDays: config.agent.retention_days, log, now });
  log.info("tenant started", { sending: [...dispatchers.keys()] });
  return {
    tenant: { id: tenant.id, slug: tenant.slug },
    version: tenant.updatedAt,
    intake,
    outbox,
    targets: enabled.map((t) => ({
      name: t.name,
      kind: t.kind,
      sending: dispatchers.has(t.name),
      held: t.paused ? "paused in the tenant's configuration" : null,
    })),
    pulls,
    exports,
    now,
    work,
    notify,
    notificationChannels: Object.values(notifier?.senders ?? {}).map((sender) => sender!.describe()),
    async stop() {
      queueProgress.stop();
      await Promise.all([...[...dispatchers.values()].map((d) => d.stop(config.dispatch.shutdown_grace_ms)), pulls.stop()]);
      await notifier?.stop();
      await statsPrune.stop();
      await intake.close();
      log.info("tenant stopped");
    },
  };
}
