// The agent's intake writer on its own thread (issue 16). The main thread reads, parses and validates
// requests and serialises their events; a Bun Worker (agent/intake-worker.ts) holding its own connection
// commits them with group commit, so the fsync never stops the agent from handling the next requests.
// A caller's promise resolves only after the worker reports its transaction committed.
//
// The thread runs only while there is intake: it starts with the first request and ends after a minute
// without any (a thread and its connection are about 8 MB of an idle agent's memory, issue 16's goal 6).
// Requests that arrive while it ends wait for it to finish and go to the next one; nothing is dropped.
import type { Intake, IntakeFailure, StoredResult, ValidEvent } from "./intake.ts";
import { describeWriteError, IntakeUnavailable, settle } from "./intake.ts";
import { type PreparedEvent, prepareEvents, type RequestOutcome } from "./intake-store.ts";
import { encodeRequests, type WriterRequest } from "./intake-handover.ts";
import type { FromWriter, ToWriter } from "./intake-worker.ts";
import type { Entity } from "./model.ts";

/** How long the writer thread stays without requests before it ends (the next request starts it again). */
export const WRITER_IDLE_MS = 60_000;

/**
 * How long requests gathering for an idle writer wait for the rest of a half wave (Writer.gather). At concurrency 64
 * the writer's groups alternated between ~60 requests and a few stragglers, each straggler group paying a whole
 * commit; waiting until enough have come keeps every group a sizeable part of the concurrency (issue 16).
 */
export const GATHER_MS = 2;

/**
 * When the requests gathered on the main thread go over to the writer (issue 16). A wave of callers goes over in two
 * halves: while the writer commits one, the main thread reads, parses and validates the other, and the answered
 * half's next requests become the group after. With the whole wave in one group (before), the main thread and the
 * writer took turns and each idled while the other worked (at concurrency 64: the main thread read 64 requests in one
 * turn of its event loop, about 1.5-3 ms, then the writer committed them, 1.5-2 ms, then the callers were answered).
 * Pure.
 *
 * - `gathered`: requests waiting to go over;
 * - `inFlight`: the groups handed over and not answered yet, oldest first;
 * - `wave`: the most requests unanswered at once before the last group went over (about the callers' concurrency).
 *
 * "now": hand over; "wait": until the writer answers a group (one is in flight); "later": the writer is idle and
 * fewer than half the wave have come: wait GATHER_MS at most for the others. With a group in flight the next one goes
 * when it is as large (the two halves); at most two are in flight, as a third would only queue at the writer behind
 * them. A wave under 2 × MIN_HALF goes over whole, as before. A lone request after lone requests (a wave of 1) never
 * waits.
 */
export function handOverWhen(gathered: number, inFlight: readonly InFlight[], wave: number): "now" | "wait" | "later" {
  if (gathered === 0 || inFlight.length >= 2) return "wait";
  if (inFlight.length === 1) return inFlight[0]!.half && gathered >= inFlight[0]!.size ? "now" : "wait";
  return gathered >= (inHalves(wave) ? Math.ceil(wave / 2) : wave) ? "now" : "later";
}

/** A group handed over and not answered yet: its size, and whether it went as half a wave (handOverWhen). */
export interface InFlight {
  size: number;
  half: boolean;
}

/** Does a wave this large go over in halves? */
export const inHalves = (wave: number) => wave >= 2 * MIN_HALF;

/**
 * The smallest half handOverWhen makes: a smaller wave goes over whole. A half's commit costs the writer about as much
 * as the main thread's work on 16 requests, so halves of fewer pay more than they overlap: at concurrency 8 (halves of
 * 4) the writer's CPU per event went from 77-99 to 115-127 µs and throughput fell by about a quarter (issue 16).
 */
export const MIN_HALF = 16;

interface Waiting {
  resolve: (r: StoredResult[]) => void;
  reject: (e: unknown) => void;
}

