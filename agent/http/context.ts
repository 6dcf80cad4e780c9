import type { TargetBudget } from "../../connectors/contract.ts";
import type { Db } from "../db/index.ts";
import type { DiskSpaceWatch } from "../disk-space.ts";
import { sqliteRunner, type SqlRunner } from "../db/pg/runner.ts";
import type { ExportsRuntime } from "../exports/config.ts";
import type { Intake } from "../intake.ts";
import type { Metrics } from "../metrics.ts";
import type { Notifier } from "../notify/index.ts";
import type { DemoMailbox } from "../notify/demo-mailbox.ts";
import type { PullsRuntime } from "../pulls/index.ts";
import { fileBoard, type WorkBoard } from "../running-work.ts";
import type { StepFailure } from "../worker-loop.ts";
import type { AdminContext } from "./admin-api.ts";

/** What the HTTP layer needs from the running agent. */
export interface AppContext {
  db: Db;
  intake: Intake;
  metrics: Metrics;
  apiToken: string;
  /** The server is bound to a loopback address (the status page then needs no login). */
  listensOnLoopback: boolean;
  maxBodyBytes: number;
  /** `budgets`: the target's quotas as its connector counts them (Connector.budgets), when it has any. */
  /** `dispatchFailing`: its dispatcher's rounds failing now (Dispatcher.roundsFailing), for /readyz. */
  targets: {
    name: string;
    kind: string;
    title: string;
    paused: boolean;
    budgets?: () => TargetBudget[];
    dispatchFailing?: () => StepFailure | null;
  }[];
  retry(id: number): Promise<{ ok: boolean; status?: string }>;
  startedAt: number;
  version: string;
  /** Pulls, inbox and target webhooks (absent in an app built without them). */
  pulls?: PullsRuntime;
  /** File exports: settings, and whether the status page may run them and hand out files. */
  exports?: ExportsRuntime;
  /** Alerts by e-mail and webhook, when [notifications] is configured (agent/notify/). */
  notifier?: Notifier | null;
  /** Free space on the disks of the database and the export output folder (agent/disk-space.ts). */
  disk?: DiskSpaceWatch;
  /** `kontobro demo`: the alert mails it built instead of sending them (/ui/demo/mail). */
  mailbox?: DemoMailbox;
  /** The admin API (/admin/v1: tenants), on PostgreSQL storage with [admin] token_file or token set. */
  admin?: AdminContext;
}

/** A target as the status page shows it. */
export interface StatusTarget {
  name: string;
  kind: string;
  title: string;
  paused: boolean;
  /** Why its events queue without being sent, when not because it is paused (a hosted target held on PostgreSQL). */
  held?: string | null;
  budgets?: () => TargetBudget[];
}

/**
 * What the status page and the record pages read and do, on either engine: the SQLite agent's (statusOf) or a
 * hosted tenant's (agent/hosted/status-page.ts). The same rendering code serves both.
 */
export interface StatusContext {
  /** The storage the pages read: sqliteRunner(db), or the tenant's runner (row-level security holds it to its rows). */
  runner: SqlRunner;
  /** Where the pages live: "" on SQLite, "/t/<slug>" for a hosted tenant. Every link and form of the pages starts with it. */
  base: string;
  version: string;
  startedAt: number;
  targets: StatusTarget[];
  /** The retry button: the delivery back to pending through the Outbox, and its target's dispatcher woken. */
  retry(id: number): Promise<{ ok: boolean; status?: string }>;
  pulls?: PullsRuntime;
  /** File exports: the tenant's [exports] settings, and whether the page may run them and hand out files. */
  exports?: ExportsRuntime;
  /**
   * The SQLite agent, for the sections that read its file and data directory only (the file's size, the demo's
   * mailbox): absent on PostgreSQL.
   */
  local?: AppContext;
  /**
   * The "In progress" section (queues catching up, read through `runner`; exports and pulls, from `work`): the SQLite
   * agent's data directory files, a hosted tenant's running_work rows. Absent: no such section.
   */
  inProgress?: { work: WorkBoard | null };
  /** How alerts go now (each channel's description), for the notifications card; empty when notifications are off. */
  notificationChannels: string[];
  /** A hosted tenant's page: its slug, the worker that answered, and why the tenant does not run there, if it does not. */
  hosted?: { tenant: string; worker: number; notRunning?: string };
  /**
   * How a page's reads are grouped: a hosted tenant's in one PostgreSQL transaction (one connection, one BEGIN, instead
   * of a transaction per statement). Absent on SQLite, where a transaction would hold the write lock while the page renders.
   */
  readTogether?: <T>(fn: (runner: SqlRunner) => Promise<T>) => Promise<T>;
}

/** Runs a page's handler with its reads grouped as the context says (StatusContext.readTogether). */
export function withReads<T>(s: StatusContext, fn: (s: StatusContext) => Promise<T>): Promise<T> {
  return s.readTogether ? s.readTogether((runner) => fn({ ...s, runner })) : fn(s);
}

/** The SQLite agent's status page. */
export function statusOf(ctx: AppContext): StatusContext {
  return {
    runner: sqliteRunner(ctx.db.$client),
    base: "",
    version: ctx.version,
    startedAt: ctx.startedAt,
    targets: ctx.targets,
    retry: (id) => ctx.retry(id),
    ...(ctx.pulls ? { pulls: ctx.pulls } : {}),
    ...(ctx.exports ? { exports: ctx.exports } : {}),
    inProgress: { work: fileBoard(ctx.db) },
    notificationChannels: Object.values(ctx.notifier?.senders ?? {}).map((sender) => sender!.describe()),
    local: ctx,
  };
}
