// Keeps the JavaScript heap near what is live while the agent works through a burst (issue 16, goal 6).
//
// JavaScriptCore collects the whole heap only once it has about doubled since the last full collection (and by at
// least 32 MB on a machine with gigabytes of RAM). What a push or a request holds for some milliseconds (its objects,
// its strings, its buffers) outlives the young collections and waits for that one: draining a backlog, the main
// heap went from 12 to 35 MB between full collections and the intake writer's as far again, and the memory their
// garbage held outside the heap with them; the peak RSS was three times the idle agent's. A pacer looks at the heap
// (a few times a second, or after each piece of work) and collects once it has grown by `growthBytes`, or by half
// of what the last collection left when that is more, so the cost of a collection stays a fraction of the work
// that made its garbage. Idle, the heap does not grow and nothing is collected.
import { heapSize } from "bun:jsc";

export interface HeapPacerOptions {
  /** Growth since the last collection that starts the next one (at least; half of what was live when that is more). */
  growthBytes: number;
  /** The heap's size in bytes (default bun:jsc heapSize, about 50 µs). */
  heapBytes?: () => number;
  /** A full collection (default Bun.gc(true)). */
  collect?: () => void;
}

/** The main thread's pacer: 4 MB (draining 50,000 deliveries: peak RSS 167-171 → 130-133 MB with the writer's). */
export const MAIN_GROWTH_BYTES = 4 * 1024 * 1024;
/** The intake writer's thread: 2 MB (its live heap is a few MB; a group of 1,000 events makes about as much garbage). */
export const WRITER_GROWTH_BYTES = 2 * 1024 * 1024;

/**
 * The pacer's decision, pure: `live` is what the last collection left (or the lowest size seen since, when the engine
 * collected by itself). Says whether to collect now, and the `live` to keep.
 */
export function paceStep(heap: number, live: number, growthBytes: number): { collect: boolean; live: number } {
  if (heap < live) return { collect: false, live: heap };
  return { collect: heap - live >= Math.max(growthBytes, live / 2), live };
}

export interface HeapPacer {
  /** Looks at the heap; collects when it has grown enough. True when it collected. */
  check(): boolean;
  /** Collections this pacer started. */
  readonly collections: number;
}

/** A pacer its caller checks after a piece of work (the intake writer's thread, after each commit). */
export function heapPacer(o: HeapPacerOptions): HeapPacer {
  const heapBytes = o.heapBytes ?? heapSize;
  const collect = o.collect ?? (() => Bun.gc(true));
  let live = heapBytes();
  let collections = 0;
  return {
    check() {
      const step = paceStep(heapBytes(), live, o.growthBytes);
      live = step.live;
      if (!step.collect) return false;
      collect();
      collections += 1;
      live = heapBytes();
      return true;
    },
    get collections() {
      return collections;
    },
  };
}

/**
 * A pacer that looks at the heap only once `lookBytes` of work (the intake writer: request text) has been done since it
 * last looked. A look (bun:jsc heapSize) walks the heap, about 10 µs per MB: after every group of ~30 single events it
 * cost the writer 4-5 µs of CPU per event, more than the group's own JavaScript (issue 16). `did` counts the work.
 */
export function workPacedHeapPacer(pacer: HeapPacer, lookBytes: number): HeapPacer & { did(bytes: number): void } {
  let since = 0;
  return {
    did(bytes) {
      since += bytes;
    },
    check() {
      if (since < lookBytes) return false;
      since = 0;
      return pacer.check();
    },
    get collections() {
      return pacer.collections;
    },
  };
}

/** A pacer on a timer, for the main thread (requests, pushes and timers all make its garbage); stop() ends it. */
export function startHeapPacer(o: HeapPacerOptions & { everyMs?: number }): HeapPacer & { stop(): void } {
  const pacer = heapPacer(o);
  const timer = setInterval(() => pacer.check(), o.everyMs ?? 250);
  timer.unref?.();
  return {
    check: () => pacer.check(),
    get collections() {
      return pacer.collections;
    },
    stop: () => clearInterval(timer),
  };
}
