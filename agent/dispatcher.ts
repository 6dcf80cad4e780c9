// The dispatcher: one per target. Leases ready deliveries, pushes them through the connector with a
// bounded number in flight, and writes outcomes in batches (each outcome in the transaction that
// releases its lease).
import { createHash } from "node:crypto";
import type { Connector } from "../connectors/contract.ts";
import { isTargetError } from "../connectors/http.ts";
import { retryDelayMs, type BackoffPolicy } from "./backoff.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import type { Entity } from "./model.ts";
import type { ClaimedDelivery, Outbox, Outcome } from "./outbox.ts";
import type { Problem } from "./problem.ts";
import { WakeableSleep } from "./wakeable.ts";

export interface DispatcherOptions {
  concurrency: number;
  leaseMs: number;
  backoff: BackoffPolicy;
  /** Longest sleep when nothing is due; new events wake the dispatcher at once. */
  idlePollMs: number;
  /** Prefix of idempotency keys, unique per installation and target (delivery id and attempt are appended). */
  keyPrefix: string;
}

/** Stable hash of a payload: a link whose hash matches needs no push. */
export function payloadHash(payload: unknown): string {
  return createHash("sha256").update(JSON.stringify(payload)).digest("hex").slice(0, 32);
}

/** Several problems from pre-flight rules become one outcome, keeping every message and hint. */
export function combineProblems(problems: Problem[]): Problem {
  if (problems.length === 1) return problems[0]!;
  const hints = [...new Set(problems.map((p) => p.hint).filter(Boolean))];
  return {
    code: problems[0]!.code,
    field: problems[0]!.field,
    message: problems.map((p) => p.message).join("; "),
    hint: hints.join(" "),
  };
}

export class Dispatcher {
  private running = false;
  private readonly inFlight = new Map<number, ClaimedDelivery>();
  private finished: { delivery: ClaimedDelivery; outcome: Outcome; latencyMs: number }[] = [];
  private readonly sleeper = new WakeableSleep();
  private notifyScheduled = false;
  private loopDone: Promise<void> = Promise.resolve();

  constructor(
    private readonly target: string,
    private readonly connector: Connector,
    private readonly outbox: Outbox,
    private readonly options: DispatcherOptions,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly record: (entity: Entity, key: string) => any | null,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop().catch((e) => this.log.error("dispatcher stopped by an unexpected error", { target: this.target, error: e }));
  }

  /** New work may be ready (called by intake after a commit, and by retry). */
  notify(): void {
    this.sleeper.wakeUp();
  }

