// The dispatcher: one per target. Leases ready deliveries, pushes them through the connector with a
// bounded number in flight, and writes outcomes in batches (each outcome in the transaction that
// releases its lease). Backpressure belongs to the target (agent/target-state.ts): while the target's
// stored pause lasts nothing is claimed, and while its circuit breaker is open or half-open at most one
// delivery (the probe) is claimed.
import type { Connector } from "../connectors/contract.ts";
import { isTargetError, LATE_ANSWER_WAIT_MS, notSentError, pushUnder } from "../connectors/http.ts";
import { retryDelayMs, type BackoffPolicy } from "./backoff.ts";
import type { SqlRunner } from "./db/pg/runner.ts";
import { causedByWalFailure, WAL_FAILURE_HINT } from "./db/wal-sync.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import { dependenciesOf, parseStored } from "./model.ts";
import type { ClaimedDelivery, Completed, Outbox, Outcome } from "./outbox.ts";
import { issuesToProblems, type Problem } from "./problem.ts";
import type { RecordLookup, RecordSource } from "./record-source.ts";
import {
  admission,
  applySignal,
  BREAKER_DEFAULTS,
  describeTargetState,
  lockTargets,
  releaseProbe,
  rescheduleAhead,
  signalOf,
  takeProbe,
  TargetStateStore,
  type Admission,
  type BreakerPolicy,
  type TargetSignal,
  type TargetState,
} from "./target-state.ts";
import { type StepFailure, WorkerLoop } from "./worker-loop.ts";

export interface DispatcherOptions {
  concurrency: number;
  leaseMs: number;
  backoff: BackoffPolicy;
  /** Longest sleep when nothing is due; new events wake the dispatcher at once. */
  idlePollMs: number;
  /**
   * Leases taken ahead of the pushes (default: as many as `concurrency`): claimed and committed durably in a round, they
   * start the moment a push ends instead of waiting for the next round's transaction and fsync. Given back unsent
   * (neither uncertain nor counted as an attempt) when the target's pause or breaker says stop, the worker is fenced,
   * or the dispatcher stops.
   */
  ahead?: number;
  /** Prefix of idempotency keys, unique per installation and target (delivery id and attempt are appended). */
  keyPrefix: string;
  /** Circuit breaker settings ([dispatch] breaker_*); defaults when absent. */
  breaker?: BreakerPolicy;
  /** The stored pause and breaker, shared by every worker; by default on the outbox's database. */
  targetState?: TargetStateStore;
  /**
   * This is the only worker of the target (the agent holds the instance lock), so a probe left "out" by a
   * process that died is released at start, and times stored ahead by a clock that went back are rescheduled
   * (noteClock). Default true; false for a worker among many: each judges due times by the database's clock as its
   * last heartbeat measured it, so one worker's reschedule after the database's clock went back would make due, on a
   * worker that has not measured it yet, a late-answer hold not over (a second booking): there they wait for the clock.
   */
  soleWorker?: boolean;
  /**
   * Why this process may send nothing now, or null: a hosted worker whose last heartbeat is too old, or that was
   * declared dead (agent/db/pg/workers.ts Worker.fence). No push starts and no request of a push is sent while it
   * gives a reason; the leases are left for the recovery. None on SQLite (the agent is the only worker).
   */
  fence?: () => string | null;
  /**
   * The target's late_answer_wait_ms: the longest a write of a push may take to land at the target. A write answered
   * after request_timeout_ms is listened to this long (connectors/http.ts pushUnder), and a lease taken back without its
   * answer (released at a stop while its push runs, recovered after a crash or from a worker declared dead) is claimable
   * again only this long after (agent/outbox.ts HELD_FROM). Default LATE_ANSWER_WAIT_MS.
   */
  lateAnswerWaitMs?: number;
  /**
   * The clock the stored times are judged by (epoch ms): on PostgreSQL the database's, as the worker's heartbeat
   * measures it (Worker.now), so that every worker ends a shared pause at the same moment. Default Date.now.
   */
  now?: () => number;
}

/**
 * While at least half the leases taken ahead still wait, a push's answer waits up to this long for others before a
 * round writes them: rounds of a few answers each cost their fixed statements, commit and fsync for those few.
 */
const GATHER_MS = 5;

/**
 * The clock (DispatcherOptions.now) went back if it fell behind the monotonic clock by more than this between two rounds:
 * then the next round reschedules what was scheduled by the clock as it was (Dispatcher.noteClock).
 */
