// Backpressure per target, not per delivery: a pause the target asked for (429/503 with Retry-After) and a
// circuit breaker for a target that keeps failing (5xx, timeouts, broken connections).
// The state machine is pure functions; the store keeps it in the database (table target_state), so every
// worker of a target sees the same pause and a restart keeps it.
//
//   closed ──N failures in a row──▶ open ──delay passed──▶ half_open: one probe ──success──▶ closed
//                                    ▲                                │
//                                    └──── failure: delay doubled ◀───┘   (up to the cap)
//
// A pause (429/503 with Retry-After) stops every request until it ends; then one request goes first
// (half-open), and only its success lets the whole queue go again.
import { isTargetError, MAX_PAUSE_MS, NOT_SENT, TARGET_PAUSED } from "../connectors/http.ts";
import type { Db } from "./db/index.ts";
import type { SqlRunner } from "./db/pg/runner.ts";
import { showTime } from "./time.ts";

export type BreakerState = "closed" | "open" | "half_open";

export interface TargetState {
  target: string;
  /** No request to the target before this time (epoch ms): the target asked us to wait. */
  pausedUntil: number | null;
  pauseReason: string | null;
  breaker: BreakerState;
  /** Failures in a row (5xx, timeouts, broken connections) since the last success. */
  failures: number;
  /** The breaker's current delay between probes; doubles with every failed probe, up to the cap. */
  probeDelayMs: number | null;
  /** open: the first probe may go at this time. half_open: a probe is out; the next may go at this time. */
  nextProbeAt: number | null;
  /**
   * half_open: the worker whose probe is out (workers.id on PostgreSQL), so the recovery of a dead worker frees its
   * probe and only its probe (agent/db/pg/dead-workers.ts). Null when no probe is out, and always on SQLite.
   */
  probeOwner: number | null;
  updatedAt: number;
}

export interface BreakerPolicy {
  /** Failures in a row that open the breaker. */
  failures: number;
  /** First delay before a probe; also the pause after a 429 that says no Retry-After. */
  baseMs: number;
  /** Cap of the doubled delay. */
  maxMs: number;
}

export const BREAKER_DEFAULTS: BreakerPolicy = { failures: 5, baseMs: 5_000, maxMs: 300_000 };

/** The policy from kontobro.toml's [dispatch] breaker_* keys. */
export function breakerPolicy(d: { breaker_failures: number; breaker_base_ms: number; breaker_max_ms: number }): BreakerPolicy {
  return { failures: d.breaker_failures, baseMs: d.breaker_base_ms, maxMs: Math.max(d.breaker_base_ms, d.breaker_max_ms) };
}

/** What one finished push says about the target (not about the record). */
export type TargetSignal =
  /** The target answered: a success, or a refusal of the content (4xx). It is up. */
  | { kind: "ok" }
  /** The target asked us to wait (429, or 503 with Retry-After). */
  | { kind: "throttled"; retryAfterMs: number | undefined; reason: string }
  /** 5xx, a timeout, a broken or refused connection. */
  | { kind: "failed"; reason: string }
  /** Nothing reached the target (refused before sending, held back by a pause, a bug of ours). */
  | { kind: "none" };

const NETWORK_FAILURES = new Set(["timeout", "connection_lost", "unreachable"]);

/** Classifies an error thrown by a push (a TargetError or anything else). Pure. */
export function signalOf(e: unknown): TargetSignal {
  if (!isTargetError(e)) return { kind: "none" };
  const { status, code, retryAfterMs, message } = e;
  // Held back before sending (a pause, a fence): says nothing about the target.
  if (code === TARGET_PAUSED || code === NOT_SENT) return { kind: "none" };
  if (status === 429) return { kind: "throttled", retryAfterMs, reason: `${status}: ${message}` };
  if (status === 503 && retryAfterMs !== undefined) return { kind: "throttled", retryAfterMs, reason: `${status}: ${message}` };
  if ((status !== undefined && status >= 500) || (code !== undefined && NETWORK_FAILURES.has(code)))
    return { kind: "failed", reason: message };
  return { kind: "ok" };
}

export function initialState(target: string, now = 0): TargetState {
  return {
    target,
    pausedUntil: null,
    pauseReason: null,
    breaker: "closed",
    failures: 0,
    probeDelayMs: null,
    nextProbeAt: null,
    probeOwner: null,
    updatedAt: now,
  };
}

/**
 * The state after one finished push. `probe`: this push was the breaker's probe (only a probe's answer
 * moves a half-open breaker; pushes sent before the breaker opened only count failures).
 * Returns the same object when nothing changes (the caller then writes nothing).
 */
