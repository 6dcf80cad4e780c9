// A `kontobro run` process as one of many workers on PostgreSQL (issue 17; agent/db/pg/README.md §6): it registers
// its row in `workers`, heartbeats every few seconds, and at each beat takes back the leases of workers the server
// has not heard from for longer than the dead-after setting (agent/db/pg/dead-workers.ts). Every time is the
// database's clock (clock_timestamp()), never this machine's: machines' clocks differ, the server's is one.
// The worker's id is what its leases carry (deliveries.lease_owner; agent/db/lease-owner.ts).
import type { SQL } from "bun";
import { hostname } from "node:os";
import { recoverDeadWorkers, retireWorker, type Recovery } from "./dead-workers.ts";
import { rowsFromPostgres } from "./dialect.ts";

export const DEFAULT_HEARTBEAT_MS = 5_000;
export const DEFAULT_DEAD_AFTER_MS = 75_000;

export interface WorkerOptions {
  /** How often the worker heartbeats and looks for dead workers (default 5 s). */
  heartbeatMs?: number;
  /** A worker not heard from for longer than this, on the server's clock, is dead (default 30 s). */
  deadAfterMs?: number;
  /** Called once if this worker learns it was declared dead (it was silent too long: a partition, a long pause).
   * Its leases are gone and its outcomes no longer land: stop pushing, and register anew to go on. */
  onLost?: () => void;
  /** After every beat, with what it recovered (usually nothing). */
  onBeat?: (recovered: Recovery) => void;
  /** A beat that failed (the server unreachable, …); the next beat tries again. */
  onError?: (e: unknown) => void;
}

/** What is wrong with these timings, or null. A live worker must be able to miss a beat or two without being declared dead. */
export function workerTimingProblem(heartbeatMs: number, deadAfterMs: number): string | null {
  if (!Number.isFinite(heartbeatMs) || heartbeatMs < 10)
    return `heartbeat every ${heartbeatMs} ms: give a number of milliseconds, at least 10 (the default is ${DEFAULT_HEARTBEAT_MS})`;
  if (!Number.isFinite(deadAfterMs) || deadAfterMs < 3 * heartbeatMs)
    return `dead after ${deadAfterMs} ms with a heartbeat every ${heartbeatMs} ms: a worker would be declared dead after missing fewer than three heartbeats; make dead-after at least 3 × the heartbeat (the defaults are ${DEFAULT_DEAD_AFTER_MS} and ${DEFAULT_HEARTBEAT_MS} ms)`;
  return null;
}

/** The database's clock in epoch milliseconds. */
const SERVER_MS = `(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS "serverMs"`;

export class Worker {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private beating: Promise<void> | null = null;
  private running = false;
  private lostNoticed = false;
  /** A heartbeat found this worker's row gone: the others declared it dead. */
  private declaredDead = false;
  /** The database's clock minus this machine's, as the last heartbeat measured it (see now()). */
  private clockOffsetMs = 0;
  /** The database's time the last heartbeat read, and when (performance.now()) it was read (see now()). */
  private serverTime = { ms: 0, at: 0 };

  private constructor(
    private readonly client: SQL,
    /** workers.id: what this worker's leases carry in deliveries.lease_owner. */
    readonly id: number,
    private readonly heartbeatMs: number,
    private readonly deadAfterMs: number,
    private readonly options: WorkerOptions,
    /** When (performance.now(), a monotonic clock) the last heartbeat that reached the server was sent. */
    private lastBeatSentAt: number,
  ) {}

  /**
   * Why this worker may send nothing now, or null (issue 17). The others declare it dead once the server has not
   * heard from it for dead-after, and then push what it held: a worker frozen (GC, SIGSTOP, a paused VM) or cut off
   * from the database but not from the targets must not go on sending. So it fences itself: it sends only while its
   * last heartbeat that reached the server was sent less than dead-after / 2 ago, on this machine's monotonic clock
   * (the server stamped it later still), and only until it learns it was declared dead. The other half of dead-after
   * is the margin for a request let through just before the fence closes, and for clocks that run at slightly
   * different rates. Nothing is released: its leases are left for the recovery (or, once a beat gets through again,
   * for itself). A push still undoes its own write (connectors/http.ts RequestOptions.undoesOwnWrite).
   */
  fence(): string | null {
    if (this.declaredDead) return `worker ${this.id} was declared dead by the others; its leases were taken back`;
    const age = performance.now() - this.lastBeatSentAt;
    if (age < this.deadAfterMs / 2) return null;
    return `no heartbeat of worker ${this.id} has reached the database for ${Math.round(age)} ms (half of workers.dead_after_ms is ${this.deadAfterMs / 2}); it sends nothing until one does, the others may be about to take its leases back`;
  }