const CLOCK_BACK_MS = 1000;

/** Shutdown writes answers that arrive during its last round in another, at most this many in all. */
const FINAL_ROUNDS = 5;

/** A push whose writes are listened to past their deadline (Dispatcher.late). */
interface LateCreate {
  delivery: ClaimedDelivery;
  signal: TargetSignal;
}

interface Finished extends Completed {
  /** What the push said about the target (not about the record). */
  signal: TargetSignal;
}

/** Stable hash of a payload: a link whose hash matches needs no push. (SHA-256 as node:crypto's, in half the time.) */
export function payloadHash(payload: unknown): string {
  return (Bun.SHA256.hash(JSON.stringify(payload), "hex") as string).slice(0, 32);
}

/** Several problems from pre-flight rules become one outcome, keeping every message and hint. */
export function combineProblems(problems: Problem[]): Problem {
  if (problems.length === 1) return problems[0]!;
  const hints = [...new Set(problems.map((p) => p.hint).filter(Boolean))];
  // The record to blame, when any problem names one: a new version of it retries the delivery.
  const record = problems.find((p) => p.record)?.record;
  return {
    code: problems[0]!.code,
    field: problems[0]!.field,
    message: problems.map((p) => p.message).join("; "),
    hint: hints.join(" "),
    ...(record ? { record } : {}),
  };
}

export class Dispatcher {
  private readonly inFlight = new Map<number, ClaimedDelivery>();
  /** Leased in a round that is durable, not started yet (DispatcherOptions.ahead): the next to go as pushes end. */
  private ready: { delivery: ClaimedDelivery; records: RecordLookup }[] = [];
  /**
   * A push ended with what may change the target's pause or breaker (throttled, failed): nothing more starts from
   * `ready` until a round has applied it to the stored state.
   */
  private holdLaunches = false;
  /** How many pushes have ended with such a signal: a round lifts the hold only if none came after it read `finished`. */
  private holdingSignals = 0;
  /** Set by stop(): nothing more starts from `ready`. */
  private draining = false;
  private finished: Finished[] = [];
  /**
   * Pushes whose writes outlived their deadline and are still listened to (connectors/http.ts pushUnder), for the next
   * round to store what the timeout says about the target: the breaker hears a target that answers no write in time at
   * once, not up to 10 minutes on when the answers come.
   */
  private late: LateCreate[] = [];
  private readonly targetState: TargetStateStore;
  private readonly breaker: BreakerPolicy;
  /** The delivery sent as the breaker's probe by this worker, if one is out. */
  private probeId: number | null = null;
  /** The last state read or written, for /metrics and the logs. */
  private lastState: TargetState | null = null;
  private readonly worker: WorkerLoop;
  private notifyScheduled = false;
  /** The timer of a round put off while answers gather (GATHER_MS), if one is set. */
  private gatherTimer: ReturnType<typeof setTimeout> | null = null;
  /** Leases of a round whose commit could not be made durable: nothing was sent under them; released at the next chance. */
  private readonly stranded = new Set<number>();
  /** Set once stop's grace has run out: no push of this dispatcher starts or sends another request. */
  private stopping: string | null = null;
  /** When leases of this worker that none of its pushes holds were last given back (0: at the next round). */
  private orphansCheckedAt = 0;
  /** Whether the failed fsync of the database's WAL was logged (see logRoundError). */
  private walFailureLogged = false;
  /** The loop stopped on an error outside its steps (a bug): nothing restarts it before kontobro does. */
  private crashed: StepFailure | null = null;
  /** The clock stored times are judged by (DispatcherOptions.now). */
  private readonly now: () => number;
  /** DispatcherOptions.lateAnswerWaitMs. */
  private readonly lateAnswerWaitMs: number;
  /** The clock (this.now) minus the monotonic clock at the last round: a drop says the clock went back. */
  private clockOffset: number | null = null;
  /**
   * The next round reschedules what the clock, as it was before it went back, scheduled ahead (Outbox.rescheduleAhead,
   * target-state rescheduleAhead): at the first round (the clock may have gone back while kontobro was stopped) and after
   * noteClock saw it go back.
   */
  private rescheduleDue: boolean;

