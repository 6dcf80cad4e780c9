// /healthz and /readyz, for load balancers, service managers and monitoring. No token: they say nothing
// secret. /healthz: the process answers (liveness; restart it when this fails). /readyz: it can do its
// work: the database takes a write, its WAL's fsync has not failed, every migration this binary knows is
// applied, and no target's credentials are refused (readiness; alert or take it out of rotation when this fails).
import type { Hono } from "hono";
import { embeddedMigrations } from "../db/migrations.generated.ts";
import type { Db } from "../db/index.ts";
import { durabilityFault } from "../durability.ts";
import { refusedCredentials } from "../notify/credentials.ts";
import type { AppContext } from "./context.ts";

export interface ReadinessCheck {
  name: string;
  ok: boolean;
  message: string;
  hint?: string;
}

/** The database takes a (tiny, durable) write: not read-only, not full, not locked beyond busy_timeout_ms. */
function databaseWritable(db: Db, now: number): ReadinessCheck {
  try {
    db.$client
      .transaction(() => {
        db.$client.run(
          `INSERT INTO settings (name, value) VALUES ('readyz_probe', ?1) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
          [String(now)],
        );
      })
      .immediate();
    return { name: "database", ok: true, message: "The database takes writes." };
  } catch (e) {
    return {
      name: "database",
      ok: false,
      message: `The database cannot be written: ${(e as Error).message}`,
      hint: "Check the free disk space and that the user running kontobro may write the data directory; a backup holding a lock passes by itself.",
    };
  }
}

/** Every commit is made durable: no fsync of the WAL has failed (after one, nothing is sent until a restart). */
function walSynced(db: Db): ReadinessCheck {
  const fault = durabilityFault(db);
  if (!fault) return { name: "durability", ok: true, message: "Every commit so far was made durable." };
  return { name: "durability", ok: false, message: fault.message, hint: fault.hint };
}

/** Every embedded migration is applied (a database newer or older than this binary shows here). */
function migrationsApplied(db: Db): ReadinessCheck {
  const expected = embeddedMigrations.length;
  const last = embeddedMigrations[expected - 1]!.when;
  try {
    const row = db.$client.query(`SELECT count(*) AS n, max(created_at) AS last FROM __drizzle_migrations`).get() as {
      n: number;
      last: number | null;
    };
    if ((row.last ?? 0) >= last) return { name: "migrations", ok: true, message: `${row.n} of ${expected} migrations applied.` };
    return {
      name: "migrations",
      ok: false,
      message: `${row.n} of ${expected} migrations applied; the database is older than this kontobro.`,
      hint: "Restart kontobro: it migrates the database at start.",
    };
  } catch (e) {
    return {
      name: "migrations",
      ok: false,
      message: `The migrations cannot be read: ${(e as Error).message}`,
      hint: "Restart kontobro: it migrates the database at start.",
    };
  }
}

/** Targets whose credentials the target refused (401) and that have not worked since. */
function credentialChecks(db: Db, targets: string[]): ReadinessCheck[] {
  const refused = new Map(refusedCredentials(db).map((r) => [r.target, r]));
  return targets.map((name) => {
    const r = refused.get(name);
    return r
      ? {
          name: `credentials:${name}`,
          ok: false,
          message: `${name} refuses kontobro's credentials since ${new Date(r.since).toISOString()}: ${r.message}`,
          hint:
            r.hint ?? "Fix the credentials in kontobro.toml (or their environment variables), run `kontobro check`, then restart kontobro.",
        }
      : { name: `credentials:${name}`, ok: true, message: `${name}: no refusal seen.` };
  });
}

export function readiness(db: Db, targets: string[], now = Date.now()): { ready: boolean; checks: ReadinessCheck[] } {
  const checks = [databaseWritable(db, now), walSynced(db), migrationsApplied(db), ...credentialChecks(db, targets)];
  return { ready: checks.every((c) => c.ok), checks };
}

export function registerHealthRoutes(app: Hono, ctx: AppContext): void {
  app.get("/healthz", (c) => {
    c.header("Cache-Control", "no-store");
    return c.json({ status: "ok", version: ctx.version, uptimeSeconds: Math.round((Date.now() - ctx.startedAt) / 1000) });
  });

  app.get("/readyz", (c) => {
    c.header("Cache-Control", "no-store");
    const { ready, checks } = readiness(
      ctx.db,
      ctx.targets.map((t) => t.name),
    );
    return c.json({ status: ready ? "ready" : "not_ready", version: ctx.version, checks }, ready ? 200 : 503);
  });
}
