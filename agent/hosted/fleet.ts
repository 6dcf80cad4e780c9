// The tenants this worker runs: every active tenant of the database, read again every tenants_refresh_ms, at once when
// any worker announces a change of a tenant (TENANTS_CHANNEL, agent/tenants/store.ts), and before a request for a
// tenant this worker does not run as it now is. New and enabled tenants start; disabled and removed ones
// stop (their dispatchers finish or release their leases, their intake commits what it was given); a tenant whose
// row changed starts afresh. Refreshes run one at a time.
import type { Logger } from "../log.ts";
import { TenantError } from "../tenants/errors.ts";
import type { Tenant } from "../tenants/store.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import type { TenantRuntime } from "./tenant-runtime.ts";

export interface FleetDeps {
  listTenants(): Promise<Tenant[]>;
  runner(tenant: number): SqlRunner;
  start(tenant: Tenant, runner: SqlRunner): Promise<TenantRuntime>;
  log: Logger;
}

export class TenantFleet {
  private readonly running = new Map<number, TenantRuntime>();
  /** Active tenants whose stored configuration is not valid, with why (tried again once the tenant changes). */
  private readonly failed = new Map<number, { version: number; reason: string }>();
  private chain: Promise<void> = Promise.resolve();
  /** A refresh that has not started yet. */
  private waiting: Promise<void> | null = null;
  private stopped = false;
  /** The active tenants the last refresh read. */
  private active = new Set<number>();

  constructor(private readonly deps: FleetDeps) {}

  /** The tenant's runtime on this worker, if it runs here. */
  get(tenant: number): TenantRuntime | undefined {
    return this.running.get(tenant);
  }

  /** This worker runs the tenant (or found it could not) as of `version` (tenants.updated_at): nothing to refresh. */
  isCurrent(tenant: number, version: number): boolean {
    return (this.running.get(tenant)?.version ?? this.failed.get(tenant)?.version) === version;
  }

  /** Why an active tenant does not run on this worker, if it could not start. */
  whyNotRunning(tenant: number): string | undefined {
    return this.failed.get(tenant)?.reason;
  }

  get size(): number {
    return this.running.size;
  }

  /**
   * Active tenants (as the last refresh read them) that do not run on this worker: their stored configuration is not
   * valid, or their start failed (tried again at each refresh). Every worker runs every active tenant, so one that runs
   * nowhere has nothing delivered, pulled or told (its notifier is part of its runtime): /metrics shows it.
   */
  get notRunning(): number {
    let n = 0;
    for (const id of this.active) if (!this.running.has(id)) n += 1;
    return n;
  }

  /**
   * Reads the tenants and starts or stops what changed; resolves when done (a failure is logged, never thrown).
   * Calls made while one waits to start share it: it reads the tenants after every one of them was made.
   */
  refresh(): Promise<void> {
    if (this.waiting) return this.waiting;
    const next = this.chain.then(() => {
      this.waiting = null;
      return this.reconcile();
    });
    this.waiting = next;
    return (this.chain = next);
  }

  /**
   * Stops every running tenant and starts the active ones afresh (after a restore: delivery ids repeat, so their
   * idempotency keys need the new epoch the caller gives its start function). Resolves when done.
   */
  restartAll(): Promise<void> {
    return (this.chain = this.chain.then(async () => {
      const all = [...this.running.values()];
      this.running.clear();
      await Promise.all(all.map((r) => this.stopOne(r)));
      await this.reconcile();
    }));
  }

  /** Stops every tenant; no refresh starts one again. */
  stop(): Promise<void> {
    this.stopped = true;
    return (this.chain = this.chain.then(async () => {
      const all = [...this.running.values()];
      this.running.clear();
      await Promise.all(all.map((r) => this.stopOne(r)));
    }));
  }

  private async reconcile(): Promise<void> {
    if (this.stopped) return;
    let tenants: Tenant[];
    try {
      tenants = await this.deps.listTenants();
    } catch (e) {
      this.deps.log.warn("could not read the tenants; the ones running go on, the next refresh tries again", { error: e });
      return;
    }
    const active = new Map(tenants.filter((t) => t.state === "active").map((t) => [t.id, t]));
    this.active = new Set(active.keys());
    // Stopped first: a changed tenant is stopped before it starts afresh.
    const leaving = [...this.running.values()].filter((r) => active.get(r.tenant.id)?.updatedAt !== r.version);
    for (const r of leaving) this.running.delete(r.tenant.id);
    await Promise.all(leaving.map((r) => this.stopOne(r)));
    for (const id of this.failed.keys()) if (active.get(id)?.updatedAt !== this.failed.get(id)!.version) this.failed.delete(id);
    for (const t of active.values()) {
      if (this.running.has(t.id) || this.failed.has(t.id)) continue;
      try {
        this.running.set(t.id, await this.deps.start(t, this.deps.runner(t.id)));
      } catch (e) {
        if (!(e instanceof TenantError)) {
          // The database, most likely: tried again at the next refresh (or the tenant's next request).
          this.deps.log.warn(`tenant ${t.slug} could not start on this worker; trying again at the next refresh`, {
            tenant: t.slug,
            error: e,
          });
          continue;
        }
        // Its stored configuration: nothing changes until the tenant does.
        const reason = `its stored configuration is not valid: ${[e.message, ...e.problems].join("; ")}`;
        this.failed.set(t.id, { version: t.updatedAt, reason });
        this.deps.log.error(`tenant ${t.slug} does not run on this worker: ${reason}`, { tenant: t.slug });
      }
    }
  }

  private async stopOne(r: TenantRuntime): Promise<void> {
    try {
      await r.stop();
    } catch (e) {
      this.deps.log.error("tenant did not stop cleanly; its leases go back when this worker stops", { tenant: r.tenant.slug, error: e });
    }
  }
}