  /** Stops claiming, lets pushes in flight finish for up to `graceMs`, then releases the rest. */
  async stop(graceMs: number): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.notify();
    await this.loopDone;
    const deadline = Date.now() + graceMs;
    while (this.inFlight.size > 0 && Date.now() < deadline) await this.sleep(Math.min(50, deadline - Date.now()));
    this.flushOutcomes();
    const abandoned = [...this.inFlight.keys()];
    this.outbox.release(abandoned);
    if (abandoned.length > 0) this.log.warn("released deliveries still in flight at shutdown; they will be checked before any new create", { target: this.target, count: abandoned.length });
  }

  private async loop(): Promise<void> {
    while (this.running) {
      let wait: number;
      try {
        wait = this.step();
      } catch (e) {
        // The database may be busy (a backup holding a lock) or briefly unavailable: never let that end
        // the dispatcher; try again shortly. Leases protect whatever was in progress.
        this.log.warn("dispatcher could not read or write the outbox; trying again", { target: this.target, error: e });
        wait = this.options.idlePollMs;
      }
      await this.sleep(wait);
    }
  }

  /** One round (one transaction): record finished pushes, lease new ones; returns how long to sleep. */
  private step(): number {
    const finished = this.finished;
    const free = this.options.concurrency - this.inFlight.size;
    if (finished.length > 0 || free > 0) {
      // Throws if the database is busy: the outcomes stay in `finished` for the next round.
      const batch = this.outbox.completeAndClaim(finished, this.target, free, this.options.leaseMs, (e) => this.connector.supports(e));
      this.finished = [];
      for (const { delivery, outcome } of finished) this.logOutcome(delivery, outcome);
      for (const d of batch) this.launch(d);
      if (free > 0 && batch.length === free) return 0;
    }
    if (this.inFlight.size >= this.options.concurrency) return this.options.idlePollMs;
    const due = this.outbox.nextDueAt(this.target);
    return due === null ? this.options.idlePollMs : Math.max(0, Math.min(this.options.idlePollMs, due - Date.now()));
  }

  private sleep(ms: number): Promise<void> {
    return this.sleeper.sleep(ms);
  }

  private launch(d: ClaimedDelivery): void {
    this.inFlight.set(d.id, d);
    const started = performance.now();
    this.deliver(d).then((outcome) => {
      const latencyMs = performance.now() - started;
      this.metrics.observePush(this.target, latencyMs / 1000, outcome.kind);
      if (outcome.kind === "retry") this.metrics.countRetry(this.target);
      this.finished.push({ delivery: d, outcome, latencyMs: Date.now() - d.createdAt });
      this.inFlight.delete(d.id);
      this.notifySoon();
    });
  }

  /**
   * Wakes the loop once per event-loop turn, not once per finished push: the answers that arrive
   * together are written together, one fsync for all of them (group commit of outcomes).
   */
  private notifySoon(): void {
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    setImmediate(() => { this.notifyScheduled = false; this.notify(); });
  }

  private flushOutcomes(): void {
    if (this.finished.length === 0) return;
    const batch = this.finished;
    try {
      this.outbox.complete(batch);
      this.finished = [];
    } catch (e) {
      // Keep the outcomes and write them on the next round; if the agent dies first, the leases expire
      // and the deliveries are retried as uncertain (looked up before any create). Nothing is lost.
      this.log.warn("could not record push outcomes yet; keeping them to write on the next round", { target: this.target, error: e });
      return;
    }
    for (const { delivery: d, outcome } of batch) this.logOutcome(d, outcome);
  }

  private logOutcome(d: ClaimedDelivery, o: Outcome): void {
    const base = { target: this.target, delivery: d.id, entity: d.entity, key: d.key, attempt: d.attempts };
    if (o.kind === "done") this.log.info("delivered", { ...base, remoteId: o.remoteId });
    else if (o.kind === "retry") this.log.warn("push failed; will retry", { ...base, code: o.problem.code, message: o.problem.message, inMs: o.delayMs, uncertain: o.uncertain });
    else if (o.kind === "needs_action") this.log.warn("push needs action", { ...base, code: o.problem.code, message: o.problem.message, hint: o.problem.hint });
  }

  /** One push, turned into an outcome. Never throws. */
  private async deliver(d: ClaimedDelivery): Promise<Outcome> {
    try {
      const problems = this.connector.validate(d.entity, d.payload, this.record);
      if (problems.length > 0) return { kind: "needs_action", problem: combineProblems(problems), uncertain: d.uncertain };
      const hash = payloadHash(d.payload);
      const link = this.outbox.link(this.target, d.entity, d.key);
      // Unchanged since the last push: nothing to send, unless an earlier attempt may have changed the
      // record at the target since (then the push looks it up and puts it right).
      if (link && link.payloadHash === hash && !d.uncertain) return { kind: "done", remoteId: link.remoteId, payloadHash: hash, note: "unchanged since the last push; nothing sent" };
      const result = await this.connector.push(d.entity, d.payload, {
        link: link ? { remoteId: link.remoteId } : null,
        uncertain: d.uncertain,
        idempotencyKey: `${this.options.keyPrefix}-${d.id}-${d.attempts}`,
        record: this.record,
      });
      return { kind: "done", remoteId: result.remoteId, payloadHash: hash, note: result.note };
    } catch (e) {
      return this.failure(d, e);
    }
  }

  private failure(d: ClaimedDelivery, e: unknown): Outcome {
    if (isTargetError(e)) {
      const problem: Problem = { code: e.code, message: e.message, hint: e.hint, field: e.field };
      if (e.kind === "permanent") return { kind: "needs_action", problem, uncertain: d.uncertain };
      return { kind: "retry", problem, uncertain: d.uncertain || e.kind === "uncertain", delayMs: retryDelayMs(d.attempts, this.options.backoff, e.retryAfterMs) };
    }
    // A bug or an unexpected answer: stop and show it rather than loop; whether it reached the target is unknown.
    const message = e instanceof Error ? e.message : String(e);
    this.log.error("unexpected error during push", { target: this.target, delivery: d.id, error: e });
    return { kind: "needs_action", uncertain: true, problem: { code: "internal_error", message: `Unexpected error: ${message}`, hint: "Press retry; if it happens again, send the log to kontobro support." } };
  }
}
