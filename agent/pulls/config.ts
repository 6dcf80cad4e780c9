// kontobro.toml for the pull side: [psa] (where pulled items go), [pulls] (webhook hints) and each
// target's [targets.pulls.<stream>] schedule. Wired into agent/config.ts.
import { z } from "zod";
import { lazySchema } from "../lazy-schema.ts";
import type { ConnectorFactory } from "../../connectors/contract.ts";
import { issuesToProblems } from "../problem.ts";
import { scheduleProblems } from "./cron.ts";

export const PSA_DEFAULTS = {
  batch_size: 50,
  max_body_bytes: 8 * 1024 * 1024,
  timeout_ms: 30_000,
  retry_base_ms: 1000,
  retry_max_ms: 600_000,
  poll_ms: 2000,
};

export const psaConfigSchema = () =>
  z
    .strictObject({
      /** The PSA's endpoint for pulled items; unset = the PSA reads the feed GET /api/v1/inbox only. */
      webhook_url: z.url({ error: "must be a URL such as https://psa.example.com/hooks/kontobro" }).optional(),
      /** Shared secret for the Kontobro-Signature header (HMAC-SHA256). */
      webhook_secret: z.string().min(16, { error: "must be at least 16 characters" }).optional(),
      batch_size: z.number().int().min(1).max(1000).default(PSA_DEFAULTS.batch_size),
      max_body_bytes: z.number().int().min(1024).default(PSA_DEFAULTS.max_body_bytes),
      timeout_ms: z.number().int().min(100).max(600_000).default(PSA_DEFAULTS.timeout_ms),
      retry_base_ms: z.number().int().min(1).default(PSA_DEFAULTS.retry_base_ms),
      retry_max_ms: z.number().int().min(1).default(PSA_DEFAULTS.retry_max_ms),
      poll_ms: z.number().int().min(10).default(PSA_DEFAULTS.poll_ms),
    })
    .refine((p) => !p.webhook_url || p.webhook_secret, {
      error: "is required when webhook_url is set (the PSA checks the signature with it)",
      path: ["webhook_secret"],
    });
export const PsaConfig = lazySchema(psaConfigSchema);

export const PULLS_DEFAULTS = { webhook_debounce_ms: 5000, webhook_max_body_bytes: 65_536, shutdown_grace_ms: 10_000 };

export const pullsConfigSchema = () =>
  z.strictObject({
    /** Webhook hints for one job within this window start one pull. */
    webhook_debounce_ms: z.number().int().min(0).max(600_000).default(PULLS_DEFAULTS.webhook_debounce_ms),
    /** Largest body a target's webhook may send (they are hints; the data is fetched by the pull). */
    webhook_max_body_bytes: z
      .number()
      .int()
      .min(256)
      .max(10 * 1024 * 1024)
      .default(PULLS_DEFAULTS.webhook_max_body_bytes),
    /** On shutdown, how long a pull under way may take to finish its page. */
    shutdown_grace_ms: z.number().int().min(0).default(PULLS_DEFAULTS.shutdown_grace_ms),
  });
export const PullsConfig = lazySchema(pullsConfigSchema);

const scheduleSchema = () =>
  z.strictObject({
    cron: z.string({ error: 'is required, e.g. cron = "0 6 * * *"' }).min(1),
    timezone: z.string({ error: 'is required: state the time zone, e.g. timezone = "Europe/Copenhagen"' }).min(1),
    enabled: z.boolean().default(true),
  });

/** One pull job of a target: stream, schedule (null = only on demand) and its time zone. */
export interface TargetPull {
  stream: string;
  cron: string | null;
  timezone: string;
}

/**
 * The target's pull jobs: the connector's streams with their default schedules, overridden by
 * [targets.pulls.<stream>]. Problems are added as "key: message" lines, like every config problem.
 */
export function targetSchedules(factory: ConnectorFactory, raw: unknown, at: string, problems: string[]): TargetPull[] {
  const streams = factory.pulls ?? {};
  if (raw === undefined) return Object.entries(streams).map(([stream, s]) => ({ stream, cron: s.cron, timezone: s.timezone }));
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    problems.push(`${at}.pulls: must be a table of streams, e.g. [targets.pulls.${Object.keys(streams)[0] ?? "expenses"}]`);
    return [];
  }
  const given = raw as Record<string, unknown>;
  for (const name of Object.keys(given)) {
    if (!streams[name]) {
      const known = Object.keys(streams);
      problems.push(
        `${at}.pulls.${name}: ${factory.title} has no stream "${name}"${known.length ? `; use ${known.join(" or ")}` : " to pull"}`,
      );
    }
  }
  const out: TargetPull[] = [];
  for (const [stream, spec] of Object.entries(streams)) {
    if (given[stream] === undefined) {
      out.push({ stream, cron: spec.cron, timezone: spec.timezone });
      continue;
    }
    const parsed = scheduleSchema().safeParse(given[stream]);
    if (!parsed.success) {
      for (const p of issuesToProblems(parsed.error.issues, { prefix: `${at}.pulls.${stream}`, brackets: true })) problems.push(p.message);
      continue;
    }
    for (const p of scheduleProblems(parsed.data.cron, parsed.data.timezone, `${at}.pulls.${stream}`))
      problems.push(`${p.field}: ${p.message}. ${p.hint}`);
    out.push({ stream, cron: parsed.data.enabled ? parsed.data.cron : null, timezone: parsed.data.timezone });
  }
  return out;
}