  constructor(
    private readonly target: string,
    private readonly connector: Connector,
    private readonly outbox: Outbox,
    private readonly options: DispatcherOptions,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    /** The records a push reads besides its own (an invoice's customer): loaded once per round for its new leases. */
    private readonly records: RecordSource,
  ) {
    this.breaker = options.breaker ?? BREAKER_DEFAULTS;
    this.now = options.now ?? Date.now;
    this.lateAnswerWaitMs = options.lateAnswerWaitMs ?? LATE_ANSWER_WAIT_MS;
    this.rescheduleDue = options.soleWorker !== false;
    this.targetState = options.targetState ?? new TargetStateStore(outbox.runner);
    this.worker = new WorkerLoop({
      step: () => this.step(),
      // The database may be busy (a backup holding a lock) or briefly unavailable: never let that end
      // the dispatcher; try again shortly. Leases protect whatever was in progress.
      onError: (e, repeated) => {
        // A round whose COMMIT answer was lost may have committed leases this dispatcher knows nothing of.
        this.orphansCheckedAt = 0;
        this.logRoundError(e, repeated);
        return this.options.idlePollMs;
      },
      onRecovered: (failedRounds) => this.log.info("dispatcher reads and writes the outbox again", { target: this.target, failedRounds }),
      onCrash: (e) => {
        this.crashed = {
          message: `its loop stopped: ${e instanceof Error ? e.message : String(e)}`,
          steps: 1,
          since: Date.now(),
          stopped: true,
        };
        this.log.error("dispatcher stopped by an unexpected error", { target: this.target, error: e });
      },
    });
  }

  /**
   * A round failed. Said once while it fails the same way (`repeated`: a database that stays busy or unavailable fails
   * every poll; /readyz shows it meanwhile), and again when the error changes. A failed fsync of the database's WAL
   * fails every round until kontobro is restarted: said once (the alert, /readyz and the status page keep showing it).
   */
  private logRoundError(e: unknown, repeated: boolean): void {
    if (!causedByWalFailure(e)) {
      if (repeated) return;
      this.log.warn("dispatcher could not read or write the outbox; trying again at every poll, said again only when the error changes", {
        target: this.target,
        error: e,
        hint: "Usually a lock held for a while (a backup) and temporary. If it lasts, check /readyz, the disk (free space, permissions) and the log above.",
      });
      return;
    }
    if (this.walFailureLogged) return;
    this.walFailureLogged = true;
    this.log.error("nothing is sent to this target until kontobro is restarted: an fsync of the database's WAL failed", {
      target: this.target,
      error: e,
      hint: WAL_FAILURE_HINT,
    });
  }

  start(): void {
    if (this.worker.running) return;
    // Queued on the storage before the loop's first round, so that round sees the released probe.
    if (this.options.soleWorker !== false) void this.releaseDeadProbe();
    this.worker.start();
  }

  /** A probe left "out" by a process that died is released (this is the target's only worker). */
  private async releaseDeadProbe(): Promise<void> {
    try {
      await this.targetState.transaction(async (tx) => {
        await lockTargets(tx, [this.target], this.now());
        const s = await this.targetState.get(this.target, tx);
        // After the clock went back, its pause and next probe first (the round's rescheduling no longer sees a state written now).
        const released = releaseProbe(rescheduleAhead(s, this.now()), this.now());
        if (released !== s) await this.targetState.put(released, tx);
      });
    } catch (e) {
      this.log.warn("could not read the target's stored pause and breaker; the dispatcher tries again", {
        target: this.target,
        error: e,
      });
    }
  }

  /**
   * Its rounds failing now (each threw, none succeeded since: nothing is leased or written meanwhile), or null; after its
   * loop stopped on a bug, that error. For /readyz.
   */
  roundsFailing(): StepFailure | null {
    return this.crashed ?? this.worker.failure;
  }

  /** New work may be ready (called by intake after a commit, and by retry). */
  notify(): void {
    this.worker.notify();
  }