  /**
   * The time now on the database's clock (epoch ms), as this machine's clock corrected by the offset the last heartbeat
   * measured. Every worker judges the stored times (a Retry-After pause, a breaker's next probe, a retry's due time) by
   * this clock: a worker whose machine runs a minute fast would otherwise end another's pause a minute early.
   * Never behind the database's time at that heartbeat plus the time passed since on the monotonic clock: this machine's
   * clock going back (an NTP correction) moves no stored time of the others' (Dispatcher.noteClock would take it for the
   * database's clock going back) before the next heartbeat measures the offset again. The larger of the two, as the
   * monotonic clock stands still while the machine is suspended.
   */
  now(): number {
    return Math.max(Date.now() + this.clockOffsetMs, Math.round(this.serverTime.ms + performance.now() - this.serverTime.at));
  }

  /**
   * The offset of the database's clock from this machine's, from the server's time read between `before` and `after`
   * (Date.now()), `sentAt` and `now` (performance.now()).
   */
  private noteServerTime(serverMs: number, before: number, after: number, sentAt: number): void {
    this.clockOffsetMs = Math.round(serverMs - (before + after) / 2);
    this.serverTime = { ms: serverMs, at: (sentAt + performance.now()) / 2 };
  }

  /** Registers this process (host, pid; started and heard from now, on the server's clock). Call start() to beat. */
  static async register(client: SQL, options: WorkerOptions = {}): Promise<Worker> {
    const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    const deadAfterMs = options.deadAfterMs ?? DEFAULT_DEAD_AFTER_MS;
    const problem = workerTimingProblem(heartbeatMs, deadAfterMs);
    if (problem) throw new Error(problem);
    const sentAt = performance.now();
    const before = Date.now();
    const res = await client.unsafe(`INSERT INTO workers (host, pid) VALUES ($1, $2) RETURNING id, ${SERVER_MS}`, [
      hostname(),
      process.pid,
    ]);
    const [row] = rowsFromPostgres<{ id: number; serverMs: number }>(res, res.columns);
    const worker = new Worker(client, row!.id, heartbeatMs, deadAfterMs, options, sentAt);
    worker.noteServerTime(row!.serverMs, before, Date.now(), sentAt);
    return worker;
  }

  /** Tells the server this worker is alive. False: its row is gone, it was declared dead (see onLost). */
  async heartbeat(): Promise<boolean> {
    const sentAt = performance.now();
    const before = Date.now();
    const res = await this.client.unsafe(`UPDATE workers SET heartbeat_at = clock_timestamp() WHERE id = $1 RETURNING ${SERVER_MS}`, [
      this.id,
    ]);
    const [row] = rowsFromPostgres<{ serverMs: number }>(res, res.columns);
    if (row) {
      this.lastBeatSentAt = Math.max(this.lastBeatSentAt, sentAt);
      this.noteServerTime(row.serverMs, before, Date.now(), sentAt);
    } else this.declaredDead = true;
    return row !== undefined;
  }

  /** Takes back the leases of every worker silent for longer than dead-after (this one too, were it silent). */
  recoverDead(): Promise<Recovery> {
    return recoverDeadWorkers(this.client, this.deadAfterMs);
  }

  /** Beats every heartbeatMs until stop(), or until the worker learns it was declared dead. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /**
   * Stops beating and leaves: the row is deleted, and a lease it still holds goes back to pending, uncertain
   * (stop the pushes first; their outcomes would no longer land). Nothing to do for a worker declared dead.
   */
  async stop(): Promise<Recovery> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.beating;
    return retireWorker(this.client, this.id);
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      this.beating = this.beat().finally(() => {
        this.beating = null;
        if (this.running) this.schedule(this.heartbeatMs);
      });
    }, delayMs);
  }

  private async beat(): Promise<void> {
    try {
      if (!(await this.heartbeat())) {
        this.running = false;
        if (!this.lostNoticed) {
          this.lostNoticed = true;
          this.options.onLost?.();
        }
        return;
      }
      const recovered = await this.recoverDead();
      this.options.onBeat?.(recovered);
    } catch (e) {
      this.options.onError?.(e);
    }
  }
}
