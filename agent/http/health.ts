// /healthz and /readyz, for load balancers, service managers and monitoring. No token: they say nothing
// secret. /healthz: the process answers (liveness; restart it when this fails). /readyz: it can do its
// work: the database takes a write, its WAL's fsync has not failed, every migration this binary knows is
// applied, and no target's credentials are refused (readiness; alert or take it out of rotation when this fails).
import type { Hono } from "hono";
import { embeddedMigrations } from "../db/migrations.generated.ts";
import type { Db } from "../db/index.ts";
import { storageTrouble } from "../db/storage-trouble.ts";
import { durabilityFault } from "../durability.ts";
import type { IntakeFailure } from "../intake.ts";
import { refusedCredentials } from "../notify/credentials.ts";
import { showTime } from "../time.ts";
import type { StepFailure } from "../worker-loop.ts";
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

/** A dispatcher whose rounds failed this many times in a row (each after busy_timeout_ms, if the database was locked). */
const FAILED_ROUNDS = 3;

/**
 * Each target's dispatcher makes its rounds: not FAILED_ROUNDS of them failed in a row (a round leases and records
 * outcomes; while they fail nothing is sent to the target), and its loop has not stopped. A database that cannot be
 * written fails its own check too; rounds failing while it takes writes are a bug, retried at every poll.
 */
export function dispatchChecks(targets: ReadinessTarget[], now: number): ReadinessCheck[] {
  return targets
    .filter((t) => t.dispatchFailing)
    .map((t) => {
      const f = t.dispatchFailing!();
      if (!f || (f.steps < FAILED_ROUNDS && !f.stopped))
        return { name: `dispatch:${t.name}`, ok: true, message: `${t.name}: the dispatcher makes its rounds.` };
      if (f.stopped)
        return {
          name: `dispatch:${t.name}`,
          ok: false,
          message: `${t.name}: nothing is sent: the dispatcher stopped on an unexpected error (${showTime(f.since)}): ${f.message}`,
          hint: "Restart kontobro: nothing restarts the dispatcher before. Report the error (in kontobro's log at level error, component dispatcher).",
        };
      const minutes = Math.max(1, Math.round((now - f.since) / 60_000));
      return {
        name: `dispatch:${t.name}`,
        ok: false,
        message: `${t.name}: nothing is sent: the dispatcher's last ${f.steps} rounds failed (about ${minutes} min): ${f.message}`,
        // The database check's one-row update may still fit a full disk where a round's rows do not: the round's error decides.
        hint: ["full", "read-only", "io"].includes(storageTrouble(f.message) ?? "")
          ? "Free disk space on the kontobro server (or fix the data directory's permissions, or the disk the system log blames); the rounds go on by themselves after, and answers already given by the target are written then."
          : "If the database check fails too, fix that first (rounds go on by themselves after). Otherwise restart kontobro, and report the error (in kontobro's log at level warn or error, component dispatcher) if it comes back.",
      };
    });
}

/** A target as readiness sees it: its name, and its dispatcher's failing rounds when it runs one. */
export interface ReadinessTarget {
  name: string;
  dispatchFailing?: () => StepFailure | null;
}

/**
 * Intake stores what the PSA sends: no request refused for a lasting reason (a full disk, …) since the last one stored.
 * The database check's one-row update may still fit where a request's rows do not (a full disk reuses the WAL's room).
 */
export function intakeStoring(failure: IntakeFailure | null): ReadinessCheck {
  if (!failure) return { name: "intake", ok: true, message: "Intake stores the events it is sent." };
  return {
    name: "intake",
    ok: false,
    message: `Events are refused: ${failure.requests} request(s) since ${new Date(failure.since).toISOString()} could not be stored: ${failure.message}`,
    hint: "Fix what the message says; the PSA sends the events again after the Retry-After of its 503, and this check passes once a request is stored (or, with no request since, 5 minutes after the last refusal; 10 for a damaged database).",
  };
}

export function readiness(
  db: Db,
  targets: ReadinessTarget[],
  now = Date.now(),
  intakeFailing: (now: number) => IntakeFailure | null = () => null,
): { ready: boolean; checks: ReadinessCheck[] } {
  const checks = [
    databaseWritable(db, now),
    intakeStoring(intakeFailing(now)),
    walSynced(db),
    migrationsApplied(db),
    ...credentialChecks(
      db,
      targets.map((t) => t.name),
    ),
    ...dispatchChecks(targets, now),
  ];
  return { ready: checks.every((c) => c.ok), checks };
}

export function registerHealthRoutes(app: Hono, ctx: AppContext): void {
  app.get("/healthz", (c) => {
    c.header("Cache-Control", "no-store");
    return c.json({ status: "ok", version: ctx.version, uptimeSeconds: Math.round((Date.now() - ctx.startedAt) / 1000) });
  });

  app.get("/readyz", (c) => {
    c.header("Cache-Control", "no-store");
    const { ready, checks } = readiness(ctx.db, ctx.targets, Date.now(), (now) => ctx.intake.failing?.(now) ?? null);
    return c.json({ status: ready ? "ready" : "not_ready", version: ctx.version, checks }, ready ? 200 : 503);
  });
}
