// kontobro.toml: parsed with Bun's TOML parser, ${ENV_VAR} references resolved, validated with zod.
// A wrong config stops the agent with one line per problem, naming the key.
import { readFileSync, statSync } from "node:fs";
import { z } from "zod";
import { lazySchema } from "./lazy-schema.ts";
import { LATE_ANSWER_WAIT_MS } from "../connectors/http.ts";
import { connectorKinds } from "../connectors/registry.ts";
import { exportsConfigSchema } from "./exports/config.ts";
import { postgresUrlProblem, passwordOf } from "./db/pg/url.ts";
import { registerSecret } from "./log.ts";
import { MASTER_KEYS, parseMasters, type Masters } from "./master/policy.ts";
import { issuesToProblems } from "./problem.ts";
import { notificationProblems, notificationsConfigSchema } from "./notify/config.ts";
import { PSA_DEFAULTS, PULLS_DEFAULTS, psaConfigSchema, pullsConfigSchema, targetSchedules, type TargetPull } from "./pulls/config.ts";

/** A bearer token written in kontobro.toml (http.api_token, admin.token): RFC 6750 token characters. */
export const bearerTokenSchema = () =>
  z
    .string()
    .min(16, { error: "must be at least 16 characters" })
    .regex(/^[A-Za-z0-9._~+/-]+=*$/, {
      error:
        "may hold only letters, digits and - . _ ~ + / (and = at the end), as a bearer token does; e.g. the output of openssl rand -base64 24",
    });
export const BearerToken = lazySchema(bearerTokenSchema);

/** agent.disk_free_warn_bytes by default: 1 GiB, days of events and exports for most installations. */
export const DISK_FREE_WARN_BYTES = 1024 ** 3;