export function applySignal(s: TargetState, sig: TargetSignal, now: number, p: BreakerPolicy, probe = false): TargetState {
  switch (sig.kind) {
    case "none":
      // A probe that sent nothing frees the probe slot at once.
      return probe && s.breaker === "half_open" ? { ...s, nextProbeAt: now, probeOwner: null, updatedAt: now } : s;
    case "ok":
      if (s.breaker === "closed") return s.failures === 0 ? s : { ...s, failures: 0, updatedAt: now };
      if (!probe) return s;
      return { ...s, breaker: "closed", failures: 0, probeDelayMs: null, nextProbeAt: null, probeOwner: null, updatedAt: now };
    case "throttled": {
      const until = now + Math.min(MAX_PAUSE_MS, Math.max(0, sig.retryAfterMs ?? p.baseMs));
      const pausedUntil = Math.max(s.pausedUntil ?? 0, until);
      // After the pause one request goes first (half-open); an open breaker keeps its own delay too, and
      // so does a probe still out. A probe answered with a pause is finished: the next goes after it.
      const keep = s.breaker !== "closed" && !probe ? (s.nextProbeAt ?? 0) : 0;
      return {
        ...s,
        pausedUntil,
        pauseReason: sig.reason,
        breaker: s.breaker === "open" ? "open" : "half_open",
        nextProbeAt: Math.max(keep, pausedUntil),
        probeOwner: probe ? null : s.probeOwner,
        updatedAt: now,
      };
    }
    case "failed": {
      const failures = s.failures + 1;
      if (s.breaker === "half_open" && probe) {
        const delay = s.probeDelayMs ? Math.min(p.maxMs, s.probeDelayMs * 2) : p.baseMs;
        return { ...s, breaker: "open", failures, probeDelayMs: delay, nextProbeAt: now + delay, probeOwner: null, updatedAt: now };
      }
      if (s.breaker === "closed" && failures >= p.failures) {
        return { ...s, breaker: "open", failures, probeDelayMs: p.baseMs, nextProbeAt: now + p.baseMs, updatedAt: now };
      }
      return { ...s, failures, updatedAt: now };
    }
  }
}

/** How many deliveries may be claimed now: all (closed), one probe, or none until `until`. */
export type Admission = { kind: "all" } | { kind: "probe" } | { kind: "none"; until: number };

export function admission(s: TargetState, now: number): Admission {
  if (s.pausedUntil !== null && s.pausedUntil > now) return { kind: "none", until: s.pausedUntil };
  if (s.breaker === "closed") return { kind: "all" };
  if (s.nextProbeAt !== null && s.nextProbeAt > now) return { kind: "none", until: s.nextProbeAt };
  return { kind: "probe" };
}

/**
 * A probe was claimed by worker `owner` (workers.id; null on SQLite): half-open, and no other probe until its lease
 * ends (or its answer arrives, or its worker is declared dead).
 */
export function takeProbe(s: TargetState, now: number, leaseMs: number, owner: number | null): TargetState {
  return { ...s, breaker: "half_open", nextProbeAt: now + leaseMs, probeOwner: owner, updatedAt: now };
}

/**
 * The probe out is dead: at a SQLite start, with the instance lock held, no probe of an earlier run can still be out
 * (its delivery's lease was recovered). The next probe may go now (or when a pause ends), not when the dead probe's
 * lease ends. On PostgreSQL the recovery of a dead worker does the same to its probes, in SQL (agent/db/pg/dead-workers.ts).
 */
export function releaseProbe(s: TargetState, now: number): TargetState {
  if (s.breaker !== "half_open" || s.nextProbeAt === null) return s;
  const next = Math.max(now, s.pausedUntil ?? 0);
  return s.nextProbeAt > next || s.probeOwner !== null
    ? { ...s, nextProbeAt: Math.min(s.nextProbeAt, next), probeOwner: null, updatedAt: now }
    : s;
}

/**
 * The clock went back: a state written later than `now` (updatedAt ahead) set its pause and next probe by the clock as
 * it was. Both move back by as much as updatedAt is ahead (no more than the clock went back, so neither ends sooner than
 * the target asked or the breaker set). Pure; the same object when updatedAt is not ahead (a second run changes nothing).
 */
