// The pull side of a running agent: inbox, scheduler, PSA webhook deliverer and the targets' webhook
// tokens, created from the config and wired into agent.ts (SQLite) and a hosted tenant's runtime (PostgreSQL,
// agent/hosted/tenant-runtime.ts) with a few lines. Everything it keeps goes through the SqlRunner.
import { randomBytes } from "node:crypto";
import type { Connector } from "../../connectors/contract.ts";
import { connectorKinds } from "../../connectors/registry.ts";
import type { AgentConfig, TargetConfig } from "../config.ts";
import type { Db } from "../db/index.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import { Inbox } from "./inbox.ts";
import { registerSecret, type Logger } from "../log.ts";
import { PsaDeliverer } from "./psa-webhook.ts";
import { runPull, type JobRef } from "./runner.ts";
import type { Trigger } from "../states.ts";
import type { WorkBoard } from "../running-work.ts";
import { Scheduler, type ScheduledJob } from "./scheduler.ts";
import { storedSetting, webhookTokenSetting } from "./settings.ts";
import { VERSION } from "../version.ts";

export interface WebhookTarget {
  name: string;
  kind: string;
  token: string;
  /** Streams to pull now for a call with these (lower-cased) query parameters. */
  streamsFor(params: Record<string, string>): string[];
}

export interface PullsRuntime {
  inbox: Inbox;
  /** Where the inbox, cursors and runs are kept (the status page and API read the runs from it). */
  storage: SqlRunner;
  scheduler: Scheduler;
  deliverer: PsaDeliverer | null;
  webhooks: WebhookTarget[];
  maxWebhookBodyBytes: number;
  /** One run of a job now, through the scheduler (so it never overlaps a scheduled run). */
  runNow(target: string, stream: string, trigger: Trigger): ReturnType<Scheduler["runNow"]>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The target's webhook token: generated once and kept in `settings` (the data directory's database on SQLite, the
 * tenant's rows on PostgreSQL, where every worker reads the same one; `kontobro tenant add` puts the ones it shows there).
 */
export async function webhookTokenFor(storage: SqlRunner, target: string): Promise<string> {
  const token = await storedSetting(storage, webhookTokenSetting(target), () => randomBytes(24).toString("base64url"));
  registerSecret(token);
  return token;
}

/** The pull jobs of the enabled targets whose connector can pull. */
export function pullJobs(targets: TargetConfig[], connectors: Map<string, Connector>): ScheduledJob[] {
  return targets
    .filter((t) => t.enabled && connectors.get(t.name)?.pull)
    .flatMap((t) => (t.pulls ?? []).map((p) => ({ target: t.name, stream: p.stream, cron: p.cron, timezone: p.timezone })));
}

export async function createPulls(opts: {
  /**
   * SQLite: the data directory's database (progress files). Null on PostgreSQL: no data directory is shared there.
   */
  db: Db | null;
  /** Where the inbox, cursors, runs and webhook tokens are kept. */
  storage: SqlRunner;
  /**
   * True when this process is the only one on the storage (SQLite: it holds the instance lock): runs still marked
   * running and inbox items still leased are then a dead process's, taken back at start.
   */
  soleProcess: boolean;
  /** The worker's id (workers.id) when it is not: its runs carry it, so its recovery can end them if it dies. */
  worker?: number;
  /** The clock stored times are written and judged by (a hosted worker: the database's, Worker.now). Default Date.now. */
  now?: () => number;
  /** `psa` is the installation's on SQLite, the tenant's own section on PostgreSQL. */
  config: Pick<AgentConfig, "agent" | "psa" | "pulls">;
  targets: TargetConfig[];
  connectors: Map<string, Connector>;
  log: Logger;
  /** Where runs report their progress for every worker to show (a hosted tenant's running_work rows). */
  work?: WorkBoard;
}): Promise<PullsRuntime> {
  const { db, storage, config, log } = opts;
  const inbox = new Inbox(storage, opts.now);
  const psa = config.psa;
  const deliverer =
    psa.webhook_url && psa.webhook_secret
      ? new PsaDeliverer(
          inbox,
          {
            url: psa.webhook_url,
            secret: psa.webhook_secret,
            batchSize: psa.batch_size,
            maxBodyBytes: psa.max_body_bytes,
            timeoutMs: psa.timeout_ms,
            retryBaseMs: psa.retry_base_ms,
            retryMaxMs: psa.retry_max_ms,
            pollMs: psa.poll_ms,
            userAgent: `kontobro/${VERSION}`,
          },
          log.child({ component: "psa-webhook" }),
          opts.now,
        )
      : null;
  if (psa.webhook_secret) registerSecret(psa.webhook_secret);
  const deps = {
    db,
    storage,
    inbox,
    dataDir: opts.soleProcess ? config.agent.data_dir : null,
    worker: opts.worker ?? null,
    connectors: opts.connectors,
    log: log.child({ component: "pull" }),
    onStored: () => deliverer?.notify(),
    // A page pulled with this configuration is stored only while its target's account is still the one recorded.
    targets: opts.targets,
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.work ? { work: opts.work } : {}),
  };
  const scheduler = new Scheduler(pullJobs(opts.targets, opts.connectors), {
    storage,
    log: log.child({ component: "scheduler" }),
    debounceMs: config.pulls.webhook_debounce_ms,
    run: (job: JobRef, trigger: Trigger, slot: number | null) => runPull(deps, job, trigger, slot),
  });
  const webhooks: WebhookTarget[] = [];
  for (const t of opts.targets.filter((t) => t.enabled && connectorKinds[t.kind]?.webhookStreams))
    webhooks.push({
      name: t.name,
      kind: t.kind,
      token: await webhookTokenFor(storage, t.name),
      streamsFor: (params) => connectorKinds[t.kind]!.webhookStreams!(params),
    });
  return {
    inbox,
    storage,
    scheduler,
    deliverer,
    webhooks,
    maxWebhookBodyBytes: config.pulls.webhook_max_body_bytes,
    runNow: (target, stream, trigger) => scheduler.runNow(target, stream, trigger),
    async start() {
      if (opts.soleProcess) await inbox.releaseAllLeases();
      await scheduler.start();
      deliverer?.start();
    },
    async stop() {
      await scheduler.stop(config.pulls.shutdown_grace_ms);
      await deliverer?.stop();
    },
  };
}
