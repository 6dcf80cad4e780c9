// The connector contract: every target implements this and nothing more; its factory describes the rest.
// The agent core never knows a target's API; a connector never touches the database.
import type { z } from "zod";
import type { Entity } from "../agent/model.ts";
import type { Problem } from "../agent/problem.ts";
import type { Logger } from "../agent/log.ts";
import type { BenchAdapter, CallsAdapter, ChaosAdapter, RunningSandbox } from "./sandbox.ts";

export type { BenchAdapter, CallsAdapter, ChaosAdapter, RunningSandbox } from "./sandbox.ts";

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
  /**
   * The delivery this attempt is of: the same for all its attempts (a person's retry of it included), another for each
   * version the PSA sends. Something told as needs action on one delivery and accepted by its retry is this one's.
   */
  delivery?: number;
  /** The latest canonical payload of another record (e.g. the invoice's customer), or null if never received. */
  record?: RelatedRecords;
}

/** The latest canonical payload of another record (e.g. the invoice's customer), or null if never received. */
export type RelatedRecords = (entity: Entity, key: string) => any | null;

export interface PushResult {
  remoteId: string;
  /** Something the user should know although the push succeeded (shown on the status page). */
  note?: string;
  /** A master-data record as the target holds it after the push (agent/master/ keeps it, so the push coming back is not echoed). */
  state?: MasterRecord;
  /**
   * A master-data update: the record as the target held it when the push read it, before changing it. agent/master/
   * compares it with what it last saw there, so a change made in the target meanwhile (not pulled yet) is reported,
   * not overwritten without a word.
   */
  before?: MasterRecord;
  /** Something a person should look at in the target although the push succeeded (a new article's coding); reported once. */
  attention?: string;
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
   * `detail` tells two states of the same `value` apart (an invoice partly paid, then paid more: its remainder): a new
   * detail is a change too, and is part of the change's id. Neither may contain ":".
   */
  status?: { entity: Entity; key: string; value: string; final?: boolean; baseline?: string; detail?: string };
  /**
   * For an item the target can still change after it was pulled (a supplier invoice's cost row): what the PSA acts on
   * (amount, project, date…), as one string. The same remoteId seen again with another version is a change: the agent
   * stores an `expense.changed` item naming the first one (`replaces`); see agent/pulls/inbox.ts.
   */
  version?: string;
  /** With `version`: the target says the item is gone (deleted, cancelled); the agent stores an `expense.cancelled` item naming it. */
  cancelled?: boolean;
  /** A file that belongs to the item (the voucher's receipt), delivered with it. */
  attachment?: { filename: string; contentType: string; bytes: Uint8Array };
  /** A master-data record read back from the target (type "<entity>.upserted"): agent/master/ decides whether it reaches the PSA. */
  master?: MasterRecord;
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
  /**
   * Invoices this agent booked at the target whose status is not final yet, or became final only lately (a payment can
   * be reversed), with the status last stored for each (null: none yet); for payment-status streams.
   */
  openInvoices: { key: string; remoteId: string; status?: string | null }[];
}

/** A stream a connector can pull, with the schedule it gets when kontobro.toml names none. */
export interface PullStreamSpec {
  title: string;
  cron: string;
  timezone: string;
}

/** A credential with a known end, read from the settings (no network). */
export interface ExpiringCredential {
  /** Short and stable, e.g. "certificate": one alert per credential, from "expires soon" to "expired". */
  id: string;
  /** What expires, in plain words, e.g. "the client certificate (CN=kontobro)". */
  what: string;
  /** Epoch ms. */
  expiresAt: number;
  /** How to renew it. */
  renew: string;
}