export interface IntakeThreadOptions {
  /** The database openDatabase has created and migrated. */
  path: string;
  busyTimeoutMs: number;
  /** The targets that take each entity (fixed for the life of the agent). */
  targets: Partial<Record<Entity, string[]>>;
  /** Called after each commit (the dispatchers look for new deliveries). */
  onStored?: () => void;
  /** Milliseconds without requests before the thread ends (default WRITER_IDLE_MS). */
  idleMs?: number;
  /** Called once a writer has ended for want of requests (the agent collects garbage then: a burst is over). */
  onIdleEnd?: () => void;
  /** Why no event may be stored now (agent/durability.ts), or null: such a request is answered 503, nothing stored. */
  refuse?: () => string | null;
}

/** Retry-After of a refused request: the cause lasts until kontobro is restarted. */
const REFUSED_RETRY_AFTER_S = 60;
/**
 * How long a refusal for a lasting reason is told on /readyz with no request since: at least this, and at least two of
 * its Retry-After, so that a PSA resending after it keeps the check failing while the cause lasts.
 */
const REFUSAL_REMEMBERED_MS = 5 * 60_000;

export class IntakeThread implements Intake {
  observer?: (results: StoredResult[]) => void;
  /** The writer taking requests now (starting or running), if any. */
  private writer: Promise<Writer> | null = null;
  /** The writer that is ending: the next one starts after it has committed what it was given. */
  private ending: Promise<void> = Promise.resolve();
  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  /** A PRAGMA was run on the writer's connection: keep that connection (and its setting) for good. */
  private pinned = false;
  private closed: Error | null = null;
  private failure: IntakeFailure | null = null;
  /** Writer threads started so far (diagnostics). */
  started = 0;

  private constructor(private readonly o: IntakeThreadOptions) {}

  /** Ready to take events; the writer thread starts with the first request. */
  static start(o: IntakeThreadOptions): Promise<IntakeThread> {
    return Promise.resolve(new IntakeThread(o));
  }

  /** Is the writer thread there now (started or starting)? */
  get running(): boolean {
    return this.writer !== null;
  }

  submit(events: ValidEvent[]): Promise<StoredResult[]> {
    if (this.closed) return Promise.reject(this.closed);
    const refused = this.o.refuse?.();
    if (refused) return Promise.reject(new IntakeUnavailable(refused, REFUSED_RETRY_AFTER_S));
    const prepared = prepareEvents(events);
    // Writers are handed requests in the order they were submitted (promise reactions run in order).
    return this.use()
      .then((w) => w.submit(prepared))
      .then(
        (stored) => {
          this.failure = null;
          return stored;
        },
        (e) => {
          if (e instanceof IntakeUnavailable && e.lasting) {
            const now = Date.now();
            this.failure = {
              message: e.message,
              since: this.failure?.since ?? now,
              requests: (this.failure?.requests ?? 0) + 1,
              until: now + Math.max(REFUSAL_REMEMBERED_MS, 2 * e.retryAfterSeconds * 1000),
            };
          }
          throw e;
        },
      );
  }

  /**
   * Requests refused for a lasting reason (a full disk, …) with none stored since, for /readyz: its own probe, a
   * one-row update, may still fit where a request's rows do not. Null again once the last refusal is older than
   * IntakeFailure.until, no request having come since: nothing then says the cause is still there (the space may have
   * been freed), and a load balancer that took kontobro out for it would otherwise never send the request that clears it.
   */
  failing(now = Date.now()): IntakeFailure | null {
    return this.failure && now < this.failure.until ? this.failure : null;
  }

  /** Runs a PRAGMA on the writer's own connection (per-connection settings: diagnostics and fault tests). */
  pragma(statement: string): Promise<unknown[]> {
    if (this.closed) return Promise.reject(this.closed);
    this.pinned = true;
    return this.use().then((w) => w.pragma(statement));
  }

  /** Lets the writer finish what it was given, closes its connection and ends the thread. */
  async close(): Promise<void> {
    this.closed ??= new Error("The intake writer is closed.");
    this.end();
    await this.ending;
  }

  /** The running writer, or a new one once the one ending is done. A writer that cannot start is tried again. */
  private use(): Promise<Writer> {
    this.cancelIdle();
    if (this.writer) return this.writer;
    this.started += 1;
    const starting: Promise<Writer> = this.ending.then(() =>
      Writer.start(this.o, {
        observer: () => this.observer,
        idle: () => this.armIdle(starting),
        gone: () => {
          if (this.writer === starting) this.writer = null;
        },
      }),
    );
    this.writer = starting;
    starting.catch(() => {
      if (this.writer === starting) this.writer = null;
    });
    return starting;
  }

