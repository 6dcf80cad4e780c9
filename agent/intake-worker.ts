// The intake writer's own thread (issue 16): it holds a connection of its own and commits the requests the
// main thread has parsed and validated, many per transaction (group commit). While it waits for the fsync
// the main thread goes on reading, parsing and validating the next requests; their messages queue here
// and become the next group. Started by IntakeThread (agent/intake-thread.ts); nothing here answers a
// caller before its transaction has committed.
import type { Database } from "bun:sqlite";
import { connect } from "./db/connect.ts";
import { heapPacer, WRITER_GROWTH_BYTES, workPacedHeapPacer } from "./heap-pacer.ts";
import { decodeRequests, type WriterRequest } from "./intake-handover.ts";
import { IntakeStore, type RequestOutcome } from "./intake-store.ts";
import type { Entity } from "./model.ts";
import { sqliteRunner } from "./db/pg/runner.ts";
import { Outbox } from "./outbox.ts";

declare const self: Worker;

/**
 * Messages from the main thread. Requests and outcomes cross as one text each way: a string is copied between
 * threads at a fraction of what cloning the same objects costs the main thread (issue 16).
 */
export type ToWriter =
  | { kind: "open"; path: string; busyTimeoutMs: number; targets: Partial<Record<Entity, string[]>> }
  /** requests: encodeRequests' text (agent/intake-handover.ts). */
  | { kind: "store"; requests: string }
  | { kind: "pragma"; id: number; statement: string }
  | { kind: "close" };

/** Messages to the main thread. */
export type FromWriter =
  | { kind: "ready" }
  /** outcomes: JSON of RequestOutcome[], one per id. */
  | { kind: "stored"; ids: number[]; outcomes: string }
  | { kind: "failed"; ids: number[]; message: string }
  | { kind: "pragma"; id: number; result?: unknown; message?: string }
  | { kind: "closed" };

const reply = (m: FromWriter) => self.postMessage(m);
/**
 * A group's garbage is collected soon after its commit, not once this thread's heap has doubled (issue 16: peak memory).
 * The pacer looks at the heap once 64 KB of request text has come in since it last looked, not after every group (a
 * look walks the heap): a group makes about 2 bytes of heap per byte of its text, so it still looks every ~128 KB of
 * growth, and after every batch of 1,000 events (~250 KB of text) as before.
 */
const pacer = workPacedHeapPacer(heapPacer({ growthBytes: WRITER_GROWTH_BYTES }), WRITER_GROWTH_BYTES / 32);

let db: Database | undefined;
let store: IntakeStore | undefined;
let queue: WriterRequest[] = [];
let scheduled = false;

/** The groups being committed, in order: closing waits for them. One that fails does not stop the next. */
let flushing: Promise<void> = Promise.resolve();
const flush = (): Promise<void> => (flushing = flushing.then(commitQueued, commitQueued));

/** Commits every request that arrived since the last commit, in one transaction. */
async function commitQueued(): Promise<void> {
  scheduled = false;
  const group = queue;
  queue = [];
  if (group.length === 0) return;
  const ids = group.map((r) => r.id);
  try {
    const outcomes: RequestOutcome[] = await store!.storeGroup(group.map((r) => r.events));
    reply({ kind: "stored", ids, outcomes: JSON.stringify(outcomes) });
  } catch (e) {
    reply({ kind: "failed", ids, message: e instanceof Error ? e.message : String(e) });
  }
  // After the answer, so no caller waits for it; the main thread prepares the next group meanwhile.
  pacer.check();
}

self.onmessage = (event: MessageEvent<ToWriter>) => {
  const m = event.data;
  switch (m.kind) {
    case "open": {
      // The intake pages stay warm in a smaller cache than the main connection's.
      // bun:sqlite itself: drizzle (and the migrations agent/db/index.ts embeds) stay out of this thread's heap.
      db = connect(m.path, { busyTimeoutMs: m.busyTimeoutMs, cacheKb: 8192 });
      // A multi-row INSERT inside the group's transaction keeps a statement journal (to undo that statement alone);
      // past 64 KB SQLite spilled it to a temporary file, opened, written and closed about once a commit (issue 16).
      // In memory it costs a group's statements, not the disk: nothing here is durable, the WAL is.
      db.exec("PRAGMA temp_store = MEMORY");
      store = new IntakeStore(new Outbox(sqliteRunner(db)), (entity) => m.targets[entity] ?? []);
      return reply({ kind: "ready" });
    }
    case "store":
      pacer.did(m.requests.length);
      for (const request of decodeRequests(m.requests)) queue.push(request);
      if (!scheduled) {
        scheduled = true;
        // After the messages already waiting have been queued: they join this group.
        setImmediate(flush);
      }
      return;
    case "pragma":
      try {
        return reply({ kind: "pragma", id: m.id, result: db!.query(`PRAGMA ${m.statement}`).all() });
      } catch (e) {
        return reply({ kind: "pragma", id: m.id, message: (e as Error).message });
      }
    case "close":
      return void flush().finally(() => {
        db?.close();
        reply({ kind: "closed" });
      });
  }
};