export const agentConfigSchema = () =>
  z.strictObject({
    agent: z
      .strictObject({
        data_dir: z.string().min(1).default("./data"),
        log_level: z.enum(["debug", "info", "warn", "error"]).default("info"),
        busy_timeout_ms: z.number().int().min(0).max(600_000).default(5000),
        /** Finished work older than this many days is pruned (0 keeps everything); see agent/retention.ts. */
        retention_days: z.number().int().min(0).max(36_500).default(90),
        /** Below this many free bytes on the disk of data_dir (or of exports.output_dir) kontobro warns, until above it plus 10% (agent/disk-space.ts); 0: never. */
        disk_free_warn_bytes: z.number().int().min(0).default(DISK_FREE_WARN_BYTES),
      })
      .default({
        data_dir: "./data",
        log_level: "info",
        busy_timeout_ms: 5000,
        retention_days: 90,
        disk_free_warn_bytes: DISK_FREE_WARN_BYTES,
      }),
    /** Where kontobro keeps its data: the SQLite file in agent.data_dir, or PostgreSQL (agent/storage.ts). */
    storage: z
      .strictObject({
        /** postgres://role[:password]@host[:port]/database; unset: <agent.data_dir>/kontobro.db. */
        url: z
          .string()
          .superRefine((url, ctx) => {
            const problem = postgresUrlProblem(url);
            if (problem) ctx.addIssue({ code: "custom", message: problem });
          })
          .optional(),
        /**
         * PostgreSQL: how long a migration's statement waits for a table lock (ALTER TABLE behind a long transaction,
         * with every other statement on that table queued behind it) before its transaction is rolled back and tried
         * again after a pause (agent/db/pg/migrate.ts). Per statement: a lock an earlier one took is kept meanwhile.
         */
        migration_lock_timeout_ms: z.number().int().min(100).max(600_000).default(3_000),
      })
      .prefault({}),
    http: z
      .strictObject({
        host: z.string().min(1).default("127.0.0.1"),
        port: z.number().int().min(0).max(65535).default(8787),
        /** Bearer token for /api/v1; required when host is not a loopback address. RFC 6750 token characters. */
        api_token: bearerTokenSchema().optional(),
        /**
         * The installation's address as people reach it (behind the load balancer), e.g. https://kontobro.example.com/.
         * A hosted tenant's alert notices link its status page, <public_url>t/<slug>/.
         */
        public_url: z.url({ protocol: /^https?$/, error: "must be an http(s) URL such as https://kontobro.example.com/" }).optional(),
        max_body_bytes: z
          .number()
          .int()
          .min(1024)
          .default(32 * 1024 * 1024),
      })
      .default({ host: "127.0.0.1", port: 8787, max_body_bytes: 32 * 1024 * 1024 }),
    dispatch: z
      .strictObject({
        concurrency: z.number().int().min(1).max(256).default(8),
        lease_seconds: z.number().min(1).default(120),
        retry_base_ms: z.number().int().min(1).default(1000),
        retry_max_ms: z.number().int().min(1).default(300_000),
        idle_poll_ms: z.number().int().min(10).default(1000),
        shutdown_grace_ms: z.number().int().min(0).default(10_000),
        /** Minutes a delivery may wait for a record the PSA has not sent before it needs action. */
        missing_record_grace_minutes: z.number().min(0).default(15),
        /** Circuit breaker per target: 5xx answers, timeouts or broken connections in a row that open it. */
        breaker_failures: z.number().int().min(1).default(5),
        /** First delay before the open breaker's probe (doubles per failed probe up to breaker_max_ms). */
        breaker_base_ms: z.number().int().min(1).default(5000),
        breaker_max_ms: z.number().int().min(1).default(300_000),
      })
      .prefault({}),
    psa: psaConfigSchema().default(PSA_DEFAULTS),
    pulls: pullsConfigSchema().default(PULLS_DEFAULTS),
    /** File exports: SIE 4 and export templates (agent/exports/config.ts). */
    exports: exportsConfigSchema().prefault({}),
    /** Alerts by e-mail and webhook when something needs action or recovers (agent/notify/config.ts). */
    notifications: notificationsConfigSchema().prefault({}),
    /** Outbound requests to the targets through a corporate proxy (connectors/http.ts, proxySettings). */
    proxy: z
      .strictObject({
        /** http://[user:password@]host:port, for http and https targets (https through CONNECT). Wins over the environment. */
        url: z.url({ protocol: /^https?$/, error: "must be an http(s) URL such as http://proxy.example.com:3128" }).optional(),
        /** More hosts that go direct, on top of NO_PROXY: "localhost,127.0.0.1,.intern.example.com". */
        no_proxy: z.string().default(""),
        /** Use HTTPS_PROXY / HTTP_PROXY from the environment when url is not set. */
        from_environment: z.boolean().default(true),
      })
      .prefault({}),
    /** The admin API (/admin/v1: tenants; PostgreSQL storage), guarded by its own token: off unless one is set. */
    admin: z
      .strictObject({
        /** A file holding the admin token (kept out of kontobro.toml); see agent/tenants/admin-token.ts. */
        token_file: z.string().min(1).optional(),
        token: bearerTokenSchema().optional(),
      })
      .refine((a) => !(a.token_file && a.token), { error: "set token_file or token, not both" })
      .prefault({}),
    /**
     * Hosted mode (PostgreSQL storage) only: every `kontobro run` is a worker of the installation (agent/hosted/).
     * Heartbeat and dead-after are judged on the database's clock (agent/db/pg/workers.ts).
     */
    workers: z
      .strictObject({
        heartbeat_ms: z.number().int().min(10).default(5_000),
        dead_after_ms: z.number().int().min(30).default(75_000),
        /** How often a worker reads the tenants again to start new ones and stop disabled or removed ones. */
        tenants_refresh_ms: z.number().int().min(100).default(30_000),
      })
      .prefault({}),
    targets: z
      .array(
        z
          .object({
            name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, { error: "must be lowercase letters, digits, - or _ (at most 40)" }),
            kind: z.string(),
            enabled: z.boolean().default(true),
            paused: z.boolean().default(false),
          })
          .loose(),
      )
      .default([]),
  });
