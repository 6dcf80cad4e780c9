// The agent's intake writer on its own thread (issue 16). The main thread reads, parses and validates
// requests and serialises their events; a Bun Worker (agent/intake-worker.ts) holding its own connection
// commits them with group commit, so the fsync never stops the agent from handling the next requests.
// A caller's promise resolves only after the worker reports its transaction committed.
//
// The thread runs only while there is intake: it starts with the first request and ends after a minute
// without any (a thread and its connection are about 8 MB of an idle agent's memory, issue 16's goal 6).
// Requests that arrive while it ends wait for it to finish and go to the next one; nothing is dropped.
import type { Intake, StoredResult, ValidEvent } from "./intake.ts";
import { describeWriteError, settle } from "./intake.ts";
import { type PreparedEvent, prepareEvents, type RequestOutcome } from "./intake-store.ts";
import { encodeRequests, type WriterRequest } from "./intake-handover.ts";
import type { FromWriter, ToWriter } from "./intake-worker.ts";
import type { Entity } from "./model.ts";

/** How long the writer thread stays without requests before it ends (the next request starts it again). */
export const WRITER_IDLE_MS = 60_000;

/**
 * How long requests gathering for an idle writer wait for the rest of a wave (Writer.gather). At concurrency 64 the
 * writer's groups alternated between ~60 requests and a few stragglers, each straggler group paying a whole commit;
 * waiting until as many as the last group have come makes each group about the whole concurrency (issue 16).
 */
export const GATHER_MS = 2;

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
}

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
    const prepared = prepareEvents(events);
    // Writers are handed requests in the order they were submitted (promise reactions run in order).
    return this.use().then((w) => w.submit(prepared));
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
   * Requests not yet handed over. While the writer has requests it has not answered, new ones gather here and go
   * over together when it answers: one message each way per group commit, not one per turn of the event loop.
   */
  private outgoing: WriterRequest[] = [];
  /** Requests handed over and not answered yet. */
  private handedOver = 0;
  /** How many requests the last group had: an idle writer's next group waits (GATHER_MS at most) for as many. */
  private lastGroup = 0;
  /** The gathered requests go over on the next turn of the event loop (soon), or when they have waited (later). */
  private soon: ReturnType<typeof setImmediate> | null = null;
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
      this.outgoing.push({ id, events: prepared });
      if (this.handedOver === 0) this.gather();
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
   * The writer is idle and requests are gathering. Once as many as the last group had have come, they go over on the
   * next turn of the event loop (with whatever that turn reads too); fewer wait up to GATHER_MS for the others. The
   * callers of the last group are sending their next requests, and a group of stragglers would pay a whole commit
   * for a few events (issue 16: at concurrency 64 a third of the groups held under 8 requests, a third over 56). A lone request after lone
   * requests (a last group of 1) never waits; the first one after a burst waits GATHER_MS once.
   */
  private gather(): void {
    if (this.outgoing.length >= this.lastGroup) {
      if (this.soon !== null) return;
      this.cancelGather();
      this.soon = setImmediate(() => this.handOver());
    } else this.later ??= setTimeout(() => this.handOver(), GATHER_MS);
  }

  private cancelGather(): void {
    if (this.soon !== null) clearImmediate(this.soon);
    if (this.later !== null) clearTimeout(this.later);
    this.soon = null;
    this.later = null;
  }

  private handOver(): void {
    this.cancelGather();
    const requests = this.outgoing;
    if (requests.length === 0) return;
    this.lastGroup = requests.length;
    this.outgoing = [];
    this.handedOver += requests.length;
    this.worker.postMessage({ kind: "store", requests: encodeRequests(requests) } satisfies ToWriter);
  }

  /**
   * The writer answered these requests: what gathered meanwhile goes over now (its next group), before anyone is
   * answered, if it is as many as the last group; else it waits for the answered callers' next requests (gather).
   */
  private answered(count: number): void {
    this.handedOver -= count;
    if (this.handedOver !== 0 || this.outgoing.length === 0) return;
    if (this.outgoing.length >= this.lastGroup) this.handOver();
    else this.gather();
  }

  private receive(m: FromWriter): void {
    switch (m.kind) {
      case "stored": {
        this.answered(m.ids.length);
        const outcomes = JSON.parse(m.outcomes) as RequestOutcome[];
        m.ids.forEach((id, i) => {
          const w = this.take(id);
          if (w) settle(w, outcomes[i]!, this.hooks.observer());
        });
        this.onStored();
        break;
      }
      case "failed": {
        this.answered(m.ids.length);
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
    for (const w of [...this.waiting.values(), ...this.pragmas.values()]) w.reject(err);
    this.waiting.clear();
    this.pragmas.clear();
    this.closed?.();
    if (unexpected) this.hooks.gone();
  }
}
