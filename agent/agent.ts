// The running agent: database, outbox, one dispatcher per target, intake and the HTTP server.
import { randomBytes, randomUUID } from "node:crypto";
import type { Hono } from "hono";
import type { Connector, CredentialStore } from "../connectors/contract.ts";
import { proxySettings, useProxy } from "../connectors/http.ts";
import { connectorKinds } from "../connectors/registry.ts";
import { credentialStore, lazyCredentialStore } from "./credentials.ts";
import { masterSyncFor, withMasterGuard } from "./master/index.ts";
import type { AgentConfig, TargetConfig } from "./config.ts";
import { ConfigError, isLoopback, lateAnswerWaitOf } from "./config.ts";
import { openDatabase, type Db } from "./db/index.ts";
import { sqliteRunner } from "./db/pg/runner.ts";
import { acquireInstanceLock } from "./lock.ts";
import { Dispatcher } from "./dispatcher.ts";
import { exportSettings } from "./exports/config.ts";
import { deliverOnStart } from "./exports/deliver.ts";
import { templatesNeedingFixes } from "./exports/templates-store.ts";
import { apiNativeRoutes } from "./http/api.ts";
import { createApp } from "./http/app.ts";
import type { AppContext } from "./http/context.ts";
import { listen, type NativeRoutes } from "./http/listen.ts";
import { IntakeThread } from "./intake-thread.ts";
import { registerSecret, type Logger } from "./log.ts";
import { DiskSpaceWatch } from "./disk-space.ts";
import { durabilityProblems, intakeRefusal } from "./durability.ts";
import { Metrics } from "./metrics.ts";
import { CredentialsWatch } from "./notify/credentials.ts";
import { credentialExpiryProblems } from "./notify/expiry.ts";
import { notificationsEnabled } from "./notify/config.ts";
import { Notifier, statusPageUrl } from "./notify/index.ts";
import type { DemoMailbox } from "./notify/demo-mailbox.ts";
import { ENTITIES, type Entity } from "./model.ts";
import { Outbox } from "./outbox.ts";
import { createPulls, type PullsRuntime } from "./pulls/index.ts";
import { QueueProgressWatch } from "./queue-progress.ts";
import { startRetention } from "./retention.ts";
import { databasePath, refuseUntilOnPostgres, storageOf } from "./storage.ts";
import { ensureSetting } from "./queries.ts";
import { recordSource } from "./record-source.ts";
import { beginRun, HIGHWATER_FILE, readMarks, writeHighwater } from "./restore-sqlite.ts";
import { type AccountChoices, accountProblems, reconcileAccounts } from "./target-account.ts";
import { reconcileLookups } from "./target-lookup.ts";
import { budgetGauges, periodCounters } from "./target-counters.ts";
import { breakerPolicy, TargetStateStore } from "./target-state.ts";
import { VERSION } from "./version.ts";

export interface RunningAgent {
  url: string;
  db: Db;
  outbox: Outbox;
  intake: IntakeThread;
  metrics: Metrics;
  apiToken: string;
  connectors: Map<string, Connector>;
  /** Scheduled pulls, the inbox and its delivery to the PSA. */
  pulls: PullsRuntime;
  /** What the server answers with: the app, and the routes Bun answers before it (tests serve them on other ports too). */
  http: { app: Hono; routes: NativeRoutes };
  stop(): Promise<void>;
}

export { databasePath };
/** How often the high-water marks beside the database are refreshed (restore detection). */
const HIGHWATER_EVERY_MS = 5_000;

/** The API token: from config, else generated once and kept in the database. */
export function apiTokenFor(db: Db, config: AgentConfig): string {
  const token = config.http.api_token ?? ensureSetting(db, "api_token", () => randomBytes(24).toString("base64url"));
  registerSecret(token);
  return token;
}

/**
 * With a database, connectors get durable per-target counters (e.g. a daily call budget kept across restarts).
 * A target that signs in with OAuth (factory.oauth) gets its tokens from `opts.credentials` (a hosted tenant's, on
 * PostgreSQL, with `opts.signIn`, the command that signs it in again) or the data directory: through `db`, or
 * (commands that run without it) from `dataDir`, opened when first needed; the `masters` of kontobro.toml.
 */