export function rescheduleAhead(s: TargetState, now: number): TargetState {
  const ahead = s.updatedAt - now;
  if (ahead <= 0) return s;
  const back = (t: number | null) => (t === null ? null : t - ahead);
  return { ...s, pausedUntil: back(s.pausedUntil), nextProbeAt: back(s.nextProbeAt), updatedAt: now };
}

/** One line for the status page and `kontobro status`. Pure. */
export function describeTargetState(s: TargetState, now: number): string {
  if (s.pausedUntil !== null && s.pausedUntil > now) {
    return `Paused by the target until ${showTime(s.pausedUntil)}${s.pauseReason ? ` (${s.pauseReason})` : ""}: nothing is sent before then, then one request goes first.`;
  }
  if (s.breaker === "open") {
    return `Circuit breaker open after ${s.failures} failure(s) in a row: the next probe goes at ${showTime(s.nextProbeAt ?? now)}; its success resumes sending.`;
  }
  if (s.breaker === "half_open") {
    return s.nextProbeAt !== null && s.nextProbeAt > now
      ? "Circuit breaker half-open: one probe request is out; its success resumes sending."
      : "Circuit breaker half-open: the next ready delivery goes alone, as a probe; its success resumes sending.";
  }
  return s.failures > 0
    ? `Circuit breaker closed (${s.failures} failure(s) in a row so far).`
    : "Circuit breaker closed: sending normally.";
}

const COLUMNS = `target, paused_until AS pausedUntil, pause_reason AS pauseReason, breaker, failures,
  probe_delay_ms AS probeDelayMs, next_probe_at AS nextProbeAt, probe_owner AS probeOwner, updated_at AS updatedAt`;

const SELECT_ONE = `SELECT ${COLUMNS} FROM target_state WHERE target = ?1`;
const UPSERT = `INSERT INTO target_state (target, paused_until, pause_reason, breaker, failures, probe_delay_ms, next_probe_at, probe_owner, updated_at)
   VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
   ON CONFLICT (target) DO UPDATE SET paused_until = excluded.paused_until, pause_reason = excluded.pause_reason,
     breaker = excluded.breaker, failures = excluded.failures, probe_delay_ms = excluded.probe_delay_ms,
     next_probe_at = excluded.next_probe_at, probe_owner = excluded.probe_owner, updated_at = excluded.updated_at`;

const LOCK_ONE = `SELECT target FROM target_state WHERE target = ?1 FOR UPDATE`;
const CREATE_ONE = `INSERT INTO target_state (target, updated_at) VALUES (?1, ?2) ON CONFLICT (target) DO NOTHING`;

/**
 * The unit of work with many workers (agent/db/pg/README.md, "Many workers on PostgreSQL"): a transaction that
 * changes a target's deliveries or its stored state first locks the target's row here, so claims, outcomes and
 * intake of one target take turns as under SQLite's one writer while other targets go on in parallel. Several
 * targets are locked in name order, so no two transactions wait for each other. SQLite: nothing to do.
 */
export async function lockTargets(tx: SqlRunner, targets: Iterable<string>, now: number): Promise<void> {
  for (const target of [...new Set(targets)].sort()) {
    if ((await tx.lockForUpdate(LOCK_ONE, target)) !== 0) continue;
    // The target's first transaction: its row, then the lock (a concurrent creator waits for this one).
    await tx.run(CREATE_ONE, target, now);
    await tx.lockForUpdate(LOCK_ONE, target);
  }
}

/**
 * The stored state of every target (table target_state), shared by all workers. `tx`: the transaction to read
 * or write in (a dispatcher round's); without it, a statement of its own.
 */
export class TargetStateStore {
  constructor(private readonly runner: SqlRunner) {}

  async get(target: string, tx: SqlRunner = this.runner): Promise<TargetState> {
    return (await tx.get<TargetState>(SELECT_ONE, target)) ?? initialState(target);
  }

  async put(s: TargetState, tx: SqlRunner = this.runner): Promise<void> {
    await tx.run(
      UPSERT,
      s.target,
      s.pausedUntil,
      s.pauseReason,
      s.breaker,
      s.failures,
      s.probeDelayMs,
      s.nextProbeAt,
      s.probeOwner,
      s.updatedAt,
    );
  }

  /** Runs `fn` in one write transaction (read, decide, write: no other worker in between). */
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
    return this.runner.transaction(fn);
  }
}

/** The stored state of one target for the status page, or null if nothing was ever stored (or no table yet). */
export function readTargetState(db: Db, target: string): TargetState | null {
  try {
    return (db.$client.query(SELECT_ONE).get(target) as TargetState | null) ?? null;
  } catch {
    return null;
  }
}