export interface Connector {
  readonly name: string;
  readonly kind: string;
  supports(entity: Entity): boolean;
  /** Credentials and the set-up the target needs; plain-language results. */
  check(): Promise<CheckItem[]>;
  /**
   * Credentials whose end date the connector knows (a client certificate's notAfter): kontobro alerts some weeks
   * before (agent/notify/expiry.ts). Absent when nothing the connector holds has a known end.
   */
  expiringCredentials?(): ExpiringCredential[];
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
  /**
   * How long (ms) the connector's client still holds requests back because the target asked it to wait, 0 if not. A
   * request made outside any push (a draft's removal or a create answered after its push ended, a lookup, a pull) can
   * read a 429: the dispatcher's round stores that pause for every worker, as it stores a push's. Every
   * connector with a sandbox has it (test/connector-pause.test.ts).
   */
  pausedForMs?(): number;
  /** Master data for master per entity (agent/master/): where the target can be master or creates records of its own. */
  master?: MasterData;
}

// ---- master per entity (agent/master/) ----------------------------------------------------------------------

/** Entities whose master kontobro.toml names per target (`masters`): the PSA (default) or the target. */
export type MasterEntity = "customer" | "product";
export type MasterSide = "psa" | "target";

/** A master-data record as the target holds it, in the PSA's canonical shape (Customer, Product). */
export interface MasterRecord {
  entity: MasterEntity;
  /** The PSA's key as the target has it: the customer number or the product code. */
  key: string;
  /** The target's own id of the record. */
  remoteId: string;
  data: Record<string, unknown> & { name?: unknown };
  /** The target's last-modified stamp, when it has one. */
  modifiedAt?: string;
}

/** What a connector offers for master per entity; the core (agent/master/) decides what travels where. */
export interface MasterData {
  /** Who is master of each entity for this target (from ConnectorDeps.masters; the PSA when not named). */
  readonly sides: Record<MasterEntity, MasterSide>;
  /** The entities the connector reads back as master data (its pull streams "customers", "products"). */
  readonly entities: readonly MasterEntity[];
  /** A PSA payload as this target would keep it: only the fields it holds, with the defaults a push adds. Pure. */
  project(entity: MasterEntity, payload: unknown): unknown;
  /** The record with this number (code) at the target, or null. */
  lookup(entity: MasterEntity, key: string): Promise<MasterRecord | null>;
  /** Every record of the entity at the target (the matching report). */
  list(entity: MasterEntity): Promise<MasterRecord[]>;
}

// ---- OAuth credentials (agent/credentials.ts, `kontobro connect`) ----------------------------------------------

/** OAuth tokens the agent keeps for a target (table credentials), the rotating refresh token included. */
export interface StoredCredential {
  /** The token endpoint the tokens belong to: a credential of another server or app is not used. */
  issuer: string;
  clientId: string;
  refreshToken: string | null;
  accessToken: string | null;
  accessExpiresAt: number | null;
  scope: string | null;
  /** reconnect: the target refused the refresh token; a person must run `kontobro connect`. */
  state: "connected" | "reconnect";
  problem: string | null;
  updatedAt: number;
}