export function createConnectors(
  targets: TargetConfig[],
  log: Logger,
  db?: Db,
  opts: { dataDir?: string; credentials?: (target: string) => CredentialStore; signIn?: (target: string) => string } = {},
): Map<string, Connector> {
  const map = new Map<string, Connector>();
  for (const t of targets.filter((t) => t.enabled)) {
    const factory = connectorKinds[t.kind]!;
    const dataDir = opts.dataDir;
    const credentials = !factory.oauth
      ? undefined
      : opts.credentials
        ? opts.credentials(t.name)
        : db && dataDir
          ? credentialStore(db, dataDir, t.name)
          : dataDir
            ? lazyCredentialStore(dataDir, t.name)
            : undefined;
    map.set(
      t.name,
      factory.create(t.name, t.settings, {
        log: log.child({ target: t.name }),
        ...(db ? { counters: periodCounters(db, t.name) } : {}),
        ...(credentials ? { credentials } : {}),
        ...(factory.oauth && opts.signIn ? { signIn: opts.signIn(t.name) } : {}),
        masters: t.masters ?? {},
      }),
    );
  }
  return map;
}

/** What `kontobro run` keeps running until a signal. */
export interface RunningProcess {
  url: string;
  stop(): Promise<void>;
  /** Resolves with an exit code if the process ends by itself (a hosted worker declared dead by the others). */
  ended?: Promise<number>;
}

/**
 * What `kontobro run` starts: on PostgreSQL storage a worker of the hosted installation (agent/hosted/: every active
 * tenant, beside any number of other workers), else the agent of this one installation on its SQLite file.
 */
export async function startRun(
  config: AgentConfig,
  targets: TargetConfig[],
  log: Logger,
  accounts: AccountChoices = {},
  /** Aborted by a SIGTERM while it starts: on PostgreSQL an upgrade waiting between attempts stops at once. */
  signal?: AbortSignal,
): Promise<RunningProcess> {
  if (storageOf(config).engine === "sqlite") return startAgent(config, targets, log, { accounts });
  if ((accounts.forget ?? []).length + (accounts.keep ?? []).length > 0)
    log.warn("--forget-links and --keep-links are for the SQLite agent; a tenant's are options of `kontobro tenant set`");
  if (targets.length > 0)
    log.warn(
      "[[targets]] of kontobro.toml are not used on PostgreSQL storage: each tenant's targets are its own (kontobro tenant add SLUG --file FILE)",
    );
  // PostgreSQL's modules load only when it is the storage (issue 16: idle memory).
  const { startHostedWorker } = await import("./hosted/worker.ts");
  const worker = await startHostedWorker(config, log, signal);
  // The binary starts with a reluctant JIT (scripts/build.ts); from here on the hot paths get the normal one.
  Bun.unsafe.setJITPolicy(1);
  return worker;
}

/** What only `kontobro demo` (or `kontobro run`'s options) adds to an agent. */
export interface AgentExtras {
  /** Alert mails are built and kept here, shown at /ui/demo/mail, instead of being sent. */
  mailbox?: DemoMailbox;
  /** `kontobro run --forget-links/--keep-links`: targets pointed at another account (agent/target-account.ts). */
  accounts?: AccountChoices;
}

