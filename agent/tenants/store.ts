// The tenants of a PostgreSQL installation (issue 17): add, list, disable, enable, remove, and which tenant an
// API token belongs to. The tenants table is global (no row-level security); every other table holds a
// tenant's rows under row-level security, and removing a tenant deletes them in one transaction. Every change is
// announced on TENANTS_CHANNEL in its own transaction (delivered at commit): every worker refreshes its tenants at once.
import type { SQL } from "bun";
import { and, asc, eq, type SQLWrapper, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/bun-sql";
import { connectorKinds } from "../../connectors/registry.ts";
import { NOT_DONE } from "../db/open-deliveries.ts";
import { rowsFromPostgres } from "../db/pg/dialect.ts";
import { postgresRunner, type SqlRunner } from "../db/pg/runner.ts";
import { tenants } from "../db/pg/schema.ts";
import { TENANT_SETTING } from "../db/pg/tenancy.ts";
import { takeIntakeTurn } from "../intake-store.ts";
import { Outbox } from "../outbox.ts";
import { webhookTokenSetting } from "../pulls/settings.ts";
import { type AccountChoices, accountProblems, reconcileAccounts } from "../target-account.ts";
import { reconcileLookups } from "../target-lookup.ts";
import { checkSlug, loadTenantConfig, targetsOf, validateTenantConfig } from "./config.ts";
import { TenantError } from "./errors.ts";
import { TENANT_TABLES } from "./tables.ts";
import { newToken, sameHash, tokenHash } from "./tokens.ts";

export type TenantState = "active" | "disabled";

/** The PostgreSQL NOTIFY channel on which a change of a tenant (its id as the payload) is announced to the workers. */
export const TENANTS_CHANNEL = "kontobro_tenants";
/** The announcement, sent inside the change's transaction: PostgreSQL delivers it at commit, and never on rollback. */
const ANNOUNCE_CHANGE = `SELECT pg_notify('${TENANTS_CHANNEL}', CAST(?1 AS TEXT)) AS sent`;
/** A tenant's deliveries not done yet, per target. */
const QUEUED_PER_TARGET = `SELECT target, count(*) AS n FROM deliveries
  WHERE status IN ('pending', 'in_flight', 'waiting', 'needs_action') AND ${NOT_DONE} GROUP BY target ORDER BY target`;

export interface Tenant {
  id: number;
  slug: string;
  name: string;
  state: TenantState;
  /** The tenant's sections of kontobro.toml ([[targets]], [psa], [exports], [notifications]) as stored. */
  config: Record<string, unknown>;
  targets: { name: string; kind: string }[];
  createdAt: number;
  updatedAt: number;
}

export interface AddedTenant {
  tenant: Tenant;
  /** The tenant's API token: shown once, only its hash is stored. */
  apiToken: string;
  /** Each target's webhook token (targets whose connector takes webhook hints), kept in the tenant's settings. */
  webhookTokens: Record<string, string>;
  warnings: string[];
}

/** Who a request's API token belongs to. */
export interface ResolvedTenant {
  id: number;
  slug: string;
  state: TenantState;
  /** tenants.updated_at: a worker running an older version of the tenant starts it afresh before serving it. */
  updatedAt: number;
}

const notFound = (slug: string) =>
  new TenantError("not_found", `there is no tenant "${slug}"`, "`kontobro tenant list` (or GET /admin/v1/tenants) shows the tenants.");

type Row = typeof tenants.$inferSelect;

function toTenant(row: Row): Tenant {
  const config = JSON.parse(row.config) as Record<string, unknown>;
  const { apiTokenHash: _, config: __, ...rest } = row;
  return { ...rest, config, targets: targetsOf(config) };
}

export class TenantStore {
  private readonly db;

  constructor(
    private readonly client: SQL,
    private readonly now: () => number = Date.now,
  ) {
    this.db = drizzle({ client });
  }

  /**
   * Adds a tenant after validating its slug and configuration; ${NAME} in the configuration is read from `env`
   * (pass {} where the environment is not the caller's, as in the admin API).
   */
  async add(input: { slug: string; name?: string; config: unknown }, env: Record<string, string | undefined>): Promise<AddedTenant> {
    const slug = checkSlug(input.slug);
    const { config, targets, warnings } = validateTenantConfig(input.config, env);
    const apiToken = newToken();
    const webhookTokens = Object.fromEntries(
      targets.filter((t) => connectorKinds[t.kind]?.webhookStreams).map((t) => [t.name, newToken()]),
    );
    const at = this.now();
    const row = await this.db.transaction(async (tx) => {
      const [added] = await tx
        .insert(tenants)
        .values({
          slug,
          name: input.name?.trim() || slug,
          config: JSON.stringify(config),
          apiTokenHash: tokenHash(apiToken),
          createdAt: at,
          updatedAt: at,
        })
        .onConflictDoNothing({ target: tenants.slug })
        .returning();
      if (added) {
        // The webhook tokens go to the tenant's own settings, where its workers read them (webhookTokenFor,
        // agent/pulls/index.ts) and its API lists them again (GET /api/v1/pulls).
        await tx.execute(sql`SELECT set_config(${TENANT_SETTING}, ${String(added.id)}, true)`);
        for (const [target, token] of Object.entries(webhookTokens))
          await tx.execute(sql`INSERT INTO settings (name, value) VALUES (${webhookTokenSetting(target)}, ${token})`);
        await announce(tx, added.id);
      }
      return added;
    });
    if (!row) {
      throw new TenantError(
        "duplicate_slug",
        `a tenant "${slug}" already exists`,
        "Choose another slug; `kontobro tenant list` shows those taken.",
      );
    }
    return { tenant: toTenant(row), apiToken, webhookTokens, warnings };
  }

  async list(): Promise<Tenant[]> {
    return (await this.db.select().from(tenants).orderBy(asc(tenants.slug))).map(toTenant);
  }

  async get(slug: string): Promise<Tenant | null> {
    const [row] = await this.db.select().from(tenants).where(eq(tenants.slug, slug));
    return row ? toTenant(row) : null;
  }

  /** Disables (or enables again) a tenant: a disabled tenant's API answers 403 and the workers skip its work. */
  async setState(slug: string, state: TenantState): Promise<Tenant> {
    const row = await this.db.transaction(async (tx) => {
      const [changed] = await tx.update(tenants).set({ state, updatedAt: this.now() }).where(eq(tenants.slug, slug)).returning();
      if (changed) await announce(tx, changed.id);
      return changed;
    });
    if (!row) throw notFound(slug);
    return toTenant(row);
  }

  /**
   * Replaces a tenant's configuration, validated as `add` validates it (nothing is stored when it is not valid); every
   * worker starts the tenant afresh with it (announced at commit). ${NAME} is read from `env` ({} from the admin API).
   * Deliveries already queued for a target it no longer has (removed or disabled) stay as they are: the warnings
   * count them, GET /api/v1/status shows them, and they go out if the target comes back under the same name. A target
   * that keeps its name but points at another account while kontobro holds ids of records in the old one is refused
   * unless `accounts` says to forget or keep them (agent/target-account.ts).
   */
  async setConfig(
    slug: string,
    raw: unknown,
    env: Record<string, string | undefined>,
    accounts: AccountChoices = {},
  ): Promise<{ tenant: Tenant; warnings: string[] }> {
    const found = await this.get(slug);
    if (!found) throw notFound(slug);
    const { config, targets, warnings } = validateTenantConfig(raw, env);
    const previous = previousTargets(found.config);
    const sending = new Set(targets.filter((t) => t.enabled).map((t) => t.name));
    return postgresRunner(this.client, found.id).transaction(async (tx) => {
      // The tenant's intake turn first: an intake group committed before is counted below; one after finds the new
      // version and is refused (the tenant runtime's guard), so no event gets deliveries for the old targets unseen.
      await takeIntakeTurn(tx);
      const row = await tx.get<{ updatedAt: number }>("SELECT updated_at AS updatedAt FROM tenants WHERE id = ?1 FOR UPDATE", found.id);
      if (!row) throw notFound(slug);
      // A target whose setting that finds its records again there changed while some of them may have landed unlinked:
      // refused (agent/target-lookup.ts; before the accounts are recorded, which it compares with).
      const lookups = await reconcileLookups(tx, targets, previous);
      if (lookups.length > 0)
        throw new TenantError(
          "lookup_changed",
          "the configuration changes a setting by which kontobro finds its records again at a target while some wait for their outcome there; nothing was changed",
          "Keep the setting as it was until those deliveries are settled, then change it.",
          lookups,
        );
      // A target pointed at another account: refused (nothing stored), or its ids forgotten or kept as asked.
      const checked = await reconcileAccounts(tx, targets, accounts, previous);
      if (checked.refused.length > 0 || checked.unknownChoices.length > 0)
        throw new TenantError(
          "account_changed",
          `the configuration points ${checked.refused.length > 0 ? "a target at another account" : "at targets that are not there"}; nothing was changed`,
          "Rename the target, or say for each target named whether kontobro forgets or keeps its ids of records in the old account.",
          [
            ...accountProblems(checked.refused, {
              forget: (t) => `pass --forget-links ${t} (kontobro tenant set) or ?forget_links=${t} (PUT /admin/v1/tenants/${slug}/config)`,
              keep: (t) => `pass --keep-links ${t} (or ?keep_links=${t})`,
            }),
            ...checked.unknownChoices.map((n) => `forget/keep links: the configuration has no target named "${n}"`),
          ],
        );
      warnings.push(...checked.warnings);
      // Always a newer version, even within the same millisecond: the workers compare it to restart the tenant.
      const at = Math.max(this.now(), row.updatedAt + 1);
      await tx.run("UPDATE tenants SET config = ?1, updated_at = ?2 WHERE id = ?3", JSON.stringify(config), at, found.id);
      // A target back in the configuration: what it missed meanwhile replaces the older versions queued for it.
      const sentBefore = new Set(previous.filter((t) => t.enabled).map((t) => t.name));
      for (const name of sending) {
        if (sentBefore.has(name)) continue;
        const caught = await new Outbox(tx).catchUp(name, tx);
        if (caught > 0)
          warnings.push(
            `target ${name}: ${caught} queued deliver${caught === 1 ? "y was of a version" : "ies were of versions"} older than the PSA's newest, which came while the target was out of the configuration: the newest goes instead`,
          );
      }
      const queued = await tx.all<{ target: string; n: number }>(QUEUED_PER_TARGET);
      for (const q of queued.filter((q) => !sending.has(q.target)))
        warnings.push(
          `target ${q.target} is no longer in the configuration (or is disabled): its ${q.n} queued deliver${q.n === 1 ? "y stays" : "ies stay"} as they are (GET /api/v1/status counts them) and go out if it comes back under that name`,
        );
      await tx.get(ANNOUNCE_CHANGE, found.id);
      return { tenant: { ...found, config, targets: targetsOf(config), updatedAt: at }, warnings };
    });
  }

  /**
   * Gives the tenant a new API token (returned: shown once, only its hash is stored): the old one is refused (401) on
   * every worker from the commit on, since each request looks its token up in the database. The tenant's row keeps its
   * version (updated_at): no worker restarts it, and deliveries in flight, pulls and intake go on. It replaces the token
   * it read, or nothing: of two rotations at once one is refused (`token_rotated`), so no caller is shown a token that
   * another one had already replaced.
   */
  async rotateApiToken(slug: string): Promise<{ tenant: Tenant; apiToken: string }> {
    const [was] = await this.db.select({ hash: tenants.apiTokenHash }).from(tenants).where(eq(tenants.slug, slug));
    if (!was) throw notFound(slug);
    const apiToken = newToken();
    const [row] = await this.db
      .update(tenants)
      .set({ apiTokenHash: tokenHash(apiToken) })
      .where(and(eq(tenants.slug, slug), eq(tenants.apiTokenHash, was.hash)))
      .returning();
    if (!row)
      throw new TenantError(
        "token_rotated",
        `tenant "${slug}"'s API token was rotated by another request at the same time; the token made here was never valid`,
        "The other request's token is the valid one: use it, or rotate again to get a new one.",
      );
    return { tenant: toTenant(row), apiToken };
  }

  /** The tenant's runner: its rows, under row-level security (e.g. its OAuth tokens, `kontobro tenant connect`). */
  runnerOf(tenant: Tenant): SqlRunner {
    return postgresRunner(this.client, tenant.id);
  }

  /**
   * Deletes a disabled tenant and every row it has, in every tenant table, in one transaction: all of it or
   * nothing. An active tenant is refused (disable it first, so nothing of it is running when it goes), and so is one
   * whose pushes or pulls are still under way on a worker (refuseWorkUnderWay). `dropped`: its deliveries not done yet,
   * per target, that go with it undelivered (counted in the same transaction, so the number is what was deleted).
   */
  async remove(slug: string): Promise<{ slug: string; rows: number; dropped: { target: string; n: number }[] }> {
    const found = await this.get(slug);
    if (!found) throw notFound(slug);
    const refuseActive = () =>
      new TenantError(
        "still_active",
        `tenant "${slug}" is active; only a disabled tenant can be removed`,
        `Disable it first (kontobro tenant disable ${slug}), so its API and workers stop, then remove it.`,
      );
    if (found.state === "active") throw refuseActive();
    return postgresRunner(this.client, found.id).transaction(async (tx) => {
      // Locked until the commit: nobody enables it while its rows go.
      const row = await tx.get<{ state: string }>("SELECT state FROM tenants WHERE id = ?1 FOR UPDATE", found.id);
      if (!row) throw notFound(slug);
      if (row.state === "active") throw refuseActive();
      await refuseWorkUnderWay(tx, slug);
      const dropped = (await tx.all<{ target: string; n: number }>(QUEUED_PER_TARGET)).map((q) => ({ target: q.target, n: Number(q.n) }));
      let rows = 0;
      // tenant_id named as well as enforced by row-level security: a connection that bypasses it (a superuser's)
      // still deletes this tenant's rows only.
      for (const table of TENANT_TABLES) rows += (await tx.run(`DELETE FROM ${table} WHERE tenant_id = ?1`, found.id)).changes;
      await tx.run("DELETE FROM tenants WHERE id = ?1", found.id);
      await tx.get(ANNOUNCE_CHANGE, found.id);
      return { slug, rows, dropped };
    });
  }

  /**
   * The tenant an API token belongs to, or null. Looked up by the token's hash (an index), then the hashes are
   * compared in constant time; a disabled tenant is returned too, so its API can say it is disabled.
   */
  async resolveApiToken(token: string): Promise<ResolvedTenant | null> {
    const hash = tokenHash(token);
    // Written out, not built with drizzle's builder: this runs for every API request, and building the query cost the
    // worker 50-65 µs each (profile figures, 5,000 lookups: 60-87 µs of CPU against 12-23 µs).
    const res = await this.client.unsafe(RESOLVE_API_TOKEN, [hash]);
    const [row] = rowsFromPostgres<ResolvedTenant & { hash: string }>(res, res.columns);
    if (!row || !sameHash(row.hash, hash)) return null;
    return { id: row.id, slug: row.slug, state: row.state, updatedAt: row.updatedAt };
  }
}

const RESOLVE_API_TOKEN = `SELECT id, slug, state, updated_at AS "updatedAt", api_token_hash AS hash FROM tenants WHERE api_token_hash = $1`;

/** A tenant's deliveries leased by a worker and its pull runs not ended: work a worker is doing for it right now. */
const UNDER_WAY = `SELECT (SELECT count(*) FROM deliveries WHERE status = 'in_flight' AND ${NOT_DONE}) AS pushes,
  (SELECT count(*) FROM job_runs WHERE status = 'running') AS pulls`;

/**
 * Refuses to remove a tenant while a worker pushes or pulls for it. A disable stops the tenant on every worker at once,
 * but a push under way finishes or is handed back only within [dispatch] shutdown_grace_ms (a worker that missed the
 * announcement, within [workers] tenants_refresh_ms; a dead worker's, once the others take its leases back after
 * dead_after_ms): removed meanwhile, its rows went while its request could still book at the target, with nothing left
 * to say so. Run in remove's transaction, after the tenant's row is locked: the claims of a disabled tenant lease nothing.
 */
async function refuseWorkUnderWay(tx: SqlRunner, slug: string): Promise<void> {
  const { pushes, pulls } = (await tx.get<{ pushes: number; pulls: number }>(UNDER_WAY))!;
  if (pushes === 0 && pulls === 0) return;
  const what = [
    ...(pushes > 0 ? [`${pushes} push${pushes === 1 ? "" : "es"} to its targets`] : []),
    ...(pulls > 0 ? [`${pulls} pull${pulls === 1 ? "" : "s"}`] : []),
  ].join(" and ");
  const when = [
    ...(pushes > 0
      ? [
          "the workers finish its pushes or hand them back within [dispatch] shutdown_grace_ms of the disable (a worker that stopped answering: once the others take its leases back after [workers] dead_after_ms)",
        ]
      : []),
    ...(pulls > 0 ? ["a pull under way runs to its end, which for a long pull can take a while"] : []),
  ].join("; ");
  throw new TenantError(
    "work_under_way",
    `tenant "${slug}" still has ${what} under way on a worker; nothing was removed`,
    `Wait until nothing of it is under way (${when}), then run kontobro tenant remove ${slug} again. \`kontobro tenant status ${slug}\` shows what is in flight.`,
  );
}

/** The targets of a tenant's stored configuration, parsed as the change's are; none when it no longer validates. */
function previousTargets(config: Record<string, unknown>) {
  try {
    return loadTenantConfig(config).targets;
  } catch {
    return [];
  }
}

/** Announces a change of tenant `id` in the transaction `tx` that makes it (see TENANTS_CHANNEL). */
async function announce(tx: { execute(query: SQLWrapper): Promise<unknown> }, id: number): Promise<void> {
  await tx.execute(sql`SELECT pg_notify(${TENANTS_CHANNEL}, ${String(id)})`);
}