  private armIdle(writer: Promise<Writer>): void {
    if (this.pinned || this.closed || this.writer !== writer) return;
    this.cancelIdle();
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.writer !== writer) return;
      this.end();
      const ended = this.ending;
      ended.then(() => {
        // Only when no new writer has started meanwhile: then the burst is really over.
        if (this.ending === ended && !this.writer) this.o.onIdleEnd?.();
      });
    }, this.o.idleMs ?? WRITER_IDLE_MS);
    this.idleTimer.unref?.();
  }

  private cancelIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  /** Ends the current writer after what it was given (requests already chained on it go first). */
  private end(): void {
    this.cancelIdle();
    const writer = this.writer;
    this.writer = null;
    if (!writer) return;
    const before = this.ending;
    this.ending = Promise.all([
      before,
      writer.then(
        (w) => w.close(),
        () => undefined,
      ),
    ]).then(() => undefined);
  }
}

interface WriterHooks {
  observer: () => ((results: StoredResult[]) => void) | undefined;
  /** Nothing is waiting for the writer any more. */
  idle: () => void;
  /** The thread stopped on its own (it died): callers are told, the next request starts a new one. */
  gone: () => void;
}

/** One life of the writer thread, from its start to its close. */
class Writer {
  private readonly waiting = new Map<number, Waiting>();
  private readonly pragmas = new Map<number, Waiting & { resolve: (r: any) => void }>();
  private next = 1;
  /**
   * Requests not yet handed over. They gather here and go over together (handOverWhen): one message each way per
   * group commit, not one per turn of the event loop.
   */
  private outgoing: WriterRequest[] = [];
  /** The groups handed over and not answered yet, oldest first, with the id of each one's last request. */
  private inFlight: (InFlight & { last: number })[] = [];
  /** The most requests unanswered at once before the last group went over (handOverWhen). */
  private wave = 0;
  /** The most requests unanswered at once since the last group went over (0 once all are answered). */
  private peak = 0;
  /** The gathered requests go over when they have waited GATHER_MS, unless enough come first. */
  private later: ReturnType<typeof setTimeout> | null = null;
  private stopped: Error | null = null;
  private closed?: () => void;

  private constructor(
    private readonly worker: Worker,
    private readonly onStored: () => void,
    private readonly hooks: WriterHooks,
  ) {
    worker.onerror = null;
    worker.onmessage = (event: MessageEvent<FromWriter>) => this.receive(event.data);
    // A writer that died answers nobody: every caller still waiting is told, nothing hangs.
    worker.addEventListener("error", (e) => this.fail(new Error(`The intake writer stopped: ${(e as ErrorEvent).message}`)));
    worker.addEventListener("close", () => this.fail(new Error("The intake writer stopped.")));
  }

  /** Starts the worker and opens its connection; resolves once it can take events. */
  static start(o: IntakeThreadOptions, hooks: WriterHooks): Promise<Writer> {
    const worker = new Worker(new URL("./intake-worker.ts", import.meta.url), { smol: true });
    return new Promise((resolve, reject) => {
      worker.onerror = (e) => {
        worker.terminate();
        reject(new Error(`The intake writer could not start: ${e.message}`));
      };
      worker.onmessage = (event: MessageEvent<FromWriter>) => {
        if (event.data.kind === "ready") resolve(new Writer(worker, o.onStored ?? (() => {}), hooks));
      };
      worker.postMessage({ kind: "open", path: o.path, busyTimeoutMs: o.busyTimeoutMs, targets: o.targets } satisfies ToWriter);
    });
  }

  submit(prepared: PreparedEvent[]): Promise<StoredResult[]> {
    if (this.stopped) return Promise.reject(this.stopped);
    return new Promise((resolve, reject) => {
      const id = this.next++;
      this.waiting.set(id, { resolve, reject });
      this.peak = Math.max(this.peak, this.waiting.size);
      this.outgoing.push({ id, events: prepared });
      this.gather();
    });
  }