  /**
   * Stops claiming, lets pushes in flight finish for up to `graceMs`, writes their outcomes, then releases the rest:
   * every lease this worker holds ends written or released.
   *
   * A lease is never given back while its push can still send (issue 17): once the grace has run out, the pushes
   * still under way may send nothing more (no push starts, no further request of one is sent: pushUnder), and their
   * leases are released held for `lateAnswerWaitMs` before anyone may claim them, the longest a request already on the
   * wire may take to land. The same for a tenant's restart (this process lives on and its pushes end by themselves, having
   * sent nothing more) and for the process's exit (which need not wait for them): bounded, and no one looks the
   * record up before our last request can have landed.
   */
  async stop(graceMs: number): Promise<void> {
    if (!this.worker.running) return;
    // The round under way (if any) ends as any round does: what it leased starts while push slots are free.
    await this.worker.stop();
    // From now on nothing is claimed and nothing more starts from `ready`.
    this.draining = true;
    // Leased ahead and never started: given back as they were, nothing sent under them.
    const unsent = this.ready.splice(0).map((r) => r.delivery.id);
    const unsentBack = await this.outbox.releaseUnsent(unsent).then(
      () => true,
      () => false,
    );
    const deadline = Date.now() + graceMs;
    while (this.inFlight.size > 0 && Date.now() < deadline) await this.sleep(Math.min(50, deadline - Date.now()));
    this.stopping = "kontobro stopped this target's dispatcher (a restart of the tenant or of the worker) before the push ended";
    // Answers that arrive while a round is written (it waits for its turn and its fsync) go to the next round.
    for (let round = 0; round < FINAL_ROUNDS && (round === 0 || this.finished.length > 0); round++) {
      try {
        await this.round();
      } catch (e) {
        this.log.warn("could not record push outcomes at shutdown; their deliveries are released and checked before any new create", {
          target: this.target,
          error: e,
        });
        break;
      }
    }
    // Pushes still under way (a request may be on the wire: held), answers not written, and leases of a round that
    // could not be made durable (nothing sent under them: claimable at once).
    const running = [...this.inFlight.keys()];
    const ended = [...new Set([...this.finished.map((f) => f.delivery.id), ...this.stranded, ...(unsentBack ? [] : unsent)])].filter(
      (id) => !this.inFlight.has(id),
    );
    const abandoned = [...running, ...ended];
    this.stranded.clear();
    if (this.gatherTimer !== null) clearTimeout(this.gatherTimer);
    this.gatherTimer = null;
    try {
      await this.outbox.release(running, true);
      await this.outbox.release(ended);
    } catch (e) {
      // The database cannot be written (full, read-only): the leases stay as they are, and the next start takes every
      // lease back as one whose answer is unknown (Outbox.recoverExpiredLeases), as after a crash. Stopping goes on.
      this.log.warn("could not release deliveries at shutdown; the next start takes them back and checks them before any new create", {
        target: this.target,
        count: abandoned.length,
        error: e,
      });
      return;
    }
    if (abandoned.length > 0)
      this.log.warn("released deliveries without a recorded answer at shutdown; they will be checked before any new create", {
        target: this.target,
        count: abandoned.length,
      });
  }

  /** One round (one transaction): record finished pushes, lease new ones; returns how long to sleep. */
  private async step(): Promise<number> {
    if (this.stranded.size > 0) await this.releaseStranded();
    if (Date.now() - this.orphansCheckedAt >= this.options.leaseMs) await this.releaseOrphans();
    const { limit, claimed, gate } = await this.round();
    if (limit > 0 && claimed === limit && this.roundDue()) return 0;
    if (gate.kind === "none") return Math.max(0, Math.min(this.options.idlePollMs, gate.until - this.now()));
    if (this.inFlight.size + this.ready.length >= this.capacity()) return this.options.idlePollMs;
    const due = await this.outbox.nextDueAt(this.target);
    return due === null ? this.options.idlePollMs : Math.max(0, Math.min(this.options.idlePollMs, due - this.now()));
  }