export async function startAgent(
  config: AgentConfig,
  targets: TargetConfig[],
  log: Logger,
  extras: AgentExtras = {},
): Promise<RunningAgent> {
  // On PostgreSQL `kontobro run` starts the hosted worker instead (startRun); this agent holds a SQLite file.
  refuseUntilOnPostgres(config, "the single-installation agent (kontobro demo, and kontobro run on the SQLite file)");
  // Outbound requests to the targets (and the alert webhook) through the proxy, if any.
  useProxy(proxySettings(config.proxy));
  const lock = acquireInstanceLock(config.agent.data_dir);
  let db: Db;
  try {
    db = openDatabase(databasePath(config.agent.data_dir), { busyTimeoutMs: config.agent.busy_timeout_ms });
  } catch (e) {
    lock.release();
    throw e;
  }
  // A dispatcher round's multi-row statements (the done UPDATE, the attempts' and links' INSERTs) keep statement
  // journals; past 64 KB SQLite spilled them to a temporary file, opened, written and closed about every other round
  // (issue 16; the intake writer's connection does the same). Nothing there is durable (the WAL is). Set after the
  // migrations, whose index builds may sort more than memory should hold.
  db.$client.exec("PRAGMA temp_store = MEMORY");
  const storage = sqliteRunner(db.$client);
  // A target of kontobro.toml pointed at another account while kontobro holds ids of records in the old one: refused
  // (the agent does not start), unless `kontobro run --forget-links/--keep-links` says which (agent/target-account.ts).
  // So is one whose setting that finds its records again there changed while some of them may have landed unlinked
  // (agent/target-lookup.ts). Refused, the transaction writes nothing.
  try {
    const warnings = await storage.transaction(async (tx) => {
      const lookups = await reconcileLookups(tx, targets);
      const checked = await reconcileAccounts(tx, targets, extras.accounts);
      const problems = [
        ...accountProblems(checked.refused, {
          forget: (t) => `start once with \`kontobro run --forget-links ${t}\``,
          keep: (t) => `start once with \`kontobro run --keep-links ${t}\``,
        }),
        ...checked.unknownChoices.map((n) => `--forget-links/--keep-links: kontobro.toml has no target named "${n}"`),
        ...lookups,
      ];
      if (problems.length > 0) throw new ConfigError(problems);
      return checked.warnings;
    });
    for (const w of warnings) log.warn(w);
  } catch (e) {
    db.$client.close();
    lock.release();
    throw e;
  }
  const outbox = new Outbox(storage, Date.now, config.dispatch.missing_record_grace_minutes * 60_000);
  // We hold the instance lock, so anything still "in flight" belongs to a process that died.
  const recovered = await outbox.recoverExpiredLeases(true);
  if (recovered > 0)
    log.warn(
      "recovered deliveries left in flight by a previous run; each waits its target's late_answer_wait_ms (a write of it may still land), then is looked up at the target before any new create",
      {
        count: recovered,
      },
    );

  // A target back in the configuration: what it missed meanwhile replaces the older versions queued for it. Only the
  // targets not sending at the last start (all of them the first time) can have missed anything: a backlog is not read
  // at every start.
  const SENDING = "targets_sending";
  const sentBefore = await storage.get<{ value: string }>("SELECT value FROM settings WHERE name = ?1", SENDING);
  const wasSending = new Set<string>(sentBefore ? JSON.parse(sentBefore.value) : []);
  for (const t of targets.filter((t) => t.enabled && !wasSending.has(t.name))) {
    const caught = await outbox.catchUp(t.name);
    if (caught > 0)
      log.warn(
        `target ${t.name}: ${caught} queued deliver${caught === 1 ? "y was of a version" : "ies were of versions"} older than the PSA's newest, which came while the target was out of the configuration: the newest goes instead`,
      );
  }
  await storage.run(
    "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    SENDING,
    JSON.stringify(targets.filter((t) => t.enabled).map((t) => t.name)),
  );

  const metrics = new Metrics();
  // Watched: a 401 marks the target's credentials refused, a success working again (/readyz, alerts).
  const credentials = new CredentialsWatch(storage, log);
  await credentials.reconcile(targets.filter((t) => t.enabled));
  const connectors = credentials.wrap(
    createConnectors(targets, log, db, { dataDir: config.agent.data_dir }),
    (name) => targets.find((t) => t.name === name)?.settings,
  );
  metrics.gaugeSources.push(() => budgetGauges(connectors));
  // Delivery ids restart at 1 in a new data directory and repeat after a restore; the installation id and
  // a random epoch per start keep idempotency keys unique across reinstalls, restores and agents, so a
  // target's key cache never answers for someone else's request.
  const installationId = ensureSetting(db, "installation_id", () => randomUUID());
  const run = beginRun(db, config.agent.data_dir);
  if (run.restore) {
    log.warn(
      "restore detected: every open delivery is looked up at the target before any new create, and so is every record not linked at a target until lookupsUntil (or whose change is dated before it); events the PSA sent after the backup are not in this database, so ask the PSA to send again what changed since then",
      { ...run.restore },
    );
    // A write sent after the backup was taken (its hold is not in the restored database) may still land: each target's
    // pending deliveries wait its late_answer_wait_ms before they look.
    for (const t of targets.filter((t) => t.enabled)) await outbox.holdAfterRestore(t.name, lateAnswerWaitOf(t));
  }
  /** Whether the last write of the high-water marks failed: said once, not every HIGHWATER_EVERY_MS, until one succeeds. */
  let highwaterFailing = false;
  const highwater = setInterval(() => {
    try {
      writeHighwater(config.agent.data_dir, { ...readMarks(db.$client), generation: run.generation });
      if (highwaterFailing) log.info(`${HIGHWATER_FILE} is written again`);
      highwaterFailing = false;
    } catch (e) {
      if (!highwaterFailing)
        log.warn(
          `could not write ${HIGHWATER_FILE} beside the database: until it is written, a restore of an older copy of the database would not be noticed at the next start (tried again every few seconds)`,
          { error: e, hint: "Check the data directory's free space and that kontobro's user may write to it." },
        );
      highwaterFailing = true;
    }
  }, HIGHWATER_EVERY_MS);
  const targetState = new TargetStateStore(storage);
  const records = recordSource(storage);
  const dispatchers = new Map<string, Dispatcher>();
  for (const [name, connector] of connectors) {
    // Customers and products go through master per entity where the connector offers master data (agent/master/).
    dispatchers.set(
      name,
      new Dispatcher(
        name,
        withMasterGuard(connector, masterSyncFor(storage, name, connector)),
        outbox,
        {
          concurrency: config.dispatch.concurrency,
          leaseMs: config.dispatch.lease_seconds * 1000,
          backoff: { baseMs: config.dispatch.retry_base_ms, maxMs: config.dispatch.retry_max_ms },
          idlePollMs: config.dispatch.idle_poll_ms,
          keyPrefix: `kontobro-${installationId}-${run.epoch}-${name}`,
          breaker: breakerPolicy(config.dispatch),
          targetState,
          // A lease taken back without its answer (this agent stopped while the push ran, or crashed: the recovery at
          // start) waits this long, so a write of it still on its way lands before anyone looks.
          lateAnswerWaitMs: lateAnswerWaitOf(targets.find((t) => t.name === name)!),
        },
        log.child({ target: name }),
        metrics,
        records,
      ),
    );
  }
  const notifyAll = () => {
    for (const d of dispatchers.values()) d.notify();
  };
  // Which targets take an entity is fixed for the life of the agent: computed once, not per event.
  const targetsByEntity = new Map<Entity, string[]>();
  const targetsFor = (entity: Entity) => {
    let names = targetsByEntity.get(entity);
    if (!names) targetsByEntity.set(entity, (names = [...connectors].filter(([, c]) => c.supports(entity)).map(([n]) => n)));
    return names;
  };
  // The writer on its own thread with its own connection (issue 16): the fsync never holds up the HTTP side. It
  // starts with the first request and ends after a minute without one; then a burst is over, and one full
  // garbage collection gives back what it used (after draining 50,000: 161 → 92 MB).
  const intake = await IntakeThread.start({
    path: databasePath(config.agent.data_dir),
    busyTimeoutMs: config.agent.busy_timeout_ms,
    targets: Object.fromEntries(ENTITIES.map((e) => [e, targetsFor(e)])),
    onStored: notifyAll,
    onIdleEnd: () => Bun.gc(true),
    // After a failed fsync of the WAL an acknowledged event could be lost with the frames before it: the PSA keeps it.
    refuse: () => intakeRefusal(db),
  });
  // Counted at intake, so events from the demo feed count as received like those from the API.
  intake.observer = (results) => metrics.countStored(results);
  const apiToken = apiTokenFor(db, config);
  const pulls = await createPulls({ db, storage, soleProcess: true, config, targets, connectors, log });
  const exports = { settings: exportSettings(config.exports), uiActions: isLoopback(config.http.host) };
  await deliverOnStart(storage, exports.settings, log);
  // Free space where the database and the export files go, read every 30 s: told before a full disk stops intake.
  const disk = new DiskSpaceWatch(config.agent.data_dir, exports.settings.outputDir, config.agent.disk_free_warn_bytes, log);
  disk.start();
  metrics.gaugeSources.push(() => disk.gauges());
  const enabledTargets = targets.filter((t) => t.enabled).map((t) => t.name);

  // Alerts by e-mail and webhook (agent/notify/): only when [notifications] names a channel.
  const notifier = notificationsEnabled(config.notifications)
    ? new Notifier({
        storage,
        config: config.notifications,
        log: log.child({ component: "notify" }),
        version: VERSION,
        retentionDays: config.agent.retention_days,
        // The instance lock makes this process the only sender: a notice a crash cut mid-send goes again at once.
        soleProcess: true,
        statusUrl: () => statusPageUrl(config.notifications, { host: config.http.host, port: server?.port ?? config.http.port }),
        targets: targets.filter((t) => t.enabled).map((t) => ({ name: t.name, title: connectorKinds[t.kind]!.title, paused: t.paused })),
        pulls: pulls.scheduler.jobs,
        psaWebhook: Boolean(config.psa.webhook_url),
        problems: () => [
          ...durabilityProblems(db, enabledTargets),
          ...disk.problems(enabledTargets),
          ...credentialExpiryProblems(connectors, config.notifications.credential_expiry_warn_days, Date.now()),
        ],
        mailbox: extras.mailbox,
      })
    : null;

  const appContext: AppContext = {
    notifier,
    disk,
    mailbox: extras.mailbox,
    pulls,
    exports,
    db,
    intake,
    metrics,
    apiToken,
    listensOnLoopback: isLoopback(config.http.host),
    maxBodyBytes: config.http.max_body_bytes,
    version: VERSION,
    startedAt: Date.now(),
    targets: targets
      .filter((t) => t.enabled)
      .map((t) => {
        const c = connectors.get(t.name);
        return {
          name: t.name,
          kind: t.kind,
          title: connectorKinds[t.kind]!.title,
          paused: t.paused,
          ...(c?.budgets ? { budgets: () => c.budgets!() } : {}),
          dispatchFailing: () => dispatchers.get(t.name)?.roundsFailing() ?? null,
        };
      }),
    retry: async (id) => {
      const r = await outbox.retry(id);
      notifyAll();
      return r;
    },
  };
  const app = createApp(appContext);
  // POST /api/v1/events is answered by Bun's own router, before the app (the same handler as the app's route).
  const routes = apiNativeRoutes(appContext);
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = listen(app, config.http, "", routes);
  } catch (e) {
    clearInterval(highwater);
    disk.stop();
    await intake.close();
    db.$client.close();
    lock.release();
    throw e;
  }
  for (const [name, d] of dispatchers) {
    if (targets.find((t) => t.name === name)?.paused) log.warn("target is paused: events are queued for it but not sent", { target: name });
    else d.start();
  }
  await pulls.start();
  notifier?.start();
  // A burst (an initial sync) shows its progress on the status page and in `kontobro status` (agent/queue-progress.ts).
  const queueProgress = new QueueProgressWatch(storage, [...dispatchers.keys()], log.child({ component: "queue-progress" }));
  queueProgress.start();
  const retention = startRetention(db, { retentionDays: config.agent.retention_days, log, metrics });

  const url = `http://${config.http.host.includes(":") ? `[${config.http.host}]` : config.http.host}:${server.port}`;
  // The binary starts with a reluctant JIT (scripts/build.ts); from here on the hot paths get the normal one.
  Bun.unsafe.setJITPolicy(1);
  // A saved export template this version's checks refuse (saved by an earlier one) cannot be exported until fixed: say so.
  for (const t of await templatesNeedingFixes(storage))
    log.warn(`export template "${t.name}" does not pass this version's checks and cannot be exported until it is fixed`, {
      problems: t.problems.slice(1).map((p) => p.message),
      hint: t.problems[0]!.hint,
    });
  log.info("kontobro started", { version: VERSION, url, targets: [...connectors.keys()], dataDir: config.agent.data_dir });

  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      log.info("stopping: finishing pushes in flight");
      server.stop(false);
      queueProgress.stop();
      await Promise.all([...dispatchers.values()].map((d) => d.stop(config.dispatch.shutdown_grace_ms)));
      await pulls.stop();
      await notifier?.stop();
      await retention.stop();
      disk.stop();
      server.stop(true);
      // What the writer was given is committed before the connections close.
      await intake.close();
      clearInterval(highwater);
      try {
        writeHighwater(config.agent.data_dir, { ...readMarks(db.$client), generation: run.generation });
      } catch {}
      storage.close();
      lock.release();
      log.info("stopped");
    })());

  return { url, db, outbox, intake, metrics, apiToken, connectors, pulls, http: { app, routes }, stop };
}
