// The connector contract: every target (e-conomic, Uni Micro, …) implements this and nothing more.
// The agent core never knows a target's API; a connector never touches the database.
import type { z } from "zod";
import type { Entity } from "../agent/model.ts";
import type { Problem } from "../agent/problem.ts";
import type { Logger } from "../agent/log.ts";

/** What the agent remembers about a record it has pushed to a target. */
export interface Link {
  /** The target's id or number for the record. */
  remoteId: string;
}

export interface PushContext {
  /** The record was pushed before (there is a link); push updates it. */
  link: Link | null;
  /**
   * An earlier attempt may have reached the target without us seeing the answer (timeout, reset,
   * 5xx on a write, or a crash). The connector must look the record up before creating anything.
   */
  uncertain: boolean;
  /**
   * Unique per delivery attempt: a request the HTTP client re-sends within this attempt is deduplicated
   * by the target; across attempts, connectors reconcile by lookup (see `uncertain`), never by an old key
   * (a target's key cache would otherwise answer with what a previous attempt created and then removed).
   */
  idempotencyKey: string;
  /** The latest canonical payload of another record (e.g. the invoice's customer), or null if never received. */
  record?: RelatedRecords;
}

/** The latest canonical payload of another record (e.g. the invoice's customer), or null if never received. */
export type RelatedRecords = (entity: Entity, key: string) => any | null;

export interface PushResult {
  remoteId: string;
  /** Something the user should know although the push succeeded (shown on the status page). */
  note?: string;
}

export interface CheckItem {
  ok: boolean;
  /** Short name of what was checked, e.g. "credentials" or "customer group 1". */
  name: string;
  message: string;
  hint?: string;
}

/** One thing pulled from a target for the PSA: a posted expense, an invoice's payment status, … */
export interface PullItem<T = unknown> {
  /** Unique per target and stable: the same entry pulled again has the same id, so it is stored once. */
  remoteId: string;
  /** What it is for the PSA, e.g. "expense.posted", "invoice.paid", "invoice.status_changed". */
  type: string;
  data: T;
  /** A PSA record the item belongs to. If the PSA has not sent that record, the item is kept but not delivered. */
  requires?: { entity: Entity; key: string };
  /**
   * For status streams: the record's current state. The agent stores an item only when the state differs
   * from the last one seen (or from `baseline` the first time); once `final`, the record is not asked for again.
   */
  status?: { entity: Entity; key: string; value: string; final?: boolean; baseline?: string };
  /** A file that belongs to the item (the voucher's receipt), delivered with it. */
  attachment?: { filename: string; contentType: string; bytes: Uint8Array };
}

/** A page of items pulled from a target (expenses, payment status, …). */
export interface PullResult<T = unknown> {
  items: PullItem<T>[];
  /** Cursor to store in the same transaction as the items; null when unchanged. */
  cursor: string | null;
  /** More pages are ready now: call pull again with the new cursor. */
  more: boolean;
}

/** What the agent tells a connector's pull beyond the cursor. */
export interface PullOptions {
  /** Today's date (YYYY-MM-DD) in the job's time zone: the day a lookback window is counted from. */
  today: string;
  /** Invoices this agent booked at the target whose status is not final yet (for payment-status streams). */
  openInvoices: { key: string; remoteId: string }[];
}

/** A stream a connector can pull, with the schedule it gets when kontobro.toml names none. */
export interface PullStreamSpec {
  title: string;
  cron: string;
  timezone: string;
}

export interface Connector {
  readonly name: string;
  readonly kind: string;
  supports(entity: Entity): boolean;
  /** Credentials and the set-up the target needs; plain-language results. */
  check(): Promise<CheckItem[]>;
  /**
   * Pre-flight rules, no network: an empty list means the payload can be pushed. `related` gives the
   * latest canonical payload of another record (an invoice's customer), so a rule can name the record
   * the user must change (Problem.record).
   */
  validate(entity: Entity, payload: any, related?: RelatedRecords): Problem[];
  /** Idempotent upsert. Throws TargetError (connectors/http.ts) on failure. */
  push(entity: Entity, payload: any, ctx: PushContext): Promise<PushResult>;
  /** Look a record up by its natural key (number, or the PSA id in a reference field). */
  find(entity: Entity, payload: any): Promise<Link | null>;
  /** One page of a stream (see ConnectorFactory.pulls). Throws TargetError on failure; nothing is stored then. */
  pull?(stream: string, cursor: string | null, options: PullOptions): Promise<PullResult>;
  /** Quotas the target counts against us (e.g. server calls per day), for /metrics and the status page. */
  budgets?(): TargetBudget[];
}

/** A quota the target imposes and the connector counts, e.g. Uniconta's server calls per day. */
export interface TargetBudget {
  /** Short metric-safe name, e.g. "calls_per_day". */
  name: string;
  /** Plain words for the status page, e.g. "Uniconta server calls today". */
  title: string;
  used: number;
  limit: number;
  /** The period the count belongs to, e.g. "2026-03-31". */
  period: string;
  /** What kontobro does about it right now (pulls postponed, pushes held until midnight), if anything. */
  note?: string;
}

/** Durable counters that restart with each period (a day), shared by the agent's processes where it offers them. */
export interface PeriodCounters {
  /** Adds `by` to counter `name` for `period` (a new period starts from 0) and returns the new value. */
  add(name: string, period: string, by: number): number;
  /** The counter's value for `period` (0 when the stored value belongs to another period). */
  get(name: string, period: string): number;
}

export interface ConnectorDeps {
  log: Logger;
  /** Per-target durable counters (absent where the agent runs without its database, e.g. `kontobro check`). */
  counters?: PeriodCounters;
}

export interface ConnectorFactory<C = any> {
  kind: string;
  /** Human name of the target system, for messages. */
  title: string;
  /** zod schema of the target's [[targets]] table in kontobro.toml (secrets already resolved). */
  configSchema: z.ZodType<C>;
  create(name: string, config: C, deps: ConnectorDeps): Connector;
  /** Keys of the [[targets]] table that were renamed (old → new): the old name still works, with a warning. */
  renamedKeys?: Record<string, string>;
  /** Streams the connector can pull, by name, with their default schedules. */
  pulls?: Record<string, PullStreamSpec>;
  /**
   * The target's webhooks are hints: which streams to pull now for a call with these (lower-cased)
   * query parameters. A target with this gets a webhook token and /webhooks/<kind>/<token>.
   */
  webhookStreams?(params: Record<string, string>): string[];
}