  pragma(statement: string): Promise<unknown[]> {
    if (this.stopped) return Promise.reject(this.stopped);
    return new Promise((resolve, reject) => {
      const id = this.next++;
      this.pragmas.set(id, { resolve, reject });
      this.worker.postMessage({ kind: "pragma", id, statement } satisfies ToWriter);
    });
  }

  close(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      this.closed = () => {
        this.worker.terminate();
        resolve();
      };
      this.handOver();
      this.worker.postMessage({ kind: "close" } satisfies ToWriter);
    });
  }

  /**
   * Requests are gathering: they go over as handOverWhen says, at once: the main thread reads a wave's requests in
   * one turn of the event loop (at concurrency 64 about 1.5-3 ms), and a half handed over within it is committed
   * while the other half is read. The callers of the last group answered are sending their next requests, and a
   * group of stragglers would pay a whole commit for a few events (issue 16: at concurrency 64 a third of the groups
   * held under 8 requests, a third over 56). The first lone request after a burst waits GATHER_MS once.
   */
  private gather(): void {
    const when = handOverWhen(this.outgoing.length, this.inFlight, this.wave);
    if (when === "now") this.handOver();
    else if (when === "later") this.later ??= setTimeout(() => this.handOver(), GATHER_MS);
  }

  private cancelGather(): void {
    if (this.later !== null) clearTimeout(this.later);
    this.later = null;
  }

  private handOver(): void {
    this.cancelGather();
    const requests = this.outgoing;
    if (requests.length === 0) return;
    this.outgoing = [];
    // The wave as seen before this group: at the second half of a wave after a quiet moment, `wave` saw only the first
    // half, `peak` both.
    const half = inHalves(Math.max(this.wave, this.peak));
    this.inFlight.push({ last: requests[requests.length - 1]!.id, size: requests.length, half });
    // Callers answered a moment ago may not have sent their next requests yet: the wave is the most seen at once.
    this.wave = this.peak;
    this.peak = this.waiting.size;
    this.worker.postMessage({ kind: "store", requests: encodeRequests(requests) } satisfies ToWriter);
  }

  /**
   * The writer answered these requests (one group or more: it commits together what it has received meanwhile).
   * What gathered goes over now, before anyone is answered, if handOverWhen says so; else it waits (gather).
   */
  private answered(ids: number[]): void {
    const last = ids[ids.length - 1]!;
    while (this.inFlight.length > 0 && this.inFlight[0]!.last <= last) this.inFlight.shift();
    this.gather();
  }

  private receive(m: FromWriter): void {
    switch (m.kind) {
      case "stored": {
        this.answered(m.ids);
        const outcomes = JSON.parse(m.outcomes) as RequestOutcome[];
        m.ids.forEach((id, i) => {
          const w = this.take(id);
          if (w) settle(w, outcomes[i]!, this.hooks.observer());
        });
        this.onStored();
        break;
      }
      case "failed": {
        this.answered(m.ids);
        const err = describeWriteError(new Error(m.message));
        for (const id of m.ids) this.take(id)?.reject(err);
        break;
      }
      case "pragma": {
        const p = this.pragmas.get(m.id);
        this.pragmas.delete(m.id);
        if (m.message !== undefined) p?.reject(new Error(m.message));
        else p?.resolve(m.result);
        break;
      }
      case "closed":
        this.stopped = new Error("The intake writer is closed.");
        this.closed?.();
        return;
    }
    if (this.waiting.size === 0) this.peak = 0;
    if (this.waiting.size === 0 && this.pragmas.size === 0 && this.outgoing.length === 0) this.hooks.idle();
  }

  private take(id: number): Waiting | undefined {
    const w = this.waiting.get(id);
    this.waiting.delete(id);
    return w;
  }

  private fail(err: Error): void {
    const unexpected = !this.stopped && !this.closed;
    this.stopped ??= err;
    this.cancelGather();
    this.outgoing = [];
    this.inFlight = [];
    for (const w of [...this.waiting.values(), ...this.pragmas.values()]) w.reject(err);
    this.waiting.clear();
    this.pragmas.clear();
    this.closed?.();
    if (unexpected) this.hooks.gone();
  }
}