export interface CredentialStore {
  read(): Promise<StoredCredential | null>;
  /**
   * Replaces the stored credential durably before it resolves; inside `exclusive`, durably once `exclusive` has
   * resolved. Only then is a new token used.
   */
  write(c: Omit<StoredCredential, "updatedAt">): Promise<void>;
  /**
   * Runs `fn` while nobody else runs it for this target (no other process of the data directory, no other worker of
   * the tenant): one refresh at a time. What `fn` writes is committed when this resolves or rejects, and a read in
   * `fn` sees what the one before it wrote.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

/** A target's OAuth 2 authorization code flow, for `kontobro connect TARGET`. */
export interface OAuthFlow<C = any> {
  /** The redirect URI registered for the app; `kontobro connect` listens there when it is a loopback address. */
  redirectUri(config: C): string;
  authorizationUrl(config: C, state: string): string;
  /** Exchanges the code for tokens and stores them durably; says which scopes kontobro asked for were not granted. */
  exchange(config: C, code: string, store: CredentialStore): Promise<{ scope: string; missing: string[] }>;
}

/** A quota the target imposes and the connector counts, e.g. server calls per day. */
export interface TargetBudget {
  /** Short metric-safe name, e.g. "calls_per_day". */
  name: string;
  /** Plain words for the status page, e.g. "<Target> server calls today". */
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
  /** The target's OAuth tokens, kept in the agent's database (absent: kept in memory for this process only). */
  credentials?: CredentialStore;
  /**
   * The command a person runs to sign the target in (again), for hints: `kontobro connect <name>` when absent; a
   * hosted tenant's is `kontobro tenant connect <slug> <name>`.
   */
  signIn?: string;
  /** Who is master of which entity (kontobro.toml `masters`); absent entities: the PSA. */
  masters?: Partial<Record<MasterEntity, MasterSide>>;
}

export interface ConnectorFactory<C = any> {
  kind: string;
  /** Human name of the target system, for messages. */
  title: string;
  /** zod schema of the target's [[targets]] table in kontobro.toml (secrets already resolved). */
  configSchema: z.ZodType<C>;
  create(name: string, config: C, deps: ConnectorDeps): Connector;
  /** Entities the target can be master of (kontobro.toml `masters = { customers = "target" }`); none by default. */
  masterEntities?: readonly MasterEntity[];
  /** The OAuth flow of `kontobro connect`, for a target whose tokens come from a person signing in. */
  oauth?: OAuthFlow<C>;
  /** Keys of the [[targets]] table that were renamed (old → new): the old name still works, with a warning. */
  renamedKeys?: Record<string, string>;
  /**
   * Keys of the [[targets]] table (as parsed, defaults applied) that name the account or company the records go to: a
   * target whose kind or one of these changes while keeping its name points at another account, where the remote ids
   * kontobro holds for it (links, master data) mean nothing or other records (agent/target-account.ts).
   */
  accountKeys?: readonly string[];
  /**
   * Keys of the [[targets]] table (as parsed) by which the connector finds again what it sent (the field of its marker):
   * a record whose create may have landed with its answer lost is looked up by them before it is created again, so one
   * changed while such deliveries wait would have them created (booked) a second time (agent/target-lookup.ts).
   */
  lookupKeys?: readonly string[];
  /** Streams the connector can pull, by name, with their default schedules. */
  pulls?: Record<string, PullStreamSpec>;
  /**
   * The target's webhooks are hints: which streams to pull now for a call with these (lower-cased)
   * query parameters. A target with this gets a webhook token and /webhooks/<kind>/<token>.
   */
  webhookStreams?(params: Record<string, string>): string[];
  /**
   * The query strings to configure the target's webhooks with, appended to /webhooks/<kind>/<token>, with
   * the target's own merge fields (e.g. "?type=invoice&invoice=[INVOICENO]"); shown by `kontobro check`
   * and on the status page.
   */
  webhookTemplates?: string[];
  /** One line about a pulled item for the status page's inbox (its data as the connector's pull made it). */
  describePulled?(type: string, data: any): string;
  /**
   * Starts the target's sandbox (connectors/<kind>/sandbox/, imported only now) on loopback; port 0 takes a
   * free one. For `kontobro sandbox KIND`, `kontobro demo --target KIND`, tests and scripts.
   */
  startSandbox?(options: { port: number }): Promise<RunningSandbox>;
  /**
   * What happens at the target's own side during `kontobro demo` besides the sample PSA data: a person working in
   * the target (booking supplier costs on the PSA's projects, sending and paying invoices, …), so that every pull
   * stream brings something back. Every `intervalMs`, against the sandbox at `sandboxUrl` (connectors/<kind>/demo.ts,
   * with the helpers of connectors/demo-activity.ts); returns a stop.
   */
  startDemoActivity?(sandboxUrl: string, intervalMs: number, log: (msg: string) => void): () => void;
  /** The chaos run's adapter for the sandbox (scripts/chaos.ts), imported only by the chaos run. */
  chaos?(): Promise<ChaosAdapter>;
  /** The benchmark's adapter for the sandbox (scripts/bench.ts), imported only by the benchmark. */
  bench?(): Promise<BenchAdapter>;
  /** Calls per record at the target and its daily budget (scripts/calls-per-record.ts: its test and the benchmark). */
  calls?(): Promise<CallsAdapter>;
}