  /**
   * In one write transaction: apply what the finished pushes said about the target to its stored state,
   * write their outcomes, and claim up to `free` deliveries as the stored pause and breaker allow.
   * Throws if the database is busy: the outcomes stay in `finished` for the next round. The transaction's fsync
   * does not hold up the event loop (answers of pushes in flight are taken meanwhile), but nothing is sent under
   * the new leases, and no outcome is reported, before it has returned. Once committed, the outcomes are never
   * written again: if the fsync fails, the new leases are released unsent and the round throws.
   */
  private async round(): Promise<{ limit: number; claimed: number; gate: Admission }> {
    // Pushes that finish while this round is written go to the next round.
    const finished = this.finished;
    this.finished = [];
    const late = this.late;
    this.late = [];
    const signalsSeen = this.holdingSignals;
    const now = this.now();
    this.noteClock(now);
    const rescheduling = this.rescheduleDue;
    /** Leases of `ready` the round gives back; back in `ready` (held) if the round fails. */
    const givingBack: { delivery: ClaimedDelivery; records: RecordLookup }[] = [];
    const committed = await this.outbox.runner
      .transactionDurableLater((tx) => this.writeRound(tx, finished, late, now, givingBack, rescheduling))
      .catch((e) => {
        this.finished = finished.concat(this.finished);
        this.late = late.concat(this.late);
        if (givingBack.length > 0) {
          this.ready = givingBack.concat(this.ready);
          this.holdLaunches = true;
        }
        throw e;
      });
    const { batch, records, gate, limit, before, after, rescheduled } = committed.result;
    if (rescheduling) this.rescheduleDue = false;
    if (rescheduled.deliveries > 0 || rescheduled.state)
      this.log.warn(
        "the clock went back: deliveries and the target's pause or breaker, scheduled by the clock as it was, are due as long after now as they were then",
        {
          target: this.target,
          deliveries: rescheduled.deliveries,
          pauseOrBreaker: rescheduled.state,
          hint: "Check the server's time and its time synchronisation (timedatectl, NTP).",
        },
      );
    if ([...late, ...finished].some((f) => f.delivery.id === this.probeId)) this.probeId = null;
    try {
      await committed.durable;
    } catch (e) {
      await this.strand(batch, e);
    }
    if (gate.kind === "probe" && batch.length > 0) this.probeId = batch[0]!.id;
    for (const { delivery, outcome } of finished) this.logOutcome(delivery, outcome);
    this.noteStateChange(before, after, now);
    for (const d of batch) this.ready.push({ delivery: d, records });
    // What the round's gate allowed is in `ready` now (a gate other than "all" gave back what was there before), unless
    // a push said more about the target after the round read the answers.
    if (this.holdingSignals === signalsSeen) this.holdLaunches = false;
    this.startReady();
    return { limit, claimed: batch.length, gate };
  }

  /**
   * Notes the round's clock against the monotonic one: if it went back by more than CLOCK_BACK_MS since the last round
   * (an NTP correction of a clock that ran ahead, a VM restored), times stored before lie ahead by as much, and the
   * next round reschedules them. A clock that goes forward needs nothing: what was due goes sooner.
   */
  private noteClock(now: number): void {
    const offset = now - performance.now();
    if (this.clockOffset !== null && offset < this.clockOffset - CLOCK_BACK_MS) this.rescheduleDue = this.options.soleWorker !== false;
    this.clockOffset = offset;
  }

  /** Pushes under way plus leases waiting in `ready`, at most. */
  private capacity(): number {
    return this.options.concurrency + (this.options.ahead ?? this.options.concurrency);
  }

  /**
   * Starts leases of `ready` while push slots are free, unless a push's signal, a stop or the fence holds them back (the
   * next round gives them back unsent).
   */
  private startReady(): void {
    while (
      !this.holdLaunches &&
      !this.draining &&
      this.inFlight.size < this.options.concurrency &&
      this.ready.length > 0 &&
      this.whyNotSend() === null
    ) {
      const { delivery, records } = this.ready.shift()!;
      this.launch(delivery, records);
    }
  }

  /**
   * A round committed but its fsync failed: nothing may go under its leases. They are released (a transaction
   * committed with synchronous=FULL, which also makes the round's outcomes durable), or, if that fails too, at the
   * next round or at stop. Throws, so the worker waits before its next round.
   */
  private async strand(batch: ClaimedDelivery[], cause: unknown): Promise<never> {
    for (const d of batch) this.stranded.add(d.id);
    const released = await this.releaseStranded().then(
      () => true,
      () => false,
    );
    throw new Error(
      `The round's commit could not be made durable (${cause instanceof Error ? cause.message : String(cause)}); ` +
        (released ? "its new leases were released unsent." : "its new leases are released at the next round."),
      { cause },
    );
  }

  /** Gives back the target's leases of this worker that no push of this dispatcher holds (Outbox.releaseOrphans). */
  private async releaseOrphans(): Promise<void> {
    const held = [...this.inFlight.keys(), ...this.ready.map((r) => r.delivery.id), ...this.finished.map((f) => f.delivery.id)];
    // Held as a stop's release is: such a lease may be a push's of this worker's earlier runtime of the tenant whose stop
    // could not release it, with its create still on the wire.
    const count = await this.outbox.releaseOrphans(this.target, held);
    this.orphansCheckedAt = Date.now();
    if (count > 0)
      this.log.warn("gave back leases of this worker that no push held (a round's commit answer was lost, or a release failed)", {
        target: this.target,
        count,
      });
  }

