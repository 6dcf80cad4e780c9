// The agent's intake writer on its own thread (issue 16). The main thread reads, parses and validates
// requests and serialises their events; a Bun Worker (agent/intake-worker.ts) holding its own connection
// commits them with group commit, so the fsync never stops the agent from handling the next requests.
// A caller's promise resolves only after the worker reports its transaction committed.
import type { Intake, StoredResult, ValidEvent } from "./intake.ts";
import { describeWriteError, settle } from "./intake.ts";
import { type PreparedEvent, prepareEvents } from "./intake-store.ts";
import type { FromWriter, ToWriter } from "./intake-worker.ts";
import type { Entity } from "./model.ts";

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
}

export class IntakeThread implements Intake {
  observer?: (results: StoredResult[]) => void;
  private readonly waiting = new Map<number, Waiting>();
  private readonly pragmas = new Map<number, Waiting & { resolve: (r: any) => void }>();
  private next = 1;
  /** Requests handed over once per turn of the event loop: one message (one wake of the writer) for them all. */
  private outgoing: { id: number; events: PreparedEvent[] }[] = [];
  private stopped: Error | null = null;
  private closed?: () => void;

  private constructor(
    private readonly worker: Worker,
    private readonly onStored: () => void,
  ) {
    worker.onmessage = (event: MessageEvent<FromWriter>) => this.receive(event.data);
    // A writer that died answers nobody: every caller still waiting is told, nothing hangs.
    worker.addEventListener("error", (e) => this.fail(new Error(`The intake writer stopped: ${(e as ErrorEvent).message}`)));
    worker.addEventListener("close", () => this.fail(new Error("The intake writer stopped.")));
  }

  /** Starts the worker and opens its connection; resolves once it can take events. */
  static start(o: IntakeThreadOptions): Promise<IntakeThread> {
    const worker = new Worker(new URL("./intake-worker.ts", import.meta.url), { smol: true });
    return new Promise((resolve, reject) => {
      worker.onerror = (e) => reject(new Error(`The intake writer could not start: ${e.message}`));
      worker.onmessage = (event: MessageEvent<FromWriter>) => {
        if (event.data.kind === "ready") resolve(new IntakeThread(worker, o.onStored ?? (() => {})));
      };
      worker.postMessage({ kind: "open", path: o.path, busyTimeoutMs: o.busyTimeoutMs, targets: o.targets } satisfies ToWriter);
    });
  }

  submit(events: ValidEvent[]): Promise<StoredResult[]> {
    if (this.stopped) return Promise.reject(this.stopped);
    const prepared = prepareEvents(events);
    return new Promise((resolve, reject) => {
      const id = this.next++;
      this.waiting.set(id, { resolve, reject });
      if (this.outgoing.push({ id, events: prepared }) === 1) setImmediate(() => this.handOver());
    });
  }

  private handOver(): void {
    const requests = this.outgoing;
    if (requests.length === 0) return;
    this.outgoing = [];
    this.worker.postMessage({ kind: "store", requests } satisfies ToWriter);
  }

  /** Runs a PRAGMA on the writer's own connection (per-connection settings: diagnostics and fault tests). */
  pragma(statement: string): Promise<unknown[]> {
    return new Promise((resolve, reject) => {
      const id = this.next++;
      this.pragmas.set(id, { resolve, reject });
      this.worker.postMessage({ kind: "pragma", id, statement } satisfies ToWriter);
    });
  }

  /** Lets the writer finish what it was given, closes its connection and ends the thread. */
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

  private receive(m: FromWriter): void {
    switch (m.kind) {
      case "stored":
        m.ids.forEach((id, i) => {
          const w = this.take(id);
          if (w) settle(w, m.outcomes[i]!, this.observer);
        });
        this.onStored();
        return;
      case "failed": {
        const err = describeWriteError(new Error(m.message));
        for (const id of m.ids) this.take(id)?.reject(err);
        return;
      }
      case "pragma": {
        const p = this.pragmas.get(m.id);
        this.pragmas.delete(m.id);
        if (m.message !== undefined) p?.reject(new Error(m.message));
        else p?.resolve(m.result);
        return;
      }
      case "closed":
        this.stopped = new Error("The intake writer is closed.");
        this.closed?.();
        return;
    }
  }

  private take(id: number): Waiting | undefined {
    const w = this.waiting.get(id);
    this.waiting.delete(id);
    return w;
  }

  private fail(err: Error): void {
    this.stopped ??= err;
    for (const w of [...this.waiting.values(), ...this.pragmas.values()]) w.reject(err);
    this.waiting.clear();
    this.pragmas.clear();
    this.closed?.();
  }
}
