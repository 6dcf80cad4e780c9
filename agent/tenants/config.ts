// A tenant's name and configuration, validated before anything is stored (pure apart from reading `env`).
// The configuration uses kontobro.toml's keys and is checked by the very same code (validateConfig): a
// tenant's file is a kontobro.toml holding only the sections that belong to a tenant.
import { AgentConfig, ConfigError, resolveEnv, validateConfig, type TargetConfig } from "../config.ts";
import { TenantError } from "./errors.ts";

/** The sections of kontobro.toml a tenant has its own of; the rest belong to the installation. */
export const TENANT_SECTIONS = ["targets", "psa", "exports", "notifications"] as const;

const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;
const SLUG_RULE = "1 to 40 lowercase letters, digits and dashes, starting and ending with a letter or digit, e.g. acme-consulting";

/** The slug, or a TenantError saying what a slug looks like. */
export function checkSlug(slug: string): string {
  if (!SLUG.test(slug)) {
    throw new TenantError("invalid_slug", `"${slug.slice(0, 60)}" is not a tenant slug`, `A slug is ${SLUG_RULE}.`);
  }
  return slug;
}

export interface ValidTenantConfig {
  /** What is stored: the tenant's sections as given, ${NAME} references replaced by the environment's values. */
  config: Record<string, unknown>;
  targets: TargetConfig[];
  /** The tenant's sections parsed with kontobro.toml's defaults ([psa], [exports], [notifications]); read only those. */
  sections: Pick<AgentConfig, "psa" | "exports" | "notifications">;
  warnings: string[];
}

/**
 * Validates a tenant's configuration (a parsed TOML file or the admin API's JSON). `env` resolves ${NAME}
 * once, here: what is stored needs no environment, so every worker on every machine reads the same values.
 */
export function validateTenantConfig(raw: unknown, env: Record<string, string | undefined>): ValidTenantConfig {
  const invalid = (problems: string[]) =>
    new TenantError(
      "invalid_config",
      `the tenant's configuration has ${problems.length} problem(s)`,
      "Fix the keys named; a tenant's configuration uses kontobro.toml's keys (see config/kontobro.example.toml).",
      problems,
    );
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    throw invalid([`(top level): must be a table of sections (${TENANT_SECTIONS.join(", ")})`]);
  }
  const problems: string[] = [];
  for (const key of Object.keys(raw)) {
    if ((TENANT_SECTIONS as readonly string[]).includes(key)) continue;
    problems.push(
      key in AgentConfig.shape
        ? `${key}: is set for the whole installation in kontobro.toml, not per tenant; remove it from the tenant's configuration`
        : `${key}: unknown key; a tenant's configuration holds only ${TENANT_SECTIONS.join(", ")}`,
    );
  }
  const config = resolveEnv(raw, env, "", problems) as Record<string, unknown>;
  if (problems.length > 0) throw invalid(problems);
  try {
    const { config: sections, targets, warnings } = validateConfig(config, {});
    return { config, targets, sections, warnings };
  } catch (e) {
    if (e instanceof ConfigError) throw invalid(e.problems);
    throw e;
  }
}

/** A stored tenant configuration's targets, by name and kind (for listings: no validation needed). */
export function targetsOf(config: Record<string, unknown>): { name: string; kind: string }[] {
  const targets = Array.isArray(config.targets) ? config.targets : [];
  return targets.map((t: { name?: unknown; kind?: unknown }) => ({ name: String(t?.name), kind: String(t?.kind) }));
}

/** The stored configuration as the agent uses it (validated again: the code may have changed since it was stored). */
export function loadTenantConfig(config: Record<string, unknown>): ValidTenantConfig {
  return validateTenantConfig(config, {});
}