  /** Leases this worker holds with nothing sent under them (see strand). */
  private async releaseStranded(): Promise<void> {
    const ids = [...this.stranded];
    await this.outbox.release(ids);
    for (const id of ids) this.stranded.delete(id);
  }

  /**
   * The round's transaction: the target's stored state, the finished pushes' outcomes, the new leases, and the
   * records their pushes read (one statement; a failure there rolls the round back, leases and all).
   */
  private async writeRound(
    tx: SqlRunner,
    finished: Finished[],
    late: LateCreate[],
    now: number,
    givingBack: { delivery: ClaimedDelivery; records: RecordLookup }[],
    rescheduling: boolean,
  ) {
    await lockTargets(tx, [this.target], now);
    const before = await this.targetState.get(this.target, tx);
    let s = rescheduling ? rescheduleAhead(before, now) : before;
    const rescheduled = { deliveries: rescheduling ? await this.outbox.rescheduleAhead(tx, this.target, now) : 0, state: s !== before };
    for (const f of [...late, ...finished]) {
      // Still this worker's probe: not freed since by the recovery of a worker declared dead (this one, cut off).
      const isProbe = f.delivery.id === this.probeId && s.probeOwner === this.outbox.leaseOwner;
      s = applySignal(s, f.signal, now, this.breaker, isProbe);
    }
    // A pause the connector's client took outside any push (a late request's answer): stored, so every worker keeps it.
    // A push's own pause is stored above, from the round's clock, after the client's: it is not stored twice.
    const heldMs = this.connector.pausedForMs?.() ?? 0;
    if (heldMs > 0 && now + heldMs > (s.pausedUntil ?? 0))
      s = applySignal(
        s,
        { kind: "throttled", retryAfterMs: heldMs, reason: "the target asked to wait (an answer outside a push)" },
        now,
        this.breaker,
      );
    const gate = admission(s, now);
    // A fenced worker claims nothing (it could not send it); it still writes the outcomes it has.
    const fenced = this.whyNotSend() !== null;
    // Leases taken ahead go back unsent when the gate says anything but "all" (a pause, the breaker's one probe) or
    // the worker may not send: nothing is started from them.
    if ((gate.kind !== "all" || fenced) && this.ready.length > 0) {
      givingBack.push(...this.ready.splice(0));
      await this.outbox.releaseUnsent(
        givingBack.map((r) => r.delivery.id),
        tx,
      );
    }
    const limit =
      fenced || this.draining
        ? 0
        : gate.kind === "all"
          ? Math.max(0, this.capacity() - this.inFlight.size - this.ready.length)
          : gate.kind === "probe"
            ? Math.min(this.options.concurrency - this.inFlight.size, 1)
            : 0;
    const batch =
      finished.length > 0 || limit > 0
        ? await this.outbox.completeAndClaim(
            tx,
            finished,
            this.target,
            limit,
            this.options.leaseMs,
            (e) => this.connector.supports(e),
            this.lateAnswerWaitMs,
          )
        : [];
    if (gate.kind === "probe" && batch.length > 0) s = takeProbe(s, now, this.options.leaseMs, this.outbox.leaseOwner);
    if (s !== before) await this.targetState.put(s, tx);
    const records = await this.records.load(
      batch.flatMap((d) => dependenciesOf(d.entity, d.payload)),
      tx,
    );
    return { batch, records, gate, limit, before, after: s, rescheduled };
  }

  private noteStateChange(before: TargetState, after: TargetState, now: number): void {
    this.metrics.setTargetState(this.target, after);
    const prev = this.lastState ?? before;
    this.lastState = after;
    if (prev === after) return;
    const line = { target: this.target, state: describeTargetState(after, now) };
    if (after.pausedUntil !== null && after.pausedUntil > now && after.pausedUntil !== prev.pausedUntil) {
      this.metrics.countTargetPause(this.target);
      this.log.warn("the target asked kontobro to wait: nothing is sent to it until the pause ends", {
        ...line,
        until: new Date(after.pausedUntil).toISOString(),
      });
    } else if (after.breaker === "open" && prev.breaker !== "open") {
      this.log.warn(
        prev.breaker === "closed"
          ? "circuit breaker opened: the target keeps failing; one probe request at a time from now on"
          : "the probe failed; the circuit breaker stays open for longer",
        line,
      );
    } else if (after.breaker === "closed" && prev.breaker !== "closed") {
      this.log.info("circuit breaker closed: the target answers again; sending normally", line);
    }
  }