export const AgentConfig = lazySchema(agentConfigSchema);
export type AgentConfig = z.infer<typeof AgentConfig>;

export interface TargetConfig {
  name: string;
  kind: string;
  enabled: boolean;
  /** Events are stored and queued for the target, but nothing is sent until it is unpaused. */
  paused: boolean;
  /** The kind-specific settings, validated by the connector's own schema. */
  settings: any;
  /** Pull jobs ([targets.pulls.<stream>], else the connector's defaults). */
  pulls?: TargetPull[];
  /** Who is master of customers and products (`masters`; absent: the PSA). See agent/master/. */
  masters?: Masters;
}

/**
 * The target's late_answer_wait_ms (every connector's setting; LATE_ANSWER_WAIT_MS when absent), never less than its
 * request_timeout_ms: how long a write of a push is listened to, and how long a delivery whose lease was taken back
 * without its answer waits before it is tried again (agent/dispatcher.ts).
 */
export function lateAnswerWaitOf(t: TargetConfig): number {
  const wait = t.settings?.late_answer_wait_ms;
  const timeout = t.settings?.request_timeout_ms;
  return Math.max(typeof wait === "number" ? wait : LATE_ANSWER_WAIT_MS, typeof timeout === "number" ? timeout : 0);
}

export interface LoadedConfig {
  config: AgentConfig;
  targets: TargetConfig[];
  warnings: string[];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`kontobro.toml has ${problems.length} problem(s):\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

const SECRET_KEYS = /token|secret|password|key/i;

/** Replaces ${NAME} in every string with the environment variable; an unset variable is a problem. */
export function resolveEnv(value: unknown, env: Record<string, string | undefined>, path: string, problems: string[]): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const v = env[name];
      if (v === undefined || v === "") {
        problems.push(`${path}: environment variable ${name} is not set (export it, or write the value in the file)`);
        return "";
      }
      if (SECRET_KEYS.test(path)) registerSecret(v);
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => resolveEnv(v, env, `${path}[${i}]`, problems));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveEnv(v, env, path ? `${path}.${k}` : k, problems)]));
  }
  return value;
}

/** One line per problem, named by its key as written in kontobro.toml. */
function zodProblems(error: z.ZodError, prefix: string): string[] {
  return issuesToProblems(error.issues, { prefix, brackets: true, whole: "(top level)" }).map((p) => p.message);
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/;
export const isLoopback = (host: string) => LOOPBACK.test(host);

/** Validates an already-parsed TOML document (pure apart from reading `env`). */
export function validateConfig(raw: unknown, env: Record<string, string | undefined> = process.env): LoadedConfig {
  const problems: string[] = [];
  const warnings: string[] = [];
  const resolved = resolveEnv(raw ?? {}, env, "", problems);
  const parsed = agentConfigSchema().safeParse(resolved);
  if (!parsed.success) problems.push(...zodProblems(parsed.error, ""));
  const targets: TargetConfig[] = [];
  const names = new Set<string>();
  const masterOf = new Map<string, string>();
  const rawTargets = (resolved as any)?.targets;
  (Array.isArray(rawTargets) ? rawTargets : []).forEach((t: any, i: number) => {
    const at = `targets[${i}]`;
    if (!t || typeof t !== "object") return;
    if (names.has(t.name)) problems.push(`${at}.name: "${t.name}" is used twice; every target needs its own name`);
    names.add(t.name);
    const factory = connectorKinds[t.kind];
    if (!factory) return problems.push(`${at}.kind: unknown kind "${t.kind}"; use one of ${Object.keys(connectorKinds).join(", ")}`);
    const { name, kind, enabled, paused, pulls, masters, ...rest } = t;
    const schedules = targetSchedules(factory, pulls, at, problems);
    const sides = parseMasters(factory, masters, at, problems);
    // One master per entity: the PSA holds one set of customers (products), and a master's changes go to the PSA, so
    // two masters would send it changes of one record from both (enabled or not: turning one on must not make two).
    for (const [plural, entity] of Object.entries(MASTER_KEYS)) {
      if (sides[entity] !== "target") continue;
      const first = masterOf.get(entity);
      if (first === undefined) masterOf.set(entity, name);
      else
        problems.push(
          `${at}.masters.${plural}: target "${first}" is already the master of ${plural}; the PSA has one set of ${plural}, so only one system can be their master (write "psa" for all targets but one)`,
        );
    }
    const settings = factory.configSchema.safeParse(renameKeys(rest, factory.renamedKeys, at, problems, warnings));
    if (!settings.success) return problems.push(...zodProblems(settings.error, at));
    // Secrets written directly in the file are masked in logs as well as those from ${ENV}.
    for (const [k, v] of Object.entries(settings.data as Record<string, unknown>))
      if (SECRET_KEYS.test(k) && typeof v === "string") registerSecret(v);
    targets.push({
      name,
      kind,
      enabled: enabled ?? true,
      paused: paused ?? false,
      settings: settings.data,
      pulls: schedules,
      masters: sides,
    });
  });
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  const config = parsed.data;
  problems.push(
    ...notificationProblems(
      config.notifications,
      targets.map((t) => t.name),
    ),
  );
  // On PostgreSQL each tenant's API has its own token (kontobro tenant add); http.api_token is not used there.
  if (!isLoopback(config.http.host) && !config.http.api_token && !config.storage.url) {
    problems.push(
      `http.host: kontobro listens on ${config.http.host}, which is not loopback, so http.api_token must be set (e.g. api_token = "\${KONTOBRO_API_TOKEN}")`,
    );
  }
  if ((config.admin.token || config.admin.token_file) && !config.storage.url) {
    problems.push(
      'admin: the admin API manages tenants, which need PostgreSQL storage; set [storage] url = "postgres://…", or remove [admin] (with the SQLite file there is exactly one tenant: this kontobro.toml)',
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  registerSecret(config.http.api_token);
  registerSecret(config.admin.token);
  if (config.proxy.url) registerSecret(new URL(config.proxy.url).password || undefined);
  if (config.storage.url) registerSecret(passwordOf(config.storage.url));
  return { config, targets, warnings };
}

/** A connector's renamed keys: the old name still works (with a warning naming the new one), but not beside the new. */
function renameKeys(
  table: Record<string, unknown>,
  renamed: Record<string, string> = {},
  at: string,
  problems: string[],
  warnings: string[],
): Record<string, unknown> {
  const out = { ...table };
  for (const [old, now] of Object.entries(renamed)) {
    if (!(old in out)) continue;
    if (now in out) problems.push(`${at}.${old}: is the old name of ${now}, which is set too; remove ${old}`);
    else warnings.push(`${at}.${old} is now called ${now}; it still works, but rename it in kontobro.toml`);
    out[now] ??= out[old];
    delete out[old];
  }
  return out;
}

/** Reads and validates a kontobro.toml file. */
export function loadConfigFile(path: string, env: Record<string, string | undefined> = process.env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError([
      `${path}: cannot be read (${(e as Error).message}); copy config/kontobro.example.toml to kontobro.toml and edit it`,
    ]);
  }
  let raw: unknown;
  try {
    raw = Bun.TOML.parse(text);
  } catch (e) {
    throw new ConfigError([`${path}: is not valid TOML: ${(e as Error).message}`]);
  }
  const loaded = validateConfig(raw, env);
  const mode = statSync(path).mode;
  if (process.platform !== "win32" && (mode & 0o004) !== 0) {
    loaded.warnings.push(`${path} is readable by other users of this machine and may hold secrets; run: chmod 600 ${path}`);
  }
  return loaded;
}