  /** Why this dispatcher's pushes may send nothing now (stopping, or the worker fenced), or null. */
  private whyNotSend(): string | null {
    return this.stopping ?? this.options.fence?.() ?? null;
  }

  private sleep(ms: number): Promise<void> {
    return this.worker.sleep(ms);
  }

  private launch(d: ClaimedDelivery, records: RecordLookup): void {
    this.inFlight.set(d.id, d);
    const started = performance.now();
    this.deliver(d, records).then(({ outcome, signal }) => {
      const latencyMs = performance.now() - started;
      this.metrics.observePush(this.target, latencyMs / 1000, outcome);
      this.finished.push({ delivery: d, outcome, signal, latencyMs: this.now() - d.createdAt });
      this.inFlight.delete(d.id);
      this.holdFor(signal);
      this.startReady();
      if (this.roundDue()) this.notifySoon();
      else this.gatherSoon();
    });
  }

  /** What a push said about the target may pause it or open its breaker: no more starts until a round has applied it. */
  private holdFor(signal: TargetSignal): void {
    if (signal.kind !== "throttled" && signal.kind !== "failed") return;
    this.holdLaunches = true;
    this.holdingSignals++;
  }

  /**
   * Whether a round should run now rather than gather more answers: the leases waiting ahead are down to half
   * (DispatcherOptions.ahead; with none, always), launches are held (a round must apply what a push said), or nothing
   * is under way.
   */
  private roundDue(): boolean {
    const ahead = this.options.ahead ?? this.options.concurrency;
    return ahead === 0 || this.ready.length * 2 < ahead || this.holdLaunches || this.inFlight.size === 0;
  }

  /** A round within GATHER_MS, unless one is set already. */
  private gatherSoon(): void {
    if (this.gatherTimer !== null) return;
    this.gatherTimer = setTimeout(() => {
      this.gatherTimer = null;
      this.notify();
    }, GATHER_MS);
  }

  /**
   * Wakes the loop once per event-loop turn, not once per finished push: the answers that arrive
   * together are written together, one fsync for all of them (group commit of outcomes).
   */
  private notifySoon(): void {
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    setImmediate(() => {
      this.notifyScheduled = false;
      this.notify();
    });
  }

  private logOutcome(d: ClaimedDelivery, o: Outcome): void {
    // Nothing is built for a line that would not be written (a "delivered" line per delivery below log level info).
    if (!this.log.enabled(o.kind === "done" ? "info" : "warn")) return;
    const base = { target: this.target, delivery: d.id, entity: d.entity, key: d.key, attempt: d.attempts };
    if (o.kind === "done") this.log.info("delivered", { ...base, remoteId: o.remoteId });
    else if (o.kind === "retry")
      this.log.warn("push failed; will retry", {
        ...base,
        code: o.problem.code,
        message: o.problem.message,
        hint: o.problem.hint,
        inMs: o.delayMs,
        uncertain: o.uncertain,
      });
    else if (o.kind === "needs_action")
      this.log.warn("push needs action", { ...base, code: o.problem.code, message: o.problem.message, hint: o.problem.hint });
  }

  /** One push, turned into an outcome and what it says about the target. Never throws. */
  private async deliver(d: ClaimedDelivery, records: RecordLookup): Promise<{ outcome: Outcome; signal: TargetSignal }> {
    const none: TargetSignal = { kind: "none" };
    /** Set once a write of the push outlived its deadline: the next round has heard the timeout (Dispatcher.late). */
    let late = false;
    try {
      const parsed = parseStored(d.entity, d.payload);
      if (!parsed.success) {
        const problem = combineProblems(issuesToProblems(parsed.error.issues, { hint: storedRefusedHint(parsed.error.issues) }));
        return { outcome: { kind: "needs_action", problem, uncertain: d.uncertain }, signal: none };
      }
      const payload = parsed.data as Record<string, unknown>;
      const problems = this.connector.validate(d.entity, payload, records);
      if (problems.length > 0)
        return { outcome: { kind: "needs_action", problem: combineProblems(problems), uncertain: d.uncertain }, signal: none };
      const hash = payloadHash(payload);
      const link = d.link;
      // Unchanged since the last push: nothing to send, unless an earlier attempt may have changed the
      // record at the target since (then the push looks it up and puts it right).
      if (link && link.payloadHash === hash && !d.uncertain)
        return {
          outcome: { kind: "done", remoteId: link.remoteId, payloadHash: hash, note: "unchanged since the last push; nothing sent" },
          signal: none,
        };
      const why = this.whyNotSend();
      if (why) throw notSentError(why, "the push", false);
      // Every request of the push asks the fence first, and the push ends only once every write it sent has answered
      // (connectors/http.ts pushUnder): a write answered after request_timeout_ms keeps the delivery leased and its push
      // slot taken until then, so no attempt, on this worker or another, looks the record up or writes it meanwhile.
      const result = await pushUnder(
        () => this.whyNotSend(),
        () =>
          this.connector.push(d.entity, payload, {
            link: link ? { remoteId: link.remoteId } : null,
            uncertain: d.uncertain,
            idempotencyKey: `${this.options.keyPrefix}-${d.id}-${d.attempts}`,
            delivery: d.id,
            record: records,
          }),
        (writes) => {
          late = true;
          this.listenLate(d, writes);
        },
        this.lateAnswerWaitMs,
      );
      return { outcome: { kind: "done", remoteId: result.remoteId, payloadHash: hash, note: result.note }, signal: { kind: "ok" } };
    } catch (e) {
      return { outcome: this.failure(d, e), signal: late ? none : signalOf(e) };
    }
  }

  /**
   * A push whose writes outlived their deadline, still listened to: the next round stores what the timeout says about
   * the target (the breaker hears a target that answers no write in time at once, not when the answer comes, up to
   * LATE_ANSWER_WAIT_MS on).
   */
  private listenLate(d: ClaimedDelivery, writes: number): void {
    this.log.warn("a write of this push got no answer within request_timeout_ms; the delivery stays in flight until it answers", {
      target: this.target,
      delivery: d.id,
      entity: d.entity,
      key: d.key,
      writes,
      waitsAtMostMs: this.lateAnswerWaitMs,
    });
    const signal: TargetSignal = { kind: "failed", reason: `${this.target} did not answer ${writes} write(s) within request_timeout_ms` };
    this.late.push({ delivery: d, signal });
    this.holdFor(signal);
    this.notifySoon();
  }

  private failure(d: ClaimedDelivery, e: unknown): Outcome {
    if (isTargetError(e)) {
      const problem: Problem = {
        code: e.code,
        message: e.message,
        hint: e.hint,
        field: e.field,
        ...(e.record ? { record: e.record } : {}),
      };
      if (e.kind === "permanent") return { kind: "needs_action", problem, uncertain: d.uncertain };
      return {
        kind: "retry",
        problem,
        uncertain: d.uncertain || e.kind === "uncertain",
        delayMs: retryDelayMs(d.attempts, this.options.backoff, e.retryAfterMs),
      };
    }
    // A bug or an unexpected answer: stop and show it rather than loop; whether it reached the target is unknown.
    const message = e instanceof Error ? e.message : String(e);
    this.log.error("unexpected error during push", { target: this.target, delivery: d.id, error: e });
    return {
      kind: "needs_action",
      uncertain: true,
      problem: {
        code: "internal_error",
        message: `Unexpected error: ${message}`,
        hint: "Press retry; if it happens again, send the log to kontobro support.",
      },
    };
  }
}

/**
 * What to do with a stored record today's checks refuse. A new version of it fixes any field but the ones that name it
 * (its number or code, an invoice's PSA id): one corrected there is another record, and this delivery can never go.
 */
function storedRefusedHint(issues: readonly { path: readonly PropertyKey[] }[]): string {
  const naming = issues.map((i) => i.path[0]).find((f) => f === "number" || f === "code" || f === "psaId");
  if (naming === undefined)
    return "This record was stored by an older kontobro and no longer passes today's checks; correct it in the PSA and send it again.";
  return (
    `This record was stored by an older kontobro with a ${String(naming)} today's checks refuse. Corrected in the PSA it is another record, sent as a new one; ` +
    "this delivery can never go and stays needing action (kontobro has no command to drop it). If it reached the target before, correct or merge it there by hand."
  );
}
